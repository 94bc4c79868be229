"""Faces for tests: the depth a camera sees of the face a set of landmarks describes, an aligner that
finds that face in every frameset, and an engine an attack has fooled."""
import cv2
import numpy as np

from mmdg_edge.align import AlignConfig, Detection, FaceAligner
from mmdg_edge.face_mesh import FACE_OVAL, LEFT_EYE_OUTER, RIGHT_EYE_OUTER, FaceLandmarks


def paint_face_depth(shape, landmarks, distance_mm=600.0, background_mm=2200.0):
    """A uint16 depth image (mm) of a face whose depth at every landmark is the landmark model's own
    relief (scaled by the 90 mm eye-corner rule physics uses without intrinsics), the face's silhouette
    at ``distance_mm`` and the wall behind: what a depth camera sees of the face the landmarks describe."""
    mm_per_px = 90.0 / np.linalg.norm(landmarks[LEFT_EYE_OUTER] - landmarks[RIGHT_EYE_OUTER])
    depth = np.full(shape, background_mm, np.float64)
    cv2.fillPoly(depth, [np.round(landmarks[list(FACE_OVAL), :2]).astype(np.int32)], distance_mm + 20.0)
    for x, y, z in sorted(landmarks, key=lambda point: -point[2]):  # far first: nearer points paint over them
        xi, yi = int(round(x)), int(round(y))
        depth[max(0, yi - 2):yi + 3, max(0, xi - 2):xi + 3] = distance_mm + z * mm_per_px
    return np.rint(depth).astype(np.uint16)



class _FixedMesh:
    """A landmark model that places the same landmarks whatever it is shown."""

    def __init__(self, landmarks):
        self.landmarks = landmarks

    def __call__(self, image, roi):
        return FaceLandmarks(self.landmarks, 1.0, roi)


def fixed_face_aligner(landmarks, config=AlignConfig()):
    """The real aligner, with a detector and a landmark model that always report the face ``landmarks``
    describe: every frameset has this face, cropped and measured on that frameset's own pixels."""
    return FaceAligner(config, detector=lambda image: [Detection((0.0, 0.0, 1.0, 1.0))],
                       mesh=_FixedMesh(landmarks))


class ConstantEngine:
    """A real engine's contract (metadata, input checks) with a fixed live probability: a model an attack
    has fooled, so that what denies is the geometry, not what a model makes of the face."""

    def __init__(self, engine, value):
        self.engine, self.value = engine, value

    def run(self, crops, mask):
        self.engine.run(crops, mask)
        return np.full((crops.shape[0],), self.value, np.float32)

    def __getattr__(self, name):
        return getattr(self.engine, name)
