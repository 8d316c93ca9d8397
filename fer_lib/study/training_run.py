"""Training runs: a run folder, per-epoch checkpoints, exact resume, and honest per-epoch metrics.

A training run lives in one folder (:class:`fer_lib.paths.RunLayout` names its files)::

    run_dir/params.yaml        the parameters (a resumed run must be given the same ones)
    run_dir/manifest.json      versions, backend, device, git commit (a distilled run: its teachers' SHA-256)
    run_dir/teacher_targets.npy  a distilled run's Training targets, scored once when it starts (a resume loads them)
    run_dir/checkpoint.keras   model + optimizer after the last completed epoch
    run_dir/state.json         last completed epoch, best PublicTest accuracy and its epoch, finished flag
                               (with select: average, also the averaged epochs and their model's scores)
    run_dir/history.csv        one row per epoch (columns: fer_lib.paths.HISTORY_COLUMNS)
    run_dir/best.weights.h5    weights of the best PublicTest epoch so far (select: best_val)
    run_dir/epoch-NNN.weights.h5  weights of each epoch that select: average will average
    run_dir/model.keras        the final float32 model without optimizer state (inference)

Each epoch is one ``model.fit`` call over a :class:`~fer_lib.training.FaceBatches` whose order and
augmentation depend only on (seed, epoch, batch index), and dropout is re-seeded from (seed, epoch);
so a run killed at any moment and resumed from its last checkpoint ends with the same weights as an
uninterrupted run (on CPU, where kernels are deterministic).

The method (the model, the optimizer and the loss, staged fine-tuning) is :mod:`fer_lib.recipe`,
written from notebook 2's cells; this module runs it on a run folder: :func:`open_run` (a new run,
or an interrupted one resumed, with its batches and the :class:`EpochRecorder` callback that scores
and saves every epoch), then :func:`fer_lib.recipe.fine_tune`. :func:`train` (the CLI's ``train``) is
those two calls, as notebook 2 makes them.

History columns tell the two kinds of accuracy apart: ``fit_*`` are what ``model.fit`` reports
(training mode: BatchNorm normalises with each batch's statistics, dropout is on, running mean
over the epoch, loss includes label smoothing and class weights); ``train_*`` and ``val_*`` are
measured afterwards in inference mode (BatchNorm moving averages, no dropout) on a fixed Training
subset and on PublicTest, with scikit-learn.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import yaml
from sklearn.metrics import accuracy_score, log_loss

from fer_lib.classifiers import KerasClassifier
from fer_lib.dataset import FaceDataset
from fer_lib.errors import ModelError, RunExistsError, partial_file
from fer_lib.labels import NUM_CLASSES
from fer_lib.model import load_model, recalibrate_batchnorm
from fer_lib.params import AugmentParams, Params, load_params, params_from_dict
from fer_lib.paths import HISTORY_COLUMNS, ReportLayout, RunLayout, project_path
from fer_lib.recipe import augment_batch, fine_tune
from fer_lib.study.runs import file_sha256, is_finished, require_finished, write_atomically
from fer_lib.training import (
    FaceBatches,
    distillation_targets,
    fine_tune_options,
    new_model,
    sample_weights,
    train_eval_data,
    training_data,
    uses_soft_targets,
    wall_time,
)
from fer_lib.weights import resolve_weights


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


def train(
    params: Params,
    dataset: FaceDataset,
    run_dir: str | os.PathLike[str],
    *,
    verbose: int | str = "auto",
    workers: int = 1,
    max_epochs: int | None = None,
) -> TrainResult:
    """Train per ``params`` on the Training split, scoring PublicTest each epoch; resume if interrupted.

    What notebook 2 runs, call for call: :func:`open_run` (building :func:`fer_lib.recipe.build_model` with
    :func:`model_options`), then :func:`fer_lib.recipe.fine_tune` with :func:`fine_tune_options`.

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
    run = open_run(params, dataset, run_dir, workers=workers, max_epochs=max_epochs)
    return fine_tune(run, **fine_tune_options(params, steps_per_epoch=len(run.batches)), verbose=verbose)


