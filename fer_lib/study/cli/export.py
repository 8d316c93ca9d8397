"""``python -m fer_lib export``: float and int8 TFLite files of a Keras classifier, with a parity check.

The int8 file for phones is ``<model>_int8.tflite``: int8 weights with float activations (dynamic range),
which agrees with the float model on 98.2% of the shipped model's PublicTest answers at 0.17 points of
accuracy less; ``<model>_int8_full.tflite`` (int8 weights and activations, for integer-only accelerators)
agrees on only about 90.5% (``experiments/int8_options.py`` compares every kind)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from fer_lib.errors import DataError
from fer_lib.labels import SPLITS

CALIBRATION_SEED: int = 0
"""Seed of the stratified draw of Training faces that calibrates int8 activations."""

EXPORTS: dict[str, str] = {"float": "none", "int8": "dynamic", "int8_full": "int8"}
"""The files written: name (``<model>_<name>.tflite``, key of parity.json) ->
:func:`fer_lib.study.export.export_tflite`'s
``quantize``."""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``export`` command."""
    parser = subparsers.add_parser(
        "export",
        help="write float and int8 TFLite files of a model and check they agree with it",
        description="Writes <model>_float.tflite, <model>_int8.tflite (int8 weights, float activations: the "
        "mobile file), <model>_int8_full.tflite (int8 weights and activations calibrated on Training faces) "
        "and parity.json (top-1 agreement, accuracies, probability differences on --split) "
        "into --out. Without --data the embedded SYNTHETIC faces are used, so accuracies "
        "mean nothing; pass FER-2013 for real figures. Existing files are never overwritten.",
    )
    parser.add_argument("--model", help=".keras model (default: models/fer_mobilenetv2.keras)")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder")
    parser.add_argument("--data", help="FER-2013 image folder or fer2013.csv (default: synthetic faces)")
    parser.add_argument("--split", choices=SPLITS, default="PublicTest", help="parity split (default: PublicTest)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Export both files, measure parity on the split, write and print parity.json."""
    from fer_lib.classifiers import KerasClassifier
    from fer_lib.data import load_fer2013, stratified_subset
    from fer_lib.faces import unused_path
    from fer_lib.model import load_model
    from fer_lib.params import DataParams
    from fer_lib.paths import SHIPPED_MODEL
    from fer_lib.study.export import CALIBRATION_FACES, export_tflite, tflite_parity
    from fer_lib.study.runs import data_label, git_commit, git_dirty, portable_path

    model_path = Path(args.model) if args.model else SHIPPED_MODEL
    model = load_model(model_path)
    KerasClassifier(model, source=model_path)  # refuses a model whose outputs are not probabilities
    if args.data:
        dataset = load_fer2013(args.data)
    else:
        from fer_lib.synthetic import make_synthetic_dataset

        dataset = make_synthetic_dataset(DataParams().synthetic_per_class, CALIBRATION_SEED)
    evaluated = dataset.split(args.split)
    if len(evaluated) == 0:
        raise DataError(f"{dataset.source}: no {args.split} faces (present: {', '.join(dataset.splits)})")
    training = dataset.split("Training")
    calibration = stratified_subset(training, CALIBRATION_FACES, CALIBRATION_SEED) if len(training) else evaluated
    out_dir = Path(args.out)
    report = {
        "model": portable_path(model_path),
        "faces_source": data_label(args.data) if args.data else dataset.source,
        "split": args.split,
        "calibration_split": "Training" if len(training) else args.split,
        "git": {"commit": git_commit(), "dirty": git_dirty()},
        "files": {},
    }
    for name, quantize in EXPORTS.items():
        path = export_tflite(
            model,
            unused_path(out_dir / f"{model_path.stem}_{name}.tflite"),
            quantize=quantize,
            representative_faces=calibration.faces,
        )
        report["files"][name] = {
            "path": path.name,
            "bytes": path.stat().st_size,  # beside parity.json
            **tflite_parity(model, path, evaluated.faces, evaluated.labels),
        }
    parity_path = unused_path(out_dir / "parity.json")
    parity_path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(report, indent=2))
    print(f"parity written to {parity_path}")
    return 0
