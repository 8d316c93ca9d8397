"""Benchmark: faces per second of a MobileNetV2 training step, by Keras backend, input size, batch size, threads.

Usage::

    python benchmarks/bench_train.py [--backends tensorflow,jax,torch] [--sizes 48,96] [--batch-sizes 64]
                                     [--threads default,1] [--steps 12] [--rounds 2]

Each configuration trains the study's model (``fer_lib.recipe.build_model``: MobileNetV2 + GAP + Dense(7), every
layer trainable, AdamW, one optimisation step per batch of random 48x48 faces) in a fresh subprocess, because a
Keras backend is chosen once per process (env ``KERAS_BACKEND``). The first steps (tracing, compilation) are not
timed. Configurations run in alternating rounds, so a host that gets busier or quieter during the benchmark
affects all of them alike; the table gives each configuration's median over rounds and its ratio to the first
configuration (the baseline) measured in the same run. A backend that is not installed is reported, not fatal.

The input pipeline (``fer_lib.training.FaceBatches``: shuffling and host-side augmentation as in
``params/classroom.yaml``) is measured alone first: it must be far faster than any training step.

``--threads`` sets the backend's CPU threads (TensorFlow: intra-op threads via env ``TF_NUM_INTRAOP_THREADS``;
PyTorch: ``torch.set_num_threads``; JAX/XLA: ignored, marked ``n/a``); ``default`` leaves the backend's choice.
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

WORKER_FLAG = "--worker"


def measure_training(size: int, batch_size: int, steps: int, warmup_steps: int, threads: str) -> float:
    """Faces per second of full fine-tuning steps on random faces, in this process's Keras backend.

    Args:
        size: the model's input side in pixels (faces are upsampled from 48x48 inside the model).
        batch_size: faces per step.
        steps: timed steps.
        warmup_steps: untimed steps first (tracing, compilation, allocator warm-up).
        threads: ``"default"`` or a number of CPU threads for the backend.

    Returns:
        Faces per second over the timed steps.
    """
    if threads != "default" and os.environ.get("KERAS_BACKEND") == "torch":
        import torch

        torch.set_num_threads(int(threads))
    import keras

    from fer_lib.labels import FACE_SIZE, NUM_CLASSES
    from fer_lib.model import BACKBONE_NAME
    from fer_lib.params import ModelParams
    from fer_lib.training import new_model

    keras.utils.set_random_seed(0)
    model = new_model(ModelParams(input_size=size, weights="none", dropout=0.2, bn_momentum=0.99), seed=0)
    model.get_layer(BACKBONE_NAME).trainable = True
    model.compile(
        optimizer=keras.optimizers.AdamW(1e-3, weight_decay=1e-4), loss=keras.losses.SparseCategoricalCrossentropy()
    )
    rng = np.random.default_rng(0)
    faces = rng.uniform(0, 255, size=(batch_size, FACE_SIZE, FACE_SIZE, 1)).astype(np.float32)
    labels = rng.integers(0, NUM_CLASSES, size=batch_size)
    for _ in range(warmup_steps):
        model.train_on_batch(faces, labels)
    start = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(faces, labels)
    return steps * batch_size / (time.perf_counter() - start)


def measure_pipeline(batch_size: int, batches: int = 60) -> float:
    """Faces per second of ``FaceBatches`` alone (shuffle + classroom augmentation), no model.

    Args:
        batch_size: faces per batch.
        batches: batches prepared (timed).
    """
    from fer_lib.params import AugmentParams
    from fer_lib.training import FaceBatches

    augmentation = AugmentParams(flip=True, rotation_degrees=10, shift_fraction=0.1, zoom_fraction=0.1)
    rng = np.random.default_rng(0)
    count = batch_size * batches
    faces = rng.integers(0, 256, size=(count, 48, 48), dtype=np.uint8)
    loader = FaceBatches(
        faces,
        rng.integers(0, 7, size=count),
        batch_size=batch_size,
        augmentation=augmentation,
        seed=0,
        sample_weights=np.ones(count, dtype=np.float32),
        one_hot=True,
    )
    start = time.perf_counter()
    for index in range(len(loader)):
        loader[index]
    return count / (time.perf_counter() - start)


def run_worker(backend: str, size: int, batch_size: int, threads: str, steps: int, warmup_steps: int) -> float | str:
    """Run one configuration in a subprocess; return faces per second, or the reason it could not run."""
    module = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}[backend]
    if importlib.util.find_spec(module) is None:
        return f"{module} not installed"
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
    if threads != "default" and backend == "tensorflow":
        env.update(TF_NUM_INTRAOP_THREADS=threads)
    command = [
        sys.executable,
        __file__,
        WORKER_FLAG,
        backend,
        str(size),
        str(batch_size),
        threads,
        str(steps),
        str(warmup_steps),
    ]
    completed = subprocess.run(command, env=env, capture_output=True, text=True)
    lines = completed.stdout.strip().splitlines()
    if completed.returncode != 0 or not lines:
        return "failed: " + (completed.stderr.strip().splitlines() or ["no output"])[-1][:120]
    return float(json.loads(lines[-1])["faces_per_second"])


def main() -> None:
    """Parse arguments, measure the pipeline, then every configuration in alternating rounds; print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="tensorflow,jax,torch")
    parser.add_argument("--sizes", default="48,96", help="input sides in pixels, comma-separated")
    parser.add_argument("--batch-sizes", default="64")
    parser.add_argument("--threads", default="default", help="e.g. default,1,2")
    parser.add_argument("--steps", type=int, default=12, help="timed steps per configuration and round")
    parser.add_argument("--warmup-steps", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    batch_sizes = [int(value) for value in args.batch_sizes.split(",")]
    print(f"{os.cpu_count()} CPU cores; load average before: {os.getloadavg()[0]:.2f}")
    for batch_size in batch_sizes:
        print(
            f"input pipeline alone (FaceBatches, classroom augmentation, batch {batch_size}): "
            f"{measure_pipeline(batch_size):,.0f} faces/s"
        )
    configs = list(
        itertools.product(
            args.backends.split(","), [int(s) for s in args.sizes.split(",")], batch_sizes, args.threads.split(",")
        )
    )
    results: dict[tuple, list[float]] = {config: [] for config in configs}
    reasons: dict[tuple, str] = {}
    for round_index in range(args.rounds):
        for config in configs:
            if config in reasons:
                continue
            outcome = run_worker(*config, steps=args.steps, warmup_steps=args.warmup_steps)
            if isinstance(outcome, str):
                reasons[config] = outcome
            else:
                results[config].append(outcome)
            print(
                f"  round {round_index + 1}: {config}: {outcome if isinstance(outcome, str) else f'{outcome:.1f}'}",
                flush=True,
            )
    baseline = statistics.median(results[configs[0]]) if results[configs[0]] else float("nan")
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")
    print("| backend | input px | batch | threads | faces/s (median of rounds) | ratio to first row |")
    print("|---|---|---|---|---|---|")
    for config in configs:
        backend, size, batch_size, threads = config
        threads = "n/a" if backend == "jax" and threads != "default" else threads
        if config in reasons:
            print(f"| {backend} | {size} | {batch_size} | {threads} | {reasons[config]} | |")
            continue
        median = statistics.median(results[config])
        print(f"| {backend} | {size} | {batch_size} | {threads} | {median:.1f} | {median / baseline:.2f} |")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == WORKER_FLAG:
        backend, size, batch_size, threads, steps, warmup_steps = sys.argv[2:8]
        rate = measure_training(int(size), int(batch_size), int(steps), int(warmup_steps), threads)
        print(json.dumps({"backend": backend, "faces_per_second": rate}))
    else:
        main()
