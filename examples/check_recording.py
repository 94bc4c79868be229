"""Print a verdict for every frameset of a RealSense recording.

    python examples/check_recording.py MODEL.onnx [RECORDING.bag|.db3]

Without a recording it plays the bundled real D435 office recording: nobody in view, and its one
colour frame was captured 102 ms before its depth frame, so the detector calls it unreliable (not
one moment). Shows the kiosk path: open_source → Detector.check → Verdict, no torch involved.
"""
import sys

from mmdg_edge import Detector, open_source
from mmdg_edge.assets import D435_RECORDING

model = sys.argv[1]
recording = sys.argv[2] if len(sys.argv) > 2 else str(D435_RECORDING)

detector = Detector.load(model)
with open_source(recording) as frames:
    for frameset in frames:
        verdict = detector.check(frameset)
        print(f"frame {verdict.frame_number}: {verdict.status} ({verdict.reason})")
