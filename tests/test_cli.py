"""The CLI's error contract for ``train`` and ``report``, and for errors that are bugs.

A user error is exit code 2 and exactly one stderr line ``error: <path>: <problem>`` (the key, and the
nearest valid key for typos), with no traceback unless ``--debug``; nothing is created or changed on
disk by a command that fails before it starts, and a bad params or variants file fails before Keras is
imported. Commands run in-process through :func:`fer_lib.study.cli.main`; one ``train`` case runs as a real
subprocess.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import fer_lib.study.cli.data
import fer_lib.study.report  # noqa: F401 - heavy imports (Keras, papermill) at collection, not inside the first test
import fer_lib.training  # noqa: F401
from fer_lib.errors import DataError
from fer_lib.paths import PROJECT_ROOT
from fer_lib.study.cli import main

TINY = """name: tiny
data:
  synthetic_per_class: 3
model:
  input_size: 32
  weights: none
train:
  epochs: 1
  batch_size: 8
  train_eval_subset: 7
"""


def run_cli(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    code = main([str(arg) for arg in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_error(code: int, err: str, expected: str, exact: bool = False) -> str:
    """Exit code 2 and exactly one stderr line ``error: expected...`` (or exactly it), no traceback."""
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, f"expected one stderr line, got:\n{err}"
    if exact:
        assert lines[0] == f"error: {expected}"
    else:
        assert lines[0].startswith(f"error: {expected}"), lines[0]
    assert code == 2
    return lines[0]


def snapshot(folder: Path) -> dict[Path, tuple[bytes, int]]:
    """Every file below ``folder`` with its content and modification time."""
    return {path: (path.read_bytes(), path.stat().st_mtime_ns) for path in folder.rglob("*") if path.is_file()}


@pytest.fixture(autouse=True)
def user_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No FER2013_DIR, a private dataset cache, and the working folder in tmp_path."""
    monkeypatch.delenv("FER2013_DIR", raising=False)
    monkeypatch.setenv("FER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def params(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    return path


# --- train: the params file ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("trian:\n  epochs: 1\n", "unknown key 'trian'; did you mean 'train'?"),
        ("train:\n  learnig_rate: 0.01\n", "unknown key 'train.learnig_rate'; did you mean 'train.learning_rate'?"),
        ("modle:\n  input_size: 32\n", "unknown key 'modle'; did you mean 'model'?"),
        ('train:\n  epochs: "ten"\n', "'train.epochs' must be an integer, got 'ten'"),
        ("model:\n  freeze: partial\n", "'model.freeze' must be one of none, backbone, staged; got 'partial'"),
        ("train:\n  epochs: 0\n", "train.epochs must be at least 1"),
    ],
)
def test_train_rejects_bad_params_naming_file_and_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, message: str
) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(text)

    code, out, err = run_cli(capsys, "train", "--params", path, "--out", tmp_path / "run")

    assert_one_error(code, err, f"{path}: {message}", exact=True)
    assert out == "" and not (tmp_path / "run").exists()


def test_train_rejects_invalid_yaml_with_its_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("name: x\ntrain:\n  epochs: [1, 2\n  batch_size: 8\n")

    code, _, err = run_cli(capsys, "train", "--params", path)

    line = assert_one_error(code, err, f"{path}:4:13: not valid YAML (while parsing a flow sequence")
    assert "<unicode string>" not in line


def test_train_with_a_missing_params_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "train", "--params", tmp_path / "nope.yaml")

    assert_one_error(code, err, f"{tmp_path / 'nope.yaml'}: params file not found", exact=True)


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (["train.epochs"], "--set train.epochs: expected KEY=VALUE, e.g. train.epochs=2"),
        (["=3"], "--set =3: expected KEY=VALUE"),
        (["train.epochs=[1"], "--set train.epochs=[1: the value is not valid YAML ("),
        (["train.epochs=two"], "{params} (with overrides: train.epochs): 'train.epochs' must be an integer, got 'two'"),
        (["trian.epochs=2"], "{params} (with overrides: trian.epochs): unknown key 'trian'; did you mean 'train'?"),
        (
            ["train.epocs=2"],
            "{params} (with overrides: train.epocs): unknown key 'train.epocs'; did you mean 'train.epochs'?",
        ),
        (
            ["train=5", "train.epochs=1"],
            "{params} (with overrides: train, train.epochs): cannot set 'train.epochs': 'train' is 5, not a section",
        ),
    ],
)
def test_train_rejects_bad_set_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], params: Path, sets: list[str], message: str
) -> None:
    argv = [item for pair in sets for item in ("--set", pair)]

    code, _, err = run_cli(capsys, "train", "--params", params, *argv, "--out", tmp_path / "run")

    assert_one_error(code, err, message.format(params=params))
    assert not (tmp_path / "run").exists()


