"""The classifier's contract: shapes, label order, safe loading, BatchNorm recalibration, freezing.

Models here are 32 px MobileNetV2s with random weights (``weights: none``): seconds to build on CPU.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest
from conftest import random_faces

from fer_lib.errors import ModelError
from fer_lib.labels import EMOTIONS, LABEL_INDEX
from fer_lib.model import (
    BACKBONE_NAME,
    load_model,
    parameter_counts,
    recalibrate_batchnorm,
)
from fer_lib.params import ModelParams
from fer_lib.training import new_model
from fer_lib.weights import resolve_weights

SMALL = {"input_size": 32, "weights": "none"}


def small_model(**overrides: object) -> keras.Model:
    return new_model(ModelParams(**{**SMALL, **overrides}), seed=0)


def numpy_weights(variables: list) -> list[np.ndarray]:
    return [keras.ops.convert_to_numpy(variable).copy() for variable in variables]


def batchnorm_layers(model: keras.Model) -> list[keras.layers.BatchNormalization]:
    return [
        layer for layer in model.get_layer(BACKBONE_NAME).layers if isinstance(layer, keras.layers.BatchNormalization)
    ]


def head_variables(model: keras.Model) -> set[int]:
    return {
        id(variable)
        for layer in model.layers
        if layer.name.startswith(("dense_", "probabilities"))
        for variable in layer.trainable_weights
    }


@pytest.mark.parametrize(
    "overrides",
    [{}, {"input_size": 48, "scale": "unit", "head_units": [16, 8], "dropout": 0.2}, {"pooling": "flatten"}],
)
def test_input_and_output_contract(overrides: dict) -> None:
    model = small_model(**overrides)

    assert model.input_shape == (None, 48, 48, 1)
    assert model.output_shape == (None, 7)
    probabilities = keras.ops.convert_to_numpy(model(random_faces(3).astype(np.float32)[..., None], training=False))
    assert probabilities.shape == (3, 7)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_canonical_label_order_survives_save_and_load(tmp_path: Path) -> None:
    assert EMOTIONS == ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")  # FER-2013's 0-6
    model = small_model()
    head = model.get_layer("probabilities")
    kernel, _ = head.get_weights()
    preference = np.array([0.0, 1.0, 2.0, 6.0, 3.0, 4.0, 5.0], dtype=np.float32)  # happy, then neutral, surprise...
    head.set_weights([np.zeros_like(kernel), preference])
    path = tmp_path / "m.keras"
    model.save(path)

    probabilities = load_model(path).predict(random_faces(2).astype(np.float32)[..., None], verbose=0)

    assert [EMOTIONS[i] for i in np.argsort(-probabilities[0])][:3] == ["happy", "neutral", "surprise"]
    assert int(probabilities.argmax(axis=1)[1]) == LABEL_INDEX["happy"]
    np.testing.assert_allclose(probabilities[0], keras.ops.convert_to_numpy(keras.ops.softmax(preference)), rtol=1e-5)


@pytest.mark.slow
def test_saved_model_reloads_with_safe_mode_and_predicts_identically(tmp_path: Path) -> None:
    model = small_model(head_units=[8], dropout=0.3)
    x = random_faces(5).astype(np.float32)[..., None]
    expected = model.predict(x, verbose=0)
    path = tmp_path / "m.keras"
    model.save(path)

    reloaded = load_model(path)  # safe_mode=True inside (see test_safety)

    np.testing.assert_array_equal(reloaded.predict(x, verbose=0), expected)


@pytest.mark.parametrize("kind", ["missing", "folder", "text", "zip", "wrong_suffix", "wrong_shape"])
def test_load_model_errors_name_the_file(tmp_path: Path, kind: str) -> None:
    path = tmp_path / ("m.h5" if kind == "wrong_suffix" else "m.keras")
    if kind == "folder":
        path.mkdir()
    elif kind == "text":
        path.write_text("not a model")
    elif kind in ("zip", "wrong_suffix"):
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("notes.txt", "hello")
    elif kind == "wrong_shape":
        inputs = keras.Input((32, 32, 1))
        keras.Model(inputs, keras.layers.Dense(7)(keras.layers.Flatten()(inputs))).save(path)
    expected = {
        "missing": "model file not found",
        "folder": "is a folder",
        "text": "not a Keras model",
        "zip": "cannot load Keras model",
        "wrong_suffix": "not a Keras model",
        "wrong_shape": "expected (None, 48, 48, 1) -> (None, 7)",
    }[kind]

    with pytest.raises(ModelError) as raised:
        load_model(path)

    assert str(raised.value).startswith(f"{path}: ") and expected in str(raised.value)
    assert "\n" not in str(raised.value)


def test_missing_weights_file_says_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "nowhere" / "backbone.h5"
    with pytest.raises(ModelError) as raised:
        new_model(ModelParams(input_size=32, weights=str(missing)))
    message = str(raised.value)
    assert message.startswith(f"{missing}: ImageNet MobileNetV2 weights file not found")
    for advice in ("FER_WEIGHTS", "model.weights: none", "model.weights: imagenet"):
        assert advice in message
    monkeypatch.setenv("FER_WEIGHTS", str(missing))
    with pytest.raises(ModelError, match="backbone.h5: ImageNet MobileNetV2 weights file not found"):
        resolve_weights("default")
    assert resolve_weights("none") is None


def test_corrupt_weights_file_is_a_model_error(tmp_path: Path) -> None:
    bad = tmp_path / "weights.h5"
    bad.write_text("not HDF5")

    with pytest.raises(ModelError) as raised:
        new_model(ModelParams(input_size=32, weights=str(bad)))

    assert str(raised.value).startswith(f"{bad}: cannot load MobileNetV2 weights")


@pytest.mark.parametrize("freeze", ["none", "backbone"])
def test_recalibrate_batchnorm_changes_only_moving_statistics(freeze: str) -> None:
    model = small_model(freeze=freeze, head_units=[8], dropout=0.5)
    layers = batchnorm_layers(model)
    statistics = {id(variable) for layer in layers for variable in (layer.moving_mean, layer.moving_variance)}
    momenta = [layer.momentum for layer in layers]
    trainable_before = [id(variable) for variable in model.trainable_weights]
    before = numpy_weights(model.weights)

    recalibrate_batchnorm(model, random_faces(24), batch_size=8)

    after = numpy_weights(model.weights)
    changed = {
        id(variable)
        for variable, old, new in zip(model.weights, before, after, strict=True)
        if not np.array_equal(old, new)
    }
    assert changed == statistics  # every moving mean/variance moved (frozen ones too), nothing else did
    assert [layer.momentum for layer in layers] == momenta
    assert [id(variable) for variable in model.trainable_weights] == trainable_before


def test_recalibrated_statistics_are_the_average_of_batch_statistics() -> None:
    model = small_model()
    backbone = model.get_layer(BACKBONE_NAME)
    preprocess = keras.Model(model.input, model.get_layer("scale").output)
    conv1 = keras.Model(backbone.input, backbone.get_layer("Conv1").output)  # what bn_Conv1 normalises
    batch = random_faces(16)
    conv_out = keras.ops.convert_to_numpy(conv1(preprocess(batch.astype(np.float32)[..., None])))

    recalibrate_batchnorm(model, batch, batch_size=8)

    expected = (conv_out[:8].mean(axis=(0, 1, 2)) + conv_out[8:].mean(axis=(0, 1, 2))) / 2
    moving_mean = keras.ops.convert_to_numpy(backbone.get_layer("bn_Conv1").moving_mean)
    np.testing.assert_allclose(moving_mean, expected, rtol=1e-4, atol=1e-5)


def test_a_new_model_trains_every_layer_until_fine_tune_freezes_the_backbone() -> None:
    model = small_model(head_units=[16])
    backbone = model.get_layer(BACKBONE_NAME)
    assert len(model.trainable_weights) == len(backbone.trainable_weights) + 4  # dense_0, probabilities
    backbone.trainable = False
    assert {id(variable) for variable in model.trainable_weights} == head_variables(model)
    assert parameter_counts(model)["trainable"] == 1280 * 16 + 16 + 16 * 7 + 7


# --- where the backbone starts from: model.weights -------------------------------------------------


def backbone_weights(model: keras.Model) -> list[np.ndarray]:
    return [np.asarray(weight) for weight in model.get_layer(BACKBONE_NAME).get_weights()]


def test_shipped_weights_start_from_the_shipped_models_backbone_at_any_input_size() -> None:
    from fer_lib.paths import SHIPPED_MODEL

    shipped = load_model(SHIPPED_MODEL)
    size = 64 if shipped.get_layer(BACKBONE_NAME).input_shape[1] != 64 else 80  # not the size it was trained at

    model = new_model(ModelParams(input_size=size, weights="shipped", bn_momentum=0.9), seed=0)

    assert model.get_layer(BACKBONE_NAME).input_shape[1:3] == (size, size)
    for ours, theirs in zip(backbone_weights(model), backbone_weights(shipped), strict=True):
        np.testing.assert_array_equal(ours, theirs)  # BatchNorm statistics included
    assert resolve_weights("shipped") == SHIPPED_MODEL


def test_a_relative_weights_path_is_taken_from_the_project_root_whatever_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fer_lib.paths import PROJECT_ROOT

    monkeypatch.chdir(tmp_path)  # no models/ here
    monkeypatch.setenv("FER_WEIGHTS", "weights.h5")  # an environment variable stays relative to the working directory

    assert resolve_weights("models/fer_mobilenetv2.keras") == PROJECT_ROOT / "models" / "fer_mobilenetv2.keras"
    with pytest.raises(ModelError, match="^weights.h5: ImageNet MobileNetV2 weights file not found"):
        resolve_weights("default")


def test_a_keras_model_without_a_backbone_cannot_be_started_from(tiny_model_path: Path) -> None:
    with pytest.raises(ModelError, match=f"^{tiny_model_path}: has no nested 'backbone' layer"):
        new_model(ModelParams(input_size=32, weights=str(tiny_model_path)))


@pytest.fixture
def no_shared_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No FER_WEIGHTS, no ../shared file, an empty Keras cache and no network; returns the cache's models/."""
    monkeypatch.delenv("FER_WEIGHTS", raising=False)
    monkeypatch.setattr("fer_lib.weights.DEFAULT_WEIGHTS", tmp_path / "shared" / "weights" / "missing.h5")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    for variable in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.setenv(variable, "http://127.0.0.1:9")  # the discard port: any download fails at once
    for variable in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(variable, raising=False)
    return tmp_path / "keras" / "models"


def test_default_weights_fall_back_to_keras_cache(no_shared_weights: Path) -> None:
    cached = no_shared_weights / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"stand-in")

    assert resolve_weights("default") == cached
    assert resolve_weights("imagenet") == cached


def test_default_weights_offline_and_nowhere_says_what_to_do(
    no_shared_weights: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from fer_lib import weights as weights_module

    with pytest.raises(ModelError) as raised:
        resolve_weights("default")

    message = str(raised.value)
    assert message.startswith(
        f"{weights_module.DEFAULT_WEIGHTS}: ImageNet MobileNetV2 weights file not found, "
        f"nor in Keras' cache ({no_shared_weights}"
    )
    assert "downloading them failed" in message and "\n" not in message
    for advice in ("FER_WEIGHTS", "model.weights: shipped", "model.weights: none"):
        assert advice in message
    assert "Downloading the ImageNet MobileNetV2 weights" in capsys.readouterr().out
    assert not any(no_shared_weights.glob("*.h5"))  # no half-downloaded file left in the cache
