"""Fine-tuning with per-epoch checkpoints, exact resume, and honest per-epoch metrics.

A training run lives in one folder (:class:`fer_lib.paths.RunLayout` names its files)::

    run_dir/params.yaml        the parameters (a resumed run must be given the same ones)
    run_dir/manifest.json      versions, backend, device, git commit
    run_dir/checkpoint.keras   model + optimizer after the last completed epoch
    run_dir/state.json         last completed epoch, best PublicTest accuracy and its epoch, finished flag
                               (with select: average, also the averaged epochs and their model's scores)
    run_dir/history.csv        one row per epoch (columns: HISTORY_COLUMNS)
    run_dir/best.weights.h5    weights of the best PublicTest epoch so far (select: best_val)
    run_dir/epoch-NNN.weights.h5  weights of each epoch that select: average will average
    run_dir/model.keras        the final float32 model without optimizer state (inference)

Each epoch is one ``model.fit`` call over a :class:`FaceBatches` whose order and augmentation
depend only on (seed, epoch, batch index), and dropout is re-seeded from (seed, epoch); so a
run killed at any moment and resumed from its last checkpoint ends with the same weights as an
uninterrupted run (on CPU, where kernels are deterministic).

History columns tell the two kinds of accuracy apart: ``fit_*`` are what ``model.fit`` reports
(training mode: BatchNorm normalises with each batch's statistics, dropout is on, running mean
over the epoch, loss includes label smoothing and class weights); ``train_*`` and ``val_*`` are
measured afterwards in inference mode (BatchNorm moving averages, no dropout) on a fixed Training
subset and on PublicTest, with scikit-learn.
"""
from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import yaml
from sklearn.metrics import accuracy_score, log_loss
from sklearn.utils.class_weight import compute_class_weight

from fer_lib.augment import augment_batch
from fer_lib.classifiers import KerasClassifier
from fer_lib.data import stratified_subset
from fer_lib.dataset import FaceDataset
from fer_lib.errors import DataError, RunExistsError
from fer_lib.labels import NUM_CLASSES
from fer_lib.model import (average_weights, build_model, load_model, load_model_weights, recalibrate_batchnorm,
                           set_backbone_trainable)
from fer_lib.params import Params, params_from_dict
from fer_lib.paths import RunLayout

HISTORY_COLUMNS: tuple[str, ...] = (
    "epoch", "fit_accuracy", "fit_loss", "train_accuracy", "train_loss",
    "val_accuracy", "val_loss", "learning_rate", "seconds", "eval_seconds",
)
"""Per-epoch history: fit_* = fit-time (training mode); train_*/val_* = inference mode."""


@dataclass
class TrainResult:
    """Outcome of a training run: the final model, its history and where it was saved."""

    model: keras.Model
    history: pd.DataFrame
    model_path: Path
    run_dir: Path
    kept_epoch: int
    """The epoch (1-based) whose weights ``model`` holds: the last one, or with ``train.select:
    best_val`` the one with the best inference-mode PublicTest accuracy; with ``select: average``
    the last of the averaged epochs (``averaged_epochs``)."""
    averaged_epochs: list[int] = dataclasses.field(default_factory=list)
    """With ``select: average``: the epochs whose weights ``model`` averages; else empty."""


