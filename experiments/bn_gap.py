"""Why paper B's recipe shows ~95% fit-time accuracy but far less in inference mode.

Trains paper B's recipe (x/255 scaling, dense 128-64-7 head, Adam 1e-3, no augmentation) and
single-factor variants of it on a stratified Training subset, then measures, for each run:

- fit-time accuracy (training mode: BatchNorm uses batch statistics) as ``model.fit`` reports it;
- inference-mode accuracy (BatchNorm moving averages) on the same Training faces and on PublicTest;
- the same inference-mode accuracies after re-estimating the BatchNorm statistics on the Training
  subset for the final weights (:func:`fer_lib.model.recalibrate_batchnorm`).

If recalibration closes most of the Training gap, the gap is stale BatchNorm statistics, not
the weights. The variants are trained and scored by :mod:`fer_lib.study.ablation` into
``runs/bn_gap/<variant>-<hash>/``, so an interrupted run resumes and finished variants are reused.
The output folder gets the tables (``.json``, ``.md``) and a ``manifest.json`` (commit, versions,
the paper B params, this script's arguments), as every committed report has.
Usage (CPU, about 10 minutes at the defaults; --input-size 224 --subset 0 on a GPU):

    python experiments/bn_gap.py --data DIR [--input-size 48] [--subset 6000] [--epochs 4] [--out reports/bn_gap]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from fer_lib.data import load_fer2013
from fer_lib.evaluation import evaluate_splits
from fer_lib.model import load_model, recalibrate_batchnorm
from fer_lib.paths import PROJECT_ROOT
from fer_lib.study.ablation import run_ablation
from fer_lib.study.runs import data_label, portable_path, write_manifest
from fer_lib.study.variants import make_ablation
from fer_lib.training import training_data

VARIANTS: dict[str, dict[str, object]] = {
    "paper_b (x/255, BN momentum 0.999, Adam 1e-3)": {},
    "BN momentum 0.9": {"model.bn_momentum": 0.9},
    "ImageNet scaling [-1,1]": {"model.scale": "imagenet"},
    "Adam 1e-4": {"train.learning_rate": 0.0001},
}
"""One factor changed at a time from paper B's recipe."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--input-size", type=int, default=48)
    parser.add_argument("--subset", type=int, default=6000, help="Training faces (0 = all)")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--out", default=str(PROJECT_ROOT / "reports" / "bn_gap"))
    args = parser.parse_args()
    ablation = make_ablation(
        PROJECT_ROOT / "params" / "paper_b.yaml",
        VARIANTS,
        overrides={
            "model.input_size": args.input_size,
            "data.train_subset": args.subset or None,
            "train.epochs": args.epochs,
            "train.train_eval_subset": None,
        },
        source=__file__,
    )
    table = run_ablation(ablation, data_dir=args.data, runs_dir=PROJECT_ROOT / "runs" / "bn_gap")
    dataset = load_fer2013(args.data)
    public = dataset.split("PublicTest")
    out = Path(args.out)
    rows = []
    for variant, scored in zip(ablation.distinct(), table.to_dict(orient="records"), strict=True):
        training = training_data(dataset, subset=variant.params.data.train_subset, seed=variant.params.seed)
        row = {
            "variant": variant.name,
            "input_size": args.input_size,
            "train_faces": len(training),
            "epochs": args.epochs,
            "fit_time_training_accuracy": scored["training_fit_time_accuracy"],
            "inference_training_accuracy": scored["training_accuracy"],
            "inference_publictest_accuracy": scored["publictest_accuracy"],
        }
        model = load_model(Path(scored["run_dir"]) / "model.keras")
        recalibrate_batchnorm(model, training.faces)
        row["recalibrated_training_accuracy"] = evaluate_splits(model, training)["Training"]["accuracy"]
        row["recalibrated_publictest_accuracy"] = evaluate_splits(model, public)["PublicTest"]["accuracy"]
        rows.append(row)
        print(json.dumps(row), flush=True)
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"bn_gap_{args.input_size}px_{args.subset or 'all'}faces_{args.epochs}epochs"
    stem.with_suffix(".json").write_text(json.dumps(rows, indent=2))
    stem.with_suffix(".md").write_text(markdown_table(rows))
    write_manifest(
        out,
        ablation.distinct()[0].params,
        extra={
            "experiment": {
                "script": "experiments/bn_gap.py",
                "data": data_label(args.data),
                "input_size": args.input_size,
                "subset": args.subset,
                "epochs": args.epochs,
                "variants": VARIANTS,
            }
        },
    )
    print(markdown_table(rows))
    print(f"wrote {portable_path(stem)}.json, .md and manifest.json (commit and versions)")


def markdown_table(rows: list[dict[str, object]]) -> str:
    """The results as a Markdown table, every accuracy labelled with its split and mode."""
    columns = {
        "variant": "variant",
        "fit_time_training_accuracy": "Training, fit-time (training mode)",
        "inference_training_accuracy": "Training, inference mode",
        "inference_publictest_accuracy": "PublicTest, inference mode",
        "recalibrated_training_accuracy": "Training, inference mode, BN recalibrated",
        "recalibrated_publictest_accuracy": "PublicTest, inference mode, BN recalibrated",
    }
    lines = ["| " + " | ".join(columns.values()) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append(
            "| " + " | ".join(str(row[key]) if key == "variant" else f"{row[key]:.1%}" for key in columns) + " |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
