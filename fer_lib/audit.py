"""Dataset audit: class balance, exact duplicates, leakage between splits and near-blank faces.

FER-2013 was gathered by web image search, and the same face (identical pixels) occurs more than
once: inside a split, across splits (a held-out face that is also a Training face inflates test
accuracy), sometimes with different labels. Some faces are blank or nearly so. :func:`audit_dataset`
measures all of this; :func:`cross_split_duplicate_mask` marks the leaked held-out faces so they
can be excluded (notebook 3 and ``evaluate --exclude-cross-split-duplicates``).

Faces are compared by a hash of their 2304 pixel bytes, so only exact duplicates are found
(not crops, shifts or re-encodings of the same photo).
"""

from __future__ import annotations

import hashlib
from typing import Any

import cv2
import numpy as np
import pandas as pd

from fer_lib.dataset import FaceDataset
from fer_lib.labels import EMOTIONS

NEAR_BLANK_STD: float = 2.0
"""A face whose pixel standard deviation is below this many grey levels is near-blank (no visible
face: a uniform or almost uniform square). A constant face has standard deviation 0."""

EXAMPLES: int = 5
"""How many examples (ids, or groups of ids) each finding lists."""


def pixel_hashes(faces: np.ndarray) -> np.ndarray:
    """Return one digest per face; two faces get the same digest exactly when their pixels are equal.

    Args:
        faces: uint8 array (N, 48, 48).

    Returns:
        str array (N,) of 32 hex digits (BLAKE2b, 16 bytes, of the face's pixel bytes).
    """
    rows = np.ascontiguousarray(faces).reshape(len(faces), -1)
    return np.array([hashlib.blake2b(row.tobytes(), digest_size=16).hexdigest() for row in rows], dtype=str)


def cross_split_duplicate_mask(dataset: FaceDataset) -> np.ndarray:
    """Return a bool array (N,), True for each held-out face whose pixels also occur in Training.

    Training faces are always False; so is everything when the dataset has no Training split.
    """
    return _in_training(pixel_hashes(dataset.faces), dataset.usage)


def drop_cross_split_duplicates(dataset: FaceDataset) -> FaceDataset:
    """Return the dataset without held-out faces whose pixels also occur in Training.

    See :func:`cross_split_duplicate_mask`; Training itself is kept whole.
    """
    return dataset.select(~cross_split_duplicate_mask(dataset))


def audit_dataset(dataset: FaceDataset) -> dict[str, Any]:
    """Audit a dataset; the result is plain JSON-serialisable data.

    Returns:
        A dict with keys

        * ``source``, ``synthetic``, ``faces`` (total count), ``near_blank_std`` (the threshold);
        * ``class_distribution``: per split present, ``total``, and ``counts`` and ``percent`` (of
          the split) per emotion in canonical label order;
        * ``duplicates_within_splits``: per split, pixel-identical ``groups`` (2 or more faces),
          the ``faces`` in them, ``extra_copies`` (faces minus groups) and ``examples`` (groups
          of ``"id (emotion)"``);
        * ``duplicates_across_splits``: ``held_out_in_training`` (held-out faces whose pixels occur
          in Training: what :func:`cross_split_duplicate_mask` marks) and ``pairs``: per held-out
          split and earlier reference split, the ``faces`` of the held-out split whose pixels occur
          in the reference split, their ``percent`` of the held-out split and ``examples`` (pairs
          of ``"id (emotion)"``);
        * ``label_conflicts``: duplicate groups whose faces carry different labels, ``within``
          each split and ``across`` splits (groups spanning two or more splits), each with
          ``groups``, ``faces``, ``extra_copies`` and ``examples``;
        * ``near_blank``: per split, ``near_blank`` (pixel std below :data:`NEAR_BLANK_STD`),
          ``constant`` (all pixels equal) and ``examples`` (ids).
    """
    table = pd.DataFrame(
        {
            "hash": pixel_hashes(dataset.faces),
            "label": dataset.labels,
            "usage": dataset.usage,
            "id": dataset.ids,
        }
    )
    table["member"] = table.id + " (" + table.label.map(dict(enumerate(EMOTIONS))) + ")"
    splits = dataset.splits
    by_split = {split: table[table.usage == split] for split in splits}
    groups_within = {split: _duplicate_groups(part) for split, part in by_split.items()}
    groups_all = _duplicate_groups(table)
    return {
        "source": dataset.source,
        "synthetic": dataset.synthetic,
        "faces": len(dataset),
        "near_blank_std": NEAR_BLANK_STD,
        "class_distribution": {split: _class_distribution(dataset.split(split).class_counts()) for split in splits},
        "duplicates_within_splits": {split: _summarise(groups) for split, groups in groups_within.items()},
        "duplicates_across_splits": {
            "held_out_in_training": int(_in_training(table.hash.to_numpy(), dataset.usage).sum()),
            "pairs": {
                held: {reference: _overlap(by_split[held], by_split[reference]) for reference in splits[:index]}
                for index, held in enumerate(splits)
                if index > 0
            },
        },
        "label_conflicts": {
            "within": {split: _summarise(_conflicting(groups)) for split, groups in groups_within.items()},
            "across": _summarise(_conflicting(groups_all[groups_all.splits > 1])),
        },
        "near_blank": {split: _near_blank(dataset.split(split)) for split in splits},
    }