class FaceBatches(keras.utils.PyDataset):
    """Shuffled, augmented batches of Training faces, reproducible per (seed, epoch, batch).

    Yields ``(x, y, sample_weight)``: x (B, 48, 48, 1) float32 in 0-255, y (B,) int labels or
    (B, 7) one-hot when ``one_hot`` (label smoothing needs one-hot targets), and (B,) weights.
    """

    def __init__(self, faces: np.ndarray, labels: np.ndarray, batch_size: int, params: Params,
                 sample_weights: np.ndarray, one_hot: bool, *, workers: int = 1) -> None:
        super().__init__(workers=workers, use_multiprocessing=False)
        self.faces, self.labels, self.sample_weights = faces, labels, sample_weights
        self.batch_size, self.params, self.one_hot = batch_size, params, one_hot
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        """Fix the shuffle order and augmentation stream of ``epoch``."""
        self.epoch = epoch
        self.order = np.random.default_rng([self.params.seed, epoch]).permutation(len(self.labels))

    def __len__(self) -> int:
        return -(-len(self.labels) // self.batch_size)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rows = self.order[index * self.batch_size:(index + 1) * self.batch_size]
        rng = np.random.default_rng([self.params.seed, self.epoch, index])
        x = augment_batch(self.faces[rows], self.params.train.augment, rng)[..., None]
        y = self.labels[rows]
        if self.one_hot:
            y = np.eye(NUM_CLASSES, dtype=np.float32)[y]
        return x, y, self.sample_weights[rows]


def train(params: Params, dataset: FaceDataset, run_dir: str | os.PathLike[str], *, verbose: int | str = "auto",
          workers: int = 1, max_epochs: int | None = None) -> TrainResult:
    """Train per ``params`` on the Training split, scoring PublicTest each epoch; resume if interrupted.

    Args:
        params: the run's parameters (model, optimisation, augmentation, seed).
        dataset: faces with a ``Training`` split; ``PublicTest`` is used for the per-epoch held-out
            curve and, only when ``train.select == "best_val"``, for choosing the epoch to keep.
        run_dir: the run folder. New or empty: start; holding an unfinished run with the same
            params: resume after its last completed epoch; finished: RunExistsError.
        verbose: Keras progress output (``"auto"``, 0, 1 or 2).
        workers: host threads preparing batches.
        max_epochs: stop after this many epochs of the run (None: all ``train.epochs``). The
            schedule stays that of the whole run, so the epochs done match the first epochs of a
            complete run; the run stays unfinished (resumable) and ``model_path`` is its checkpoint.

    Returns:
        The final model (loaded from ``run_dir/model.keras``), the history and paths.
    """
    run_dir = Path(run_dir)
    state = _prepare_run_dir(run_dir, params)
    training, heldout = training_data(params, dataset), dataset.split("PublicTest")
    _seed_everything(params.seed)
    policy = keras.config.dtype_policy()
    if params.train.mixed_precision:
        keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        model = _initial_model(params, run_dir, state, steps_per_epoch=-(-len(training) // params.train.batch_size))
        _start_run_dir(run_dir, params, state)
        batches = FaceBatches(training.faces, training.labels, params.train.batch_size, params,
                              _sample_weights(params, training.labels), params.train.label_smoothing > 0,
                              workers=workers)
        train_eval = train_eval_data(params, training)
        plateau = _plateau_callback(params, model, state)
        for epoch in range(state["epochs_done"], min(params.train.epochs, max_epochs or params.train.epochs)):
            if params.model.freeze == "staged" and epoch == params.train.warmup_epochs:
                set_backbone_trainable(model, True)
                _compile(model, params, params.train.learning_rate, steps_per_epoch=len(batches))
            row = _run_epoch(model, batches, epoch, params, train_eval, heldout, verbose)
            if plateau is not None:
                plateau.on_epoch_end(epoch, {"val_accuracy": row["val_accuracy"]})
            _save_epoch(model, run_dir, state, row, params, plateau)
    finally:
        keras.config.set_dtype_policy(policy)
    if state["epochs_done"] < params.train.epochs:  # stopped early by max_epochs
        history = pd.read_csv(RunLayout(run_dir).history)
        return TrainResult(model, history, RunLayout(run_dir).checkpoint, run_dir, state["epochs_done"])
    return _finish(params, run_dir, state, training, train_eval, heldout)


def load_run(run_dir: str | os.PathLike[str]) -> TrainResult:
    """Load a finished training run (e.g. trained on a GPU by the CLI) for reporting.

    Raises:
        DataError: if ``run_dir`` holds no finished run (see :func:`require_finished`).
    """
    layout = require_finished(run_dir)
    state = json.loads(layout.state.read_text())
    history = pd.read_csv(layout.history)
    return TrainResult(load_model(layout.model), history, layout.model, layout.root, _kept_epoch(state, history),
                       state.get("averaged", {}).get("epochs", []))


def averaged_epochs(params: Params) -> list[int]:
    """The epochs (1-based) whose weights ``train.select: average`` averages: the last
    ``train.average_epochs``; empty for the other selections."""
    if params.train.select != "average":
        return []
    return list(range(params.train.epochs - params.train.average_epochs + 1, params.train.epochs + 1))


def is_finished(run_dir: str | os.PathLike[str]) -> bool:
    """True if ``run_dir`` holds a finished training run: its ``state.json`` says finished and its
    ``model.keras`` and ``history.csv`` exist (``train`` refuses it; :func:`load_run` loads it).

    The one definition of a finished run: reports, ablations and ``load_run`` all ask here.
    """
    layout = RunLayout(run_dir)
    return (layout.state.is_file() and bool(json.loads(layout.state.read_text()).get("finished"))
            and layout.model.is_file() and layout.history.is_file())


def require_finished(run_dir: str | os.PathLike[str]) -> RunLayout:
    """Return the layout of the finished run in ``run_dir``.

    Raises:
        DataError: ``"<run_dir>: not a finished training run ..."`` unless :func:`is_finished`.
    """
    if not is_finished(run_dir):
        raise DataError(f"{run_dir}: not a finished training run (state.json marked finished, model.keras "
                        "and history.csv expected)")
    return RunLayout(run_dir)


def training_data(params: Params, dataset: FaceDataset) -> FaceDataset:
    """The Training faces a run fits: the Training split, or its stratified ``data.train_subset``.

    Raises:
        DataError: if ``dataset`` has no Training faces.
    """
    training = dataset.split("Training")
    if len(training) == 0:
        raise DataError(f"{dataset.source}: no Training faces to train on")
    if params.data.train_subset and params.data.train_subset < len(training):
        training = stratified_subset(training, params.data.train_subset, params.seed)
    return training


def train_eval_data(params: Params, training: FaceDataset) -> FaceDataset:
    """The fixed Training faces re-scored in inference mode: a stratified ``train.train_eval_subset``
    of ``training`` (the faces fitted, see :func:`training_data`), or all of them."""
    subset = params.train.train_eval_subset
    return stratified_subset(training, subset, params.seed) if subset and subset < len(training) else training


def _prepare_run_dir(run_dir: Path, params: Params) -> dict:
    """Validate ``run_dir`` (writing nothing) and return its state (epochs done, best accuracy, ...).

    Raises:
        RunExistsError: for a finished run, an unfinished run with other params, or a folder
            holding anything else.
    """
    state_path = RunLayout(run_dir).state
    if state_path.is_file():
        state = json.loads(state_path.read_text())
        if state.get("finished"):
            raise RunExistsError(f"{run_dir}: holds a finished training run; choose a new output folder")
        params_path = RunLayout(run_dir).params
        recorded = params_from_dict(yaml.safe_load(params_path.read_text()), origin=str(params_path))
        if recorded != params:
            raise RunExistsError(f"{run_dir}: holds an unfinished run with different params; "
                                 "resume it with the same params file or choose a new output folder")
        print(f"Resuming {run_dir} after epoch {state['epochs_done']} of {params.train.epochs}")
        return state
    if run_dir.is_dir() and any(run_dir.iterdir()):
        raise RunExistsError(f"{run_dir}: folder exists and is not a training run; choose a new output folder")
    return {"epochs_done": 0, "best_val_accuracy": None, "best_epoch": None, "finished": False, "plateau": None}


def _start_run_dir(run_dir: Path, params: Params, state: dict) -> None:
    """Record params, provenance and the initial state in a new run folder (once the model exists)."""
    if RunLayout(run_dir).state.is_file():
        return
    from fer_lib.runs import write_manifest

    run_dir.mkdir(parents=True, exist_ok=True)
    RunLayout(run_dir).params.write_text(yaml.safe_dump(params.to_dict(), sort_keys=False))
    write_manifest(run_dir, params)
    _atomic_write(RunLayout(run_dir).state, json.dumps(state, indent=2))


def _seed_everything(seed: int) -> None:
    """Seed Python, NumPy and the backend; make TensorFlow kernels deterministic."""
    keras.utils.set_random_seed(seed)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


def _initial_model(params: Params, run_dir: Path, state: dict, steps_per_epoch: int) -> keras.Model:
    """Build and compile a new model, or load the compiled checkpoint of a resumed run."""
    if RunLayout(run_dir).checkpoint.is_file():
        return keras.models.load_model(RunLayout(run_dir).checkpoint, safe_mode=True)
    model = build_model(params.model, seed=params.seed)
    staged = params.model.freeze == "staged" and params.train.warmup_epochs > 0
    learning_rate = (params.train.head_learning_rate or params.train.learning_rate) if staged \
        else params.train.learning_rate
    if params.model.freeze == "staged" and not staged:
        set_backbone_trainable(model, True)
    _compile(model, params, learning_rate, steps_per_epoch)
    return model


def _compile(model: keras.Model, params: Params, learning_rate: float, steps_per_epoch: int) -> None:
    """Compile with the optimizer, schedule and loss of ``params.train``."""
    train = params.train
    stage_epochs = train.epochs - (train.warmup_epochs if params.model.freeze == "staged" else 0)
    schedule: float | keras.optimizers.schedules.LearningRateSchedule = learning_rate
    if train.schedule == "cosine" and model.get_layer("backbone").trainable:
        schedule = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=stage_epochs * steps_per_epoch)
    optimizer = {
        "adam": lambda: keras.optimizers.Adam(schedule),
        "adamw": lambda: keras.optimizers.AdamW(schedule, weight_decay=train.weight_decay),
        "sgd": lambda: keras.optimizers.SGD(schedule, momentum=0.9, nesterov=True),
    }[train.optimizer]()
    loss = keras.losses.CategoricalCrossentropy(label_smoothing=train.label_smoothing) if train.label_smoothing \
        else keras.losses.SparseCategoricalCrossentropy()
    model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"])


def _sample_weights(params: Params, labels: np.ndarray) -> np.ndarray:
    """Per-face loss weights (N,): ones, or sklearn's 'balanced' class weights."""
    if params.train.class_weight == "none":
        return np.ones(len(labels), dtype=np.float32)
    classes = np.unique(labels)
    weights = compute_class_weight("balanced", classes=classes, y=labels)
    lookup = np.ones(NUM_CLASSES, dtype=np.float32)
    lookup[classes] = weights
    return lookup[labels]


def _plateau_callback(params: Params, model: keras.Model, state: dict) -> keras.callbacks.ReduceLROnPlateau | None:
    """A ReduceLROnPlateau on inference-mode PublicTest accuracy, restored from ``state``."""
    if params.train.schedule != "plateau":
        return None
    callback = keras.callbacks.ReduceLROnPlateau(monitor="val_accuracy", mode="max", factor=0.5, patience=2,
                                                 min_lr=1e-6, verbose=1)
    callback.set_model(model)
    callback.on_train_begin()
    if state.get("plateau"):
        callback.wait, callback.best, callback.cooldown_counter = (state["plateau"][key] for key in
                                                                   ("wait", "best", "cooldown_counter"))
    return callback


def _reseed_dropout(model: keras.Model, seed: int, epoch: int) -> None:
    """Reset the head's dropout seed states from (seed, epoch), so resumed epochs draw the same masks."""
    for index, layer in enumerate(model.layers):
        generator = getattr(layer, "seed_generator", None)
        if generator is not None:
            generator.state.assign(np.array([seed + index, epoch], dtype=generator.state.dtype))


def _run_epoch(model: keras.Model, batches: FaceBatches, epoch: int, params: Params, train_eval: FaceDataset,
               heldout: FaceDataset, verbose: int | str) -> dict:
    """Fit one epoch, then score Training (subset) and PublicTest in inference mode; return the history row."""
    batches.set_epoch(epoch)
    _reseed_dropout(model, params.seed, epoch)
    start = time.perf_counter()
    logs = model.fit(batches, initial_epoch=epoch, epochs=epoch + 1, shuffle=False, verbose=verbose).history
    seconds = time.perf_counter() - start
    row = {"epoch": epoch + 1, "fit_accuracy": logs["accuracy"][-1], "fit_loss": logs["loss"][-1],
           "learning_rate": float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)), "seconds": seconds}
    start = time.perf_counter()
    row.update(_inference_scores(model, params, train_eval, heldout))
    row["eval_seconds"] = time.perf_counter() - start
    print(f"epoch {epoch + 1}: fit-time (training mode) accuracy {row['fit_accuracy']:.4f}; inference mode: "
          f"Training {row.get('train_accuracy', float('nan')):.4f}, PublicTest {row.get('val_accuracy', float('nan')):.4f}",
          flush=True)
    return row


