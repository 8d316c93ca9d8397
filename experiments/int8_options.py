"""Which quantized TFLite file to ship: parity, size and latency of each way to quantize a model.

Exports the model (default: the shipped one) as float32 and in each quantized kind of
:func:`fer_lib.study.export.export_tflite`, calibrating on Training faces in the model's own preprocessing
(the raw 48x48 faces: the resize and scaling are inside the model), and prints per file its top-1
agreement with the Keras model and accuracy on the evaluated split (default PublicTest), its size, and
its batch-1 latency on one TFLite thread as a ratio to the float file measured in the same run.

    python experiments/int8_options.py --data "$FER2013_DIR" [--model M] [--out reports/export]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from fer_lib.classifiers import TFLiteClassifier
from fer_lib.data import load_fer2013, stratified_subset
from fer_lib.model import load_model
from fer_lib.params import load_params
from fer_lib.paths import PROJECT_ROOT, SHIPPED_MODEL
from fer_lib.study.export import export_tflite, tflite_parity
from fer_lib.study.runs import data_label, portable_path, write_manifest

OPTIONS: dict[str, dict] = {
    "float32": {"quantize": "none"},
    "int8, 500 calibration faces": {"quantize": "int8", "calibration_faces": 500},
    "int8, 2000 calibration faces": {"quantize": "int8", "calibration_faces": 2000},
    "dynamic range (int8 weights)": {"quantize": "dynamic"},
    "int16 activations, int8 weights": {"quantize": "int16x8", "calibration_faces": 500},
}
"""The files compared: name -> :func:`export_tflite` keywords."""


def latency_ms(path: Path, face: np.ndarray, *, repeats: int = 300) -> float:
    """Median milliseconds of one batch-1 call on one TFLite thread."""
    classifier = TFLiteClassifier(path, num_threads=1)
    inputs = face[None, ..., None].astype(np.float32)
    for _ in range(20):
        classifier._run(inputs)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        classifier._run(inputs)
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="FER-2013 folder or csv")
    parser.add_argument("--model", default=str(SHIPPED_MODEL))
    parser.add_argument("--split", default="PublicTest")
    parser.add_argument("--out", default="reports/export")
    args = parser.parse_args()
    model = load_model(args.model)
    dataset = load_fer2013(args.data)
    evaluated = dataset.split(args.split)
    calibration = stratified_subset(dataset.split("Training"), 2000, 1337).faces
    out, files = Path(args.out), Path(tempfile.mkdtemp(prefix="int8-options-"))  # the .tflite files: not committed
    rows = {}
    for name, options in OPTIONS.items():
        path = files / f"{Path(args.model).stem}_{options['quantize']}{options.get('calibration_faces', '')}.tflite"
        start = time.perf_counter()
        export_tflite(model, path, representative_faces=calibration, **options)
        rows[name] = {
            **options,
            "file": path.name,
            "bytes": path.stat().st_size,
            "export_seconds": round(time.perf_counter() - start, 1),
            **tflite_parity(model, path, evaluated.faces, evaluated.labels),
        }
        print(name, json.dumps(rows[name]), flush=True)
    # Latency last, all files in one loop, each measured twice in alternation: ratios to float32 in one run.
    for _ in range(2):
        for row in rows.values():
            row.setdefault("latency_ms", []).append(latency_ms(files / row["file"], evaluated.faces[0]))
    for row in rows.values():
        row["latency_ms"] = float(np.median(row["latency_ms"]))
        row["latency_vs_float32"] = row["latency_ms"] / rows["float32"]["latency_ms"]
    record = {"model": portable_path(Path(args.model)), "split": args.split, "calibration": "Training", "files": rows}
    out.mkdir(parents=True, exist_ok=True)
    (out / "int8_options.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    experiment = {"script": "experiments/int8_options.py", "data": data_label(args.data), "split": args.split}
    write_manifest(out, load_params(PROJECT_ROOT / "params" / "cpu_best.yaml"), extra={"experiment": experiment})
    shutil.rmtree(files)
    print(f"{'file':<34} {'agreement':>9} {'accuracy':>8} {'MB':>6} {'ms':>6} {'x float':>7}")
    for name, row in rows.items():
        print(
            f"{name:<34} {row['top1_agreement']:>9.2%} {row['tflite_accuracy']:>8.2%} {row['bytes'] / 1e6:>6.2f} "
            f"{row['latency_ms']:>6.2f} {row['latency_vs_float32']:>7.2f}"
        )


if __name__ == "__main__":
    main()
