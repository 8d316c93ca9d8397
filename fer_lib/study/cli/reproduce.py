"""``python -m fer_lib reproduce``: re-train a report's training run and compare it with the committed history."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from fer_lib.study.cli.common import positive_int

if TYPE_CHECKING:
    import pandas as pd

OUTSIDE_TOLERANCE: int = 3
"""Exit code when the re-run differs from the committed history by more than the tolerance."""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``reproduce`` command."""
    parser = subparsers.add_parser(
        "reproduce",
        help="re-train a report's training run and compare it with the committed history",
        description="Train again with the params recorded in REPORT_DIR/training_manifest.json (at most --epochs "
        "epochs, with the learning-rate schedule of the whole run) into a new run folder, print the "
        "per-epoch accuracies beside REPORT_DIR/training_history.csv with a verdict: IDENTICAL, "
        "WITHIN TOLERANCE (each epoch's PublicTest accuracy within 6 points; for a whole run the "
        "kept epoch's within 1 point) or OUTSIDE TOLERANCE. Exit 0 when identical or within "
        f"tolerance, {OUTSIDE_TOLERANCE} when outside.",
    )
    parser.add_argument("report", metavar="REPORT_DIR", help="a report folder, e.g. reports/fer2013-classroom")
    parser.add_argument(
        "--epochs", type=positive_int, default=None, metavar="N", help="re-train the first N epochs only (default: all)"
    )
    parser.add_argument(
        "--data",
        metavar="DIR",
        default=None,
        help="FER-2013 folder or fer2013.csv (default: params data.dir or env FER2013_DIR)",
    )
    parser.add_argument(
        "--out", metavar="RUN_DIR", default=None, help="the new run folder (default: runs/reproduce-<report>-<time>)"
    )
    parser.add_argument("--workers", type=positive_int, default=1, help="host threads preparing batches")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    """Re-train, print the setups, the table and the verdict; return 0 or :data:`OUTSIDE_TOLERANCE`."""
    from fer_lib.errors import RunExistsError
    from fer_lib.study.reproduce import compare_histories, describe_setup, reproduce_report
    from fer_lib.study.runs import portable_path

    if args.out and Path(args.out).exists():
        raise RunExistsError(f"{args.out}: exists; reproduce never reuses a folder, choose a new one")
    recorded, history, run_dir = reproduce_report(
        args.report,
        epochs=args.epochs,
        data_dir=args.data,
        run_dir=args.out,
        workers=args.workers,
        verbose=1 if sys.stdout.isatty() else 2,
    )
    comparison = compare_histories(recorded.history, history, select=recorded.params.train.select)
    manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    print(f"\ncommitted run ({portable_path(recorded.report_dir)}): {describe_setup(recorded.manifest)}")
    print(f"this run ({portable_path(run_dir)}): {describe_setup(manifest)}")
    for note in recorded.notes:
        print(f"note: {note}")
    print(
        "accuracy per epoch, % (PublicTest and Training in inference mode, fit-time in training mode); "
        "diff in percentage points:"
    )
    print(side_by_side(comparison.table).to_string())
    print(f"verdict: {comparison.verdict}")
    return 0 if comparison.within_tolerance else OUTSIDE_TOLERANCE


def side_by_side(table: pd.DataFrame) -> pd.DataFrame:
    """The comparison table for printing: one row per epoch, two header rows (metric; committed,
    reproduced, diff), accuracies in % and differences in signed percentage points."""
    import pandas as pd

    shown = table.set_index("epoch")
    shown = shown.apply(
        lambda column: column.map(
            (lambda value: f"{value:+.2f}") if column.name.endswith("(pp)") else (lambda value: f"{100 * value:.2f}")
        )
    )
    shown.columns = pd.MultiIndex.from_tuples([tuple(column.split(" ", 1)) for column in shown.columns])
    return shown
