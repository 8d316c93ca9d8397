# Written from notebooks/02_fine_tuning.ipynb (its "#| export" cells) by `python -m fer_lib.study.notebook_export`:
# edit the notebook, then run that command; tests/test_recipe.py fails while the two differ.
"""The fine-tuning recipe, as notebook 2 teaches it: the model (in-model preprocessing, MobileNetV2, the
head), the optimizer and the loss, and staged fine-tuning (:func:`fine_tune`). ``fer_lib.training`` runs
it from a params file (``python -m fer_lib train``); the notebook runs its own cells."""

import keras
import numpy as np

from fer_lib.augment import add_noise, chosen, degrade, jpeg, photometric, random_affine, random_crop, random_erase
from fer_lib.labels import FACE_SIZE, NUM_CLASSES
from fer_lib.model import BACKBONE_NAME, SCALINGS, load_backbone_weights
from fer_lib.params import AugmentParams


def preprocessing(faces: keras.KerasTensor, *, input_size: int, resize: str, scale: str) -> keras.KerasTensor:
    """(B, 48, 48, 1) grey faces in 0-255 -> (B, input_size, input_size, 3), scaled as the backbone expects."""
    x = faces
    if input_size != FACE_SIZE:
        x = keras.layers.Resizing(input_size, input_size, interpolation=resize, name="resize")(x)
    x = keras.layers.Concatenate(name="grey_to_rgb")([x, x, x])  # MobileNetV2 takes 3 channels
    factor, offset = SCALINGS[scale]  # unit: x / 255; imagenet: x / 127.5 - 1
    return keras.layers.Rescaling(factor, offset=offset, name="scale")(x)


def backbone(*, input_size: int, alpha: float, weights: str, bn_momentum: float | None) -> keras.Model:
    """MobileNetV2 without its classifier: (B, S, S, 3) in the scaling above -> (B, S/32, S/32, 1280) features."""
    network = keras.applications.MobileNetV2(
        input_shape=(input_size, input_size, 3), alpha=alpha, include_top=False, weights=None, name=BACKBONE_NAME
    )
    load_backbone_weights(network, weights, alpha=alpha)  # ImageNet's .h5, the shipped model's backbone, or none
    if bn_momentum is not None:
        for layer in network.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.momentum = bn_momentum
    return network


def head(features: keras.KerasTensor, *, pooling: str, units: list[int], activation: str, dropout: float, seed: int):
    """(B, h, w, C) backbone features -> (B, 7) softmax probabilities."""
    pool = {"avg": keras.layers.GlobalAveragePooling2D, "max": keras.layers.GlobalMaxPooling2D}
    x = pool.get(pooling, keras.layers.Flatten)(name="pool")(features)
    for index, width in enumerate(units):
        if dropout:
            x = keras.layers.Dropout(dropout, seed=seed + index, name=f"dropout_{index}")(x)
        init = keras.initializers.GlorotUniform(seed=seed + 100 + index)
        x = keras.layers.Dense(width, activation=activation, kernel_initializer=init, name=f"dense_{index}")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, seed=seed + 99, name="dropout_out")(x)
    init = keras.initializers.GlorotUniform(seed=seed + 199)
    softmax = keras.layers.Dense(NUM_CLASSES, "softmax", dtype="float32", kernel_initializer=init, name="probabilities")
    return softmax(x)


def build_model(
    *, input_size, resize, scale, alpha, weights, bn_momentum, pooling, head_units, head_activation, dropout, seed: int
) -> keras.Model:
    """The classifier: (B, 48, 48, 1) faces in 0-255 -> (B, 7) softmax probabilities."""
    faces = keras.Input(shape=(FACE_SIZE, FACE_SIZE, 1), name="face")
    x = preprocessing(faces, input_size=input_size, resize=resize, scale=scale)
    x = backbone(input_size=input_size, alpha=alpha, weights=weights, bn_momentum=bn_momentum)(x)
    outputs = head(x, pooling=pooling, units=head_units, activation=head_activation, dropout=dropout, seed=seed)
    return keras.Model(faces, outputs, name=f"fer_mobilenetv2_{input_size}")


