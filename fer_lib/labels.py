"""The one source of truth for FER-2013 class labels and split names.

FER-2013's ``fer2013.csv`` numbers the emotions 0-6 in the order below. The widely used
Kaggle image-folder copy names its class folders by emotion, and those folders sort
alphabetically (angry, disgust, fear, happy, neutral, sad, surprise): mapping folders to
indices by sort order silently swaps neutral/sad/surprise. Always map by name.
"""

from __future__ import annotations

EMOTIONS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
"""Emotion names in canonical FER-2013 order: index i is label i."""

NUM_CLASSES: int = len(EMOTIONS)

LABEL_INDEX: dict[str, int] = {name: index for index, name in enumerate(EMOTIONS)}
"""Emotion name -> canonical index (use this, never ``sorted(os.listdir(...))``)."""

SPLITS: tuple[str, ...] = ("Training", "PublicTest", "PrivateTest")
"""FER-2013 ``Usage`` values: Training (28,709), PublicTest (3,589), PrivateTest (3,589)."""

FACE_SIZE: int = 48
"""FER-2013 faces are 48x48 grey images."""
