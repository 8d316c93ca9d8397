"""The papers' published figures, ours under each protocol, and a paper report end to end (tiny, synthetic)."""

from __future__ import annotations

import json
import math
import typing
from pathlib import Path

import pandas as pd
import pytest
import yaml

from fer_lib.evaluation import merged_accuracy
from fer_lib.params import PaperName, load_params
from fer_lib.paths import PROJECT_ROOT
from fer_lib.study.papers import (
    PAPERS,
    PROTOCOLS,
    claims_table,
    comparison_markdown,
    comparison_with_published,
    gap_decomposition,
    measured_figures,
    published_results,
)

SCORES = {
    "Training": {"n": 100, "accuracy": 0.50},
    "PublicTest": {"n": 30, "accuracy": 0.40},
    "PrivateTest": {"n": 10, "accuracy": 0.80},
}
RECALIBRATED = {
    "Training": {"n": 100, "accuracy": 0.70},
    "PublicTest": {"n": 30, "accuracy": 0.55},
    "PrivateTest": {"n": 10, "accuracy": 0.60},
}


def test_every_paper_and_claim_is_named_consistently() -> None:
    assert set(PAPERS) == set(typing.get_args(PaperName))
    keys = {protocol.key for protocol in PROTOCOLS}
    assert all(claim.protocol in keys for paper in PAPERS.values() for claim in paper.claims)
    for name in PAPERS:
        assert load_params(PROJECT_ROOT / "params" / f"{name}.yaml").reproduces == name
        assert load_params(PROJECT_ROOT / "params" / f"{name}_cpu.yaml").reproduces == name
    published = published_results()
    assert published.loc[published["source"] == "Paper B", "accuracy"].tolist() == [0.9423]
    assert "mode not stated" in published.loc[0, "protocol"]  # paper A's 94% does not say how it was measured


def test_merged_accuracy_pools_by_face_count() -> None:
    assert merged_accuracy(SCORES) == {"splits": ["PublicTest", "PrivateTest"], "n": 40, "accuracy": pytest.approx(0.5)}
    assert merged_accuracy({"PublicTest": SCORES["PublicTest"]}) is None


def test_gap_parts_add_up_from_the_headline_to_the_honest_figure() -> None:
    figures = measured_figures(0.95, SCORES, RECALIBRATED)
    parts = gap_decomposition(figures)["points"]

    assert parts["fit-time measurement"] == pytest.approx(25.0)
    assert parts["over-fitting"] == pytest.approx(15.0)
    assert parts["stale BatchNorm moving statistics (the BN gap)"] == pytest.approx(15.0)
    assert parts.iloc[:3].sum() == pytest.approx(parts["total: headline protocol to honest protocol"]) == 55.0
    assert parts["BN gap on Training faces"] == pytest.approx(20.0)
    assert parts["merged test split (paper A)"] == pytest.approx(-10.0)  # merging flatters by 10 points here


def test_without_privatetest_or_history_the_missing_figures_are_nan() -> None:
    figures = measured_figures(
        None,
        {key: SCORES[key] for key in ("Training", "PublicTest")},
        {key: RECALIBRATED[key] for key in ("Training", "PublicTest")},
    )
    assert figures["merged"] is None and figures["fit_training"] is None
    parts = gap_decomposition(figures)["points"]
    assert math.isnan(parts["merged test split (paper A)"]) and math.isnan(parts["fit-time measurement"])
    assert parts["over-fitting"] == pytest.approx(15.0)


def test_claims_table_sets_paper_bs_claim_beside_ours_under_every_protocol() -> None:
    record = {
        "paper": "paper_b",
        "input_size": 120,
        "tta": "none",
        "figures": measured_figures(0.95, SCORES, RECALIBRATED),
    }

    table = claims_table(record)

    assert list(table.columns) == ["Paper B (224 px)", "ours (120 px)", "ours - paper (points)", "what the paper says"]
    assert len(table) == len(PROTOCOLS)
    fit = table.loc["Training, fit-time (training mode), last epoch"]
    assert (fit["Paper B (224 px)"], fit["ours (120 px)"]) == (pytest.approx(94.23), pytest.approx(95.0))
    assert fit["ours - paper (points)"] == pytest.approx(0.77)
    assert table.loc["PublicTest, inference mode, BatchNorm recalibrated", "ours (120 px)"] == pytest.approx(55.0)
    assert table["Paper B (224 px)"].notna().sum() == 1


