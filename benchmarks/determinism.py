"""Which settings keep training bit-identical: the same tiny run under different thread settings.

Usage: ``python benchmarks/determinism.py [--epochs 2] [--per-class 20] [--input-size 48]``.
Trains one small synthetic run (MobileNetV2 at ``--input-size`` px, random initialisation, the
``params/classroom.yaml`` optimiser and augmentation) with ``python -m fer_lib train`` in a fresh
process per setting, and prints, for each setting, whether its history equals the first run's to
the last bit and the largest PublicTest-accuracy difference. Settings: the same environment twice,
TensorFlow intra/inter-op threads 1/1 and 2/2, and oneDNN off (``TF_ENABLE_ONEDNN_OPTS=0``).
Runs are written to a temporary folder and deleted.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
import yaml

from fer_lib.paths import PROJECT_ROOT
from fer_lib.study.reproduce import METRIC_COLUMNS

SETTINGS: dict[str, dict[str, str]] = {
    "default (reference)": {},
    "default again": {},
    "intra/inter 1/1": {"TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1"},
    "intra/inter 2/2": {"TF_NUM_INTRAOP_THREADS": "2", "TF_NUM_INTEROP_THREADS": "2"},
    "oneDNN off": {"TF_ENABLE_ONEDNN_OPTS": "0"},
}
"""Setting name -> environment variables added for that run."""


def tiny_params(epochs: int, per_class: int, input_size: int) -> dict:
    """A small synthetic recipe shaped like params/classroom.yaml (staged fine-tuning, AdamW, cosine)."""
    return {
        "name": "determinism",
        "seed": 3,
        "data": {"source": "synthetic", "synthetic_per_class": per_class},
        "model": {"input_size": input_size, "weights": "none", "dropout": 0.2, "freeze": "staged", "bn_momentum": 0.99},
        "train": {
            "epochs": epochs,
            "warmup_epochs": 1,
            "batch_size": 32,
            "optimizer": "adamw",
            "weight_decay": 1e-4,
            "schedule": "cosine",
            "label_smoothing": 0.1,
            "augment": {"flip": True, "rotation_degrees": 10, "shift_fraction": 0.1, "zoom_fraction": 0.1},
            "train_eval_subset": None,
        },
    }


def run(params: Path, out: Path, variables: dict[str, str]) -> pd.DataFrame:
    """Train in a fresh process with ``variables`` set; return the history."""
    environment = {**os.environ, **variables, "PYTHONPATH": str(PROJECT_ROOT)}
    subprocess.run(
        [sys.executable, "-m", "fer_lib", "train", "--params", str(params), "--out", str(out)],
        check=True,
        capture_output=True,
        env=environment,
    )
    return pd.read_csv(out / "history.csv")


def main() -> None:
    """Train once per setting and print how each history compares with the reference."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--per-class", type=int, default=20, help="synthetic Training faces per class")
    parser.add_argument("--input-size", type=int, default=48)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        params = Path(folder) / "params.yaml"
        params.write_text(yaml.safe_dump(tiny_params(args.epochs, args.per_class, args.input_size)))
        histories = {
            name: run(params, Path(folder) / f"run{index}", variables)
            for index, (name, variables) in enumerate(SETTINGS.items())
        }
    reference = histories["default (reference)"][list(METRIC_COLUMNS)]
    print(
        f"{args.epochs} epochs, {args.per_class * 7} synthetic Training faces, {args.input_size} px, "
        f"{os.cpu_count()} CPUs"
    )
    for name, history in histories.items():
        metrics = history[list(METRIC_COLUMNS)]
        identical = metrics.equals(reference)
        largest = 100 * (metrics["val_accuracy"] - reference["val_accuracy"]).abs().max()
        losses = (metrics["fit_loss"] - reference["fit_loss"]).abs().max()
        print(
            f"{name:22s} bit-identical: {str(identical):5s}  largest PublicTest diff {largest:.2f} pp, "
            f"fit-loss diff {losses:.2e}"
        )


if __name__ == "__main__":
    main()
