"""Why paper B's recipe shows ~95% fit-time accuracy but far less in inference mode.

Trains paper B's recipe (x/255 scaling, dense 128-64-7 head, Adam 1e-3, no augmentation) and
single-factor variants of it on a stratified Training subset, then measures, for each run:

- fit-time accuracy (training mode: BatchNorm uses batch statistics) as ``model.fit`` reports it;
- inference-mode accuracy (BatchNorm moving averages) on the same Training faces and on PublicTest;
- the same inference-mode accuracies after re-estimating the BatchNorm statistics on the Training
  subset for the final weights (:func:`fer_lib.model.recalibrate_batchnorm`).

If recalibration closes most of the Training gap, the gap is stale BatchNorm statistics, not
the weights. Usage (CPU, about 10 minutes at the defaults; --input-size 224 --subset 0 on a GPU):

    python experiments/bn_gap.py --data DIR [--input-size 48] [--subset 6000] [--epochs 4] [--out reports/bn_gap]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from sklearn.metrics import accuracy_score

from fer_lib.data import load_fer2013, stratified_subset
from fer_lib.evaluation import predict_proba
from fer_lib.model import recalibrate_batchnorm
from fer_lib.params import PROJECT_ROOT, load_params
from fer_lib.runs import new_run_dir
from fer_lib.training import train

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
    dataset = load_fer2013(args.data)
    out = Path(args.out)
    runs_root = new_run_dir(PROJECT_ROOT / "runs", "bn_gap")
    rows = []
    for name, overrides in VARIANTS.items():
        params = load_params(PROJECT_ROOT / "params" / "paper_b.yaml", {
            "model.input_size": args.input_size, "data.train_subset": args.subset or None,
            "train.epochs": args.epochs, "train.train_eval_subset": None, **overrides})
        result = train(params, dataset, runs_root / f"variant_{len(rows)}", verbose=2)
        training = dataset.split("Training")
        if params.data.train_subset:
            training = stratified_subset(training, params.data.train_subset, params.seed)
        public = dataset.split("PublicTest")
        last = result.history.iloc[-1]
        row = {"variant": name, "input_size": args.input_size, "train_faces": len(training), "epochs": args.epochs,
               "fit_time_training_accuracy": float(last["fit_accuracy"]),
               "inference_training_accuracy": float(last["train_accuracy"]),
               "inference_publictest_accuracy": float(last["val_accuracy"])}
        recalibrate_batchnorm(result.model, training.faces)
        row["recalibrated_training_accuracy"] = accuracy(result.model, training)
        row["recalibrated_publictest_accuracy"] = accuracy(result.model, public)
        rows.append(row)
        print(json.dumps(row), flush=True)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"bn_gap_{args.input_size}px.json").write_text(json.dumps(rows, indent=2))
    print(f"wrote {out / f'bn_gap_{args.input_size}px.json'}")


def accuracy(model, dataset) -> float:
    """Inference-mode accuracy of ``model`` on ``dataset`` (scikit-learn)."""
    return float(accuracy_score(dataset.labels, predict_proba(model, dataset.faces).argmax(axis=1)))


if __name__ == "__main__":
    main()