def _inference_scores(model: keras.Model, params: Params, train_eval: FaceDataset, heldout: FaceDataset
                      ) -> dict[str, float]:
    """Inference-mode accuracy and log loss on the Training subset and PublicTest:
    ``{train,val}_{accuracy,loss}`` (a split without faces is left out)."""
    classifier, scores = KerasClassifier(model), {}
    for prefix, split in (("train", train_eval), ("val", heldout)):
        if len(split):
            probabilities = classifier.predict_proba(split.faces, batch_size=max(params.train.batch_size, 256))
            scores[f"{prefix}_accuracy"] = float(accuracy_score(split.labels, probabilities.argmax(axis=1)))
            scores[f"{prefix}_loss"] = float(log_loss(split.labels, probabilities, labels=range(NUM_CLASSES)))
    return scores


def _save_epoch(model: keras.Model, run_dir: Path, state: dict, row: dict, params: Params,
                plateau: keras.callbacks.ReduceLROnPlateau | None) -> None:
    """Checkpoint model+optimizer, append the history row and advance ``state``, each atomically."""
    _atomic_save_model(model, RunLayout(run_dir).checkpoint)
    history_path = RunLayout(run_dir).history
    history = pd.read_csv(history_path) if history_path.is_file() else pd.DataFrame(columns=HISTORY_COLUMNS)
    history = history[history["epoch"] < row["epoch"]]
    history = pd.concat([history, pd.DataFrame([row]).reindex(columns=HISTORY_COLUMNS)], ignore_index=True)
    _atomic_write(history_path, history.to_csv(index=False))
    val_accuracy = row.get("val_accuracy")
    if params.train.select == "best_val" and val_accuracy is not None and (
            state["best_val_accuracy"] is None or val_accuracy > state["best_val_accuracy"]):
        model.save_weights(RunLayout(run_dir).best_weights)
        state.update(best_val_accuracy=val_accuracy, best_epoch=row["epoch"])
    if row["epoch"] in averaged_epochs(params):
        model.save_weights(RunLayout(run_dir).epoch_weights(row["epoch"]))
    if plateau is not None:
        state["plateau"] = {"wait": plateau.wait, "best": float(plateau.best),
                            "cooldown_counter": plateau.cooldown_counter}
    state["epochs_done"] = row["epoch"]
    _atomic_write(RunLayout(run_dir).state, json.dumps(state, indent=2))


