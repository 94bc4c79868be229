"""Synthetic presentations through the aligner: each crop knows its presentation, splits stay apart."""
import numpy as np
import pytest

from mmdg_edge.sensors.synthetic import create_instrument, create_subject, domain_index
from mmdg_edge.train.synthetic_data import Presentation, render_crops, render_presentations

PRESENTATIONS = [
    Presentation(create_subject(0), None, domain_index("d415"), 3),
    Presentation(create_subject(1), create_instrument("mask", 2), domain_index("d435-a"), 2),
    Presentation(create_subject(2), create_instrument("replay", 1), domain_index("d455"), 2),
]


@pytest.fixture(scope="module")
def crops():
    return render_presentations(PRESENTATIONS, seed=5)


def test_each_crop_carries_its_presentation_label_and_domain(crops):
    assert crops.presentations.tolist() == [0, 0, 0, 1, 1, 2, 2]
    assert crops.labels.tolist() == [1, 1, 1, 0, 0, 0, 0]
    assert crops.attacks.tolist() == ["live"] * 3 + ["mask"] * 2 + ["replay"] * 2
    assert crops.camera_domains.tolist() == [4, 4, 4, 0, 0, 5, 5]
    dataset = crops.to_dataset({4: 0, 0: 1, 5: 2})
    assert dataset.domains.tolist() == [0, 0, 0, 1, 1, 2, 2]


def test_same_seed_same_crops_other_seed_other_scene(crops):
    again = render_presentations(PRESENTATIONS, seed=5)
    np.testing.assert_array_equal(again.images, crops.images)
    other = render_presentations(PRESENTATIONS, seed=6)
    assert not np.array_equal(other.images[0], crops.images[0])


def test_framesets_of_one_presentation_are_one_scene_and_presentations_differ(crops):
    def mean_abs(a, b):
        return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())

    # frames of one presentation differ by sway and noise only; two people in two rooms far more
    assert mean_abs(crops.images[0], crops.images[1]) < 0.5 * mean_abs(crops.images[0], crops.images[3])


def test_render_crops_numbers_each_frameset_as_its_own_presentation():
    faces = render_crops((0, 1), 4, seed=3)
    assert len(faces) == 4 and faces.presentations.tolist() == [0, 1, 2, 3]


@pytest.mark.parametrize("field, kwargs, match", [
    ("subject", dict(subject="S001"), "Presentation.subject"),
    ("instrument", dict(instrument="mask-00"), "Presentation.instrument"),
    ("domain", dict(domain=99), "Presentation.domain"),
    ("domain", dict(domain=True), "Presentation.domain"),
    ("num_frames", dict(num_frames=0), "Presentation.num_frames"),
    ("lighting", dict(lighting="disco"), "Segment.lighting"),
    ("yaw_deg", dict(yaw_deg=60.0), "Segment.yaw_deg"),
    ("distance_m", dict(distance_m=5.0), "Presentation.distance_m"),
    ("distance_m", dict(distance_m="far"), "Presentation.distance_m"),
])
def test_a_bad_presentation_names_its_field(field, kwargs, match):
    good = dict(subject=create_subject(0), instrument=None, domain=0, num_frames=2)
    with pytest.raises(ValueError, match=match):
        Presentation(**{**good, **kwargs})


def test_a_presentation_is_staged_in_its_room_pose_and_distance():
    person = create_subject(3)
    room, dim, backlit, turned, far = (
        render_presentations([Presentation(person, None, 0, 1, **staging)], seed=2).images[0].astype(float)
        for staging in ({}, dict(lighting="dim"), dict(lighting="backlit"), dict(yaw_deg=30.0), dict(distance_m=1.1)))
    assert dim[0].mean() < 0.5 * room[0].mean()  # the colour crop in a dim room
    assert backlit[0].mean() > room[0].mean() + 10  # a bright window behind the head fills the crop's corners
    assert np.abs(turned[0] - room[0]).mean() > 10
    assert far[2].mean() < room[2].mean() - 10  # the face nearly twice as far: more of the dark room around it
    with pytest.raises(ValueError, match="yaw_deg"):  # a print turns with its sheet, not by yaw
        Presentation(person, create_instrument("print", 0), 0, 1, yaw_deg=10.0)


def test_render_presentations_refuses_an_empty_list_and_other_items():
    with pytest.raises(ValueError, match="at least one"):
        render_presentations([], seed=0)
    with pytest.raises(TypeError, match=r"presentations\[1\]"):
        render_presentations([PRESENTATIONS[0], ("live", 0)], seed=0)
