"""Print the README's comparison of the paper reproductions from their committed reports.

Usage: ``python experiments/paper_comparison.py reports/paper_a-112px reports/paper_b-120px``

Each folder is a report of a paper recipe (``python -m fer_lib report --params params/paper_*.yaml
--train-run ...``); its ``metrics.json`` holds notebook 3's measurements under every protocol
(``evaluation.paper``) and notebook 2's measured wall time (``training.wall_seconds``). The output
is a Markdown table (:func:`fer_lib.study.papers.comparison_markdown`) to paste into the README.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from fer_lib.study.papers import comparison_markdown


def main() -> None:
    """Read each report's metrics.json and print the Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reports", nargs="+", type=Path, help="report folders of paper recipes")
    args = parser.parse_args()
    metrics = {}
    for folder in args.reports:
        path = folder / "metrics.json"
        if not path.is_file():
            parser.error(f"{path}: not found; pass report folders made by python -m fer_lib report")
        metrics[folder.name] = json.loads(path.read_text(encoding="utf-8"))
        if "paper" not in metrics[folder.name].get("evaluation", {}):
            parser.error(f"{path}: no paper comparison (its params set no reproduces key)")
    print(comparison_markdown(metrics), end="")


if __name__ == "__main__":
    main()
