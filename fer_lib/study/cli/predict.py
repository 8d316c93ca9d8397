"""``python -m fer_lib predict``: the emotion of every face in photos (files or folders)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from fer_lib.errors import MediaError
from fer_lib.labels import EMOTIONS
from fer_lib.params import TTA_MODES
from fer_lib.study.cli.common import add_detector_arguments, add_model_arguments, faces_params_from_args


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``predict`` command."""
    parser = subparsers.add_parser(
        "predict",
        help="find faces in photos and classify their emotion",
        description="For each image (folders are searched recursively): every face's box (x, y, w, h in "
        "pixels), its 7 emotion probabilities and label. Files that are not images are "
        "reported on stderr and skipped. Photos with a label (a labels.csv with columns file, "
        "label beside them, or a folder named after an emotion) are scored at the end: "
        "detection rate, accuracy and macro-F1 of the largest face, and a confusion matrix.",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="image files or folders")
    add_model_arguments(parser)
    add_detector_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of text")
    parser.add_argument(
        "--annotate",
        metavar="OUTDIR",
        help="write copies with boxes and labels here (existing files are never overwritten)",
    )
    parser.add_argument("--largest", action="store_true", help="only the largest face of each image")
    parser.add_argument(
        "--tta",
        choices=TTA_MODES,
        default="none",
        help="test-time augmentation of each face: none (default), flip (the face and its mirror averaged, "
        "2x the time) or tencrop (five crops and their mirrors, 10x)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Classify the faces of every image; print text or JSON; 0 if at least one image was read."""
    from fer_lib.classifiers import load_classifier
    from fer_lib.faces import analyse_photos, annotate, find_photos, make_detector, write_image
    from fer_lib.photo_check import photo_labels

    classifier = load_classifier(args.model, num_threads=args.threads)
    params = faces_params_from_args(args)
    out_dir = Path(args.annotate) if args.annotate else None
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
    skipped: list[str] = []

    def skip(error: MediaError) -> None:
        print(f"warning: skipped {error}", file=sys.stderr)
        skipped.append(str(error))

    records: list[dict[str, Any]] = []
    paths = find_photos(args.paths)
    labels = photo_labels(paths)
    found: dict[Path, list[Any]] = {}
    for photo in analyse_photos(
        paths,
        make_detector(params),
        classifier,
        margin=params.margin,
        largest_only=args.largest,
        tta=args.tta,
        on_error=skip,
    ):
        if photo.path in labels:
            found[photo.path] = photo.faces
        record = photo.to_dict()
        if photo.path in labels:
            record["label"] = labels[photo.path]
        if out_dir is not None:
            annotated = write_image(out_dir / f"{photo.path.stem}_annotated.jpg", annotate(photo.image, photo.faces))
            record["annotated"] = str(annotated)
        records.append(record)
        if not args.json:
            print(format_record(record))
    if not records:
        raise MediaError(
            f"{args.paths[0]}: no image could be read from {', '.join(args.paths)} ({len(skipped)} file(s) skipped)"
        )
    scores = labelled_summary(found, labels) if found else None
    if args.json:
        print(
            json.dumps(
                {
                    "model": str(args.model or "shipped"),
                    "detector": args.detector,
                    "tta": args.tta,
                    "images": records,
                    "skipped": skipped,
                    **({"labelled": scores} if scores else {}),
                },
                indent=2,
            )
        )
    elif scores:
        print(format_scores(scores))
    return 0


def labelled_summary(found: dict[Path, list[Any]], labels: dict[Path, str]) -> dict[str, Any]:
    """Metrics and confusion matrix (rows true, columns predicted, :data:`EMOTIONS` order) of the
    labelled photos (``found``: photo -> its faces)."""
    from fer_lib.photo_check import labelled_confusion, labelled_metrics, labelled_table

    table = labelled_table(found, labels)
    return {**labelled_metrics(table), "confusion": labelled_confusion(table).tolist()}


def format_scores(scores: dict[str, Any]) -> str:
    """Return the text block that scores the labelled photos."""
    lines = [
        f"labelled photos: {scores['photos']}, a face found in {scores['detected']} "
        f"({scores['detection_rate']:.1%}); main face vs label: accuracy {scores['accuracy']:.1%}, "
        f"macro-F1 {scores['macro_f1']:.3f} (counting missed faces as wrong: {scores['accuracy_all']:.1%}, "
        f"{scores['macro_f1_all']:.3f})",
        "confusion matrix (rows true, columns predicted): " + " ".join(name[:4] for name in EMOTIONS),
    ]
    for name, row in zip(EMOTIONS, scores["confusion"], strict=True):
        if any(row):
            lines.append(f"  {name:>8} " + " ".join(f"{count:4d}" for count in row))
    return "\n".join(lines)


def format_record(record: dict[str, Any]) -> str:
    """Return a human-readable block for one image: a header line and one line per face."""
    count = len(record["faces"])
    lines = [f"{record['path']}: {count} face{'' if count == 1 else 's'} ({record['width']}x{record['height']})"]
    for number, face in enumerate(record["faces"], start=1):
        box = face["box"]
        probabilities = " ".join(f"{name} {face['probabilities'][name]:.2f}" for name in EMOTIONS)
        lines.append(
            f"  face {number} at x={box['x']} y={box['y']} w={box['w']} h={box['h']}: "
            f"{face['label']} ({face['score']:.2f})  [{probabilities}]"
        )
    if "annotated" in record:
        lines.append(f"  annotated copy: {record['annotated']}")
    return "\n".join(lines)