# --- train: weights, data and the output folder ----------------------------------------------------


def test_train_with_a_missing_weights_file_says_what_to_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], params: Path
) -> None:
    missing = tmp_path / "weights" / "mobilenet_v2.h5"

    code, out, err = run_cli(
        capsys, "train", "--params", params, "--set", f"model.weights={missing}", "--out", tmp_path / "run"
    )

    line = assert_one_error(code, err, f"{missing}: ImageNet MobileNetV2 weights file not found")
    for advice in ("set env FER_WEIGHTS", "model.weights: imagenet (needs internet)", "model.weights: none"):
        assert advice in line
    assert not (tmp_path / "run").exists()  # a failed start leaves no half-made run that blocks the next try


def test_train_with_default_weights_missing_names_the_env_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], params: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FER_WEIGHTS", str(tmp_path / "elsewhere.h5"))
    runs = PROJECT_ROOT / "runs"
    before = set(runs.iterdir()) if runs.is_dir() else set()

    code, _, err = run_cli(capsys, "train", "--params", params, "--set", "model.weights=default")  # no --out

    assert_one_error(code, err, f"{tmp_path / 'elsewhere.h5'}: ImageNet MobileNetV2 weights file not found")
    assert {
        path for path in (set(runs.iterdir()) if runs.is_dir() else set()) - before if path.name.startswith("tiny-")
    } == set()  # no empty runs/tiny-<time> folder left behind


def test_train_fer2013_without_a_location(tmp_path: Path, capsys: pytest.CaptureFixture[str], params: Path) -> None:
    code, _, err = run_cli(
        capsys, "train", "--params", params, "--set", "data.source=fer2013", "--out", tmp_path / "run"
    )

    line = assert_one_error(code, err, f"{params}: data.source is fer2013 but no location is given")
    assert "--data DIR" in line and "FER2013_DIR" in line
    assert not (tmp_path / "run").exists()


def test_train_with_missing_data_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str], params: Path) -> None:
    code, _, err = run_cli(capsys, "train", "--params", params, "--data", tmp_path / "fer", "--out", tmp_path / "run")

    assert_one_error(code, err, f"{tmp_path / 'fer'}: not found")
    assert not (tmp_path / "run").exists()


def test_train_refuses_an_out_folder_holding_other_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], params: Path
) -> None:
    out = tmp_path / "mine"
    (out / "notes").mkdir(parents=True)
    (out / "thesis.txt").write_text("three years of work")
    (out / "notes" / "todo.md").write_text("- finish")
    before = snapshot(out)

    code, stdout, err = run_cli(capsys, "train", "--params", params, "--out", out)

    assert_one_error(
        code, err, f"{out}: folder exists and is not a training run; choose a new output folder", exact=True
    )
    assert snapshot(out) == before and set(out.rglob("*")) == set(before) | {out / "notes"}


@pytest.mark.parametrize("where", ["a file", "below a file"])
def test_train_refuses_an_out_path_that_cannot_be_a_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], params: Path, where: str
) -> None:
    existing = tmp_path / "results.csv"
    existing.write_text("a,b\n")
    out = existing if where == "a file" else existing / "run"

    code, _, err = run_cli(capsys, "train", "--params", params, "--out", out)

    assert_one_error(code, err, f"{out}: ")
    assert existing.read_text() == "a,b\n"


