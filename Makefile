# Two entry points: `make demo` (kiosk install, no torch) and `make test` (everything tests need).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip

.PHONY: demo test system-deps clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip wheel setuptools

# pyrealsense2 needs libusb at import time; install it when we are allowed to (root, apt present).
system-deps:
	@if ! ldconfig -p 2>/dev/null | grep -q 'libusb-1.0.so.0'; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libusb-1.0-0 >/dev/null; \
		else \
			echo "note: libusb-1.0-0 is missing; install it (sudo apt-get install libusb-1.0-0) for pyrealsense2" >&2; \
		fi; \
	fi

$(VENV)/.demo-installed: setup.py $(BIN)/python
	$(PIP) install -q -e ".[realsense]"
	@touch $@

$(VENV)/.dev-installed: setup.py $(BIN)/python
	$(PIP) install -q -e ".[dev]"
	@touch $@ $(VENV)/.demo-installed

demo: system-deps $(VENV)/.demo-installed
	$(BIN)/mmdg-edge live --source demo --headless --contact-sheet demo_contact_sheet.png --force

test: system-deps $(VENV)/.dev-installed
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) build *.egg-info
