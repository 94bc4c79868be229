"""Build the bundled demo recording mmdg_edge/assets/demo.db3 and its ground truth demo_segments.json.

    python scripts/make_demo_recording.py [--out mmdg_edge/assets] [--seed 7]

A person walks up to the kiosk (live), then holds up a print, then a phone screen (replay), then
a person stands in front of it again (live). The synthetic camera renders it and the recorder
writes it through rs.software_device + rs.recorder, so `open_source("demo")` reads it through the
same playback path as a real camera's recording.

Size: a RealSense recording stores the pixels (rgb8 + z16 + y8: 6 bytes per pixel, lz4-compressed
to ~60 %), so the file stays under the 15 MB asset budget at 424x240 (a D4xx profile for all three
streams) with 36 framesets, about 12 MB. Each segment sits at another place in the frame, so the detector sees a new face
track and a new session for each.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from mmdg_edge.sensors.recorder import record
from mmdg_edge.sensors.synthetic import Segment, SyntheticConfig, render_sequence

ASSETS = Path(__file__).resolve().parents[1] / "mmdg_edge" / "assets"
CONFIG = SyntheticConfig(width=424, height=240, fx=615.0 * 424 / 640)  # the D435 colour focal length at 424 px
SEGMENTS = (
    Segment("live", 10, domain=1, distance_start_m=0.75, distance_end_m=0.5, centre=(150.0, 120.0)),
    Segment("print", 9, domain=1, distance_start_m=0.5, centre=(270.0, 120.0)),
    Segment("replay", 8, domain=1, distance_start_m=0.5, centre=(150.0, 120.0)),
    Segment("live", 9, domain=1, distance_start_m=0.55, centre=(270.0, 120.0)),
)
MAX_BYTES = 15 * 1024 * 1024


def segment_table(segments=SEGMENTS):
    """Ground truth per segment: kind, live/attack label and the first and last frame numbers."""
    rows, start = [], 0
    for segment in segments:
        rows.append({"kind": segment.kind, "label": "live" if segment.kind == "live" else "attack",
                     "first_frame": start, "last_frame": start + segment.num_frames - 1})
        start += segment.num_frames
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ASSETS, help="folder for demo.db3 and demo_segments.json")
    parser.add_argument("--seed", type=int, default=7, help="seed of the room, placement and sensor noise")
    args = parser.parse_args()
    recording = args.out / "demo.db3"
    written = record(render_sequence(SEGMENTS, seed=args.seed, config=CONFIG), recording)
    size = recording.stat().st_size
    if size > MAX_BYTES:
        raise SystemExit(f"{recording} is {size / 2**20:.1f} MB, over the {MAX_BYTES / 2**20:.0f} MB asset budget")
    segments = {"recording": recording.name, "seed": args.seed, "size": [CONFIG.width, CONFIG.height],
                "note": "synthetic camera (scripts/make_demo_recording.py), not a real person",
                "segments": segment_table()}
    (args.out / "demo_segments.json").write_text(json.dumps(segments, indent=2) + "\n")
    print(f"wrote {written} framesets, {size / 2**20:.1f} MB: {recording}")


if __name__ == "__main__":
    main()