@pytest.mark.slow
def test_train_bad_key_as_a_subprocess(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("train:\n  learnig_rate: 0.01\n")
    env = {key: value for key, value in os.environ.items() if key != "FER2013_DIR"}

    result = subprocess.run(
        [sys.executable, "-m", "fer_lib", "train", "--params", str(path)],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == f"error: {path}: unknown key 'train.learnig_rate'; did you mean 'train.learning_rate'?\n"


@pytest.mark.parametrize(
    ("command", "option", "text", "error"),
    [
        ("train", "--params", "train:\n  learnig_rate: 0.01\n", "unknown key 'train.learnig_rate'"),
        ("ablate", "--variants", "base: missing.yaml\nvariants: {baseline: {}}\n", "params file not found"),
        ("report", "--params", "name: x\nevaluate:\n  ttaa: flip\n", "unknown key 'evaluate.ttaa'"),
    ],
)
def test_a_bad_params_or_variants_file_fails_before_keras_is_imported(
    tmp_path: Path, command: str, option: str, text: str, error: str
) -> None:
    """The check a command runs before the Keras import: a typo costs a second, not TensorFlow's start."""
    path = tmp_path / "file.yaml"
    path.write_text(text)
    probe = (
        "import sys\nfrom fer_lib.study.cli import main\ncode = main(sys.argv[1:])\nprint(code, 'keras' in sys.modules)"
    )

    result = subprocess.run(
        [sys.executable, "-c", probe, command, option, str(path)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert result.stdout == "2 False\n", result.stderr
    assert error in result.stderr and len(result.stderr.splitlines()) == 1


# --- report -----------------------------------------------------------------------------------------


def test_report_rejects_an_unknown_key_before_creating_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("name: x\nevaluate:\n  ttaa: flip\n")

    code, out, err = run_cli(capsys, "report", "--params", path, "--out", tmp_path / "reports")

    assert_one_error(code, err, f"{path}: unknown key 'evaluate.ttaa'; did you mean 'evaluate.tta'?", exact=True)
    assert out == "" and not (tmp_path / "reports").exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["fer2013 without a location"], "{params}: data.source is fer2013 but no location is given"),
        (["--data", "{tmp}/fer"], "{tmp}/fer: not found; expected a FER-2013 image folder or fer2013.csv"),
        (["--model", "{tmp}/model.keras"], "{tmp}/model.keras: model file not found"),
        (["--train-run", "{tmp}/run"], "{tmp}/run: not a finished training run"),
    ],
)
def test_report_checks_its_inputs_before_running_notebooks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], params: Path, argv: list[str], message: str
) -> None:
    if argv == ["fer2013 without a location"]:
        params.write_text(TINY.replace("data:\n", "data:\n  source: fer2013\n"))
        argv = []

    code, out, err = run_cli(
        capsys, "report", "--params", params, "--out", tmp_path / "reports", *[arg.format(tmp=tmp_path) for arg in argv]
    )

    assert_one_error(code, err, message.format(params=params, tmp=tmp_path))
    assert out == "" and not (tmp_path / "reports").exists()


# --- errors that are bugs, --debug, and one-line messages ------------------------------------------


def fail_with(error: Exception):  # noqa: ANN201
    def handler(args: object) -> int:
        raise error

    return handler


def test_an_unexpected_error_is_one_line_with_exit_code_1(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fer_lib.study.cli.data, "run_audit", fail_with(RuntimeError("\nboom\nmore detail")))

    code, _, err = run_cli(capsys, "data", "audit")

    assert code == 1
    assert err == "error: unexpected RuntimeError: boom (rerun with --debug for details)\n"


def test_debug_shows_the_traceback(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fer_lib.study.cli.data, "run_audit", fail_with(RuntimeError("boom")))

    code, _, err = run_cli(capsys, "--debug", "data", "audit")

    assert code == 1
    assert err.startswith("Traceback (most recent call last):") and "raise error" in err
    assert err.splitlines()[-1] == "error: unexpected RuntimeError: boom (rerun with --debug for details)"


def test_a_user_error_message_is_always_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fer_lib.study.cli.data, "run_audit", fail_with(DataError("x.csv: bad\n  on two lines")))

    code, _, err = run_cli(capsys, "data", "audit")

    assert (code, err) == (2, "error: x.csv: bad on two lines\n")


def test_an_os_error_on_a_file_is_a_user_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        fer_lib.study.cli.data, "run_audit", fail_with(PermissionError(13, "Permission denied", "/data/fer2013.csv"))
    )

    code, _, err = run_cli(capsys, "data", "audit")

    assert (code, err) == (2, "error: /data/fer2013.csv: Permission denied\n")
    monkeypatch.setattr(fer_lib.study.cli.data, "run_audit", fail_with(OSError("no file named")))
    code, _, err = run_cli(capsys, "data", "audit")
    assert (code, err) == (1, "error: unexpected OSError: no file named (rerun with --debug for details)\n")


def test_ctrl_c_is_one_line(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fer_lib.study.cli.data, "run_audit", fail_with(KeyboardInterrupt()))

    code, _, err = run_cli(capsys, "data", "audit")

    assert code == 130 and len(err.splitlines()) == 1 and err.startswith("error: interrupted")


def test_a_params_key_given_twice_is_an_error_naming_the_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "twice.yaml"
    path.write_text("name: twice\ntrain:\n  epochs: 2\n  epochs: 20\n")
    code, _, err = run_cli(capsys, "train", "--params", path)
    assert_one_error(code, err, f"{path}:4: key 'epochs' appears twice", exact=True)


@pytest.mark.parametrize(
    "argv", [["evaluate", "--model", "m.keras", "--data", "d", "--split", "Test"], ["no-such-command"], ["train"]]
)
def test_usage_errors_are_one_line(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert len(err.splitlines()) == 1 and err.startswith("error: python -m fer_lib"), err
