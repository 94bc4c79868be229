"""Open the door once per live session, with a timeout.

    python examples/kiosk_loop.py MODEL.onnx [SOURCE] [TIMEOUT_S]

SOURCE defaults to "realsense" (a connected D4xx camera); any spec of open_source works. The door
opens at the one frameset where a face track's session turns live (``session.opened``): the last
K verdicts of that face were live. A timeout or an attack decision keeps it shut. A recording is
never a person standing at the kiosk: the SDK opens no door on one unless told it is a test, which
this example does (and says so) when SOURCE is not a live camera.
"""
import sys
import time

from mmdg_edge import Detector, open_source


def open_door(decision):
    print(f"door opened after {decision.time_to_decision_ms:.0f} ms (track {decision.track_id})")


model = sys.argv[1]
source = sys.argv[2] if len(sys.argv) > 2 else "realsense"
timeout_s = float(sys.argv[3]) if len(sys.argv) > 3 else 10.0

detector = Detector.load(model)
deadline = time.monotonic() + timeout_s
outcome = "timeout"
with open_source(source) as frames:
    test = not frames.is_realtime
    if test:
        print(f"{source} is not a live camera: running as a test")
    for result in detector.stream(frames, allow_recorded=test):
        if result.session.opened:
            open_door(result.session)
            outcome = "opened"
            break
        if result.session.status == "attack":
            outcome = "attack"
            break
        if time.monotonic() > deadline:
            break
print(f"session ended: {outcome}")
