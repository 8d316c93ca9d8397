"""What fine-tuning trains on and is told: batches, the faces fitted, the recipe's options, and tables.

The method itself (the model, the optimizer and the loss, staged fine-tuning) is :mod:`fer_lib.recipe`,
written from notebook 2's cells. This module holds what it trains on and what it is told:
:class:`FaceBatches` (host-side augmented batches, reproducible per seed, epoch and batch),
:func:`training_data` and :func:`train_eval_data` (the faces fitted and re-scored), and
:func:`model_options` / :func:`fine_tune_options` (a params file unpacked into the recipe's keyword
arguments). :func:`recipe_table`, :func:`layer_table`, :func:`augmentation_examples`,
:func:`learning_rate_curve` and :func:`last_epoch_table` describe a run for notebook 2. The run folder
(checkpoints, resume, ``train``) is :mod:`fer_lib.study.training_run`.

History columns tell the two kinds of accuracy apart: ``fit_*`` are what ``model.fit`` reports
(training mode: BatchNorm normalises with each batch's statistics, dropout is on, running mean
over the epoch, loss includes label smoothing and class weights); ``train_*`` and ``val_*`` are
measured afterwards in inference mode (BatchNorm moving averages, no dropout) on a fixed Training
subset and on PublicTest, with scikit-learn.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import keras
import numpy as np
import pandas as pd
from sklearn.utils.class_weight import compute_sample_weight

from fer_lib.augment import cutmix, mixup
from fer_lib.classifiers import load_classifier
from fer_lib.data import stratified_subset
from fer_lib.dataset import FaceDataset
from fer_lib.errors import DataError
from fer_lib.labels import NUM_CLASSES
from fer_lib.params import AugmentParams, ModelParams, Params
from fer_lib.paths import project_path
from fer_lib.recipe import augment_batch, build_model


class FaceBatches(keras.utils.PyDataset):
    """Shuffled, augmented batches of Training faces, reproducible per (seed, epoch, batch).

    Yields ``(x, y, sample_weight)``: x (B, 48, 48, 1) float32 in 0-255, y (B,) int labels, or
    (B, 7) one-hot when ``one_hot`` (label smoothing and mixup need one-hot targets, see
    :func:`uses_soft_targets`), or the rows of ``targets`` (distillation), and (B,) weights.
    """

    def __init__(
        self,
        faces: np.ndarray,
        labels: np.ndarray,
        *,
        batch_size: int,
        augmentation: AugmentParams,
        seed: int,
        sample_weights: np.ndarray,
        one_hot: bool,
        targets: np.ndarray | None = None,
        augment: Callable[[np.ndarray, AugmentParams, np.random.Generator], np.ndarray] = augment_batch,
        workers: int = 1,
    ) -> None:
        """faces (N, 48, 48) uint8 and labels (N,); targets (N, 7) float32, if given, replace the labels as what
        the model is fitted to (:func:`distillation_targets`). ``augment(faces, augmentation, rng)`` augments each
        batch (:func:`fer_lib.recipe.augment_batch` or an edited copy), then mixup/CutMix as ``augmentation`` asks."""
        super().__init__(workers=workers, use_multiprocessing=False)
        self.augment, self.augmentation, self.seed = augment, augmentation, seed
        self.faces, self.labels, self.targets, self.sample_weights = faces, labels, targets, sample_weights
        self.batch_size, self.one_hot = batch_size, one_hot
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        """Fix the shuffle order and augmentation stream of ``epoch``."""
        self.epoch = epoch
        self.order = np.random.default_rng([self.seed, epoch]).permutation(len(self.labels))

    def __len__(self) -> int:
        return -(-len(self.labels) // self.batch_size)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rows = self.order[index * self.batch_size : (index + 1) * self.batch_size]
        rng = np.random.default_rng([self.seed, self.epoch, index])
        augment = self.augmentation
        x, y, weights = self.augment(self.faces[rows], augment, rng), self.labels[rows], self.sample_weights[rows]
        if self.targets is not None:
            y = self.targets[rows]
        elif self.one_hot:
            y = np.eye(NUM_CLASSES, dtype=np.float32)[y]
        if augment.mixup_alpha:
            x, y, weights = mixup(x, y, weights, augment.mixup_alpha, rng)
        if augment.cutmix_alpha:
            x, y, weights = cutmix(x, y, weights, augment.cutmix_alpha, rng)
        return x[..., None], y, weights


def model_options(model_params: ModelParams, *, seed: int) -> dict[str, Any]:
    """The keyword arguments of :func:`fer_lib.recipe.build_model` that ``model_params`` (``model:``) sets."""
    options = dataclasses.asdict(model_params)
    for key in ("freeze", "train_from_block"):  # training stages, not layers: see fine_tune_options
        options.pop(key)
    return {**options, "seed": seed}


def new_model(model_params: ModelParams, *, seed: int = 0) -> keras.Model:
    """:func:`fer_lib.recipe.build_model` with the options of ``model_params`` (uncompiled, every layer trainable)."""
    return build_model(**model_options(model_params, seed=seed))


def fine_tune_options(params: Params, *, steps_per_epoch: int) -> dict[str, Any]:
    """The keyword arguments of :func:`fer_lib.recipe.fine_tune` that ``params`` sets.

    ``model.freeze`` becomes ``warmup_epochs``: ``none`` 0, ``staged`` ``train.warmup_epochs``, ``backbone``
    all of them (the backbone never joins). The head-only stage runs at ``train.head_learning_rate`` (else
    ``learning_rate``) in a staged run; ``train.schedule: cosine`` decays the second stage's rate to 0 over
    its ``decay_steps`` (its epochs times ``steps_per_epoch``); ``plateau`` is :class:`EpochRecorder`'s.
    """
    train, freeze = params.train, params.model.freeze
    warmup = {"none": 0, "staged": train.warmup_epochs, "backbone": train.epochs}[freeze]
    staged = freeze == "staged"
    return {
        "warmup_epochs": warmup,
        "optimizer": train.optimizer,
        "learning_rate": train.learning_rate,
        "head_learning_rate": (train.head_learning_rate or train.learning_rate) if staged else train.learning_rate,
        "weight_decay": train.weight_decay,  # make_optimizer uses it for adamw only
        "decay_steps": (train.epochs - warmup) * steps_per_epoch if train.schedule == "cosine" else 0,
        "label_smoothing": train.label_smoothing,
        "soft_targets": uses_soft_targets(params),
        "train_from_block": params.model.train_from_block,
    }


def training_data(dataset: FaceDataset, *, subset: int | None, seed: int) -> FaceDataset:
    """The Training faces a run fits: the Training split, or a stratified subset of ``subset`` faces
    (``data.train_subset``) drawn with ``seed``.

    Raises:
        DataError: if ``dataset`` has no Training faces.
    """
    training = dataset.split("Training")
    if len(training) == 0:
        raise DataError(f"{dataset.source}: no Training faces to train on")
    if subset and subset < len(training):
        training = stratified_subset(training, subset, seed)
    return training


def train_eval_data(training: FaceDataset, *, subset: int | None, seed: int) -> FaceDataset:
    """The fixed Training faces re-scored in inference mode: a stratified subset of ``subset`` faces
    (``train.train_eval_subset``) of ``training`` (the faces fitted, see :func:`training_data`), or all of them."""
    return stratified_subset(training, subset, seed) if subset and subset < len(training) else training


def uses_soft_targets(params: Params) -> bool:
    """True when the targets are (B, 7) vectors rather than labels: label smoothing, mixup, CutMix or
    distillation is on."""
    train, augment = params.train, params.train.augment
    return train.label_smoothing > 0 or augment.mixup_alpha > 0 or augment.cutmix_alpha > 0 or bool(train.teachers)


def distillation_targets(
    faces: np.ndarray, labels: np.ndarray, *, teachers: list[str], weight: float, batch_size: int = 256
) -> np.ndarray:
    """Knowledge distillation's targets: ``(1 - weight) * one-hot label + weight * the teachers' probabilities``.

    Each teacher (a ``.keras`` or ``.tflite`` file, relative to the project root) scores every face and its
    mirror image (flip TTA); the teachers' probabilities are averaged with equal weight.

    Args:
        faces: (N, 48, 48) uint8 Training faces; labels: (N,) their labels.

    Returns:
        float32 (N, 7), each row summing to 1.
    """
    each = [
        load_classifier(project_path(path)).predict_proba(faces, batch_size=batch_size, tta="flip") for path in teachers
    ]
    scores = np.mean(each, axis=0)
    return ((1 - weight) * np.eye(NUM_CLASSES)[labels] + weight * scores).astype(np.float32)


def sample_weights(params: Params, labels: np.ndarray) -> np.ndarray:
    """Per-face loss weights (N,): ones, or sklearn's 'balanced' class weights."""
    if params.train.class_weight == "none":
        return np.ones(len(labels), dtype=np.float32)
    return compute_sample_weight("balanced", labels).astype(np.float32)


