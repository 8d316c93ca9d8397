"""Benchmark: how long the paper recipes take on this machine at each input size.

Usage: ``python benchmarks/bench_paper_sizes.py [--sizes 96 112 120 128] [--batches 20] [--budget-hours 3]``

For each paper recipe (``params/paper_a.yaml``, ``paper_b.yaml``: their head, optimizer and batch
size) and each input size, it times ``model.fit`` (training faces per second) and ``predict``
(inference faces per second) on random 48x48 faces, after one warm-up call that builds the graph,
then projects a full run: every epoch fits all 28,709 Training faces and scores
``train.train_eval_subset`` Training faces plus the 3,589 PublicTest faces in inference mode. It
prints the projection and, per paper, the largest size within ``--budget-hours``. The weights are
random (``model.weights: none``): speed does not depend on them. Run it on idle cores; on a busy
machine only the ratios between sizes mean something.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import keras
import numpy as np

from fer_lib.classifiers import KerasClassifier
from fer_lib.params import Params, load_params
from fer_lib.paths import PROJECT_ROOT
from fer_lib.training import new_model

TRAINING_FACES = 28_709
"""FER-2013 Training split."""

PUBLICTEST_FACES = 3_589
"""FER-2013 PublicTest split (scored after every epoch)."""


def throughput(params: Params, batches: int, seed: int = 0) -> tuple[float, float]:
    """Return (training, inference) faces per second of ``params``' model on random faces."""
    model = new_model(params.model, seed=seed)
    model.compile(
        optimizer=keras.optimizers.Adam(params.train.learning_rate),  # both papers: Adam, plain labels
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    rng = np.random.default_rng(seed)
    batch = params.train.batch_size
    faces = rng.integers(0, 256, (batches * batch, 48, 48, 1)).astype(np.float32)
    labels = rng.integers(0, 7, batches * batch)
    model.fit(faces[:batch], labels[:batch], batch_size=batch, epochs=1, verbose=0)  # warm-up: builds the graph
    classifier = KerasClassifier(model)  # the path training's per-epoch scoring takes
    classifier.predict_proba(faces[:batch, ..., 0], batch_size=256)
    start = time.perf_counter()
    model.fit(faces, labels, batch_size=batch, epochs=1, verbose=0)
    fit_rate = len(faces) / (time.perf_counter() - start)
    start = time.perf_counter()
    classifier.predict_proba(faces[..., 0], batch_size=256)
    return fit_rate, len(faces) / (time.perf_counter() - start)


def projected_hours(params: Params, fit_rate: float, inference_rate: float) -> float:
    """Hours for ``params.train.epochs`` epochs of all Training faces with the per-epoch scoring."""
    scored = min(params.train.train_eval_subset or TRAINING_FACES, TRAINING_FACES) + PUBLICTEST_FACES
    return params.train.epochs * (TRAINING_FACES / fit_rate + scored / inference_rate) / 3600


def main() -> None:
    """Parse arguments, time every (paper, size) pair, print projections and the largest size in budget."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[96, 112, 120, 128], help="input sizes in pixels")
    parser.add_argument("--batches", type=int, default=20, help="timed training batches per size (default 20)")
    parser.add_argument("--budget-hours", type=float, default=3.0, help="time budget per run (default 3)")
    parser.add_argument("--papers", nargs="+", default=["paper_a", "paper_b"], help="params files in params/")
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPU cores; {args.batches} timed batches per size; budget {args.budget_hours} h per run")
    print(f"{'params':<9} {'size':>5} {'fit faces/s':>12} {'inference faces/s':>18} {'s/epoch':>8} {'hours':>6}")
    for paper in args.papers:
        path: Path = PROJECT_ROOT / "params" / f"{paper}.yaml"
        fitting = []
        for size in args.sizes:
            params = load_params(path, overrides={"model.input_size": size, "model.weights": "none"})
            fit_rate, inference_rate = throughput(params, args.batches)
            hours = projected_hours(params, fit_rate, inference_rate)
            print(
                f"{paper:<9} {size:>5} {fit_rate:>12.1f} {inference_rate:>18.1f} "
                f"{3600 * hours / params.train.epochs:>8.0f} {hours:>6.2f}",
                flush=True,
            )
            if hours <= args.budget_hours:
                fitting.append(size)
        print(f"{paper}: largest size within {args.budget_hours} h: {max(fitting) if fitting else 'none of these'}")


if __name__ == "__main__":
    main()
