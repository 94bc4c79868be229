"""Print a verdict for every frameset of a RealSense recording.

    python examples/check_recording.py MODEL.onnx [RECORDING.bag|.db3]

Without a recording it plays the bundled real D435 office recording (no person: every verdict is
no_face). Shows the kiosk path: open_source → Detector.check → Verdict, no torch involved.
"""
import sys
from pathlib import Path

import mmdg_edge
from mmdg_edge.detector import Detector
from mmdg_edge.sensors import open_source

model = sys.argv[1]
recording = sys.argv[2] if len(sys.argv) > 2 else str(Path(mmdg_edge.__file__).parent / "assets" / "d435_office.bag")

detector = Detector.load(model)
with open_source(recording) as frames:
    for frameset in frames:
        verdict = detector.check(frameset)
        print(f"frame {verdict.frame_number}: {verdict.status} ({verdict.reason})")
