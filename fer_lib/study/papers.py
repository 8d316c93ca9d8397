"""The reproduced papers' published figures, and ours beside them under each protocol.

This is the one place where published numbers live (:data:`PAPERS`, :data:`LITERATURE`).
A figure means nothing without its *protocol*: the split it was measured on and the mode
(fit-time = training mode, the running mean ``model.fit`` prints; inference mode = BatchNorm
moving averages, no dropout). :data:`PROTOCOLS` names every protocol a reproduction is measured
under; :func:`claims_table` puts a paper's claims next to our figures, and
:func:`gap_decomposition` splits the distance from the paper's headline protocol (fit-time
Training accuracy) to the honest one (inference mode, PublicTest) into its parts.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from fer_lib.dataset import FaceDataset
from fer_lib.evaluation import MERGED_SPLITS, merged_accuracy
from fer_lib.params import Params, TestTimeAugmentation, mode_label


@dataclass(frozen=True)
class Protocol:
    """How a figure was measured: a split, a mode and whether BatchNorm was recalibrated."""

    key: str
    split: str
    mode: str
    """``fit-time`` or ``inference``."""
    recalibrated: bool = False
    """BatchNorm moving statistics recomputed on the Training faces for the final weights."""

    def describe(self, *, tta: TestTimeAugmentation = "none") -> str:
        """E.g. ``"Training, fit-time (training mode), last epoch"`` or ``"PublicTest, inference mode"``."""
        if self.mode == "fit-time":
            return f"{self.split}, fit-time (training mode), last epoch"
        return f"{self.split}, {mode_label(tta)}{', BatchNorm recalibrated' if self.recalibrated else ''}"


PROTOCOLS: tuple[Protocol, ...] = (
    Protocol("fit_training", "Training", "fit-time"),
    Protocol("training", "Training", "inference"),
    Protocol("training_recalibrated", "Training", "inference", recalibrated=True),
    Protocol("publictest", "PublicTest", "inference"),
    Protocol("publictest_recalibrated", "PublicTest", "inference", recalibrated=True),
    Protocol("merged", " + ".join(MERGED_SPLITS) + " merged", "inference"),
    Protocol("merged_recalibrated", " + ".join(MERGED_SPLITS) + " merged", "inference", recalibrated=True),
)
"""Every protocol a reproduction is measured under, in table order. ``publictest`` is the honest
one: the model as it is used, on faces it never trained on (PrivateTest stays held out)."""


@dataclass(frozen=True)
class Claim:
    """One published figure: its accuracy (0-1), the protocol it matches and how the paper words it."""

    protocol: str
    """A key of :data:`PROTOCOLS`."""
    accuracy: float
    wording: str
    mode_stated: bool = True
    """False when the paper does not say in which mode it measured (the protocol is then our reading)."""


@dataclass(frozen=True)
class Paper:
    """A reproduced paper: its model in a few words, its input size and its claims."""

    title: str
    model: str
    input_size: int
    claims: tuple[Claim, ...]


PAPERS: dict[str, Paper] = {
    "paper_a": Paper(
        "Paper A",
        "MobileNetV2, x/255, GAP + Dense 7, Adam, 30 epochs",
        224,
        (
            Claim(
                "fit_training",
                0.94,
                '"94% training accuracy", mode not stated (Keras\' fit log, which its curves show, is fit-time)',
                mode_stated=False,
            ),
            Claim(
                "merged",
                0.61,
                '"61% test accuracy", the test set being PublicTest and PrivateTest merged (7,178 faces)',
            ),
        ),
    ),
    "paper_b": Paper(
        "Paper B",
        "MobileNetV2 + dense 128-64-7, x/255, Adam, 25 epochs",
        224,
        (
            Claim(
                "fit_training",
                0.9423,
                '"94.23% accuracy": the last epoch\'s fit-time training accuracy; no held-out figure',
            ),
        ),
    ),
}
"""The papers whose recipes ``params/paper_a.yaml`` and ``paper_b.yaml`` reproduce (their
``reproduces`` key; the keys are :data:`fer_lib.params.PaperName`)."""

LITERATURE: tuple[tuple[str, str, str, float], ...] = (
    ("fer package", "mini-Xception", "FER-2013 test, as reported by the package", 0.659),
    ("fer package", "mini-Xception", "PublicTest (n=3589), measured independently (fer 25.10.3)", 0.653),
    ("Literature", "MobileNetV2 (typical)", "PrivateTest", 0.68),
    ("Literature", "VGG variant", "PrivateTest", 0.7328),
    ("Literature", "ResNet18", "PrivateTest", 0.7370),
    ("Literature", "Residual Masking Network", "PrivateTest", 0.7414),
)
"""Other published FER-2013 accuracies: (source, model, protocol, accuracy). Published results are
PrivateTest accuracies of models trained on Training (PublicTest used for model selection)."""

COMPARISON_COLUMNS: list[str] = ["source", "model", "protocol", "accuracy"]
"""Columns of :func:`comparison_with_published`."""


def published_results() -> pd.DataFrame:
    """Every published figure, papers first: one row per claim (:data:`COMPARISON_COLUMNS`)."""
    rows = [
        (paper.title, paper.model, f"{_claimed_protocol(claim)}, {paper.input_size} px", claim.accuracy)
        for paper in PAPERS.values()
        for claim in paper.claims
    ]
    return pd.DataFrame(rows + list(LITERATURE), columns=COMPARISON_COLUMNS)


def _claimed_protocol(claim: Claim) -> str:
    """The protocol of a claim as the paper states it (``mode not stated`` where it does not)."""
    protocol = next(protocol for protocol in PROTOCOLS if protocol.key == claim.protocol)
    return protocol.describe() if claim.mode_stated else f"{protocol.split}, mode not stated"


def comparison_with_published(
    this_run: str, scores: dict[str, dict[str, Any]], tta: TestTimeAugmentation, *, fit_accuracy: float | None = None
) -> pd.DataFrame:
    """:func:`published_results` followed by this run's figures, each naming its split and mode.

    Args:
        this_run: how to name the run in the ``source`` column.
        scores: ``{split: {"n", "accuracy", ...}}`` in inference mode (with ``tta``).
        fit_accuracy: the last epoch's fit-time Training accuracy, if this run trained.
    """
    mode = mode_label(tta)
    ours = [
        (this_run, "MobileNetV2", f"{split}, {mode} (n={values['n']})", values["accuracy"])
        for split, values in scores.items()
    ]
    merged = merged_accuracy(scores)
    if merged:
        ours.append(
            (
                this_run,
                "MobileNetV2",
                f"{' + '.join(merged['splits'])} merged, {mode} (n={merged['n']})",
                merged["accuracy"],
            )
        )
    if fit_accuracy is not None:
        ours.append((this_run, "MobileNetV2", "Training, fit-time (training mode), last epoch", fit_accuracy))
    return pd.concat([published_results(), pd.DataFrame(ours, columns=COMPARISON_COLUMNS)], ignore_index=True)


def measured_figures(
    fit_accuracy: float | None, scores: dict[str, dict[str, Any]], recalibrated: dict[str, dict[str, Any]]
) -> dict[str, float | None]:
    """Our accuracy (0-1) under each of :data:`PROTOCOLS`; None where it was not measured.

    Args:
        fit_accuracy: the last epoch's fit-time Training accuracy (history ``fit_accuracy``);
            None for a model evaluated without its training history.
        scores: inference-mode ``{split: {"n", "accuracy"}}`` of the final model.
        recalibrated: the same after :func:`fer_lib.model.recalibrate_batchnorm` on the Training faces.
    """
    figures: dict[str, float | None] = {"fit_training": None if fit_accuracy is None else float(fit_accuracy)}
    for suffix, measured in (("", scores), ("_recalibrated", recalibrated)):
        for key, split in (("training", "Training"), ("publictest", "PublicTest")):
            figures[key + suffix] = float(measured[split]["accuracy"]) if split in measured else None
        merged = merged_accuracy(measured)
        figures["merged" + suffix] = merged["accuracy"] if merged else None
    return figures


def measure_reproduction(
    params: Params,
    model_path: str | os.PathLike[str],
    dataset: FaceDataset,
    scores: dict[str, dict[str, Any]],
    fit_accuracy: float | None,
) -> dict[str, Any]:
    """Measure a paper recipe's final model under every protocol, BatchNorm recalibration included.

    Recomputes the BatchNorm statistics of the saved weights on the Training faces the run fitted
    (:func:`fer_lib.training.training_data`, not augmented) and scores every split again.

    Args:
        params: the run's params; ``params.reproduces`` names the paper.
        model_path: the run's final model.
        dataset: the faces (the same the run trained on).
        scores: the final model's inference-mode ``{split: {"n", "accuracy", ...}}`` (with ``params.evaluate.tta``).
        fit_accuracy: the last epoch's fit-time Training accuracy, None if unknown.

    Returns:
        A JSON-ready record: ``paper``, ``input_size``, ``tta``, ``figures`` (:func:`measured_figures`),
        ``recalibrated_on`` (``{"split", "n"}``) and ``recalibrated_splits`` (``{split: {n, accuracy, macro_f1}}``).
    """
    from fer_lib.training import training_data

    if params.reproduces is None:
        raise ValueError(f"params {params.name!r} reproduce no paper (set reproduces: paper_a or paper_b)")
    fitted = training_data(dataset, subset=params.data.train_subset, seed=params.seed)
    recalibrated = evaluate_recalibrated(model_path, dataset, recalibration_faces=fitted.faces, tta=params.evaluate.tta)
    return {
        "paper": params.reproduces,
        "input_size": params.model.input_size,
        "tta": params.evaluate.tta,
        "figures": measured_figures(fit_accuracy, scores, recalibrated),
        "recalibrated_on": {"split": "Training", "n": len(fitted)},
        "recalibrated_splits": {
            split: {key: result[key] for key in ("n", "accuracy", "macro_f1")} for split, result in recalibrated.items()
        },
    }


def claims_table(reproduction: dict[str, Any]) -> pd.DataFrame:
    """One row per protocol: the paper's figure (where it gives one) next to ours, in percent.

    Args:
        reproduction: :func:`measure_reproduction`'s record (``paper``, ``input_size``, ``tta``, ``figures``).

    Returns:
        Index: the protocol (split, mode); columns ``<paper> (<size> px)``, ``ours (<size> px)``,
        ``ours - paper (points)`` and ``what the paper says``. Missing figures are NaN.
    """
    paper, figures = PAPERS[reproduction["paper"]], reproduction["figures"]
    claims = {claim.protocol: claim for claim in paper.claims}
    paper_column, ours_column = f"{paper.title} ({paper.input_size} px)", f"ours ({reproduction['input_size']} px)"
    rows = []
    for protocol in PROTOCOLS:
        claim = claims.get(protocol.key)
        ours = figures.get(protocol.key)
        rows.append(
            {
                "protocol": protocol.describe(tta=reproduction.get("tta", "none")),
                paper_column: 100 * claim.accuracy if claim else math.nan,
                ours_column: 100 * ours if ours is not None else math.nan,
                "what the paper says": claim.wording if claim else "",
            }
        )
    table = pd.DataFrame(rows).set_index("protocol")
    table.insert(2, "ours - paper (points)", table[ours_column] - table[paper_column])
    return table


GAP_PARTS: tuple[tuple[str, str, str, str], ...] = (
    (
        "fit-time measurement",
        "fit_training",
        "training_recalibrated",
        "fit-time accuracy is a running mean in training mode (each batch normalised by its own statistics, "
        "dropout on) while the weights still change",
    ),
    (
        "over-fitting",
        "training_recalibrated",
        "publictest_recalibrated",
        "Training faces against faces never trained on, both with BatchNorm statistics that fit the final weights",
    ),
    (
        "stale BatchNorm moving statistics (the BN gap)",
        "publictest_recalibrated",
        "publictest",
        "the moving averages lag behind the weights; recalibrating them on Training faces removes this part",
    ),
)
"""The parts of the distance from fit-time Training accuracy to inference-mode PublicTest
accuracy: (name, from protocol, to protocol, explanation). They add up exactly (telescoping)."""


def gap_decomposition(figures: dict[str, float | None]) -> pd.DataFrame:
    """Split the headline-to-honest gap into :data:`GAP_PARTS`, plus two side effects, in points.

    Args:
        figures: :func:`measured_figures` (``measure_reproduction(...)["figures"]``).

    Rows: each part of ``fit_training - publictest`` (they sum to the ``total`` row), then the
    BatchNorm gap on Training faces (``training_recalibrated - training``) and what merging
    PrivateTest into the test set changes (``merged - publictest``, paper A's protocol; NaN
    when PrivateTest was not available).

    Returns:
        Index: the part; columns ``points`` (percentage points lost from ``from`` to ``to``),
        ``from``, ``to`` (protocol descriptions) and ``why``.
    """
    protocols = {protocol.key: protocol for protocol in PROTOCOLS}

    def row(name: str, start: str, end: str, why: str) -> dict[str, Any]:
        start_value, end_value = figures.get(start), figures.get(end)
        points = 100 * (start_value - end_value) if start_value is not None and end_value is not None else math.nan
        return {
            "part": name,
            "points": points,
            "from": protocols[start].describe(),
            "to": protocols[end].describe(),
            "why": why,
        }

    rows = [row(*part) for part in GAP_PARTS]
    rows.append(
        row("total: headline protocol to honest protocol", "fit_training", "publictest", "the sum of the parts above")
    )
    rows.append(
        row(
            "BN gap on Training faces",
            "training_recalibrated",
            "training",
            "the same stale statistics, measured on the faces the model trained on",
        )
    )
    rows.append(
        row(
            "merged test split (paper A)",
            "publictest",
            "merged",
            "PublicTest alone against PublicTest + PrivateTest merged; negative: merging flatters",
        )
    )
    return pd.DataFrame(rows).set_index("part")


def comparison_markdown(reports: dict[str, dict[str, Any]]) -> str:
    """A Markdown table of the reproductions for the README, from report metrics.

    Args:
        reports: ``{report folder name: metrics.json contents}`` of reports whose params reproduce
            a paper (``metrics["evaluation"]["paper"]`` written by notebook 3, and
            ``metrics["training"]["wall_seconds"]`` by notebook 2).

    Returns:
        One row per report: the paper's claim and its protocol, ours under the same protocol, ours
        fit-time / inference / recalibrated on Training and PublicTest, and the measured wall time.
    """
    header = (
        "| report | paper's claim (protocol, 224 px) | ours, same protocol | Training: fit-time / inference / "
        "inference, BN recalibrated | PublicTest: inference (the honest figure) / inference, BN recalibrated "
        "| training wall time |\n|---|---|---|---|---|---|\n"
    )
    lines = []
    for name, metrics in reports.items():
        paper = metrics["evaluation"]["paper"]
        figures = paper["figures"]
        claims = PAPERS[paper["paper"]].claims
        claimed = "; ".join(f"{100 * claim.accuracy:.2f}% ({_claimed_protocol(claim)})" for claim in claims)
        same = "; ".join(_percent(figures.get(claim.protocol)) for claim in claims)
        wall = metrics.get("training", {}).get("wall_seconds")
        lines.append(
            f"| {name} ({paper['input_size']} px) | {claimed} | {same} | "
            f"{_percent(figures['fit_training'])} / {_percent(figures['training'])} / "
            f"{_percent(figures['training_recalibrated'])} | {_percent(figures['publictest'])} / "
            f"{_percent(figures['publictest_recalibrated'])} | "
            f"{f'{wall / 3600:.2f} h' if wall is not None else 'not recorded'} |"
        )
    return header + "\n".join(lines) + "\n"


def _percent(value: float | None) -> str:
    """``61.23%``, or ``n/a`` for a figure that could not be measured."""
    return f"{100 * value:.2f}%" if value is not None else "n/a"


def run_label(params: Params, *, synthetic: bool) -> str:
    """How a run is named in :func:`comparison_with_published`: ``This run (<params name>[, SYNTHETIC data])``."""
    return f"This run ({params.name}{', SYNTHETIC data' if synthetic else ''})"


def evaluate_recalibrated(
    model_path: str | os.PathLike[str],
    dataset: FaceDataset,
    *,
    recalibration_faces: np.ndarray,
    tta: TestTimeAugmentation = "none",
    splits: list[str] | None = None,
) -> dict[str, dict[str, Any]]:
    """:func:`fer_lib.evaluation.evaluate_splits` of the saved model after recomputing its BatchNorm statistics.

    Loads a fresh copy of ``model_path`` (the caller's model is left as it is), replaces every
    BatchNorm moving mean/variance by the average over ``recalibration_faces``
    (:func:`fer_lib.model.recalibrate_batchnorm`; no other weight changes) and scores it in
    inference mode. The difference from the plain scores is the part of the error due to stale
    moving statistics.

    Args:
        model_path: a ``.keras`` model of this project.
        dataset: the faces to score, per split.
        recalibration_faces: uint8 (N, 48, 48) faces, e.g. the Training faces the model was fitted on.
    """
    from fer_lib.evaluation import evaluate_splits
    from fer_lib.model import load_model, recalibrate_batchnorm

    model = load_model(model_path)
    recalibrate_batchnorm(model, recalibration_faces)
    return evaluate_splits(model, dataset, tta=tta, splits=splits)
