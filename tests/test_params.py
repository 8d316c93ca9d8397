"""The params schema: shipped presets, strict keys and types, overrides, ranges and data locations."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from fer_lib.errors import ParamsError
from fer_lib.params import Params, load_params, params_from_dict, resolve_data_dir
from fer_lib.paths import PROJECT_ROOT

SHIPPED = sorted(path for path in (PROJECT_ROOT / "params").glob("*.yaml") if not path.name.startswith("ablations"))
"""The shipped params files; ablations*.yaml are variants files (fer_lib.study.ablation, tests/test_ablation.py)."""


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("path", SHIPPED, ids=[path.stem for path in SHIPPED])
def test_every_shipped_params_file_loads_and_is_named_after_its_file(path: Path) -> None:
    params = load_params(path)

    assert params.name == path.stem
    assert params_from_dict(params.to_dict(), origin=str(path)) == params  # what a run records reloads equal


def test_the_four_presets_ship() -> None:
    assert {path.stem for path in SHIPPED} >= {"default", "classroom", "paper_a", "paper_b"}


@pytest.mark.slow
def test_paper_b_builds_to_the_papers_parameter_count() -> None:
    from fer_lib.model import parameter_counts
    from fer_lib.training import new_model

    params = load_params(PROJECT_ROOT / "params" / "paper_b.yaml", overrides={"model.weights": "none"})
    model = new_model(params.model, seed=params.seed)

    assert params.model.input_size == 224
    assert model.input_shape == (None, 48, 48, 1) and model.output_shape == (None, 7)
    assert parameter_counts(model) == {"total": 2_430_663, "trainable": 2_396_551, "non_trainable": 34_112}


@pytest.mark.slow
def test_summary_command_prints_paper_bs_counts(capsys: pytest.CaptureFixture[str]) -> None:
    from fer_lib.study.cli import main

    assert (
        main(["summary", "--params", str(PROJECT_ROOT / "params" / "paper_b.yaml"), "--set", "model.weights=none"]) == 0
    )
    assert (
        "paper_b: 2,430,663 parameters, 2,396,551 trainable, 34,112 non-trainable, input size 224 px"
        in capsys.readouterr().out
    )


def test_an_explicit_empty_mapping_gives_the_defaults(tmp_path: Path) -> None:
    assert load_params(write(tmp_path / "defaults.yaml", "{}\n")) == Params()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("trian:\n  epochs: 1\n", "unknown key 'trian'; did you mean 'train'?"),
        ("train:\n  learnig_rate: 0.1\n", "unknown key 'train.learnig_rate'; did you mean 'train.learning_rate'?"),
        (
            "train:\n  augment:\n    flipp: true\n",
            "unknown key 'train.augment.flipp'; did you mean 'train.augment.flip'?",
        ),
        (
            "zzz: 1\n",
            "unknown key 'zzz'; valid keys: name, description, seed, reproduces, data, model, train, evaluate, faces",
        ),
        ("train:\n  epochs: ten\n", "'train.epochs' must be an integer, got 'ten'"),
        ("train:\n  epochs: 2.5\n", "'train.epochs' must be an integer, got 2.5"),
        ("train:\n  epochs: true\n", "'train.epochs' must be an integer, got True"),
        ("train:\n  learning_rate: fast\n", "'train.learning_rate' must be a number, got 'fast'"),
        ("train:\n  optimizer: adagrad\n", "'train.optimizer' must be one of adam, adamw, sgd; got 'adagrad'"),
        ("model:\n  head_units: 128\n", "'model.head_units' must be a list, got 128"),
        ("model:\n  head_units: [128, x]\n", "'model.head_units[1]' must be an integer, got 'x'"),
        ("train:\n  augment:\n    flip: yes please\n", "'train.augment.flip' must be true or false, got 'yes please'"),
        ("train: 5\n", "'train' must be a mapping, got 5"),
        ("- a\n- b\n", "expected a mapping of parameters, got list"),
    ],
)
def test_bad_keys_and_types_name_the_file_and_key(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path / "p.yaml", text)

    with pytest.raises(ParamsError) as raised:
        load_params(path)

    assert str(raised.value) == f"{path}: {expected}"


def test_invalid_yaml_names_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path / "p.yaml", "name: x\ntrain:\n\tepochs: 1\n")

    with pytest.raises(ParamsError) as raised:
        load_params(path)

    message = str(raised.value)
    assert message.startswith(f"{path}:3:1: not valid YAML (")
    assert "\n" not in message and "unicode string" not in message


def test_binary_file_and_missing_file(tmp_path: Path) -> None:
    binary = tmp_path / "p.yaml"
    binary.write_bytes(b"name: \xff\xfe\x00\n")
    with pytest.raises(ParamsError, match=r"p\.yaml: not a UTF-8 text file"):
        load_params(binary)
    with pytest.raises(ParamsError, match=r"nope\.yaml: params file not found"):
        load_params(tmp_path / "nope.yaml")


def test_float_written_without_a_dot_is_a_number(tmp_path: Path) -> None:
    # PyYAML (YAML 1.1) reads 1e-3 as the string "1e-3"; it is still a learning rate
    params = load_params(write(tmp_path / "p.yaml", "train:\n  learning_rate: 1e-3\n  weight_decay: 5E-5\n"))

    assert params.train.learning_rate == 0.001 and params.train.weight_decay == 5e-5


def test_overrides_set_nested_keys_and_are_validated(tmp_path: Path) -> None:
    path = write(tmp_path / "p.yaml", "train:\n  epochs: 3\n")

    params = load_params(
        path, overrides={"train.epochs": 1, "model.head_units": [8], "train.augment.flip": True, "seed": 7}
    )

    assert (params.train.epochs, params.model.head_units, params.train.augment.flip, params.seed) == (1, [8], True, 7)
    assert load_params(path).train.epochs == 3  # the file itself is untouched
    with pytest.raises(
        ParamsError,
        match=r"\(with overrides: train\.epoks\): unknown key 'train\.epoks'; "
        r"did you mean 'train\.epochs'\?",
    ):
        load_params(path, overrides={"train.epoks": 1})
    with pytest.raises(ParamsError, match=r"'train\.epochs' must be an integer, got 'abc'"):
        load_params(path, overrides={"train.epochs": "abc"})


def test_override_below_a_value_that_is_not_a_section(tmp_path: Path) -> None:
    path = write(tmp_path / "p.yaml", "train: 5\n")

    with pytest.raises(ParamsError) as raised:
        load_params(path, overrides={"train.epochs": 1})

    assert (
        str(raised.value) == f"{path} (with overrides: train.epochs): cannot set 'train.epochs': 'train' is 5, "
        "not a section"
    )


AVERAGE_EPOCHS_RANGE = (
    "train.average_epochs must be at least 1 and at most the epochs after any head-only "
    "warm-up (train.epochs - train.warmup_epochs) for select: average"
)


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ({"train.epochs": 0}, "train.epochs must be at least 1"),
        ({"train.batch_size": 0}, "train.batch_size must be at least 1"),
        ({"train.learning_rate": 0}, "train.learning_rate must be positive"),
        ({"train.learning_rate": float("nan")}, "train.learning_rate must be positive"),
        ({"train.head_learning_rate": -1}, "train.head_learning_rate must be positive"),
        ({"train.weight_decay": -0.1}, "train.weight_decay must not be negative"),
        ({"model.train_from_block": 17}, "model.train_from_block must be 0 (all) or a block 1-16"),
        ({"model.train_from_block": -1}, "model.train_from_block must be 0 (all) or a block 1-16"),
        ({"train.label_smoothing": 1.0}, "train.label_smoothing must be in [0, 1)"),
        ({"train.train_eval_subset": 0}, "train.train_eval_subset must be at least 1"),
        ({"train.augment.shift_fraction": 1.5}, "train.augment.shift_fraction must be in [0, 1)"),
        ({"train.augment.erasing_probability": 2}, "train.augment.erasing_probability must be in [0, 1]"),
        ({"train.augment.rotation_degrees": -5}, "train.augment.rotation_degrees must not be negative"),
        ({"train.augment.crop_size": 48}, "train.augment.crop_size must be 0 (off) or 24-47"),
        ({"train.augment.mixup_alpha": -0.2}, "train.augment.mixup_alpha must not be negative"),
        ({"model.input_size": 16}, "model.input_size must be at least 32"),
        ({"model.dropout": 1.0}, "model.dropout must be in [0, 1)"),
        ({"model.alpha": 0}, "model.alpha must be positive"),
        ({"model.head_units": [64, 0]}, "model.head_units must all be at least 1"),
        ({"model.bn_momentum": 1.0}, "model.bn_momentum must be in [0, 1)"),
        ({"data.synthetic_per_class": 2}, "data.synthetic_per_class must be at least 3"),
        ({"data.train_subset": 0}, "data.train_subset must be at least 1"),
        ({"faces.smoothing": 1.0}, "faces.smoothing must be in [0, 1)"),
        ({"faces.scale_factor": 1.0}, "faces.scale_factor must be greater than 1"),
        ({"faces.margin": -0.1}, "faces.margin must not be negative"),
        ({"faces.min_size": 0}, "faces.min_size must be at least 1"),
        ({"evaluate.mistakes_shown": -1}, "evaluate.mistakes_shown must not be negative"),
        (
            {"model.freeze": "staged", "train.epochs": 2, "train.warmup_epochs": 2},
            "train.warmup_epochs must be smaller than train.epochs for freeze: staged",
        ),
        ({"train.select": "average", "train.epochs": 3, "train.average_epochs": 4}, AVERAGE_EPOCHS_RANGE),
        ({"train.select": "average", "train.average_epochs": 0}, AVERAGE_EPOCHS_RANGE),
        (
            {
                "train.select": "average",
                "model.freeze": "staged",
                "train.epochs": 3,
                "train.warmup_epochs": 1,
                "train.average_epochs": 3,
            },
            AVERAGE_EPOCHS_RANGE,
        ),
    ],
)
def test_values_out_of_range_are_rejected(tmp_path: Path, override: dict, expected: str) -> None:
    path = write(tmp_path / "p.yaml", "{}\n")

    with pytest.raises(ParamsError) as raised:
        load_params(path, overrides=override)

    assert str(raised.value).startswith(str(path)) and str(raised.value).endswith(f": {expected}")


def test_boundary_values_are_accepted(tmp_path: Path) -> None:
    params = load_params(
        write(tmp_path / "p.yaml", "{}\n"),
        overrides={
            "model.input_size": 32,
            "model.dropout": 0.0,
            "train.epochs": 1,
            "train.label_smoothing": 0.0,
            "train.augment.erasing_probability": 1.0,
            "data.synthetic_per_class": 3,
            "model.bn_momentum": 0.0,
            "faces.margin": 0.0,
            "model.freeze": "staged",
            "train.warmup_epochs": 0,
        },
    )

    assert params.model.input_size == 32 and params.train.augment.erasing_probability == 1.0


def test_data_location(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FER2013_DIR", raising=False)
    synthetic = Params()
    fer = dataclasses.replace(Params(), data=dataclasses.replace(Params().data, source="fer2013"))

    assert resolve_data_dir(synthetic) is None
    assert resolve_data_dir(synthetic, override=str(tmp_path)) == tmp_path  # --data implies FER-2013
    with pytest.raises(ParamsError) as raised:
        resolve_data_dir(fer, origin="params/x.yaml")
    assert str(raised.value).startswith("params/x.yaml: data.source is fer2013 but no location is given; pass --data")
    with pytest.raises(ParamsError, match=r"^params 'default': data\.source is fer2013"):
        resolve_data_dir(fer)
    monkeypatch.setenv("FER2013_DIR", str(tmp_path))
    assert resolve_data_dir(fer) == tmp_path
    relative = dataclasses.replace(fer, data=dataclasses.replace(fer.data, dir="data/fer2013"))
    assert resolve_data_dir(relative) == PROJECT_ROOT / "data" / "fer2013"  # data.dir beats the env var


# --- inheritance: base ------------------------------------------------------------------------------


@pytest.mark.parametrize("paper", ["paper_a", "paper_b"])
def test_cpu_paper_files_change_only_the_input_size(paper: str) -> None:
    recipe = load_params(PROJECT_ROOT / "params" / f"{paper}.yaml")
    cpu = load_params(PROJECT_ROOT / "params" / f"{paper}_cpu.yaml")

    assert cpu.model.input_size < recipe.model.input_size == 224
    assert cpu.faces.model == recipe.faces.model == "run"  # the photo and clip checks use the paper's model
    assert (
        dataclasses.replace(
            cpu, name=recipe.name, description=recipe.description, model=dataclasses.replace(cpu.model, input_size=224)
        )
        == recipe
    )


def test_base_merges_sections_key_by_key_relative_to_the_file(tmp_path: Path) -> None:
    (tmp_path / "recipes").mkdir()
    write(
        tmp_path / "recipes" / "root.yaml",
        "name: root\nmodel: {input_size: 64, head_units: [8, 4]}\ntrain: {epochs: 7, augment: {flip: true}}\n",
    )
    write(tmp_path / "recipes" / "middle.yaml", "base: root.yaml\ntrain: {augment: {rotation_degrees: 5}}\n")
    child = write(tmp_path / "child.yaml", "base: recipes/middle.yaml\nname: child\nmodel: {head_units: [16]}\n")

    params = load_params(child, overrides={"train.epochs": 2})

    assert (params.name, params.model.input_size, params.model.head_units) == ("child", 64, [16])
    assert (params.train.epochs, params.train.augment.flip, params.train.augment.rotation_degrees) == (2, True, 5)


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        (
            {"child.yaml": "base: root.yaml\n", "root.yaml": "model: {input_sise: 64}\n"},
            "{tmp}/root.yaml: unknown key 'model.input_sise'; did you mean 'model.input_size'?",
        ),
        (
            {"child.yaml": "base: root.yaml\nmodle: {}\n", "root.yaml": "{}\n"},
            "{tmp}/child.yaml: unknown key 'modle'; did you mean 'model'?",
        ),
        ({"child.yaml": "base: missing.yaml\n"}, "{tmp}/child.yaml: base params file {tmp}/missing.yaml not found"),
        (
            {"child.yaml": "base: [root.yaml]\n"},
            "{tmp}/child.yaml: 'base' must be the name of a params file, got ['root.yaml']",
        ),
        (
            {"child.yaml": "base: root.yaml\n", "root.yaml": "base: child.yaml\n"},
            "{tmp}/child.yaml: params files inherit from each other in a cycle: {tmp}/child.yaml -> {tmp}/root.yaml -> "
            "{tmp}/child.yaml",
        ),
        (
            {"child.yaml": "base: child.yaml\n"},
            "{tmp}/child.yaml: params files inherit from each other in a cycle: {tmp}/child.yaml -> {tmp}/child.yaml",
        ),
        (
            {
                "child.yaml": "base: root.yaml\ntrain: {warmup_epochs: 3}\nmodel: {freeze: staged}\n",
                "root.yaml": "train: {epochs: 3}\n",
            },
            "{tmp}/child.yaml: train.warmup_epochs must be smaller than train.epochs for freeze: staged",
        ),
    ],
)
def test_inheritance_errors_are_one_line_naming_the_files(tmp_path: Path, files: dict[str, str], expected: str) -> None:
    for name, text in files.items():
        write(tmp_path / name, text)

    with pytest.raises(ParamsError) as raised:
        load_params(tmp_path / "child.yaml")

    assert str(raised.value) == expected.format(tmp=tmp_path.resolve() if "cycle" in expected else tmp_path)


def test_base_is_not_a_parameter(tmp_path: Path) -> None:
    path = write(tmp_path / "p.yaml", "name: p\n")

    with pytest.raises(ParamsError, match="unknown key 'base'"):
        load_params(path, overrides={"base": "other.yaml"})
    assert "base" not in load_params(path).to_dict()


@pytest.mark.parametrize(("recorded", "videos"), [(None, []), ("clips/talk.mp4", ["clips/talk.mp4"])])
def test_runs_recorded_before_faces_videos_still_load(recorded: str | None, videos: list[str]) -> None:
    params = params_from_dict({"name": "old-run", "faces": {"video": recorded, "smoothing": 0.5}})

    assert params.faces.videos == videos and params.faces.smoothing == 0.5


def test_the_old_video_key_beside_the_new_one_is_an_error() -> None:
    with pytest.raises(ParamsError, match="faces.video"):
        params_from_dict({"faces": {"video": "a.mp4", "videos": ["b.mp4"]}})
