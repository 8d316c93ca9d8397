"""Where FER-2013 puts the eyes and mouth: the template faces are aligned to, and the framing spread.

Each sampled Training face (48x48) is enlarged 3x (bicubic) and padded with its own edge grey to three
times that side, so the face fills the middle of the image as in a photo; BlazeFace (short range, then
full range, as the pipeline runs it) finds its keypoints and the Haar cascade its box, both mapped back
to the 48x48 face's pixels. Prints and writes (``--out``, default ``reports/alignment/template.json``):

* the template: the median position of each eye and of the mouth centre, and the eye distance;
* the spread of FER-2013's own framing: roll (degrees, from the eye line), scale (eye distance relative
  to the median) and shift of the eye midpoint (fraction of the face side), as percentiles: the
  range that training's framing augmentation should cover;
* the Haar box on the same faces (median x, y, w, h), from which the margin that turns a Haar box into
  FER-2013's framing follows.

    python experiments/alignment_template.py --data "$FER2013_DIR" [--faces 3000]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

from fer_lib.data import load_fer2013, stratified_subset
from fer_lib.faces import BlazeFaceDetector, HaarDetector
from fer_lib.labels import FACE_SIZE
from fer_lib.params import load_params
from fer_lib.paths import PROJECT_ROOT
from fer_lib.study.runs import data_label, write_manifest

SCALE: int = 3
"""Each 48x48 face is enlarged to 144x144 before detection."""


def framed(face: np.ndarray) -> np.ndarray:
    """(432, 432) uint8: the face enlarged 3x in the middle, padded with its edge pixels."""
    big = cv2.resize(face, (FACE_SIZE * SCALE, FACE_SIZE * SCALE), interpolation=cv2.INTER_CUBIC)
    pad = FACE_SIZE * SCALE
    return cv2.copyMakeBorder(big, pad, pad, pad, pad, cv2.BORDER_REPLICATE)


def to_face_pixels(points: np.ndarray) -> np.ndarray:
    """Coordinates in the framed image -> the 48x48 face's pixels."""
    return (np.asarray(points, dtype=np.float64) - FACE_SIZE * SCALE) / SCALE


def percentiles(values: np.ndarray) -> dict[str, float]:
    """The 5th, 25th, 50th, 75th and 95th percentiles, rounded."""
    return {f"p{q}": round(float(np.percentile(values, q)), 3) for q in (5, 25, 50, 75, 95)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--faces", type=int, default=3000)
    parser.add_argument("--out", default="reports/alignment/template.json")
    args = parser.parse_args()
    faces = stratified_subset(load_fer2013(args.data).split("Training"), args.faces, 0).faces
    blazeface, haar = BlazeFaceDetector(min_size=20), HaarDetector(min_size=40)
    keypoints, haar_boxes = [], []
    for face in faces:
        image = framed(face)
        boxes, points, _ = blazeface.detect_with_keypoints(image)
        if len(boxes):
            keypoints.append(to_face_pixels(points[0]))
        found = haar.detect(image)
        if len(found):
            largest = found[np.argmax(found[:, 2] * found[:, 3])]
            haar_boxes.append([*to_face_pixels(largest[:2]), *(largest[2:] / SCALE)])
    points = np.array(keypoints)  # (N, 6, 2): right eye, left eye, nose, mouth, ears
    right, left, mouth = points[:, 0], points[:, 1], points[:, 3]
    template = {
        name: np.median(part, axis=0).round(2).tolist()
        for name, part in (("right_eye", right), ("left_eye", left), ("mouth", mouth))
    }
    eye_distance = np.linalg.norm(left - right, axis=1)
    roll = np.degrees(np.arctan2(left[:, 1] - right[:, 1], left[:, 0] - right[:, 0]))
    midpoint = (left + right) / 2
    boxes = np.array(haar_boxes)
    record = {
        "faces_sampled": len(faces),
        "faces_with_keypoints": len(points),
        "faces_with_haar_box": len(boxes),
        "template_48px": template,
        "eye_distance_px": percentiles(eye_distance),
        "framing_spread": {
            "roll_degrees": percentiles(roll),
            "scale_vs_median": percentiles(eye_distance / np.median(eye_distance)),
            "eye_midpoint_shift_x_fraction": percentiles((midpoint[:, 0] - np.median(midpoint[:, 0])) / FACE_SIZE),
            "eye_midpoint_shift_y_fraction": percentiles((midpoint[:, 1] - np.median(midpoint[:, 1])) / FACE_SIZE),
        },
        "haar_box_48px": {key: round(float(np.median(boxes[:, index])), 2) for index, key in enumerate("xywh")},
    }
    x, y, w, h = (record["haar_box_48px"][key] for key in "xywh")
    record["haar_margin_to_fer_framing"] = {
        "left": round(x / w, 3),
        "right": round((FACE_SIZE - x - w) / w, 3),
        "top": round(y / h, 3),
        "bottom": round((FACE_SIZE - y - h) / h, 3),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    experiment = {"script": "experiments/alignment_template.py", "data": data_label(args.data), "faces": args.faces}
    write_manifest(
        Path(args.out).parent, load_params(PROJECT_ROOT / "params" / "cpu_best.yaml"), extra={"experiment": experiment}
    )
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