def wall_time(history: pd.DataFrame) -> dict[str, float]:
    """The measured time of a run from its history (``seconds`` and ``eval_seconds`` per epoch).

    Returns:
        ``fit_seconds`` (all ``model.fit`` calls), ``eval_seconds`` (the per-epoch inference-mode
        scoring), ``wall_seconds`` (their sum: the run's time without start-up and saving, and
        without any pause between an interruption and its resume) and ``wall_seconds_per_epoch``.
    """
    fit, evaluation = float(history["seconds"].sum()), float(history["eval_seconds"].fillna(0).sum())
    return {
        "fit_seconds": fit,
        "eval_seconds": evaluation,
        "wall_seconds": fit + evaluation,
        "wall_seconds_per_epoch": (fit + evaluation) / max(len(history), 1),
    }


# --- What notebook 2 shows about a run: the recipe, the model, the batches, the schedule, the gap ---

FREEZE_MEANING: dict[str, str] = {
    "none": "the whole network trains from the first epoch",
    "backbone": "the backbone stays frozen: only the head trains",
    "staged": "the head alone for train.warmup_epochs epochs, then everything",
}
SCHEDULE_MEANING: dict[str, str] = {
    "constant": "the learning rate stays fixed",
    "cosine": "decays to 0 along a half cosine while the backbone trains",
    "plateau": "halved when PublicTest accuracy stalls for 2 epochs",
}
SELECT_MEANING: dict[str, str] = {
    "last": "the last epoch's weights are kept",
    "best_val": "the epoch with the best inference-mode PublicTest accuracy is kept",
    "average": "the mean of the last train.average_epochs epochs' weights is kept",
}
"""What each value of ``model.freeze``, ``train.schedule`` and ``train.select`` does (:func:`recipe_table`)."""