def _finish(params: Params, run_dir: Path, state: dict, training: FaceDataset, train_eval: FaceDataset,
            heldout: FaceDataset) -> TrainResult:
    """Write the final float32 inference model (last, best or averaged epochs) and mark the run finished.

    With ``select: average`` the averaged model's BatchNorm statistics are recomputed on the
    ``training`` faces (not augmented) and its inference-mode scores on ``train_eval`` and
    ``heldout`` are recorded in ``state["averaged"]``.
    """
    trained = keras.models.load_model(RunLayout(run_dir).checkpoint, safe_mode=True)
    if params.train.select == "best_val" and RunLayout(run_dir).best_weights.is_file():
        load_model_weights(trained, RunLayout(run_dir).best_weights)
    epochs = averaged_epochs(params)
    if epochs:
        average_weights(trained, [RunLayout(run_dir).epoch_weights(epoch) for epoch in epochs])
        recalibrate_batchnorm(trained, training.faces, batch_size=max(params.train.batch_size, 256))
        state["averaged"] = {"epochs": epochs, **_inference_scores(trained, params, train_eval, heldout)}
        print(f"weights of epochs {epochs[0]}-{epochs[-1]} averaged, BatchNorm statistics recomputed; inference "
              f"mode: Training {state['averaged'].get('train_accuracy', float('nan')):.4f}, "
              f"PublicTest {state['averaged'].get('val_accuracy', float('nan')):.4f}", flush=True)
    final = build_model(dataclasses.replace(params.model, weights="none"), seed=params.seed)
    final.set_weights([np.asarray(keras.ops.convert_to_numpy(w), dtype=np.float32) for w in trained.get_weights()])
    model_path = RunLayout(run_dir).model
    _atomic_save_model(final, model_path)
    state["finished"] = True
    _atomic_write(RunLayout(run_dir).state, json.dumps(state, indent=2))
    history = pd.read_csv(RunLayout(run_dir).history)
    return TrainResult(final, history, model_path, run_dir, _kept_epoch(state, history), epochs)


