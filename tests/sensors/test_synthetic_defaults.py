"""Without subjects or instruments the synthetic camera renders exactly what it did before they existed.

Without the projector's dots (``SyntheticConfig(projector_dots=False)``) every frameset is the old
one bit for bit: the dots (and the capture domains after 0-3) changed nothing else. With them (the
default), the digests in ``WITH_DOTS`` pin today's renders.

The digests below are SHA-256 of the raw bytes of rgb, depth and ir, frameset after frameset, as
rendered by the code before subjects and instruments were added (commit 61feef7), computed by
``_digest`` on the renders built here, with numpy 2.4.6 and OpenCV 4.14.0. Other numpy or OpenCV
builds may round a float differently somewhere, so the comparison only runs on those versions.
``SUBJECTS_BEFORE`` holds the same for subjects, made before the face geometry, mirror and marks
fields existed (commit 995f6a3): with those fields at their defaults a subject is what it was. Its
renders leave out subjects with glasses: their frames now stand before the face in depth and keep
the projector's dots sharp (test_synthetic_subjects); the four others were hashed on commit 43d3e8f,
which still reproduced 995f6a3's digest of all six.

The head relief's nose was redrawn to peak at the painted nose tip (it peaked mid-nose, 2 cm above
it): that changed depth and IR around the nose of heads (live and mask) and nothing else, checked
pixel by pixel on a live render. The live, mask, camera, sequence and subject-render digests were
hashed again then; the print, replay and empty ones and the truths still hold from before.
"""
import dataclasses
import hashlib
import json

import cv2
import numpy as np
import pytest


from mmdg_edge.sensors.synthetic import (
    Segment, Subject, SyntheticCamera, SyntheticConfig, create_subject, create_subject_texture, load_default_texture,
    render_frameset, render_sequence,
)

FLOOD = SyntheticConfig(projector_dots=False)

BEFORE = {
    "live": "1f77ccf70656a51dcc5534040577cd79debc475cc02256652e1234827f2e1eb5",
    "print": "e4bf84484f6d7b074f39b4de43ca0575cea3f312a4ea2aafb28a394b18de0b58",
    "replay": "59eaa5d1e6aaecb8c84a3a29e46feb4b9fc96f6c4eee4fe2952ba4f116b57f09",
    "mask": "5523dda21a740897e44a9940fb9f57dd383985d89002306f770d8d1626e83144",
    "empty": "779bd93fd1406e52f5e18cf46eb2861bebfe5ba3290a2ffac9380b72b5a79ce6",
    "camera": "b2ce1a7e12f61eda76a72af7a3437679ca02f7d295cce3e61159f1010fec16be",
    "sequence": "45ba75d95e74b605ad0cd415560aad07e78e4282802eb30ac2ba410fc47a0d4e",
}
WITH_DOTS = {
    "live": "27f39ecf378889c85158b4a201bfb680cd3463de1d9d13c7404b9a074b3c7ee9",
    "print": "94ba29e0f2314dadcc63011df12dd6e1066831a73d69088481eff6ead61886f7",
    "replay": "57147b0fdbdb3357d5c0709df4f7bd5d94c6c887b85b49d2779ac3a6ac693efe",
    "mask": "e70146dc201ed757e9875bf899b24869c31262ef96f4383c2597629c6bfcffc3",
    "empty": "4246c510201c652d4521a4e544ef4173063e9f7108c97ba17840d1a3fd4745ab",
    "camera": "1688ad6bd352e56439b954f56b2f5c576aa5f5e1c4b0d830b8ecaf69497f2496",
    "sequence": "0cb4a7115b5016fed243233c18cfa6cd0bb32a83abb6017d4d16d16c8dc0c3ad",
}
# SHA-256 of json.dumps(truths, sort_keys=True) of the camera's and the sequence's framesets, with the
# keys added since (NEW_TRUTH_KEYS: "species", "subject", "instrument", then the new scenes' keys) left out.
BEFORE_TRUTHS = "33b17fd51028fd663590cd2b92d85f64abd621ea16cbbe74af812eb961472b67"
# Subject("x") and create_subject(0..5) with the fields added since at their defaults: their textures
# (planes, face box, skin; SHA-256 of the bytes, float64 for the box and skin) and one live render each.
SUBJECTS_BEFORE = {
    "textures": "da06244b433f451b439dd642f4b15c383102a5861368031b7817555693ba4b0b",
    "renders": "7ef5f60c1bfa40b650c53c0abe149736f4d97e4baa3244b6de5c3b3e95717f3b",  # subjects without glasses
}
NEW_TRUTH_KEYS = ("species", "subject", "instrument", "wearer", "yaw_deg", "pitch_deg", "faces", "brightness",
                  "backlight")

