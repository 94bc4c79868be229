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
    "live": "d53aa065d186c7d006e4aac1c501561ed04bcea442a7e5e3fc4038f48e5cc25d",
    "print": "e4bf84484f6d7b074f39b4de43ca0575cea3f312a4ea2aafb28a394b18de0b58",
    "replay": "59eaa5d1e6aaecb8c84a3a29e46feb4b9fc96f6c4eee4fe2952ba4f116b57f09",
    "mask": "2d8a02b1c5de0bff50ff9813f5481161348d0c702c5f26bd7e2891fe7d2f0e71",
    "empty": "779bd93fd1406e52f5e18cf46eb2861bebfe5ba3290a2ffac9380b72b5a79ce6",
    "camera": "4398817cb1ba340e5b52de3d5d55266df2ed1c23e072d9e63787cda6e93f4015",
    "sequence": "27a252323d2e6b4cc7c2af4f80abb149f8007b4d3725df9214018a822e824b02",
}
WITH_DOTS = {
    "live": "f2518b4d473e26b706d5f6cfeb9be3e7b10c3bcf92d7b28418b737ea3af88b8b",
    "print": "94ba29e0f2314dadcc63011df12dd6e1066831a73d69088481eff6ead61886f7",
    "replay": "57147b0fdbdb3357d5c0709df4f7bd5d94c6c887b85b49d2779ac3a6ac693efe",
    "mask": "24540f353e2eb041e04eea8d8081347dd807a11277aebc3e6b49835209459858",
    "empty": "4246c510201c652d4521a4e544ef4173063e9f7108c97ba17840d1a3fd4745ab",
    "camera": "99c98dc3431dc0ca9f75cfb75105038164637edf2e746bd06c1eaeffa7b38af6",
    "sequence": "c7f33a2baeff2cb9c47b3ed38a617fd1686942c49faf7440b2b065f6ae84edbe",
}
# SHA-256 of json.dumps(truths, sort_keys=True) of the camera's and the sequence's framesets, with the
# keys added since (NEW_TRUTH_KEYS: "species", "subject", "instrument", then the new scenes' keys) left out.
BEFORE_TRUTHS = "33b17fd51028fd663590cd2b92d85f64abd621ea16cbbe74af812eb961472b67"
# Subject("x") and create_subject(0..5) with the fields added since at their defaults: their textures
# (planes, face box, skin; SHA-256 of the bytes, float64 for the box and skin) and one live render each.
SUBJECTS_BEFORE = {
    "textures": "da06244b433f451b439dd642f4b15c383102a5861368031b7817555693ba4b0b",
    "renders": "2c66552f5dd85f3d22abcedce812ce7aa353afd2ec88fcb7645873478c7a40d4",  # subjects without glasses
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
