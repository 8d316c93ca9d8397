"""fer_lib: the library behind the fer-study notebooks and CLI.

Modules (one concern each; docs/ARCHITECTURE.md maps them and their layers): ``labels`` (class
names and splits), ``errors`` (user-facing errors), ``paths`` (project locations, report and run
folder layouts), ``params`` (the YAML schema), ``dataset`` (the FaceDataset type), ``data``
(loading FER-2013 and the synthetic default), ``synthetic`` (the generated faces), ``audit``
(duplicates and leakage), ``augment`` (host-side augmentation), ``model`` (MobileNetV2
construction), ``classifiers`` (running a model on faces: ``predict_proba``/``predict``),
``training`` (fit with checkpoints and resume), ``evaluation`` (metrics per split), ``faces``
(detection and classification of faces in photos), ``photo_check`` (labelled photos), ``video``
(clips and webcam), ``export`` (TFLite), ``plots`` (figures), ``papers``, ``ablation`` and
``reproduce`` (the studies), ``report`` (papermill/nbconvert), ``runs`` (run folders and provenance).
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ info/warning lines out of reports

from fer_lib.labels import EMOTIONS, NUM_CLASSES, SPLITS

__all__ = ["EMOTIONS", "NUM_CLASSES", "SPLITS"]
__version__ = "0.1.0"
