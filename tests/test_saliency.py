"""The occlusion saliency map: it finds the region a classifier's answer depends on."""

from __future__ import annotations

import numpy as np
from conftest import random_faces

from fer_lib.classifiers import EmotionClassifier
from fer_lib.evaluation import occlusion_saliency
from fer_lib.labels import EMOTIONS, NUM_CLASSES

HAPPY = EMOTIONS.index("happy")


class MouthReader(EmotionClassifier):
    """'Happy' in proportion to how bright rows 32-44 (the mouth) are against the face's mean; nothing else counts."""

    def _run(self, inputs: np.ndarray) -> np.ndarray:
        faces = inputs[..., 0]
        contrast = faces[:, 32:44].mean(axis=(1, 2)) - faces.mean(axis=(1, 2))
        happy = 1 / (1 + np.exp(-contrast / 60))
        out = np.tile(((1 - happy) / (NUM_CLASSES - 1))[:, None], (1, NUM_CLASSES))
        out[:, HAPPY] = happy
        return out.astype(np.float32)


def test_occlusion_saliency_lights_up_the_region_the_answer_depends_on() -> None:
    faces = random_faces(3, seed=4).astype(np.float32) * 0.3
    faces[:, 32:44] += 150  # a bright mouth: 'happy'
    maps = occlusion_saliency(MouthReader(), faces, np.full(3, HAPPY))
    assert maps.shape == (3, 48, 48) and maps.dtype == np.float32
    mouth, forehead = maps[:, 34:42, 8:40].mean(axis=(1, 2)), maps[:, 0:12, 8:40].mean(axis=(1, 2))
    assert (mouth > 0.02).all() and (mouth > 5 * np.abs(forehead)).all()
