"""Safety by inspection: nothing the project loads can run code, and the webcam records only when asked.

The source checks parse every Python file of ``fer_lib/``, ``experiments/`` and ``benchmarks/`` and the
code cells of ``notebooks/`` (with their ``%`` magics removed), so a string or comment that merely
mentions ``pickle`` is not a finding, and a call spread over several lines is still found.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from fer_lib.paths import PROJECT_ROOT

PYTHON_FOLDERS = ("fer_lib", "experiments", "benchmarks")

UNSAFE_MODULES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "joblib", "shelve", "marshal"}
"""Modules whose loading runs code from the file."""

UNSAFE_YAML = {
    "load",
    "load_all",
    "unsafe_load",
    "unsafe_load_all",
    "full_load",
    "full_load_all",
    "Loader",
    "UnsafeLoader",
    "FullLoader",
}
"""yaml attributes that build arbitrary Python objects (``yaml.safe_load`` is the one to use)."""


def project_sources() -> dict[str, ast.Module]:
    """Parse every project source: ``{display name: syntax tree}``."""
    trees = {}
    for folder in PYTHON_FOLDERS:
        for path in sorted((PROJECT_ROOT / folder).rglob("*.py")):
            trees[str(path.relative_to(PROJECT_ROOT))] = ast.parse(path.read_text(encoding="utf-8"), str(path))
    for path in sorted((PROJECT_ROOT / "notebooks").glob("*.ipynb")):
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        for number, cell in enumerate((cell for cell in cells if cell["cell_type"] == "code"), start=1):
            source = "".join(cell["source"])
            code = "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())
            trees[f"{path.relative_to(PROJECT_ROOT)} code cell {number}"] = ast.parse(code)
    return trees


SOURCES = project_sources()


def dotted(node: ast.AST) -> str:
    """``a.b.c`` for a Name/Attribute chain, else ``""``."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = dotted(node.value)
        return f"{base}.{node.attr}" if base else node.attr
    return ""


def calls(tree: ast.Module) -> list[ast.Call]:
    return [node for node in ast.walk(tree) if isinstance(node, ast.Call)]


def keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((item.value for item in call.keywords if item.arg == name), None)


def is_constant(node: ast.expr | None, value: object) -> bool:
    return isinstance(node, ast.Constant) and node.value is value


def findings(check) -> list[str]:  # noqa: ANN001 - check(tree) -> list of (line, text)
    return [f"{name}:{line}: {text}" for name, tree in SOURCES.items() for line, text in check(tree)]


def test_the_scan_sees_the_project() -> None:
    assert "fer_lib/data.py" in SOURCES and "fer_lib/model.py" in SOURCES
    assert any(name.startswith("notebooks/") for name in SOURCES)
    assert findings(
        lambda tree: [(call.lineno, "np.load") for call in calls(tree) if dotted(call.func) == "np.load"]
    )  # the cache reader is found


