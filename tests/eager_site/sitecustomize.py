"""Keras' steps run eagerly in a subprocess started with this folder first on ``PYTHONPATH``
(Python imports ``sitecustomize`` at start-up), as they do in the test processes (tests/conftest.py):
the training subprocesses of tests/test_training.py and the Ray workers of tests/test_scale.py
(``conftest.EAGER_SUBPROCESS``) train the tiny recipe in half the time."""

import os

if os.environ.get("KERAS_BACKEND", "tensorflow") == "tensorflow":
    import tensorflow as tf

    tf.config.run_functions_eagerly(True)
