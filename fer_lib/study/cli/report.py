"""``python -m fer_lib report``: run every study notebook and write an HTML report."""

from __future__ import annotations

import argparse

from fer_lib.study.cli.common import folder_name, print_report_location


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``report`` command."""
    parser = subparsers.add_parser(
        "report",
        help="run all notebooks (papermill) into a new reports/ folder with HTML pages",
        description="Execute the study notebooks (notebooks/01-05) in order with the given params into a new folder "
        "REPORTS_ROOT/<params name>-<time>/ and write index.html, which links every "
        "notebook page and figure. Existing reports are never overwritten.",
    )
    parser.add_argument("--params", required=True, metavar="P", help="params YAML file, e.g. params/default.yaml")
    parser.add_argument(
        "--out", metavar="REPORTS_ROOT", default=None, help="folder that receives the report folder (default: reports/)"
    )
    parser.add_argument(
        "--data",
        metavar="DIR",
        default=None,
        help="FER-2013 folder or fer2013.csv (overrides the params file; implies FER-2013)",
    )
    parser.add_argument(
        "--model", metavar="M", default=None, help="evaluate this .keras model instead of the one trained in the report"
    )
    parser.add_argument(
        "--train-run",
        metavar="DIR",
        default=None,
        help="report on this finished training run (e.g. trained on a GPU) instead of training",
    )
    parser.add_argument(
        "--name",
        metavar="NAME",
        type=folder_name,
        default=None,
        help="the report folder's exact name, e.g. fer2013-cpu_best (default: <params name>-<time>); "
        "an existing folder is refused",
    )
    parser.set_defaults(handler=handle, check=check)


def check(args: argparse.Namespace) -> None:
    """Check the params file, the data location, the model and the training run before Keras is imported."""
    from fer_lib.study.report import check_report

    check_report(args.params, data_dir=args.data, model_path=args.model, train_run=args.train_run)


def handle(args: argparse.Namespace) -> int:
    """Run the report; print the path of its index.html (also when a notebook fails)."""
    from fer_lib.paths import REPORTS_DIR
    from fer_lib.study.report import run_report

    return print_report_location(
        lambda: run_report(
            args.params,
            reports_root=args.out or REPORTS_DIR,
            data_dir=args.data,
            model_path=args.model,
            train_run=args.train_run,
            name=args.name,
        )
    )
