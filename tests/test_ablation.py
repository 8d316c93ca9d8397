"""Ablation studies: strict variants files, one trained run per variant, resuming, the ``ablate`` report."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import TINY_ABLATION, write_params

from fer_lib.errors import DataError, ParamsError
from fer_lib.paths import PROJECT_ROOT
from fer_lib.study.ablation import (
    COLUMNS,
    DELTA_COLUMNS,
    compare_to_baseline,
    deltas_vs_baseline,
    pending_variants,
    reusable_rows,
    run_ablation,
    seed_noise,
    seed_repeats,
    variant_run_dir,
)
from fer_lib.study.cli import main
from fer_lib.study.variants import Ablation, load_variants

VARIANTS = """base: tiny.yaml
variants:
  baseline: {}
  scaling x/255:
    model.scale: unit
  two epochs:
    train.epochs: 2
"""

COMMON = {"train.epochs": 1}
"""Set for every variant: makes 'two epochs' identical to the baseline, so it is not trained."""


def write_study(folder: Path, variants: str = VARIANTS) -> Path:
    """Write ``tiny.yaml`` and ``variants.yaml`` into ``folder``; return the variants file."""
    folder.mkdir(parents=True, exist_ok=True)
    write_params(folder / "tiny.yaml", TINY_ABLATION)
    path = folder / "variants.yaml"
    path.write_text(variants)
    return path


def snapshot(folder: Path) -> dict[Path, tuple[bytes, int]]:
    """Every file below ``folder`` with its content and modification time."""
    return {path: (path.read_bytes(), path.stat().st_mtime_ns) for path in folder.rglob("*") if path.is_file()}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Ablation, pd.DataFrame, Path]:
    """The tiny ablation, trained once: (ablation, table, runs folder)."""
    folder = tmp_path_factory.mktemp("ablation")
    ablation = load_variants(write_study(folder), overrides=COMMON)
    runs_dir = folder / "runs"
    assert [variant.name for variant in pending_variants(ablation, runs_dir)] == ["baseline", "scaling x/255"]
    table = run_ablation(ablation, runs_dir=runs_dir, verbose=0, timing_repeats=2)
    return ablation, table, runs_dir


# --- running ---------------------------------------------------------------------------------------


@pytest.mark.slow
def test_one_row_per_trained_variant_baseline_first(trained: tuple[Ablation, pd.DataFrame, Path]) -> None:
    ablation, table, runs_dir = trained

    assert list(table.columns) == list(COLUMNS)
    assert table["variant"].tolist() == ["baseline", "scaling x/255"]
    assert table["overrides"].tolist() == ["none", "model.scale=unit"]
    assert ablation.variants[2].same_as == "baseline"  # 'two epochs' under train.epochs=1 is the baseline
    for column in (
        "publictest_accuracy",
        "publictest_macro_f1",
        "publictest_accuracy_tta_flip",
        "training_accuracy",
        "training_fit_time_accuracy",
    ):
        assert table[column].between(0, 1).all(), column
    assert (table["publictest_n"] == 14).all() and (table["training_n"] == 42).all()
    assert (table["kept_epoch"] == 1).all() and (table["epochs"] == 1).all()
    assert (table["seconds_per_epoch"] > 0).all() and (table["ms_per_face"] > 0).all()
    assert (table["parameters"] > 100_000).all()
    assert (table["dataset"] == "synthetic").all()
    assert table["training_device"].str.startswith("tensorflow on ").all()
    run_dirs = [Path(run_dir) for run_dir in table["run_dir"]]
    assert run_dirs == [variant_run_dir(runs_dir, variant) for variant in ablation.distinct()]
    assert [run_dir.name[:-9] for run_dir in run_dirs] == ["baseline", "scaling-x-255"]
    assert pending_variants(ablation, runs_dir) == []


@pytest.mark.slow
def test_a_finished_variant_is_not_retrained(
    trained: tuple[Ablation, pd.DataFrame, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    ablation, first, runs_dir = trained
    before = snapshot(runs_dir)

    again = run_ablation(ablation, runs_dir=runs_dir, verbose=0, timing_repeats=1)

    assert snapshot(runs_dir) == before
    assert "baseline: finished earlier in" in capsys.readouterr().out
    scores = [
        "variant",
        "publictest_accuracy",
        "publictest_macro_f1_tta_flip",
        "training_accuracy",
        "training_fit_time_accuracy",
        "seconds_per_epoch",
        "run_dir",
    ]
    pd.testing.assert_frame_equal(again[scores], first[scores])


@pytest.mark.slow
def test_rows_of_an_earlier_table_stand_in_for_runs_not_here(
    trained: tuple[Ablation, pd.DataFrame, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ablation, first, runs_dir = trained
    earlier = tmp_path / "ablation.csv"
    first.iloc[[1]].to_csv(earlier, index=False)  # the earlier report scored 'scaling x/255' only
    elsewhere = tmp_path / "runs"  # a new machine: the baseline's run is finished here, the other's is not
    shutil.copytree(variant_run_dir(runs_dir, ablation.baseline), variant_run_dir(elsewhere, ablation.baseline))

    reused = reusable_rows(ablation, [earlier], elsewhere)
    table = run_ablation(ablation, runs_dir=elsewhere, reuse=reused, verbose=0, timing_repeats=1)

    assert list(reused) == ["scaling x/255"]
    assert not variant_run_dir(elsewhere, ablation.variants[1]).exists()  # not trained again
    assert table["variant"].tolist() == ["baseline", "scaling x/255"]
    assert table["scored_in"].tolist() == ["", str(earlier)]
    assert table.iloc[1]["publictest_accuracy"] == first.iloc[1]["publictest_accuracy"]
    assert "scaling x/255: scored earlier, row taken from" in capsys.readouterr().out
    # a row whose run-folder hash differs (another recipe or data under the same name) is not reused
    other = first.iloc[[1]].assign(run_dir="runs/scaling-x-255-00000000")
    other.to_csv(earlier, index=False)
    assert reusable_rows(ablation, [earlier], elsewhere) == {}


@pytest.mark.slow
def test_without_training_the_table_holds_the_finished_variants_and_names_the_others(
    trained: tuple[Ablation, pd.DataFrame, Path], tmp_path: Path
) -> None:
    ablation, first, runs_dir = trained
    elsewhere = tmp_path / "runs"  # only the baseline's run is here
    shutil.copytree(variant_run_dir(runs_dir, ablation.baseline), variant_run_dir(elsewhere, ablation.baseline))

    table = run_ablation(ablation, runs_dir=elsewhere, train=False, verbose=0, timing_repeats=1)

    assert table["variant"].tolist() == ["baseline"] and table.attrs["not_run"] == ["scaling x/255"]
    assert table.iloc[0]["publictest_accuracy"] == first.iloc[0]["publictest_accuracy"]
    assert not variant_run_dir(elsewhere, ablation.variants[1]).exists()  # nothing trained
    with pytest.raises(DataError, match=r"the baseline \('baseline'\) has no finished run here"):
        run_ablation(ablation, runs_dir=tmp_path / "empty", train=False, verbose=0)


def test_cli_without_training_refuses_an_ablation_without_its_baseline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    variants = write_study(tmp_path / "study")

    code = main(["ablate", "--variants", str(variants), "--runs", str(tmp_path / "runs"), "--no-train",
                 "--out", str(tmp_path / "reports")])  # fmt: skip

    err = capsys.readouterr().err
    assert code == 2 and "the baseline ('baseline') has no finished run here and no reused row" in err, err
    assert not (tmp_path / "reports").exists() and not (tmp_path / "runs").exists()


def test_a_table_that_is_not_an_ablation_csv_is_one_line_error(tmp_path: Path) -> None:
    ablation = load_variants(write_study(tmp_path), overrides=COMMON)
    table = tmp_path / "other.csv"
    table.write_text("variant,accuracy\nbaseline,0.5\n")

    with pytest.raises(DataError, match=r"other.csv: not an ablation.csv \(no column 'overrides'\)"):
        reusable_rows(ablation, [table], tmp_path / "runs")


@pytest.mark.slow
def test_deltas_are_percentage_points_against_the_first_row(trained: tuple[Ablation, pd.DataFrame, Path]) -> None:
    _, table, _ = trained

    deltas = deltas_vs_baseline(table)
    readable = compare_to_baseline(table)

    photo_columns = [DELTA_COLUMNS["photos_accuracy"], DELTA_COLUMNS["photos_macro_f1"]]
    assert (deltas.loc["baseline"].drop(photo_columns) == 0).all()
    assert (table["photos_n"] == 0).all() and deltas[photo_columns].isna().all().all()  # no labelled photos here
    expected = 100 * (table["publictest_accuracy"].iloc[1] - table["publictest_accuracy"].iloc[0])
    assert deltas.loc["scaling x/255", "PublicTest accuracy, no TTA"] == pytest.approx(expected)
    assert readable["PublicTest acc. %"].is_monotonic_decreasing
    assert readable.loc["scaling x/255", "Δ pp"] == pytest.approx(expected)


@pytest.mark.slow
def test_cli_writes_a_report_with_index_and_figures(
    trained: tuple[Ablation, pd.DataFrame, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ablation, table, runs_dir = trained
    before = snapshot(runs_dir)

    code = main(
        [
            "ablate",
            "--variants",
            ablation.source,
            "--set",
            "train.epochs=1",
            "--runs",
            str(runs_dir),
            "--out",
            str(tmp_path / "reports"),
            "--name",
            "ablations-tiny",
        ]
    )

    assert code == 0, capsys.readouterr().err
    [report] = (tmp_path / "reports").iterdir()
    assert report.name == "ablations-tiny"
    assert snapshot(runs_dir) == before  # the variants trained by the fixture were reused
    index = (report / "index.html").read_text()
    assert "baseline: PublicTest accuracy (inference mode, n=14)" in index and "SYNTHETIC" in index
    for figure in ("06_ablation_deltas", "06_accuracy_vs_cost"):
        assert (report / "figures" / f"{figure}.png").stat().st_size > 5_000
        assert f'src="figures/{figure}.png"' in index
    metrics = json.loads((report / "metrics.json").read_text())["ablation"]
    assert [row["variant"] for row in metrics["variants"]] == ["baseline", "scaling x/255"]
    assert metrics["not_trained"] == {"two epochs": "baseline"} and metrics["overrides"] == COMMON
    assert metrics["variants"][0]["publictest_accuracy"] == pytest.approx(table["publictest_accuracy"].iloc[0])
    assert pd.read_csv(report / "ablation.csv")["variant"].tolist() == ["baseline", "scaling x/255"]
    manifest = json.loads((report / "manifest.json").read_text())
    assert manifest["report"]["notebooks"] == ["06_ablations.ipynb"]
    assert (report / "06_ablations.html").is_file()


def test_cli_refuses_a_report_name_that_exists(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    existing = tmp_path / "reports" / "ablations"
    (existing / "figures").mkdir(parents=True)
    variants = write_study(tmp_path / "study")

    runs = tmp_path / "runs"

    code = main(
        [
            "ablate",
            "--variants",
            str(variants),
            "--runs",
            str(runs),
            "--out",
            str(tmp_path / "reports"),
            "--name",
            "ablations",
        ]
    )

    err = capsys.readouterr().err
    assert code == 2 and err.splitlines()[-1] == f"error: {existing}: exists; choose another name", err
    assert [path.name for path in existing.iterdir()] == ["figures"]  # the earlier report is untouched
    assert not runs.exists()  # refused before any variant trained


# --- the variants file -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variants", "message"),
    [
        (
            VARIANTS.replace("model.scale", "model.scal"),
            "(variant 'scaling x/255'): unknown key 'model.scal'; did you mean 'model.scale'?",
        ),
        (
            VARIANTS.replace("train.epochs", "trian.epochs"),
            "(variant 'two epochs'): unknown key 'trian'; did you mean 'train'?",
        ),
        (VARIANTS.replace("variants:", "varaints:"), "unknown key 'varaints'; did you mean 'variants'?"),
        (
            VARIANTS.replace("model.scale: unit", "model.scale: grey"),
            "(variant 'scaling x/255'): 'model.scale' must be one of unit, imagenet; got 'grey'",
        ),
        (
            VARIANTS.replace("baseline: {}", "baseline: {model.scale: unit}"),
            "(variant 'baseline'): the first variant is the baseline and must have no overrides; got model.scale",
        ),
        (
            VARIANTS + "  no TTA:\n    evaluate.tta: none\n",
            "(variant 'no TTA'): 'evaluate.tta' does not change the trained model",
        ),
        (VARIANTS.replace("base: tiny.yaml\n", ""), "'base' is missing"),
        ("base: tiny.yaml\nvariants: {}\n", "'variants' is empty"),
        ("base: tiny.yaml\nvariants:\n  baseline: {}\n  baseline: {}\n", ":4: key 'baseline' appears twice"),
    ],
)
def test_a_bad_variants_file_is_one_line_naming_file_and_key(tmp_path: Path, variants: str, message: str) -> None:
    path = write_study(tmp_path, variants)

    with pytest.raises(ParamsError) as raised:
        load_variants(path, overrides=COMMON)

    assert str(raised.value).startswith(str(path)) and message in str(raised.value)
    assert "\n" not in str(raised.value)


def test_an_unknown_key_in_set_names_the_base_file(tmp_path: Path) -> None:
    path = write_study(tmp_path)

    with pytest.raises(
        ParamsError,
        match=r"tiny\.yaml \(with overrides: train\.epoks\): unknown key 'train\.epoks'; "
        r"did you mean 'train\.epochs'\?",
    ):
        load_variants(path, overrides={"train.epoks": 1})


def test_cli_rejects_an_unknown_variant_key_before_creating_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_study(tmp_path, VARIANTS.replace("model.scale", "model.scal"))

    code = main(
        ["ablate", "--variants", str(path), "--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "reports")]
    )

    err = capsys.readouterr().err
    assert code == 2 and err == (
        f"error: {path} (variant 'scaling x/255'): unknown key 'model.scal'; did you mean 'model.scale'?\n"
    )
    assert not (tmp_path / "reports").exists() and not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    ("variants", "base"), [("ablations.yaml", "best.yaml"), ("ablations_cpu.yaml", "cpu_best.yaml")]
)
def test_the_shipped_variants_change_one_factor_each_off_their_base(variants: str, base: str) -> None:
    ablation = load_variants(PROJECT_ROOT / "params" / variants)

    assert ablation.base_path.name == base and ablation.baseline.overrides == {}
    assert [variant.same_as for variant in ablation.variants] == [None] * len(ablation.variants)
    baseline = ablation.baseline.params.to_dict()
    for variant in ablation.variants[1:]:
        changed = {section for section, values in variant.params.to_dict().items() if values != baseline[section]}
        sections = {key.split(".")[0] for key in variant.overrides}  # one factor: e.g. SGD with its own learning rates
        assert len(sections) == 1 and changed == sections, variant.name


def test_shrinking_the_gpu_variants_for_a_cpu_makes_the_input_size_variants_the_baseline() -> None:
    on_a_cpu = load_variants(
        PROJECT_ROOT / "params" / "ablations.yaml",
        overrides={"model.input_size": 48, "data.train_subset": 3000, "train.epochs": 4},
    )
    assert {variant.name for variant in on_a_cpu.variants if variant.same_as} == {"input 48 px", "input 224 px"}


# --- seed-to-seed noise ----------------------------------------------------------------------------

SEEDS = """base: tiny.yaml
variants:
  baseline: {}
  another seed:
    seed: 6
  a third seed:
    seed: 7
  seed and scaling:
    seed: 8
    model.scale: unit