def recipe_table(params: Params) -> pd.DataFrame:
    """The training recipe of ``params``, one row per setting: its params key, value and what it does."""
    model, train, augment = params.model, params.train, params.train.augment
    transforms = [
        name
        for name, on in (
            ("flip", augment.flip),
            (f"rotate +-{augment.rotation_degrees:g} deg", augment.rotation_degrees),
            (f"shift +-{augment.shift_fraction:.0%}", augment.shift_fraction),
            (f"zoom +-{augment.zoom_fraction:.0%}", augment.zoom_fraction),
            (f"erase p={augment.erasing_probability:g}", augment.erasing_probability),
            (f"random {augment.crop_size} px crops", augment.crop_size),
            (f"mixup alpha={augment.mixup_alpha:g}", augment.mixup_alpha),
            (f"cutmix alpha={augment.cutmix_alpha:g}", augment.cutmix_alpha),
            (f"gamma +-{augment.gamma:g} (log)", augment.gamma),
            (f"contrast +-{augment.contrast:.0%}", augment.contrast),
            (f"low resolution or blur p={augment.lowres_probability:g}", augment.lowres_probability),
            (f"noise sigma <={augment.noise_std:g}", augment.noise_std),
            (f"JPEG p={augment.jpeg_probability:g}", augment.jpeg_probability),
        )
        if on
    ]
    optimizer = train.optimizer + (f", weight decay {train.weight_decay:g}" if train.optimizer == "adamw" else "")
    staged = model.freeze == "staged"
    head_rate = f"{train.head_learning_rate or train.learning_rate:g}"  # the head-only stage's, in a staged run
    rows = [
        (
            "model.input_size",
            f"{model.input_size} px",
            f"48x48 grey faces are resized to this inside the model ({model.resize})",
        ),
        ("model.scale", model.scale, "pixels 0-255 to [0, 1] (unit: x/255) or [-1, 1] (imagenet: x/127.5 - 1)"),
        ("model.weights", model.weights, "where MobileNetV2's weights start from"),
        (
            "model.pooling, head_units, dropout",
            f"{model.pooling}, {model.head_units or 'none'}, {model.dropout:g}",
            "the head on the backbone: pooling, hidden dense layers, dropout before each dense layer; then softmax 7",
        ),
        (
            "model.bn_momentum",
            f"{model.bn_momentum:g}" if model.bn_momentum else "0.999 (Keras' default)",
            "how slowly BatchNorm's moving averages (used in inference mode) follow the batches",
        ),
        (
            "model.freeze",
            model.freeze + (f", warmup_epochs {train.warmup_epochs}" if staged else ""),
            FREEZE_MEANING[model.freeze],
        ),
        (
            "model.train_from_block",
            str(model.train_from_block or "all"),
            f"the stem and blocks 0-{model.train_from_block - 1} stay frozen when the backbone trains"
            if model.train_from_block
            else "every backbone layer trains once the backbone joins",
        ),
        ("train.epochs", str(train.epochs), "passes over the Training faces"),
        ("train.batch_size", str(train.batch_size), "faces per optimizer step"),
        ("train.optimizer", optimizer, "the update rule (sgd: Nesterov momentum 0.9)"),
        ("train.learning_rate", f"{train.learning_rate:g}", "the (peak) step size while the backbone trains"),
        *([("train.head_learning_rate", head_rate, "the step size while only the head trains")] if staged else []),
        ("train.schedule", train.schedule, SCHEDULE_MEANING[train.schedule]),
        (
            "loss",
            f"cross-entropy, label smoothing {train.label_smoothing:g}",
            "target (1 - e) on the label and e/7 on every class" if train.label_smoothing else "target 1 on the label",
        ),
        *(
            [
                (
                    "train.teachers",
                    f"{len(train.teachers)} models, weight {train.teacher_weight:g}",
                    "distillation: the target mixes the label with the teachers' mean flip-TTA probabilities",
                )
            ]
            if train.teachers
            else []
        ),
        (
            "train.class_weight",
            train.class_weight,
            "each face weighs in inverse proportion to its class's size"
            if train.class_weight == "balanced"
            else "every face weighs the same in the loss",
        ),
        ("train.augment", ", ".join(transforms) or "none", "random changes to each Training face, new every epoch"),
        ("data.train_subset", str(params.data.train_subset or "all"), "Training faces fitted"),
        (
            "train.train_eval_subset",
            str(train.train_eval_subset or "all"),
            "Training faces re-scored in inference mode after each epoch",
        ),
        (
            "train.select",
            train.select + (f", {train.average_epochs} epochs" if train.select == "average" else ""),
            SELECT_MEANING[train.select],
        ),
        ("seed", str(params.seed), "fixes the head's initial weights, the batches, augmentation and dropout"),
    ]
    return pd.DataFrame(rows, columns=["setting", "value", "what it does"]).set_index("setting")


