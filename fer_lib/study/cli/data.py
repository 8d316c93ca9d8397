"""``python -m fer_lib data audit``: class balance, duplicates, leakage and blank faces of FER-2013."""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from fer_lib.errors import DataError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``data`` command and its ``audit`` sub-command."""
    parser = subparsers.add_parser(
        "data", help="inspect a FER-2013 folder or fer2013.csv", description="Dataset tools."
    )
    commands = parser.add_subparsers(dest="data_command", metavar="SUBCOMMAND", required=True)
    audit = commands.add_parser(
        "audit",
        help="class distribution, duplicates, cross-split leakage, label conflicts, blank faces",
        description="Audit FER-2013: faces per class and split, pixel-identical duplicates within and "
        "across splits, duplicates with conflicting labels, and near-blank faces.",
    )
    audit.add_argument("--data", help="FER-2013 image folder or fer2013.csv (default: env FER2013_DIR)")
    audit.add_argument("--cache-dir", help="dataset cache folder (default: env FER_CACHE_DIR or ~/.cache/fer-study)")
    audit.add_argument("--json", action="store_true", help="print the audit as JSON instead of tables")
    audit.set_defaults(handler=run_audit, uses_keras=False)  # no model: no 3 s Keras/TensorFlow import


def run_audit(args: argparse.Namespace) -> int:
    """Load the dataset, audit it and print tables or JSON; return 0."""
    from fer_lib.audit import audit_dataset
    from fer_lib.data import load_fer2013

    location = args.data or os.environ.get("FER2013_DIR")
    if not location:
        raise DataError(
            "no dataset given: pass --data DIR (a FER-2013 image folder or fer2013.csv) or set env FER2013_DIR"
        )
    audit = audit_dataset(load_fer2013(location, cache_dir=args.cache_dir))
    print(json.dumps(audit, indent=2) if args.json else format_audit(audit))
    return 0


def format_audit(audit: dict[str, Any]) -> str:
    """Return an audit (see :func:`fer_lib.audit.audit_dataset`) as readable plain-text tables
    (:func:`fer_lib.audit.audit_tables`, the tables notebook 1 shows)."""
    from fer_lib.audit import audit_tables

    title = f"{audit['source']}: {audit['faces']} faces" + (" (SYNTHETIC, not FER-2013)" if audit["synthetic"] else "")
    sections = [title] + [
        heading if table.empty else f"{heading}\n{table.to_string()}" for heading, table in audit_tables(audit).items()
    ]
    return "\n\n".join(sections)
