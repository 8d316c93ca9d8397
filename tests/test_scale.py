"""Past one machine on a local Ray with 2 CPUs: ``batch`` (one task per clip or photo) and ``ablate --ray``.

One local Ray serves the module (its start takes seconds); ``batch`` and ``run_ablation`` join it.
Ray is the ``scale`` extra: without it these tests skip, except in CI (env CI set), where
``make test`` installs it and a missing Ray is a failure.
"""

from __future__ import annotations

import io
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import psutil
import pytest
from conftest import EAGER_SUBPROCESS, TINY_ABLATION, write_params

from fer_lib import video
from fer_lib.errors import ClusterError, RunExistsError
from fer_lib.labels import EMOTIONS
from fer_lib.paths import PROJECT_ROOT
from fer_lib.study.ablation import pending_variants, run_ablation, variant_run_dir
from fer_lib.study.batch import SETTINGS_FILE, BatchSettings, check_settings, run_batch, worker_tools
from fer_lib.study.cli import main
from fer_lib.study.cluster import check_reachable
from fer_lib.study.runs import is_finished
from fer_lib.study.variants import make_ablation
from fer_lib.synthetic import make_demo_clip, write_sample_photos

ray = pytest.importorskip("ray") if not os.environ.get("CI") else __import__("ray")


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    """A local Ray with 2 CPUs for the module (2 workers); its workers inherit this process's environment,
    with Keras' steps run eagerly as in this process (:data:`conftest.EAGER_SUBPROCESS`; Ray's own
    processes start without it, since importing TensorFlow in each can time out the node's start)."""
    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        logging_level=logging.ERROR,
        runtime_env={"env_vars": EAGER_SUBPROCESS},
    )
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of two short demo clips (one in a sub-folder), a photo, a corrupt clip and a README."""
    folder = tmp_path_factory.mktemp("inputs")
    make_demo_clip(folder / "a.mp4", seconds=2, fps=10, size=(320, 240))
    make_demo_clip(folder / "more" / "b.avi", seconds=1.5, fps=10, size=(240, 180))
    write_sample_photos(folder / "photos")  # astronaut (a face), camera, chelsea (a cat), coffee
    (folder / "broken.mp4").write_bytes(os.urandom(4000))
    (folder / "README.md").write_text("not an input")
    return folder


def video_command_csv(clip: Path, out: Path) -> pd.DataFrame:
    """The per-frame table that ``python -m fer_lib video CLIP --csv`` writes."""
    assert main(["video", str(clip), "--csv", str(out), "--no-progress"]) == 0
    return pd.read_csv(out)


def snapshot(folder: Path) -> dict[Path, tuple[bytes, int]]:
    """Every file below ``folder`` with its content and modification time."""
    return {path: (path.read_bytes(), path.stat().st_mtime_ns) for path in folder.rglob("*") if path.is_file()}


# --- batch -----------------------------------------------------------------------------------------


@pytest.mark.slow
def test_batch_gives_the_video_commands_rows_and_lists_a_corrupt_file(
    local_ray: None, inputs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"

    code = main(["batch", str(inputs), "--out", str(out), "--workers", "2"])

    printed = capsys.readouterr()
    assert code == 2  # one file failed
    assert printed.err.strip() == f"error: 1 file(s) failed, each listed in {out / 'summary.csv'} with its reason"
    summary = pd.read_csv(out / "summary.csv", keep_default_na=False)
    assert summary["file"].tolist() == [
        "a.mp4",
        "broken.mp4",
        "more/b.avi",
        "photos/astronaut.png",
        "photos/camera.png",
        "photos/chelsea.png",
        "photos/coffee.png",
    ]  # README.md is not an input
    broken = summary.set_index("file").loc["broken.mp4"]
    assert broken["status"] == "failed" and broken["csv"] == ""
    assert (
        broken["error"]
        == f"{inputs / 'broken.mp4'}: cannot open as a video (not a video file, or a codec OpenCV's FFmpeg lacks)"
    )
    for clip in ("a.mp4", "more/b.avi"):
        expected = video_command_csv(inputs / clip, tmp_path / f"{Path(clip).name}.csv")
        pd.testing.assert_frame_equal(pd.read_csv(out / f"{clip}.csv"), expected)
        row = summary.set_index("file").loc[clip]
        assert row["status"] == "done" and int(row["frames"]) == len(expected)
        with_face = expected.loc[expected["n_faces"] > 0, "label"]
        assert int(row["frames_with_face"]) == len(with_face) > 0
        assert row["dominant_emotion"] == with_face.mode().iloc[0]
        shares = [float(row[f"share_{emotion}"]) for emotion in EMOTIONS]
        assert shares == pytest.approx([(with_face == emotion).mean() for emotion in EMOTIONS])
        assert float(row["achieved_fps"]) > 0
    faces = pd.read_csv(out / "photos" / "astronaut.png.csv")
    assert faces["face"].tolist() == [1] and faces["photo"].tolist() == ["astronaut.png"]
    coffee = summary.set_index("file").loc["photos/coffee.png"]
    assert (int(coffee["frames"]), int(coffee["frames_with_face"]), coffee["dominant_emotion"]) == (1, 0, "")
    assert (out / "summary.png").stat().st_size > 10_000
    assert "a.mp4: 20 frames, " in printed.out and "1 other files ignored" in printed.out


@pytest.mark.slow
def test_a_batch_run_again_skips_finished_files_and_overwrites_nothing(
    local_ray: None, inputs: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    settings = BatchSettings(detect_every=2)
    first = run_batch(inputs, out, settings=settings, workers=2)
    (out / "a.mp4.csv").unlink()  # as if the batch had been interrupted before a.mp4 finished
    (out / "a.mp4.json").unlink()
    before = {path: data for path, data in snapshot(out).items() if path.name != "summary.csv"}

    again = run_batch(inputs, out, settings=settings, workers=2)

    after = snapshot(out)
    assert all(after[path] == data for path, data in before.items())  # nothing rewritten
    assert again.summary_csv == out / "summary-1.csv" and again.summary_figure == out / "summary-1.png"
    statuses = again.summary.set_index("file")["status"]
    assert statuses["a.mp4"] == "done" and statuses["broken.mp4"] == "failed"
    assert (statuses.drop(["a.mp4", "broken.mp4"]) == "done earlier").all()
    columns = ["file", "frames", "frames_with_face", "dominant_emotion", *(f"share_{e}" for e in EMOTIONS)]
    pd.testing.assert_frame_equal(again.summary[columns], first.summary[columns])


@pytest.mark.slow
def test_a_worker_killed_mid_batch_loses_no_file(local_ray: None, tmp_path: Path) -> None:
    clips = tmp_path / "clips"
    for index in range(4):
        make_demo_clip(clips / f"clip{index}.mp4", seconds=4, fps=15, size=(320, 240))
    settings = BatchSettings(detect_every=2)
    finished: list[object] = []
    batch = threading.Thread(
        target=lambda: finished.append(run_batch(clips, tmp_path / "out", settings=settings, workers=2))
    )
    batch.start()
    killed = None
    deadline = time.monotonic() + 120
    while killed is None and batch.is_alive() and time.monotonic() < deadline:
        for process in psutil.Process().children(recursive=True):
            try:
                if process.name() == "ray::analyse_input":  # a worker running a file's task (Ray's process title)
                    process.send_signal(signal.SIGKILL)
                    killed = process.pid
                    break
            except psutil.NoSuchProcess:
                continue
        time.sleep(0.02)
    batch.join(timeout=300)

    assert killed is not None, "no worker was seen running a task"
    [result] = finished
    assert (result.summary["status"] == "done").all(), result.summary[["file", "error"]]
    detector, classifier = worker_tools(settings, for_video=True)
    for index in range(4):
        expected = video.process_video(
            clips / f"clip{index}.mp4",
            detector,
            classifier,
            detect_every=2,
            smoothing=settings.smoothing,
            progress=False,
        )
        written = pd.read_csv(tmp_path / "out" / f"clip{index}.mp4.csv")
        pd.testing.assert_frame_equal(written, pd.read_csv(io.StringIO(expected.to_csv(index=False))))


def test_a_batch_folder_made_with_other_settings_is_refused(tmp_path: Path) -> None:
    check_settings(tmp_path, BatchSettings(detect_every=2))
    check_settings(tmp_path, BatchSettings(detect_every=2))  # the same settings resume

    with pytest.raises(RunExistsError, match=rf"^{tmp_path / SETTINGS_FILE}: .*\(detect_every differ\)"):
        check_settings(tmp_path, BatchSettings(detect_every=3))


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (
            ["batch", "{missing}", "--out", "{tmp}/out"],
            "{missing}: not a folder (batch takes a folder of clips and photos)",
        ),
        (
            ["batch", "{tmp}", "--out", "{tmp}/out"],
            "{tmp}/out: inside the input folder {tmp}; write the results outside it",
        ),
        (["batch", "{empty}", "--out", "{tmp}/out"], "{empty}: no clip or photo in this folder"),
        (
            ["batch", "{empty}", "--out", "{tmp}/out", "--address", "localhost"],
            "python -m fer_lib batch: argument --address: expected HOST:PORT of a Ray cluster's head",
        ),
        (["ablate", "--variants", "v.yaml", "--address", "localhost:6379"], "--address: joins a Ray cluster for --ray"),
    ],
)
def test_bad_batch_input_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], arguments: list[str], message: str
) -> None:
    names = {"missing": tmp_path / "missing", "tmp": tmp_path, "empty": tmp_path / "empty"}
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no clip here")

    try:
        code = main([argument.format(**names) for argument in arguments])
    except SystemExit as usage_error:  # argparse's one-line usage errors
        code = usage_error.code

    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert err.startswith(f"error: {message.format(**names)}"), err


def test_an_address_where_no_cluster_runs_is_one_line_within_seconds() -> None:
    with pytest.raises(ClusterError, match=r"^batch: no Ray cluster answers at 127\.0\.0\.1:9 \(.*`ray start --head`"):
        check_reachable("127.0.0.1:9", what="batch")  # what ray_session does first (Ray would retry for minutes)


def test_without_ray_batch_and_ablate_ray_say_how_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError, as without the extra
    write_sample_photos(tmp_path / "in")
    variants = tmp_path / "study" / "variants.yaml"
    variants.parent.mkdir()
    write_params(variants.parent / "tiny.yaml", TINY_ABLATION)
    variants.write_text("base: tiny.yaml\nvariants:\n  baseline: {}\n")
    hint = "an optional extra: pip install -e '.[scale]' (exact versions: pip install -r requirements-scale-lock.txt)"

    batch_code = main(["batch", str(tmp_path / "in"), "--out", str(tmp_path / "out")])
    batch_err = capsys.readouterr().err
    ablate_code = main(["ablate", "--variants", str(variants), "--ray", "--out", str(tmp_path / "reports")])
    ablate_err = capsys.readouterr().err

    assert (batch_code, ablate_code) == (2, 2)
    assert batch_err == f"error: batch needs Ray, {hint}\n"
    assert ablate_err == f"error: ablate --ray needs Ray, {hint}\n"
    assert not (tmp_path / "reports").exists()


def test_fer_lib_imports_ray_only_when_batch_or_ablate_ray_run() -> None:
    code = (
        "import sys; import fer_lib.study.batch, fer_lib.study.cluster, fer_lib.study.report; "
        "from fer_lib.study.cli import build_parser; build_parser(); "
        "assert 'ray' not in sys.modules, 'ray imported'"
    )
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False)
    assert result.returncode == 0, result.stderr


# --- ablate --ray ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_an_ablation_on_ray_trains_each_variant_in_its_folder_and_reports_a_failed_one(
    local_ray: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_params(tmp_path / "tiny.yaml", TINY_ABLATION)
    good = {"baseline": {}, "scaling x/255": {"model.scale": "unit"}}
    broken = {**good, "missing weights": {"model.weights": str(tmp_path / "no-such-weights.h5")}}
    ablation = make_ablation(tmp_path / "tiny.yaml", broken)
    runs_dir = tmp_path / "runs"

    table = run_ablation(ablation, runs_dir=runs_dir, verbose=0, timing_repeats=1, on_ray=True)

    printed = capsys.readouterr().out
    assert table["variant"].tolist() == ["baseline", "scaling x/255"]
    [(name, reason)] = table.attrs["failed"].items()
    assert name == "missing weights"
    assert reason.startswith(f"{tmp_path / 'no-such-weights.h5'}: ImageNet MobileNetV2 weights file not found")
    assert "missing weights: failed: " in printed and "baseline: finished in " in printed
    for variant in ablation.variants[:2]:
        assert is_finished(variant_run_dir(runs_dir, variant))
    # the runs are those a sequential ablation uses: it has nothing left to train
    assert pending_variants(make_ablation(tmp_path / "tiny.yaml", good), runs_dir) == []
