"""``python -m fer_lib ablate``: train one variant per factor of a recipe and report them side by side."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from fer_lib.errors import ParamsError
from fer_lib.paths import ReportLayout
from fer_lib.study.cli.common import folder_name, parse_overrides, positive_int, print_report_location, ray_address


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``ablate`` command."""
    parser = subparsers.add_parser(
        "ablate",
        help="ablation study: one factor changed at a time from a recipe, in a new report",
        description="Train every variant of --variants (one factor changed from the base recipe at a time) "
        "into its own folder under --runs, score each on PublicTest in inference mode (accuracy, "
        "macro-F1, without and with flip test-time augmentation) with its training seconds per "
        "epoch and inference cost, and write a new report REPORTS_ROOT/ablations-<time>/ (or --name) "
        "(notebooks/06_ablations.ipynb) with index.html. Re-running resumes an interrupted "
        "ablation; finished variants are not retrained. Existing reports are never overwritten.",
    )
    parser.add_argument("--variants", required=True, metavar="V", help="variants YAML file, e.g. params/ablations.yaml")
    parser.add_argument(
        "--params",
        metavar="P",
        default=None,
        help="base recipe, replacing the variants file's base (e.g. params/best.yaml)",
    )
    parser.add_argument(
        "--data",
        metavar="DIR",
        default=None,
        help="FER-2013 folder or fer2013.csv (default: params data.dir or env FER2013_DIR)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a parameter of every variant, e.g. --set train.epochs=3 (repeatable; "
        "wins over the variants' own overrides)",
    )
    parser.add_argument(
        "--runs", metavar="DIR", default=None, help="folder of the variants' training runs (default: runs/ablations/)"
    )
    parser.add_argument(
        "--reuse",
        action="append",
        default=[],
        metavar="CSV",
        help="an earlier report's ablation.csv: its rows stand in for variants whose runs are not under --runs "
        "(same variant name and run-folder hash: the same recipe and data); repeatable",
    )
    parser.add_argument(
        "--no-train",
        dest="train",
        action="store_false",
        help="train nothing: report the variants whose runs are finished under --runs or reused (--reuse), "
        "listing the others (an ablation so far; run again without it to train them)",
    )
    parser.add_argument(
        "--out", metavar="REPORTS_ROOT", default=None, help="folder that receives the report folder (default: reports/)"
    )
    parser.add_argument(
        "--name",
        metavar="NAME",
        type=folder_name,
        default=None,
        help="the report folder's exact name, e.g. ablations (default: ablations-<time>); "
        "an existing folder is refused",
    )
    parser.add_argument("--workers", type=positive_int, default=1, help="host threads preparing training batches")
    parser.add_argument(
        "--ray",
        action="store_true",
        help="train and score each variant as one Ray task, all at once (a local Ray, or --address); a variant "
        "that fails is reported and the others finish. Needs Ray: pip install -e '.[scale]'",
    )
    parser.add_argument(
        "--address",
        type=ray_address,
        metavar="ADDR",
        help="with --ray: join the Ray cluster at ADDR (HOST:6379) instead of a local Ray",
    )
    parser.set_defaults(handler=handle, check=check)


def check(args: argparse.Namespace) -> None:
    """Check the options, the variants file and the params of every variant before Keras is imported."""
    from fer_lib.study.variants import load_variants

    if args.address and not args.ray:
        raise ParamsError("--address: joins a Ray cluster for --ray; add --ray")
    load_variants(args.variants, overrides=parse_overrides(args.set), base=args.params)


def handle(args: argparse.Namespace) -> int:
    """Run the ablation report; print the path of its index.html (also when the notebook fails)."""
    from fer_lib.paths import REPORTS_DIR
    from fer_lib.study.report import run_ablation_report

    overrides = parse_overrides(args.set)
    reports: list[Path] = []

    def make_report() -> Path:
        reports.append(
            run_ablation_report(
                args.variants,
                args.params,
                reports_root=args.out or REPORTS_DIR,
                data_dir=args.data,
                overrides=overrides,
                runs_dir=args.runs,
                reuse=args.reuse,
                train=args.train,
                workers=args.workers,
                on_ray=args.ray,
                ray_address=args.address,
                name=args.name,
            )
        )
        return reports[0]

    code = print_report_location(make_report)
    failed = json.loads(ReportLayout(reports[0]).metrics_file("ablation").read_text(encoding="utf-8"))["failed"]
    if failed:
        print(
            f"error: {len(failed)} variant(s) failed on Ray: " + "; ".join(f"{k}: {v}" for k, v in failed.items()),
            file=sys.stderr,
        )
        return 2
    return code
