"""``python -m fer_lib train``: fine-tune per a params file; resumes an interrupted run."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fer_lib.errors import RunExistsError
from fer_lib.study.cli.common import parse_overrides


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``train`` command."""
    parser = subparsers.add_parser(
        "train",
        help="fine-tune MobileNetV2 per a params file",
        description="Train on the Training split, scoring PublicTest in inference mode each epoch. "
        "Re-running with the same --out resumes an interrupted run; a finished run is never overwritten.",
    )
    parser.add_argument("--params", required=True, help="params YAML file, e.g. params/classroom.yaml")
    parser.add_argument(
        "--data", help="FER-2013 image folder or fer2013.csv (default: params data.dir or env FER2013_DIR)"
    )
    parser.add_argument("--out", help="run folder (default: runs/<params name>-<timestamp>)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a parameter, e.g. --set train.epochs=2 (repeatable)",
    )
    parser.add_argument("--workers", type=int, default=1, help="host threads preparing batches")
    parser.set_defaults(handler=run, check=check)


def check(args: argparse.Namespace) -> None:
    """Check the params file, its overrides, the data location and the output folder before Keras is
    imported; keep the params as ``args.loaded_params``."""
    from fer_lib.params import load_params, resolve_data_dir

    args.loaded_params = load_params(args.params, overrides=parse_overrides(args.set))
    resolve_data_dir(args.loaded_params, override=args.data, origin=args.params)
    if args.out and Path(args.out).exists() and not Path(args.out).is_dir():
        raise RunExistsError(f"{args.out}: exists and is not a folder; choose a new output folder")


def run(args: argparse.Namespace) -> int:
    """Load the data, train, and print where the model went.

    Everything a user can get wrong (params, data location, output folder: :func:`check`; the
    weights file) is checked before a run folder is created, so a failed start leaves nothing behind.
    """
    from fer_lib.data import load_dataset
    from fer_lib.paths import PROJECT_ROOT, RunLayout
    from fer_lib.study.runs import new_run_dir
    from fer_lib.study.training_run import train
    from fer_lib.weights import resolve_weights

    params = args.loaded_params
    if not (args.out and RunLayout(args.out).state.is_file()):  # a resumed run starts from its checkpoint
        resolve_weights(params.model.weights, alpha=params.model.alpha)
    dataset = load_dataset(params, data_override=args.data)
    run_dir = Path(args.out) if args.out else new_run_dir(PROJECT_ROOT / "runs", params.name)
    result = train(params, dataset, run_dir, verbose=1 if sys.stdout.isatty() else 2, workers=args.workers)
    last = result.history.iloc[-1]
    print(f"model: {result.model_path}")
    print(
        f"final epoch {int(last['epoch'])}: fit-time (training mode) accuracy {last['fit_accuracy']:.4f}; "
        f"inference mode: Training {last['train_accuracy']:.4f}, "
        f"PublicTest {last.get('val_accuracy', float('nan')):.4f}"
    )
    if result.averaged_epochs:
        print(
            f"the model holds the mean of epochs {result.averaged_epochs[0]}-{result.averaged_epochs[-1]}'s weights "
            "(train.select: average)"
        )
    elif result.kept_epoch != int(last["epoch"]):
        print(f"the model holds epoch {result.kept_epoch}'s weights (train.select: best_val)")
    return 0