pytestmark = pytest.mark.skipif(
    (np.__version__, cv2.__version__) != ("2.4.6", "4.14.0"),
    reason=f"digests were made with numpy 2.4.6 / OpenCV 4.14.0, not {np.__version__} / {cv2.__version__}",
)


def _digest(framesets):
    sha = hashlib.sha256()
    for fs in framesets:
        for image in (fs.rgb, fs.depth, fs.ir):
            sha.update(np.ascontiguousarray(image).tobytes())
    return sha.hexdigest()


def _camera(config=FLOOD):
    return list(SyntheticCamera(seed=9, num_frames=8, config=config))


def _sequence(config=FLOOD):
    return list(render_sequence([Segment("empty", 1), Segment("live", 3, 1, 0.9, 0.6), Segment("print", 2, 2, 0.5),
                                 Segment("replay", 2, 3, 0.7), Segment("mask", 2, 0, 0.55)], seed=4, config=config))


@pytest.mark.parametrize("config, digests", [(FLOOD, BEFORE), (SyntheticConfig(), WITH_DOTS)], ids=["flood", "dots"])
@pytest.mark.parametrize("kind", ["live", "print", "replay", "mask", "empty"])
def test_each_class_renders_bit_for_bit_as_before_in_every_domain(kind, config, digests):
    framesets = [render_frameset(kind, domain, np.random.default_rng(100 + domain), domain, config,
                                 distance_m=None if domain % 2 else 0.6) for domain in range(4)]
    assert _digest(framesets) == digests[kind]


def test_camera_and_scripted_sequence_render_bit_for_bit_as_before():
    camera, sequence = _camera(), _sequence()
    assert _digest(camera) == BEFORE["camera"]
    assert _digest(sequence) == BEFORE["sequence"]
    assert _digest(_camera(SyntheticConfig())) == WITH_DOTS["camera"]
    assert _digest(_sequence(SyntheticConfig())) == WITH_DOTS["sequence"]
    truths = [{k: v for k, v in fs.metadata["truth"].items() if k not in NEW_TRUTH_KEYS} for fs in camera + sequence]
    assert hashlib.sha256(json.dumps(truths, sort_keys=True).encode()).hexdigest() == BEFORE_TRUTHS
    assert all(fs.origin == "synthetic" for fs in camera + sequence)
    assert {fs.metadata["truth"]["subject"] for fs in camera} == {None}
    assert {fs.metadata["truth"]["instrument"] for fs in camera} == {None}


def test_subjects_with_the_new_fields_at_their_defaults_render_bit_for_bit_as_before(new_subject_fields):
    base = load_default_texture()
    subjects = [dataclasses.replace(create_subject(i), **new_subject_fields) for i in range(6)]
    sha = hashlib.sha256()
    for subject in [Subject("x")] + subjects:
        texture = create_subject_texture(base, subject)
        for part in (texture.planes, np.float64(texture.face_box), np.float64(texture.skin)):
            sha.update(part.tobytes())
    assert sha.hexdigest() == SUBJECTS_BEFORE["textures"]
    renders = [render_frameset("live", i % 4, np.random.default_rng(i), i, FLOOD, subject=s)
               for i, s in enumerate(subjects) if not s.glasses]
    assert _digest(renders) == SUBJECTS_BEFORE["renders"]