def make_optimizer(name: str, learning_rate: float, *, weight_decay: float = 0.0, decay_steps: int = 0):
    """A new keras optimizer; with decay_steps > 0 the rate decays to 0 along a half cosine over that many steps."""
    if decay_steps:
        learning_rate = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=decay_steps)
    if name == "adamw":
        return keras.optimizers.AdamW(learning_rate, weight_decay=weight_decay)
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate, momentum=0.9, nesterov=True)
    return keras.optimizers.Adam(learning_rate)


def make_loss(*, label_smoothing: float = 0.0, soft_targets: bool = False) -> keras.losses.Loss:
    """Cross-entropy; soft_targets: the batches carry (B, 7) targets (label smoothing, mixup, CutMix), not labels."""
    if soft_targets:
        return keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing)
    return keras.losses.SparseCategoricalCrossentropy()


def fine_tune(
    run,
    *,
    warmup_epochs: int,
    optimizer: str,
    learning_rate: float,
    head_learning_rate: float,
    weight_decay: float,
    decay_steps: int,
    label_smoothing: float,
    soft_targets: bool,
    train_from_block: int = 0,
    verbose="auto",
):
    """Train run.model: the head alone for warmup_epochs (backbone frozen), then the backbone from MobileNetV2's
    block train_from_block on (0: all of it; the layers before stay frozen); returns run.finish()."""
    model, backbone = run.model, run.model.get_layer(BACKBONE_NAME)
    loss = make_loss(label_smoothing=label_smoothing, soft_targets=soft_targets)
    for epoch in run.epochs_to_do():
        if epoch == 0 and warmup_epochs > 0:  # stage 1: the head alone
            backbone.trainable = False
            model.compile(
                optimizer=make_optimizer(optimizer, head_learning_rate, weight_decay=weight_decay),
                loss=loss,
                metrics=["accuracy"],
            )
        if epoch == warmup_epochs:  # stage 2: the backbone learns too
            backbone.trainable = True
            if train_from_block:  # the Keras guide's fine_tune_at: the first blocks keep their ImageNet weights
                first = [layer.name for layer in backbone.layers].index(f"block_{train_from_block}_expand")
                for layer in backbone.layers[:first]:
                    layer.trainable = False
            model.compile(
                optimizer=make_optimizer(optimizer, learning_rate, weight_decay=weight_decay, decay_steps=decay_steps),
                loss=loss,
                metrics=["accuracy"],
            )
        model.fit(
            run.batches, initial_epoch=epoch, epochs=epoch + 1, shuffle=False, callbacks=run.callbacks, verbose=verbose
        )
    return run.finish()


def augment_batch(faces: np.ndarray, augment: AugmentParams, rng: np.random.Generator) -> np.ndarray:
    """(B, 48, 48) faces -> an augmented float32 copy, still 0-255: each step that `augment` asks for."""
    out = faces.astype(np.float32, copy=True)
    if augment.flip:  # mirror half of the faces
        flip = rng.random(len(out)) < 0.5
        out[flip] = out[flip, :, ::-1]
    if augment.crop_size:
        out = np.stack([random_crop(face, augment.crop_size, rng) for face in out])
    if augment.rotation_degrees or augment.shift_fraction or augment.zoom_fraction:  # framing
        out = np.stack([random_affine(face, augment, rng) for face in out])
    if augment.gamma or augment.contrast:  # a camera's exposure
        out = photometric(out, augment.gamma, augment.contrast, rng)
    for index in chosen(len(out), augment.lowres_probability, rng):  # a distant or blurred face
        out[index] = degrade(out[index], rng)
    if augment.noise_std:  # sensor noise
        out = add_noise(out, augment.noise_std, rng)
    for index in chosen(len(out), augment.jpeg_probability, rng):  # a compressed frame
        out[index] = jpeg(out[index], int(rng.integers(15, 76)))
    for index in chosen(len(out), augment.erasing_probability, rng):  # an occluded face
        random_erase(out[index], rng)  # out[index] is a view: erased in place
    return out
