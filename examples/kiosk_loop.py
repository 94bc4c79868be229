"""Open the door on a live session decision, with a callback and a timeout.

    python examples/kiosk_loop.py MODEL.onnx [SOURCE] [TIMEOUT_S]

SOURCE defaults to "realsense" (a connected D4xx camera); any spec of open_source works, e.g. a
.bag recording. The door opens only when the K-of-N session decision is live; a timeout or an
attack decision keeps it shut.
"""
import sys
import time

from mmdg_edge.detector import Detector
from mmdg_edge.sensors import open_source


def open_door(decision):
    print(f"door opened after {decision.time_to_decision_ms:.0f} ms (track {decision.track_id})")


model = sys.argv[1]
source = sys.argv[2] if len(sys.argv) > 2 else "realsense"
timeout_s = float(sys.argv[3]) if len(sys.argv) > 3 else 10.0

detector = Detector.load(model)
deadline = time.monotonic() + timeout_s
outcome = "timeout"
with open_source(source) as frames:
    for result in detector.stream(frames):
        if result.session.status == "live":
            open_door(result.session)
            outcome = "opened"
            break
        if result.session.status == "attack":
            outcome = "attack"
            break
        if time.monotonic() > deadline:
            break
print(f"session ended: {outcome}")