class EpochRecorder(keras.callbacks.Callback):
    """The run's Keras callback (:attr:`TrainingRun.callbacks`), around each epoch's ``fit``.

    Before the epoch it fixes the batches' order and augmentation and the dropout masks from (seed,
    epoch), so a resumed epoch is the same as an uninterrupted one. After it, it scores the model in
    inference mode on the fixed Training subset and PublicTest, prints one line and saves the epoch
    (:meth:`TrainingRun.save_epoch`: checkpoint, history row, best weights, state).
    """

    def __init__(self, run: TrainingRun) -> None:
        super().__init__()
        self.run, self.start = run, 0.0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.run.batches.set_epoch(epoch)
        _reseed_dropout(self.model, self.run.params.seed, epoch)
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        row = {
            "epoch": epoch + 1,
            "fit_accuracy": float(logs["accuracy"]),
            "fit_loss": float(logs["loss"]),
            "learning_rate": float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)),
            "seconds": time.perf_counter() - self.start,
        }
        start = time.perf_counter()
        row.update(
            _inference_scores(
                self.model, self.run.train_eval, self.run.heldout, batch_size=self.run.params.train.batch_size
            )
        )
        row["eval_seconds"] = time.perf_counter() - start
        print(
            f"epoch {epoch + 1}: fit-time (training mode) accuracy {row['fit_accuracy']:.4f}; inference mode: "
            f"Training {row.get('train_accuracy', float('nan')):.4f}, "
            f"PublicTest {row.get('val_accuracy', float('nan')):.4f}",
            flush=True,
        )
        self.run.save_epoch(row)


@dataclass
class TrainingRun:
    """An open run folder and what its epochs need: the pieces :func:`train` (and notebook 2) loop over.

    Made by :func:`open_run`. ``model`` is the compiled model to fit (a new one, or the resumed
    checkpoint with its optimizer state); for a finished run opened with ``reuse_finished``, its
    final model (no epochs to do; :meth:`finish` loads the run).
    """

    params: Params
    run_dir: Path
    state: dict
    """``epochs_done``, ``best_val_accuracy``, ``best_epoch``, ``finished``, ``plateau`` (``state.json``)."""
    training: FaceDataset
    """The Training faces fitted (:func:`training_data`)."""
    train_eval: FaceDataset
    """The fixed Training faces scored in inference mode after each epoch (:func:`train_eval_data`)."""
    heldout: FaceDataset
    """PublicTest, scored in inference mode after each epoch."""
    batches: FaceBatches
    model: keras.Model
    build: Callable[[], keras.Model]
    """Builds the run's model with new weights (``finish`` builds the float32 model with it)."""
    plateau: keras.callbacks.ReduceLROnPlateau | None = None
    max_epochs: int | None = None

    @property
    def callbacks(self) -> list[keras.callbacks.Callback]:
        """What every epoch's ``fit`` needs: the :class:`EpochRecorder` of this run."""
        return [EpochRecorder(self)]

    def epochs_to_do(self) -> range:
        """The 0-based epochs still to fit: from the last completed one to ``train.epochs`` (or ``max_epochs``)."""
        if self.state.get("finished"):
            return range(0)
        epochs = self.params.train.epochs
        return range(self.state["epochs_done"], min(epochs, self.max_epochs or epochs))

    def save_epoch(self, row: dict) -> None:
        """Record a finished epoch: plateau schedule step, checkpoint (model + optimizer), history row,
        best or averaged epochs' weights and ``state.json``, each file written atomically."""
        if self.plateau is not None:
            self.plateau.on_epoch_end(row["epoch"] - 1, {"val_accuracy": row["val_accuracy"]})
        _save_epoch(self.model, self.run_dir, self.state, row, self.params, self.plateau)

    def finish(self) -> TrainResult:
        """Write ``model.keras`` (the last, best PublicTest or averaged epochs' weights, float32) and mark
        the run finished; a run stopped early (``max_epochs``) stays resumable and returns its checkpoint;
        an already finished run is loaded (:func:`load_run`)."""
        if self.state.get("finished"):
            return load_run(self.run_dir)
        if self.state["epochs_done"] < self.params.train.epochs:
            history = pd.read_csv(RunLayout(self.run_dir).history)
            return TrainResult(
                self.model, history, RunLayout(self.run_dir).checkpoint, self.run_dir, self.state["epochs_done"]
            )
        return _finish(self)


