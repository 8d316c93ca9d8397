"""The embedded default's stand-in inputs, generated here so that the study runs offline from the clone
alone: SYNTHETIC cartoon faces in place of FER-2013 (:mod:`~fer_lib.synthetic.faces`), a demo clip
(:mod:`~fer_lib.synthetic.clip`) and sample photos (:mod:`~fer_lib.synthetic.photos`) made from the real
photos that ship with scikit-image. Not the method: the method's loaders fall back to these when the
params name no data.
"""

from fer_lib.synthetic.clip import make_demo_clip
from fer_lib.synthetic.faces import EXPRESSIONS, make_synthetic_dataset
from fer_lib.synthetic.photos import SAMPLE_PHOTOS, write_sample_photos

__all__ = ["EXPRESSIONS", "SAMPLE_PHOTOS", "make_demo_clip", "make_synthetic_dataset", "write_sample_photos"]
