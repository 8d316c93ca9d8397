"""``python -m fer_lib summary``: the model a params file builds, layer by layer, with its parameter counts."""

from __future__ import annotations

import argparse

from fer_lib.study.cli.common import parse_overrides


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``summary`` command."""
    parser = subparsers.add_parser(
        "summary",
        help="print the model a params file builds and its parameter counts",
        description="Builds the model of --params (untrained head; backbone weights as model.weights says, "
        "found as docs/usage.md says; --set model.weights=none needs none) and prints Keras' summary and the "
        "total / trainable / non-trainable parameter counts as built, every layer trainable (fine_tune freezes "
        "the backbone for a staged run's warm-up; paper B: 2,430,663 / 2,396,551 / 34,112).",
    )
    parser.add_argument("--params", required=True, help="params YAML file, e.g. params/paper_b.yaml")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a parameter, e.g. --set model.input_size=96 (repeatable)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Build the model, print the summary and the counts."""
    from fer_lib.model import parameter_counts
    from fer_lib.params import load_params
    from fer_lib.training import new_model

    params = load_params(args.params, overrides=parse_overrides(args.set))
    model = new_model(params.model, seed=params.seed)
    model.summary()
    counts = parameter_counts(model)
    print(
        f"{params.name}: {counts['total']:,} parameters, {counts['trainable']:,} trainable, "
        f"{counts['non_trainable']:,} non-trainable, "
        f"input size {params.model.input_size} px"
    )
    return 0
