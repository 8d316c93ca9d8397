"""Faces in the wild: find faces in photos and frames, crop them to 48x48 and classify them.

Three modules by role: :mod:`~fer_lib.faces.detect` (the detectors), :mod:`~fer_lib.faces.crops`
(crops, alignment, classification, annotation) and :mod:`~fer_lib.faces.files` (finding and reading
photos). Everything public is importable from ``fer_lib.faces`` too.

Nothing here imports TensorFlow: classifiers (:mod:`fer_lib.classifiers`) run Keras models on
whatever Keras backend is configured, and TFLite models with ai-edge-litert.
"""

from fer_lib.faces import crops, detect, files
from fer_lib.faces.crops import *
from fer_lib.faces.detect import *
from fer_lib.faces.files import *

__all__ = [*detect.__all__, *crops.__all__, *files.__all__]
