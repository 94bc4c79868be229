"""The attacks that a box-fraction relief let through (issue 20, findings 1, 2 and 8): folded and rolled
prints, a print held by a hand whose fingers enter the face, a print with the eyes cut out worn over
a live face, and a print of someone else beside a live face. Each is presented as a stream
(synthetic frames allowed to open a session) to a detector whose model the attack has fooled (it
scores every face 0.9): what denies is the face's geometry. No live verdict, no door opened."""
import zlib

import pytest

from faces import ConstantEngine

from mmdg_edge import Detector
from mmdg_edge.sensors.synthetic import SecondFace, Segment, create_instrument, create_subject, render_sequence

FRAMES = 6


@pytest.fixture(scope="module")
def detector():
    demo = Detector.load("demo", engine="onnxruntime", intra_op_num_threads=1)
    return Detector(ConstantEngine(demo.engine, 0.9), demo.aligner, threshold=0.5)


def _present(detector, segment, seed):
    results = list(detector.stream(render_sequence([segment], seed=seed), allow_recorded=True))
    return [r.verdict for r in results], [r.session for r in results]


def _presentations():
    subject = create_subject(910)
    cases = []
    for index in range(4):  # V and W folds by turns, 1-8 cm
        cases.append((f"folded_print-{index:02d}", dict(kind="print", instrument=create_instrument("folded_print", index),
                                                        subject=subject)))
    for species in ("rolled_print", "handheld_print"):
        for index in range(2):
            cases.append((f"{species}-{index:02d}", dict(kind="print", instrument=create_instrument(species, index),
                                                         subject=subject)))
    for index in range(2):
        cases.append((f"eyes_cut_print-{index:02d}", dict(kind="print", subject=subject,
                                                          instrument=create_instrument("eyes_cut_print", index),
                                                          wearer=create_subject(911 + index))))
    for kind in ("print", "replay"):
        cases.append((f"second face ({kind})", dict(kind="live", subject=subject,
                                                    second_face=SecondFace(kind, create_subject(920)))))
    return cases


@pytest.mark.slow
@pytest.mark.parametrize("name,scene", _presentations(), ids=[name for name, _ in _presentations()])
def test_a_new_instrument_gets_no_live_verdict_and_opens_no_door(detector, name, scene):
    segment = Segment(num_frames=FRAMES, distance_start_m=0.6, **scene)
    verdicts, sessions = _present(detector, segment, seed=zlib.crc32(name.encode()) % 1000)
    assert not any(v.status == "live" for v in verdicts), [(v.status, v.reason) for v in verdicts]
    assert not any(s.opened for s in sessions)
    found = [v for v in verdicts if v.box is not None]
    assert len(found) >= FRAMES - 1, [v.reason for v in verdicts]  # denied for what it is, not for lack of a face
    if "second face" in name:
        assert all("2 faces in view" in v.reason for v in found)
    else:
        assert all(v.reason.startswith("physical veto: ") for v in found), [v.reason for v in found]


def test_the_same_person_live_is_live_and_opens_once(detector):
    segment = Segment("live", FRAMES, distance_start_m=0.6, subject=create_subject(910))
    verdicts, sessions = _present(detector, segment, seed=3)
    assert [v.status for v in verdicts] == ["live"] * FRAMES, [v.reason for v in verdicts]
    assert sum(s.opened for s in sessions) == 1
