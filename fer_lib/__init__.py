"""fer_lib: the library behind the fer-study notebooks and CLI.

Modules (one concern each): ``labels`` (class names and splits), ``params`` (the YAML
schema), ``data`` (loading FER-2013 and the synthetic default), ``audit`` (duplicates and
leakage), ``augment`` (host-side augmentation), ``model`` (MobileNetV2 construction),
``training`` (fit with checkpoints and resume), ``evaluation`` (metrics per split), ``faces``
(detection and classification of faces in photos), ``video`` (clips and webcam),
``export`` (TFLite), ``plots`` (figures), ``report`` (papermill/nbconvert), ``runs`` (run
folders and provenance).
"""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ info/warning lines out of reports

from fer_lib.labels import EMOTIONS, NUM_CLASSES, SPLITS

__all__ = ["EMOTIONS", "NUM_CLASSES", "SPLITS"]
__version__ = "0.1.0"
