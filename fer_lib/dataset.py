"""The dataset type every loader returns and every consumer takes: faces with labels, split and id.

Kept apart from the loaders (:mod:`fer_lib.data`) and the generated set (:mod:`fer_lib.synthetic`)
so that both, and the audit, depend on it without depending on each other.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fer_lib.labels import EMOTIONS, SPLITS


@dataclass(frozen=True)
class FaceDataset:
    """Faces with their labels, split and id.

    Attributes:
        faces: uint8 array (N, 48, 48), grey pixel values 0-255.
        labels: int64 array (N,), canonical indices into :data:`fer_lib.labels.EMOTIONS`.
        usage: str array (N,), each one of :data:`fer_lib.labels.SPLITS`.
        ids: str array (N,), a stable id per face (file stem such as ``Training_10118481``, or
            ``csv:<row>`` for ``fer2013.csv``, or ``synthetic:<n>``).
        source: where the faces came from (a path, or ``"synthetic"`` for the generated set).
    """

    faces: np.ndarray
    labels: np.ndarray
    usage: np.ndarray
    ids: np.ndarray
    source: str

    @property
    def synthetic(self) -> bool:
        """True for the generated dataset, which must be labelled SYNTHETIC wherever it is shown."""
        return self.source == "synthetic"

    @property
    def splits(self) -> list[str]:
        """The splits present, in canonical order."""
        present = set(np.unique(self.usage).tolist())
        return [split for split in SPLITS if split in present]

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def select(self, mask: np.ndarray) -> FaceDataset:
        """Return the faces where boolean ``mask`` (N,) is True (or at integer indices ``mask``)."""
        return FaceDataset(self.faces[mask], self.labels[mask], self.usage[mask], self.ids[mask], self.source)

    def split(self, usage: str) -> FaceDataset:
        """Return one split (``Training``, ``PublicTest`` or ``PrivateTest``); may be empty."""
        return self.select(self.usage == usage)

    def class_counts(self) -> dict[str, int]:
        """Return faces per emotion, in canonical order."""
        counts = np.bincount(self.labels, minlength=len(EMOTIONS))
        return {name: int(count) for name, count in zip(EMOTIONS, counts, strict=True)}