def distribution_table(audit: dict[str, Any]) -> pd.DataFrame:
    """Return the class distribution of an audit as a table: one row per split, one column per emotion.

    Cells are ``"count (percent%)"``; a last column gives the split's total.
    """
    rows = {
        split: {
            **{emotion: f"{entry['counts'][emotion]} ({entry['percent'][emotion]:.1f}%)" for emotion in EMOTIONS},
            "total": entry["total"],
        }
        for split, entry in audit["class_distribution"].items()
    }
    return pd.DataFrame.from_dict(rows, orient="index")


def class_counts(audit: dict[str, Any]) -> dict[str, dict[str, int]]:
    """Faces per emotion per split from an audit: ``{split: {emotion: count}}`` (for the class chart)."""
    return {split: entry["counts"] for split, entry in audit["class_distribution"].items()}


def duplicates_table(audit: dict[str, Any]) -> pd.DataFrame:
    """Pixel-identical duplicates: one row per split (``within <split>``) and one for groups spanning splits
    with conflicting labels; columns ``groups``, ``faces``, ``extra_copies`` (faces - groups) and
    ``conflicting-label groups`` (identical faces carrying different labels)."""
    conflicts = audit["label_conflicts"]
    rows = {
        **{
            f"within {split}": {**entry, "conflicting-label groups": conflicts["within"][split]["groups"]}
            for split, entry in audit["duplicates_within_splits"].items()
        },
        "across splits, conflicting labels": {
            **conflicts["across"],
            "conflicting-label groups": conflicts["across"]["groups"],
        },
    }
    return pd.DataFrame.from_dict(rows, orient="index")[["groups", "faces", "extra_copies", "conflicting-label groups"]]


def leakage_table(audit: dict[str, Any]) -> pd.DataFrame:
    """Held-out faces whose pixels occur in an earlier split: one row per ``<held-out> in <reference>`` pair,
    columns ``faces`` and ``% of held-out split`` (empty when the dataset has one split)."""
    rows = {
        f"{held} in {reference}": {"faces": entry["faces"], "% of held-out split": entry["percent"]}
        for held, references in audit["duplicates_across_splits"]["pairs"].items()
        for reference, entry in references.items()
    }
    return pd.DataFrame.from_dict(rows, orient="index", columns=["faces", "% of held-out split"])


def near_blank_table(audit: dict[str, Any]) -> pd.DataFrame:
    """Near-blank faces per split: ``near_blank`` (pixel std below the audit's threshold), ``constant``
    and ``examples`` (ids, comma-separated)."""
    table = pd.DataFrame.from_dict(audit["near_blank"], orient="index")
    table["examples"] = table.examples.str.join(", ")
    return table