def open_run(
    params: Params,
    dataset: FaceDataset,
    run_dir: str | os.PathLike[str],
    *,
    build: Callable[[], keras.Model] | None = None,
    augment: Callable[[np.ndarray, AugmentParams, np.random.Generator], np.ndarray] = augment_batch,
    workers: int = 1,
    reuse_finished: bool = False,
    max_epochs: int | None = None,
) -> TrainingRun:
    """Open a run folder for training: a new run (its model built, not yet compiled: :func:`fer_lib.recipe.fine_tune`
    compiles each stage), or an unfinished one resumed (its compiled checkpoint).

    Seeds everything from ``params.seed`` first, so that a new model and its run are reproducible.

    Args:
        params: the run's parameters.
        dataset: faces with a ``Training`` split (and ``PublicTest`` for the held-out curve).
        run_dir: new or empty, or an unfinished run of the same params (resumed from its checkpoint).
        build: makes the model with new weights (notebook 2: its own ``build_model`` cell); None:
            :func:`~fer_lib.training.new_model` of ``params.model``.
        augment: augments each batch (notebook 2: its own ``augment_batch`` cell); default
            :func:`fer_lib.recipe.augment_batch`.
        workers: host threads preparing batches.
        max_epochs: stop after this many epochs of the run (see :func:`train`).
        reuse_finished: a finished run (:func:`is_finished`) is opened with nothing left to do: ``model`` is its
            final model and :meth:`~TrainingRun.finish` loads it. False: a finished run is a RunExistsError.

    Raises:
        RunExistsError: for a finished run (unless ``reuse_finished``), an unfinished run with other
            params, or a folder holding anything else.
        DataError: if ``dataset`` has no Training faces.
    """
    run_dir = Path(run_dir)
    build = build or (lambda: new_model(params.model, seed=params.seed))
    training = training_data(dataset, subset=params.data.train_subset, seed=params.seed)
    heldout = dataset.split("PublicTest")
    train_eval = train_eval_data(training, subset=params.train.train_eval_subset, seed=params.seed)
    finished = reuse_finished and is_finished(run_dir)
    layout = RunLayout(run_dir)
    state = None if finished else _prepare_run_dir(run_dir, params)  # a wrong folder is refused before slow work
    targets = None if finished else _distillation_targets(params, training, layout)  # a finished run fits nothing
    batches = FaceBatches(
        training.faces,
        training.labels,
        batch_size=params.train.batch_size,
        augmentation=params.train.augment,
        seed=params.seed,
        sample_weights=sample_weights(params, training.labels),
        one_hot=uses_soft_targets(params),
        targets=targets,
        augment=augment,
        workers=workers,
    )
    if finished:
        differing = _training_differences(load_params(layout.params), params)
        if differing:
            print(f"WARNING: {run_dir} was trained with other params than these: {', '.join(differing)}")
        print(f"{run_dir} holds a finished run: loading it, not training again")
        return TrainingRun(
            params,
            run_dir,
            {"finished": True},
            training,
            train_eval,
            heldout,
            batches,
            load_model(layout.model),
            build,
        )
    _seed_everything(params.seed)
    policy = keras.config.dtype_policy()
    if params.train.mixed_precision:
        keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        model = _initial_model(params, run_dir, state, build)
    finally:
        keras.config.set_dtype_policy(policy)
    _start_run_dir(run_dir, params, state, targets)
    return TrainingRun(
        params,
        run_dir,
        state,
        training,
        train_eval,
        heldout,
        batches,
        model,
        build,
        _plateau_callback(params, model, state),
        max_epochs,
    )


def load_run(run_dir: str | os.PathLike[str]) -> TrainResult:
    """Load a finished training run (e.g. trained on a GPU by the CLI) for reporting.

    Raises:
        DataError: if ``run_dir`` holds no finished run (see :func:`require_finished`).
    """
    layout = require_finished(run_dir)
    state = json.loads(layout.state.read_text())
    history = pd.read_csv(layout.history)
    return TrainResult(
        load_model(layout.model),
        history,
        layout.model,
        layout.root,
        _kept_epoch(state, history),
        state.get("averaged", {}).get("epochs", []),
    )


def averaged_epochs(params: Params) -> list[int]:
    """The epochs (1-based) whose weights ``train.select: average`` averages: the last
    ``train.average_epochs``; empty for the other selections."""
    if params.train.select != "average":
        return []
    return list(range(params.train.epochs - params.train.average_epochs + 1, params.train.epochs + 1))


