"""Score saved models side by side on PublicTest: accuracy and macro-F1 without TTA and with flip TTA, and
accuracy on the faces not leaked from Training (inference mode; reports/distillation_run/ quotes it).

    python experiments/score_models.py --data "$FER2013_DIR" runs/distilled/model.keras models/fer_mobilenetv2.keras
"""

from __future__ import annotations

import argparse

from sklearn.metrics import accuracy_score, f1_score

from fer_lib.audit import cross_split_duplicate_mask
from fer_lib.classifiers import load_classifier
from fer_lib.data import load_fer2013


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="FER-2013 folder or CSV")
    parser.add_argument("models", nargs="+", help=".keras or .tflite files")
    args = parser.parse_args()
    dataset = load_fer2013(args.data)
    publictest = dataset.split("PublicTest")
    kept = ~cross_split_duplicate_mask(dataset)[dataset.usage == "PublicTest"]
    for path in args.models:
        classifier = load_classifier(path)
        for tta in ("none", "flip"):
            predicted = classifier.predict(publictest.faces, tta=tta)
            leak_free = accuracy_score(publictest.labels[kept], predicted[kept])
            print(
                f"{path}  tta={tta}  accuracy {100 * accuracy_score(publictest.labels, predicted):.2f}%"
                f"  macro-F1 {100 * f1_score(publictest.labels, predicted, average='macro'):.2f}%"
                f"  without leaked faces (n={kept.sum()}) {100 * leak_free:.2f}%",
                flush=True,
            )


if __name__ == "__main__":
    main()