def audit_tables(audit: dict[str, Any]) -> dict[str, pd.DataFrame]:
    """Every table of an audit under its heading, in reading order: class distribution, duplicates,
    leakage (its heading gives the count of held-out faces also in Training) and near-blank faces.
    ``python -m fer_lib data audit`` prints them; notebook 1 shows them one by one."""
    held_out = audit["duplicates_across_splits"]["held_out_in_training"]
    return {
        "Faces per class and split": distribution_table(audit),
        "Pixel-identical duplicates (extra copies = faces - groups)": duplicates_table(audit),
        f"Held-out faces whose pixels occur in Training: {held_out}": leakage_table(audit),
        f"Near-blank faces (pixel standard deviation < {audit['near_blank_std']} grey levels)": near_blank_table(audit),
    }


def data_record(audit: dict[str, Any]) -> dict[str, Any]:
    """What notebook 1 records in ``metrics/data.json``: ``dataset`` (``synthetic`` or ``fer2013``), ``source``,
    ``counts`` (:func:`class_counts`) and the whole ``audit``."""
    return {
        "dataset": "synthetic" if audit["synthetic"] else "fer2013",
        "source": audit["source"],
        "counts": class_counts(audit),
        "audit": audit,
    }


def _in_training(hashes: np.ndarray, usage: np.ndarray) -> np.ndarray:
    """Return bool (N,): True where a face outside Training has the pixel hash of a Training face."""
    training = usage == "Training"
    return ~training & pd.Series(hashes).isin(hashes[training]).to_numpy()  # hash-based: np.isin sorts strings


def _class_distribution(counts: dict[str, int]) -> dict[str, Any]:
    """Return ``total``, the per-emotion ``counts`` and their ``percent`` (2 decimals) of a split's class counts."""
    total = sum(counts.values())
    percent = {emotion: round(100.0 * count / max(total, 1), 2) for emotion, count in counts.items()}
    return {"total": total, "counts": counts, "percent": percent}


def _duplicate_groups(table: pd.DataFrame) -> pd.DataFrame:
    """Return one row per group of 2 or more pixel-identical faces in ``table``, in order of first face.

    Columns: ``faces`` (group size), ``labels`` and ``splits`` (distinct labels and splits in the
    group) and ``members`` (list of ``"id (emotion)"``).
    """
    duplicated = table[table.hash.duplicated(keep=False)]
    return duplicated.groupby("hash", sort=False).agg(
        faces=("id", "size"), labels=("label", "nunique"), splits=("usage", "nunique"), members=("member", list)
    )


def _conflicting(groups: pd.DataFrame) -> pd.DataFrame:
    """Return the duplicate groups whose faces carry two or more different labels."""
    return groups[groups.labels > 1]


def _summarise(groups: pd.DataFrame) -> dict[str, Any]:
    """Return ``groups``, ``faces``, ``extra_copies`` and a few ``examples`` of duplicate groups."""
    faces = int(groups.faces.sum())
    return {
        "groups": len(groups),
        "faces": faces,
        "extra_copies": faces - len(groups),
        "examples": [list(members) for members in groups.members.head(EXAMPLES)],
    }


def _overlap(held_out: pd.DataFrame, reference: pd.DataFrame) -> dict[str, Any]:
    """Return how many faces of ``held_out`` have their pixels in ``reference`` (count, percent, examples)."""
    leaked = held_out[held_out.hash.isin(reference.hash)]
    first_match = reference.drop_duplicates("hash").set_index("hash").member
    return {
        "faces": len(leaked),
        "percent": round(100.0 * len(leaked) / max(len(held_out), 1), 2),
        "examples": [
            [member, first_match[digest]]
            for member, digest in zip(leaked.member.head(EXAMPLES), leaked.hash.head(EXAMPLES), strict=True)
        ],
    }


def _near_blank(dataset: FaceDataset) -> dict[str, Any]:
    """Return the counts of near-blank and constant faces of one split, with example ids."""
    spread = np.array([cv2.meanStdDev(face)[1].item() for face in dataset.faces])
    near_blank = spread < NEAR_BLANK_STD
    return {
        "near_blank": int(near_blank.sum()),
        "constant": int((spread == 0).sum()),
        "examples": dataset.ids[near_blank][:EXAMPLES].tolist(),
    }