def _training_differences(recorded: Params, params: Params) -> list[str]:
    """The dotted keys that training depends on (``seed``, ``data.source``, ``data.train_subset``, ``model.*``,
    ``train.*``) whose values differ between a run's recorded params and ``params``; the other sections
    (name, faces, evaluate, the data's location) do not change what was trained."""

    def trained(values: Params) -> dict:
        return {
            key: value
            for key, value in values.non_defaults().items()
            if key in ("seed", "data.source", "data.train_subset") or key.startswith(("model.", "train."))
        }

    ours, theirs = trained(recorded), trained(params)
    return sorted(key for key in ours.keys() | theirs.keys() if ours.get(key) != theirs.get(key))


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
            raise RunExistsError(
                f"{run_dir}: holds an unfinished run with different params; "
                "resume it with the same params file or choose a new output folder"
            )
        print(f"Resuming {run_dir} after epoch {state['epochs_done']} of {params.train.epochs}")
        return state
    if run_dir.is_dir() and any(run_dir.iterdir()):
        raise RunExistsError(f"{run_dir}: folder exists and is not a training run; choose a new output folder")
    return {"epochs_done": 0, "best_val_accuracy": None, "best_epoch": None, "finished": False, "plateau": None}


def _start_run_dir(run_dir: Path, params: Params, state: dict, targets: np.ndarray | None) -> None:
    """Record params, provenance, a distilled run's targets and the initial state in a new run folder (once the
    model exists); warn on stderr, in one line, when the tree is dirty (the manifest then records ``dirty: true``)."""
    layout = RunLayout(run_dir)
    if layout.state.is_file():
        return
    from fer_lib.study.runs import dirty_tree_warning, write_manifest

    run_dir.mkdir(parents=True, exist_ok=True)
    if targets is not None:
        npy = io.BytesIO()
        np.save(npy, targets)
        write_atomically(layout.teacher_targets, npy.getvalue())
    layout.params.write_text(yaml.safe_dump(params.to_dict(), sort_keys=False))
    teachers = {name: file_sha256(project_path(name)) for name in params.train.teachers}
    write_manifest(run_dir, params, extra={"teachers_sha256": teachers} if teachers else None)
    warning = dirty_tree_warning("this training run")
    if warning:
        print(warning, file=sys.stderr, flush=True)
    write_atomically(layout.state, json.dumps(state, indent=2))


def _distillation_targets(params: Params, training: FaceDataset, layout: RunLayout) -> np.ndarray | None:
    """The Training faces' (N, 7) targets from ``train.teachers`` (:func:`~fer_lib.training.distillation_targets`),
    or None without teachers. A resumed run reads the targets its teachers gave when it started (minutes saved,
    and the same targets even if a teacher file has changed since; the manifest names the files it started with)."""
    train = params.train
    if not train.teachers:
        return None
    if layout.teacher_targets.is_file():  # only a resumed run has one: open_run refuses any other non-empty folder
        try:
            targets = np.load(layout.teacher_targets, allow_pickle=False)
        except (OSError, ValueError):  # a damaged file: the teachers score again
            targets = None
        if targets is not None and targets.shape == (len(training), NUM_CLASSES):
            print(f"distillation: the teachers' targets from {layout.teacher_targets} (scored when the run started)")
            return targets
    print(
        f"distillation: teachers {', '.join(train.teachers)} score {len(training)} Training faces (flip TTA)",
        flush=True,
    )
    return distillation_targets(training.faces, training.labels, teachers=train.teachers, weight=train.teacher_weight)


def _seed_everything(seed: int) -> None:
    """Seed Python, NumPy and the backend; make TensorFlow kernels deterministic."""
    keras.utils.set_random_seed(seed)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


def _initial_model(params: Params, run_dir: Path, state: dict, build: Callable[[], keras.Model]) -> keras.Model:
    """A new model from ``build`` (uncompiled), or the compiled checkpoint of a resumed run."""
    if RunLayout(run_dir).checkpoint.is_file():
        return _load_checkpoint(run_dir, state)
    start = resolve_weights(params.model.weights, alpha=params.model.alpha)
    print(f"model.weights: {params.model.weights}; MobileNetV2 starts from {start or 'random weights'}")
    return build()


def _plateau_callback(params: Params, model: keras.Model, state: dict) -> keras.callbacks.ReduceLROnPlateau | None:
    """A ReduceLROnPlateau on inference-mode PublicTest accuracy, restored from ``state``."""
    if params.train.schedule != "plateau":
        return None
    callback = keras.callbacks.ReduceLROnPlateau(
        monitor="val_accuracy", mode="max", factor=0.5, patience=2, min_lr=1e-6, verbose=1
    )
    callback.set_model(model)
    callback.on_train_begin()
    if state.get("plateau"):
        callback.wait, callback.best, callback.cooldown_counter = (
            state["plateau"][key] for key in ("wait", "best", "cooldown_counter")
        )
    return callback