def layer_table(model: keras.Model) -> pd.DataFrame:
    """The model's layers from input to softmax: kind, output shape, parameters and whether they train now.

    The MobileNetV2 backbone is one row (a nested model of about 150 layers).
    """
    rows = [
        {
            "layer": layer.name,
            "kind": type(layer).__name__,
            "output shape": str(tuple(layer.output.shape)),
            "parameters": layer.count_params(),
            "trains now": layer.trainable and bool(layer.trainable_weights),
        }
        for layer in model.layers
    ]
    return pd.DataFrame(rows).set_index("layer")


def augmentation_examples(
    batches: FaceBatches, *, count: int, epoch: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The first ``count`` faces of the first batch of ``epoch``, as stored and as the model is fed them.

    Returns:
        originals uint8 (count, 48, 48), augmented float32 (count, 48, 48) in 0-255, labels (count,).
    """
    previous = batches.epoch
    batches.set_epoch(epoch)
    augmented = batches[0][0][:count, ..., 0]
    rows = batches.order[: len(augmented)]
    batches.set_epoch(previous)
    return batches.faces[rows], augmented, batches.labels[rows]


def learning_rate_curve(options: dict[str, Any], *, epochs: int, steps_per_epoch: int) -> pd.DataFrame:
    """The learning rate of every optimizer step of a run, per stage, as :func:`fer_lib.recipe.fine_tune`
    sets it from ``options`` (:func:`fine_tune_options`).

    With ``train.schedule: plateau`` this is the starting rate; the callback halves it as the run goes
    (the history's ``learning_rate`` column records what it was).

    Returns:
        Columns ``epoch`` (epochs elapsed at the step, fractional), ``learning_rate`` and ``stage``.
    """
    warmup = min(options["warmup_epochs"], epochs)
    stages = (
        ("head only (backbone frozen)", options["head_learning_rate"], 0, 0, warmup),
        ("whole network", options["learning_rate"], options["decay_steps"], warmup, epochs),
    )
    parts = []
    for name, rate, decay_steps, first, last in stages:
        steps = np.arange((last - first) * steps_per_epoch)
        rates = (
            keras.ops.convert_to_numpy(keras.optimizers.schedules.CosineDecay(rate, decay_steps=decay_steps)(steps))
            if decay_steps
            else np.full(len(steps), rate)
        )
        parts.append(pd.DataFrame({"epoch": first + steps / steps_per_epoch, "learning_rate": rates, "stage": name}))
    return pd.concat(parts, ignore_index=True)


def last_epoch_table(history: pd.DataFrame) -> pd.DataFrame:
    """The last epoch's accuracy (percent) and loss measured three ways, and the gaps between them.

    Rows: Training fit-time (training mode), Training inference mode, PublicTest inference mode,
    then two gaps in accuracy points: fit-time minus inference mode on Training (what paper B's
    94.23% hides) and Training minus PublicTest in inference mode (over-fitting).
    """
    last = history.iloc[-1]
    value = {
        column: float(last[column]) if column in last and pd.notna(last[column]) else np.nan
        for column in ("fit_accuracy", "fit_loss", "train_accuracy", "train_loss", "val_accuracy", "val_loss")
    }
    fit, train, val = (value[f"{kind}_accuracy"] for kind in ("fit", "train", "val"))
    rows = {
        "Training, fit-time (training mode)": (100 * fit, value["fit_loss"]),
        "Training, inference mode": (100 * train, value["train_loss"]),
        "PublicTest, inference mode": (100 * val, value["val_loss"]),
        "gap: Training fit-time - inference mode (points)": (100 * (fit - train), np.nan),
        "gap: Training - PublicTest, inference mode (points)": (100 * (train - val), np.nan),
    }
    return pd.DataFrame.from_dict(rows, orient="index", columns=["accuracy (%)", "loss"]).rename_axis(
        f"last epoch ({int(last['epoch'])})"
    )