def _kept_epoch(state: dict, history: pd.DataFrame) -> int:
    """The epoch whose weights the final model holds: the best PublicTest epoch if one was kept, else the last."""
    return int(state.get("best_epoch") or history["epoch"].iloc[-1])


def _atomic_save_model(model: keras.Model, path: Path) -> None:
    """Save ``model`` to ``path`` via a temporary file, so a kill never leaves a half-written file."""
    temporary = path.with_name(f".{path.stem}.tmp.keras")
    model.save(temporary)
    os.replace(temporary, path)


def _atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


def wall_time(history: pd.DataFrame) -> dict[str, float]:
    """The measured time of a run from its history (``seconds`` and ``eval_seconds`` per epoch).

    Returns:
        ``fit_seconds`` (all ``model.fit`` calls), ``eval_seconds`` (the per-epoch inference-mode
        scoring), ``wall_seconds`` (their sum: the run's time without start-up and saving, and
        without any pause between an interruption and its resume) and ``wall_seconds_per_epoch``.
    """
    fit, evaluation = float(history["seconds"].sum()), float(history["eval_seconds"].fillna(0).sum())
    return {"fit_seconds": fit, "eval_seconds": evaluation, "wall_seconds": fit + evaluation,
            "wall_seconds_per_epoch": (fit + evaluation) / max(len(history), 1)}