def _reseed_dropout(model: keras.Model, seed: int, epoch: int) -> None:
    """Reset the head's dropout seed states from (seed, epoch), so resumed epochs draw the same masks."""
    for index, layer in enumerate(model.layers):
        generator = getattr(layer, "seed_generator", None)
        if generator is not None:
            generator.state.assign(np.array([seed + index, epoch], dtype=generator.state.dtype))


def _inference_scores(
    model: keras.Model, train_eval: FaceDataset, heldout: FaceDataset, *, batch_size: int
) -> dict[str, float]:
    """Inference-mode accuracy and log loss on the Training subset and PublicTest:
    ``{train,val}_{accuracy,loss}`` (a split without faces is left out)."""
    classifier, scores = KerasClassifier(model), {}
    for prefix, split in (("train", train_eval), ("val", heldout)):
        if len(split):
            probabilities = classifier.predict_proba(split.faces, batch_size=max(batch_size, 256))
            scores[f"{prefix}_accuracy"] = float(accuracy_score(split.labels, probabilities.argmax(axis=1)))
            scores[f"{prefix}_loss"] = float(log_loss(split.labels, probabilities, labels=range(NUM_CLASSES)))
    return scores


def _save_epoch(
    model: keras.Model,
    run_dir: Path,
    state: dict,
    row: dict,
    params: Params,
    plateau: keras.callbacks.ReduceLROnPlateau | None,
) -> None:
    """Checkpoint model+optimizer, append the history row and advance ``state``, each atomically."""
    _atomic_save_model(model, RunLayout(run_dir).checkpoint)
    history_path = RunLayout(run_dir).history
    history = pd.read_csv(history_path) if history_path.is_file() else pd.DataFrame(columns=HISTORY_COLUMNS)
    history = history[history["epoch"] < row["epoch"]]
    history = pd.concat([history, pd.DataFrame([row]).reindex(columns=HISTORY_COLUMNS)], ignore_index=True)
    write_atomically(history_path, history.to_csv(index=False))
    val_accuracy = row.get("val_accuracy")
    if (
        params.train.select == "best_val"
        and val_accuracy is not None
        and (state["best_val_accuracy"] is None or val_accuracy > state["best_val_accuracy"])
    ):
        _atomic_save_weights(model, RunLayout(run_dir).best_weights)
        state.update(best_val_accuracy=val_accuracy, best_epoch=row["epoch"])
    if row["epoch"] in averaged_epochs(params):
        _atomic_save_weights(model, RunLayout(run_dir).epoch_weights(row["epoch"]))
    if plateau is not None:
        state["plateau"] = {
            "wait": plateau.wait,
            "best": float(plateau.best),
            "cooldown_counter": plateau.cooldown_counter,
        }
    state["epochs_done"] = row["epoch"]
    write_atomically(RunLayout(run_dir).state, json.dumps(state, indent=2))


def _finish(run: TrainingRun) -> TrainResult:
    """Write the final float32 inference model (last, best or averaged epochs) and mark the run finished.

    With ``select: average`` the averaged model's BatchNorm statistics are recomputed on the
    Training faces fitted (not augmented) and its inference-mode scores on the Training subset and
    PublicTest are recorded in ``state["averaged"]``. The float32 model is ``run.build()``'s, given the
    trained weights.
    """
    params, run_dir, state = run.params, run.run_dir, run.state
    trained = _load_checkpoint(run_dir, state)
    if params.train.select == "best_val" and RunLayout(run_dir).best_weights.is_file():
        load_model_weights(trained, RunLayout(run_dir).best_weights)
    epochs = averaged_epochs(params)
    if epochs:
        average_weights(trained, [RunLayout(run_dir).epoch_weights(epoch) for epoch in epochs])
        recalibrate_batchnorm(trained, run.training.faces, batch_size=max(params.train.batch_size, 256))
        state["averaged"] = {
            "epochs": epochs,
            **_inference_scores(trained, run.train_eval, run.heldout, batch_size=params.train.batch_size),
        }
        print(
            f"weights of epochs {epochs[0]}-{epochs[-1]} averaged, BatchNorm statistics recomputed; inference "
            f"mode: Training {state['averaged'].get('train_accuracy', float('nan')):.4f}, "
            f"PublicTest {state['averaged'].get('val_accuracy', float('nan')):.4f}",
            flush=True,
        )
    final = run.build()
    final.set_weights([np.asarray(keras.ops.convert_to_numpy(w), dtype=np.float32) for w in trained.get_weights()])
    model_path = RunLayout(run_dir).model
    _atomic_save_model(final, model_path)
    state["finished"] = True
    write_atomically(RunLayout(run_dir).state, json.dumps(state, indent=2))
    history = pd.read_csv(RunLayout(run_dir).history)
    return TrainResult(final, history, model_path, run_dir, _kept_epoch(state, history), epochs)