def test_no_pickle_like_module_is_imported() -> None:
    def check(tree: ast.Module) -> list[tuple[int, str]]:
        found = []
        for node in ast.walk(tree):
            names = (
                [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            found += [(node.lineno, f"imports {name}") for name in names if name.split(".")[0] in UNSAFE_MODULES]
        return found

    assert findings(check) == []


def test_numpy_files_are_loaded_without_pickle() -> None:
    def check(tree: ast.Module) -> list[tuple[int, str]]:
        found = []
        for call in calls(tree):
            allow = keyword(call, "allow_pickle")
            if allow is not None and not is_constant(allow, False):
                found.append((call.lineno, "allow_pickle is not False"))
            if dotted(call.func) in ("np.load", "numpy.load") and not is_constant(allow, False):
                found.append((call.lineno, "np.load without an explicit allow_pickle=False"))
        return found

    assert findings(check) == []


def test_yaml_is_only_safe_loaded() -> None:
    def check(tree: ast.Module) -> list[tuple[int, str]]:
        return [
            (node.lineno, f"uses yaml.{node.attr}")
            for node in ast.walk(tree)
            if isinstance(node, ast.Attribute) and dotted(node.value) == "yaml" and node.attr in UNSAFE_YAML
        ]

    assert findings(check) == []
    assert any("yaml.safe_load" in ast.unparse(tree) for tree in SOURCES.values())


def test_every_keras_load_model_call_uses_safe_mode() -> None:
    def check(tree: ast.Module) -> list[tuple[int, str]]:
        found = []
        for call in calls(tree):
            name = dotted(call.func)
            if (
                name.endswith("load_model")
                and name.startswith(("keras.", "tf.keras.", "tensorflow.keras."))
                and not is_constant(keyword(call, "safe_mode"), True)
            ):
                found.append((call.lineno, f"{name}() without safe_mode=True"))
            if keyword(call, "safe_mode") is not None and not is_constant(keyword(call, "safe_mode"), True):
                found.append((call.lineno, "safe_mode is not True"))
            if name.endswith("enable_unsafe_deserialization"):
                found.append((call.lineno, name))
        return found

    def imports_of_load_model(tree: ast.Module) -> list[tuple[int, str]]:
        return [
            (node.lineno, f"from {node.module} import load_model")
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom)
            and any(alias.name == "load_model" for alias in node.names)
            and node.module != "fer_lib.model"
        ]

    assert findings(check) == []
    assert findings(imports_of_load_model) == []  # a bare load_model(...) is always fer_lib's safe one
    keras_calls = findings(
        lambda tree: [(call.lineno, "") for call in calls(tree) if dotted(call.func) == "keras.models.load_model"]
    )
    assert any(name.startswith("fer_lib/model.py:") for name in keras_calls)


def test_no_eval_exec_or_shell_commands() -> None:
    def check(tree: ast.Module) -> list[tuple[int, str]]:
        found = [
            (call.lineno, f"{dotted(call.func)}()") for call in calls(tree) if dotted(call.func) in ("eval", "exec")
        ]
        found += [(call.lineno, "shell=True") for call in calls(tree) if is_constant(keyword(call, "shell"), True)]
        found += [
            (call.lineno, "extractall without filter=")
            for call in calls(tree)
            if dotted(call.func).endswith("extractall") and keyword(call, "filter") is None
        ]
        return found

    assert findings(check) == []


def test_the_checks_catch_what_they_look_for() -> None:
    """Guard against checks that cannot fail: each finds its target in a small bad snippet."""
    bad = ast.parse(
        "import pickle\nimport numpy as np\nimport yaml\nimport keras\n"
        "np.load('x.npy')\nnp.load('y.npy', allow_pickle=True)\nyaml.load(text, Loader=yaml.Loader)\n"
        "keras.models.load_model('m.keras')\nkeras.saving.load_model('m.keras', safe_mode=False)\n"
        "eval(text)\nsubprocess.run(text, shell=True)\n"
    )
    global SOURCES
    saved, SOURCES = SOURCES, {"bad.py": bad}
    try:
        for test in (
            test_no_pickle_like_module_is_imported,
            test_numpy_files_are_loaded_without_pickle,
            test_every_keras_load_model_call_uses_safe_mode,
            test_no_eval_exec_or_shell_commands,
        ):
            with pytest.raises(AssertionError):
                test()
        with pytest.raises(AssertionError):
            test_yaml_is_only_safe_loaded()
    finally:
        SOURCES = saved


# --- the webcam records nothing unless asked -------------------------------------------------------


class FakeDetector:
    """One fixed face box in every frame."""

    def detect(self, image: np.ndarray) -> np.ndarray:
        return np.array([[8, 8, 32, 32]], dtype=np.int32)


def write_clip(path: Path, frames: int = 6) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for index in range(frames):
        writer.write(np.full((48, 64, 3), 40 * index % 255, dtype=np.uint8))
    writer.release()
    return path


@pytest.fixture
def fake_camera(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    """A clip standing in for the camera, a window that never closes, and spies on every way to save a frame."""
    from fer_lib.classifiers import EmotionClassifier

    class Uniform(EmotionClassifier):
        def _run(self, inputs: np.ndarray) -> np.ndarray:
            return np.full((len(inputs), 7), 1 / 7, dtype=np.float32)

    clip = write_clip(tmp_path / "camera.avi")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    saved: list[str] = []
    real_writer = cv2.VideoWriter

    def video_writer(*args: object, **kwargs: object) -> cv2.VideoWriter:
        saved.append(f"VideoWriter{args[:1]}")
        return real_writer(*args, **kwargs)

    monkeypatch.setattr(cv2, "VideoWriter", video_writer)
    monkeypatch.setattr(cv2, "imwrite", lambda *args, **kwargs: saved.append(f"imwrite{args[:1]}") or True)
    for name, value in (
        ("namedWindow", None),
        ("imshow", None),
        ("destroyWindow", None),
        ("waitKey", -1),
        ("getWindowProperty", 1.0),
    ):
        monkeypatch.setattr(cv2, name, lambda *args, value=value, **kwargs: value)
    return {"clip": clip, "work": work, "saved": saved, "classifier": Uniform(), "tmp": tmp_path}


def files_under(folder: Path) -> set[Path]:
    return {path for path in folder.rglob("*") if path.is_file()}


def test_webcam_saves_no_frames_without_record(fake_camera: dict) -> None:
    from fer_lib.study.webcam import run_webcam

    before = files_under(fake_camera["tmp"])

    summary = run_webcam(str(fake_camera["clip"]), FakeDetector(), fake_camera["classifier"], detect_every=1)

    assert summary["frames"] == 6 and summary["record"] is None
    assert fake_camera["saved"] == []
    assert files_under(fake_camera["tmp"]) == before


def test_webcam_records_only_to_the_file_asked_for(fake_camera: dict) -> None:
    from fer_lib.study.webcam import run_webcam

    before = files_under(fake_camera["tmp"])
    target = fake_camera["tmp"] / "out" / "rec.mp4"

    summary = run_webcam(str(fake_camera["clip"]), FakeDetector(), fake_camera["classifier"], record=target)

    assert summary["frames"] == 6 and summary["record"] == str(target)
    assert len(fake_camera["saved"]) == 1 and fake_camera["saved"][0].startswith("VideoWriter")
    assert files_under(fake_camera["tmp"]) - before == {target}
    capture = cv2.VideoCapture(str(target))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 6
    capture.release()


def test_webcam_command_records_nothing_by_default() -> None:
    from fer_lib.study.cli import build_parser

    args = build_parser().parse_args(["webcam"])

    assert args.record is None
    assert build_parser().parse_args(["webcam", "--record", "x.mp4"]).record == "x.mp4"