def test_comparison_with_published_adds_this_runs_figures_with_their_protocols() -> None:
    table = comparison_with_published("This run", SCORES, "flip", fit_accuracy=0.9)
    ours = table[table["source"] == "This run"]
    assert ours["protocol"].tolist() == [
        "Training, inference mode, test-time augmentation flip (n=100)",
        "PublicTest, inference mode, test-time augmentation flip (n=30)",
        "PrivateTest, inference mode, test-time augmentation flip (n=10)",
        "PublicTest + PrivateTest merged, inference mode, test-time augmentation flip (n=40)",
        "Training, fit-time (training mode), last epoch",
    ]
    assert len(table) == len(published_results()) + 5


def test_comparison_markdown_gives_one_row_per_report_with_the_wall_time() -> None:
    metrics = {
        "training": {"wall_seconds": 5400.0},
        "evaluation": {
            "paper": {
                "paper": "paper_b",
                "input_size": 120,
                "tta": "none",
                "figures": measured_figures(0.95, SCORES, RECALIBRATED),
            }
        },
    }

    markdown = comparison_markdown({"paper_b-120px": metrics})

    row = markdown.splitlines()[2]
    assert row.startswith(
        "| paper_b-120px (120 px) | 94.23% (Training, fit-time (training mode), last epoch) | 95.00% |"
    )
    assert "95.00% / 50.00% / 70.00%" in row and "40.00% / 55.00%" in row and row.endswith("| 1.50 h |")


@pytest.mark.slow
def test_a_paper_report_from_a_finished_run_has_history_curves_and_the_comparison(tmp_path: Path) -> None:
    """The CPU commands of the README at toy scale: train a paper recipe, then report on the run (which
    notebook 2 loads, without training again)."""
    from fer_lib.data import load_dataset
    from fer_lib.paths import NOTEBOOKS_DIR
    from fer_lib.study.report import run_report
    from fer_lib.study.training_run import train

    params_path = tmp_path / "paper_b_tiny.yaml"
    params_path.write_text(
        yaml.safe_dump(
            {
                "base": str(PROJECT_ROOT / "params" / "paper_b_cpu.yaml"),
                "name": "paper_b_tiny",
                "data": {"source": "synthetic", "synthetic_per_class": 6},
                "model": {"input_size": 32, "alpha": 0.35, "weights": "none"},
                "train": {"epochs": 2, "batch_size": 16},
            }
        )
    )
    params = load_params(params_path)
    assert (params.reproduces, params.model.head_units, params.train.select) == ("paper_b", [128, 64], "last")
    trained = train(params, load_dataset(params), tmp_path / "run", verbose=0)
    run_files = {path: path.stat().st_mtime_ns for path in trained.run_dir.iterdir()}

    run_dir = run_report(
        params_path,
        reports_root=tmp_path / "reports",
        train_run=str(tmp_path / "run"),
        notebooks=[NOTEBOOKS_DIR / "02_fine_tuning.ipynb", NOTEBOOKS_DIR / "03_fer2013_evaluation.ipynb"],
    )

    assert not (run_dir / "training").exists()  # notebook 2 loaded the finished run, did not train again
    assert {path: path.stat().st_mtime_ns for path in trained.run_dir.iterdir()} == run_files
    assert "loading it, not training again" in (run_dir / "02_fine_tuning.html").read_text()
    history = pd.read_csv(run_dir / "training_history.csv")
    pd.testing.assert_frame_equal(history, trained.history)
    assert history["epoch"].tolist() == [1, 2]
    assert {"fit_accuracy", "train_accuracy", "val_accuracy", "fit_loss", "train_loss", "val_loss"} <= set(history)
    assert (run_dir / "figures" / "02_training_curves.png").is_file()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["training"]["wall_seconds"] == pytest.approx(
        history["seconds"].sum() + history["eval_seconds"].sum()
    )
    paper = metrics["evaluation"]["paper"]
    assert (paper["paper"], paper["input_size"], paper["recalibrated_on"]) == (
        "paper_b",
        32,
        {"split": "Training", "n": 42},
    )
    figures = paper["figures"]
    assert figures["fit_training"] == pytest.approx(history["fit_accuracy"].iloc[-1])
    assert figures["publictest"] == pytest.approx(metrics["evaluation"]["splits"]["PublicTest"]["accuracy"])
    assert all(0.0 <= figures[key] <= 1.0 for key in ("training_recalibrated", "publictest_recalibrated", "merged"))
    html = (run_dir / "03_fer2013_evaluation.html").read_text()
    assert "Paper B (224 px)" in html and "stale BatchNorm moving statistics" in html
