"""The import rules of ARCHITECTURE.md, read from the source, and the kiosk path without torch.

Counted are module-level and function-level imports and string imports: ``require("mmdg_edge...")``,
``importlib.import_module(...)`` and registry targets such as ``"mmdg_edge.engines.x:Engine"``.
"""
import ast
import re
import subprocess
import sys
from pathlib import Path
from typing import Dict, Set

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = {"mmdg_edge": REPO / "mmdg_edge", "mmdg_edge.commands": REPO / "mmdg_edge" / "commands",
            "mmdg_edge.sensors": REPO / "sensors",
            "mmdg_edge.engines": REPO / "engines", "mmdg_edge.train": REPO / "train"}
_MODULE_STRING = re.compile(r"^mmdg_edge(\.\w+)+(:\w+)?$")


def _modules() -> Dict[str, Path]:
    found = {}
    for package, folder in PACKAGES.items():
        for path in folder.glob("*.py"):
            name = package if path.stem == "__init__" else f"{package}.{path.stem}"
            found[name] = path
    return found


def _resolve(module: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    package = module if _modules()[module].stem == "__init__" else module.rsplit(".", 1)[0]
    for _ in range(node.level - 1):
        package = package.rsplit(".", 1)[0]
    return f"{package}.{node.module}" if node.module else package


def imports_of(module: str) -> Set[str]:
    """Every project module ``module`` imports, at any level, including string imports."""
    tree = ast.parse(_modules()[module].read_text())
    names: Set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(module, node)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and _MODULE_STRING.match(node.value):
            names.add(node.value.split(":")[0])
    known = _modules()
    return {name for name in names if name in known and name != module}


def _in(module: str, *prefixes: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def _violations(rule) -> list:
    return sorted(f"{module} imports {target}" for module in _modules() for target in imports_of(module)
                  if rule(module, target))


def test_the_checker_sees_function_level_and_string_imports():
    assert "mmdg_edge.sensors.latest" in imports_of("mmdg_edge.detector")  # imported inside stream()
    assert "mmdg_edge.engines.onnxruntime_engine" in imports_of("mmdg_edge.engines")  # registry string
    assert "mmdg_edge.train.trainer" in imports_of("mmdg_edge.commands.training")


def test_frames_imports_nothing_of_the_project():
    assert imports_of("mmdg_edge.frames") == set()


def test_sensors_never_import_engines_train_or_the_detector():
    assert _violations(lambda m, t: _in(m, "mmdg_edge.sensors") and _in(
        t, "mmdg_edge.engines", "mmdg_edge.train", "mmdg_edge.detector", "mmdg_edge.align")) == []


def test_the_aligner_and_preprocess_import_frames_and_geometry_only():
    # The face models are the aligner's own parts; assets only names the bundled files they load.
    allowed = {"mmdg_edge.frames", "mmdg_edge.geometry", "mmdg_edge.face_detectors", "mmdg_edge.face_mesh",
               "mmdg_edge.assets"}
    for module in ("mmdg_edge.align", "mmdg_edge.face_detectors", "mmdg_edge.face_mesh", "mmdg_edge.preprocess",
                   "mmdg_edge.geometry"):
        assert imports_of(module) <= allowed, (module, imports_of(module) - allowed)
    assert imports_of("mmdg_edge.assets") == set()


def test_engines_never_import_sensors_or_the_aligner():
    assert _violations(lambda m, t: _in(m, "mmdg_edge.engines") and _in(
        t, "mmdg_edge.sensors", "mmdg_edge.align", "mmdg_edge.face_detectors")) == []


def test_only_the_cli_training_commands_import_train():
    assert _violations(lambda m, t: not _in(m, "mmdg_edge.train", "mmdg_edge.commands.training")
                       and _in(t, "mmdg_edge.train")) == []


@pytest.mark.parametrize("blocked", ["torch", "open_clip"])
def test_detector_check_runs_the_onnxruntime_engine_with_torch_unimportable(blocked):
    code = f"""
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name == {blocked!r} or name.startswith({blocked!r} + "."):
            raise ImportError("blocked for this test: " + name)
sys.meta_path.insert(0, Block())
from mmdg_edge import Detector, open_source
detector = Detector.load("demo", engine="auto")
with open_source("demo") as frames:
    verdicts = [detector.check(frameset) for frameset in frames]
scored = [v for v in verdicts if v.score is not None or v.reason.startswith("physical veto")]
print(type(detector.engine).__name__, len(verdicts), len(scored), sorted({{v.status for v in verdicts}}))
print("torch" in sys.modules or "open_clip" in sys.modules)
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    engine, count, scored, statuses = result.stdout.splitlines()[0].split(" ", 3)
    # every frameset was scored by the engine or denied by a physical veto before it
    assert engine == "OnnxRuntimeEngine" and count == "36" and scored == "36", result.stdout
    assert "'live'" in statuses and "'attack'" in statuses
    assert result.stdout.splitlines()[1] == "False"


def test_the_detector_reads_profiles_without_the_calibration_code():
    assert "mmdg_edge.calibration" not in imports_of("mmdg_edge.detector")
    for module in ("mmdg_edge.profile", "mmdg_edge.digest", "mmdg_edge.signing", "mmdg_edge.bundle"):
        assert not imports_of(module) & {"mmdg_edge.detector", "mmdg_edge.calibration"}, module
    assert imports_of("mmdg_edge.digest") == set()


def test_every_error_type_is_exported_from_the_package_root():
    import mmdg_edge
    from mmdg_edge import errors

    defined = {name for name, value in vars(errors).items()
               if isinstance(value, type) and issubclass(value, errors.MMDGEdgeError)}
    assert {"ProfileMismatch", "BundleError", "SignatureError"} <= defined
    assert defined <= set(mmdg_edge.__all__)
    assert all(getattr(mmdg_edge, name) is getattr(errors, name) for name in defined)