def _kept_epoch(state: dict, history: pd.DataFrame) -> int:
    """The epoch whose weights the final model holds: the best PublicTest epoch if one was kept, else the last."""
    return int(state.get("best_epoch") or history["epoch"].iloc[-1])


def _load_checkpoint(run_dir: Path, state: dict) -> keras.Model:
    """The compiled model of the run's ``checkpoint.keras`` (the last finished epoch, with its optimizer).

    Raises:
        ModelError: naming the file and the epoch, if the checkpoint cannot be read (damaged, e.g. a
            truncated copy); the run's other files are left as they are.
    """
    path = RunLayout(run_dir).checkpoint
    try:
        return keras.models.load_model(path, safe_mode=True)
    except Exception as error:  # noqa: BLE001 - Keras raises many types (even "File not found") for a bad archive
        reason = " ".join(str(error).split())[:160]
        raise ModelError(
            f"{path}: the checkpoint of epoch {state.get('epochs_done', '?')} is damaged and cannot be read "
            f"({type(error).__name__}: {reason}); only the last epoch's checkpoint is kept, so the run cannot "
            f"resume: move {run_dir} aside (its history.csv keeps the finished epochs' figures) and train again"
        ) from None


def _atomic_save_model(model: keras.Model, path: Path) -> None:
    """Save ``model`` to ``path`` via a temporary file, so a kill never leaves a half-written file."""
    with partial_file(path.with_name(f".{path.stem}.tmp.keras")) as temporary:
        model.save(temporary)
    os.replace(temporary, path)


def _atomic_save_weights(model: keras.Model, path: Path) -> None:
    """``model.save_weights(path)`` via a temporary file (``path`` must end in ``.weights.h5``): a failed or
    killed write leaves the previous file."""
    with partial_file(path.with_name(f".{path.name.removesuffix('.weights.h5')}.tmp.weights.h5")) as temporary:
        model.save_weights(temporary)
    os.replace(temporary, path)


def training_record(result: TrainResult) -> dict:
    """What notebook 2 records in ``metrics/training.json``: epochs, seconds per epoch, :func:`wall_time`,
    the last history row (``final_epoch``), the model's path and the run folder."""
    return {
        "epochs": len(result.history),
        "seconds_per_epoch": float(result.history["seconds"].mean()),
        **wall_time(result.history),
        "final_epoch": result.history.to_dict(orient="records")[-1],
        "model_path": str(result.model_path),
        "training_run": str(result.run_dir),
    }


def recorded_fit_accuracy(report_dir: str | os.PathLike[str]) -> float | None:
    """The last epoch's fit-time Training accuracy notebook 2 recorded in a report
    (``metrics/training.json``); None when the report trained nothing."""
    path = ReportLayout(report_dir).metrics_file("training")
    return float(json.loads(path.read_text())["final_epoch"]["fit_accuracy"]) if path.is_file() else None


def load_model_weights(model: keras.Model, path: str | os.PathLike[str]) -> None:
    """``model.load_weights(path)`` for inference: the optimizer state is not needed, so Keras'
    warning that it skipped (or could not match) the optimizer's variables is silenced."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
        model.load_weights(path)


def average_weights(model: keras.Model, weight_files: Sequence[str | os.PathLike[str]]) -> None:
    """Set every weight of ``model`` to its element-wise mean over ``weight_files``, in place.

    Args:
        model: a model of the architecture the files were saved from.
        weight_files: files ``model.load_weights`` reads (``.weights.h5`` or ``.keras``), e.g. the
            last epochs of a run. BatchNorm moving statistics are averaged too, which does not give
            the statistics of the averaged weights: follow with :func:`recalibrate_batchnorm`.
    """
    total = None
    for path in weight_files:
        load_model_weights(model, path)
        weights = [np.asarray(keras.ops.convert_to_numpy(w), dtype=np.float64) for w in model.get_weights()]
        total = weights if total is None else [t + w for t, w in zip(total, weights, strict=True)]
    if total is None:
        raise ValueError("average_weights: no weight files given")
    model.set_weights(
        [(t / len(weight_files)).astype(w.dtype) for t, w in zip(total, model.get_weights(), strict=True)]
    )