"""


def scored(names: list[str], accuracies: list[float]) -> pd.DataFrame:
    """A table with :data:`COLUMNS` as :func:`run_ablation` returns it: every PublicTest metric of a variant
    is its entry of ``accuracies``, the other columns are zeros."""
    table = pd.DataFrame(0.0, index=range(len(names)), columns=list(COLUMNS))
    table["variant"], table["overrides"] = names, "x"
    for column in COLUMNS:
        if column.startswith("publictest_") and column != "publictest_n":
            table[column] = accuracies
    return table


def test_seed_noise_is_the_largest_distance_of_a_seed_repeat_from_the_baseline(tmp_path: Path) -> None:
    ablation = load_variants(write_study(tmp_path, SEEDS))
    table = scored(["baseline", "another seed", "a third seed", "seed and scaling"], [0.55, 0.597, 0.53, 0.70])

    noise = seed_noise(table, ablation)
    readable = compare_to_baseline(table, noise=noise)

    assert seed_repeats(ablation) == ["another seed", "a third seed"]  # a variant changing more is not one
    assert noise["PublicTest accuracy, no TTA"] == pytest.approx(4.7)
    assert readable["|Δ| > seed noise"].to_dict() == {
        "seed and scaling": True,
        "another seed": False,
        "baseline": False,
        "a third seed": False,
    }
    assert seed_noise(table.iloc[[0, 3]], ablation) is None  # no seed repeat in the table


def test_photo_scores_take_the_main_face_and_count_a_photo_without_one_as_wrong(tmp_path: Path) -> None:
    import cv2
    import skimage

    from fer_lib.model import load_model
    from fer_lib.params import load_params
    from fer_lib.paths import SHIPPED_MODEL
    from fer_lib.study.ablation import photo_scores

    happy = tmp_path / "photos" / "happy"
    happy.mkdir(parents=True)
    cv2.imwrite(str(happy / "astronaut.png"), cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(happy / "blank.png"), np.full((120, 120, 3), 128, np.uint8))
    params = load_params(
        PROJECT_ROOT / "params" / "default.yaml", overrides={"faces.images": [str(tmp_path / "photos")]}
    )

    scores = photo_scores(params, load_model(SHIPPED_MODEL))

    assert scores["photos_n"] == 2
    assert scores["photos_accuracy"] == 0.5  # the astronaut is happy; the blank photo has no face
    assert scores["photos_macro_f1"] == pytest.approx(2 / 3)  # happy: precision 1, recall 1/2


def test_cli_refuses_a_reuse_table_that_is_not_an_ablation_csv(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    variants = write_study(tmp_path / "study")
    table = tmp_path / "notes.csv"
    table.write_text("variant,accuracy\nbaseline,0.5\n")

    code = main(["ablate", "--variants", str(variants), "--runs", str(tmp_path / "runs"), "--reuse", str(table),
                 "--out", str(tmp_path / "reports")])  # fmt: skip

    err = capsys.readouterr().err
    assert code == 2 and err.splitlines()[-1] == f"error: {table}: not an ablation.csv (no column 'overrides')", err
    assert not (tmp_path / "reports").exists() and not (tmp_path / "runs").exists()
