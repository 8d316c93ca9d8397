"""``python -m fer_lib evaluate``: inference-mode metrics of a saved model, per split."""

from __future__ import annotations

import argparse
import json
from typing import Any

from fer_lib.errors import DataError
from fer_lib.params import TTA_MODES


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``evaluate`` command."""
    parser = subparsers.add_parser(
        "evaluate",
        help="score a saved model on each split of FER-2013",
        description="Accuracy, macro-F1, per-class precision/recall/F1 and the confusion matrix, "
        "per split present in --data, in inference mode.",
    )
    parser.add_argument("--model", required=True, help=".keras model file")
    parser.add_argument("--data", required=True, help="FER-2013 image folder or fer2013.csv")
    parser.add_argument(
        "--split",
        action="append",
        choices=["Training", "PublicTest", "PrivateTest"],
        help="only this split (repeatable; default: every split present)",
    )
    parser.add_argument(
        "--tta",
        choices=TTA_MODES,
        default="none",
        help="test-time augmentation: flip averages each face and its mirror (2x the cost), "
        "tencrop five 44 px crops and their mirrors (10x)",
    )
    parser.add_argument(
        "--exclude-cross-split-duplicates",
        action="store_true",
        help="drop held-out faces whose pixels also occur in Training",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Evaluate and print a table or JSON."""
    from fer_lib.audit import drop_cross_split_duplicates
    from fer_lib.classifiers import KerasClassifier
    from fer_lib.data import load_fer2013
    from fer_lib.evaluation import evaluate_splits
    from fer_lib.model import load_model

    model = load_model(args.model)
    KerasClassifier(model, source=args.model)  # refuses a model whose outputs are not probabilities
    dataset = load_fer2013(args.data)
    if args.exclude_cross_split_duplicates:
        dataset = drop_cross_split_duplicates(dataset)
    missing = [split for split in args.split or [] if split not in dataset.splits]
    if missing:
        raise DataError(f"{args.data}: no {', '.join(missing)} faces (present: {', '.join(dataset.splits)})")
    results = without_arrays(evaluate_splits(model, dataset, tta=args.tta, splits=args.split))
    if args.json:
        print(json.dumps({"model": str(args.model), "data": str(args.data), "splits": results}, indent=2))
        return 0
    print(f"{'split':<12} {'n':>6} {'accuracy':>9} {'macro-F1':>9}   (inference mode, tta={args.tta})")
    for split, metrics in results.items():
        averaged = metrics["macro_f1_classes"]
        note = (
            f"   macro-F1 over the {len(averaged)} classes present: {', '.join(averaged)}" if len(averaged) < 7 else ""
        )
        print(f"{split:<12} {metrics['n']:>6} {metrics['accuracy']:>9.4f} {metrics['macro_f1']:>9.4f}{note}")
    return 0


def without_arrays(results: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Drop the per-face probability arrays from :func:`evaluate_splits` output (for JSON)."""
    return {
        split: {key: value for key, value in metrics.items() if key != "probabilities"}
        for split, metrics in results.items()
    }
