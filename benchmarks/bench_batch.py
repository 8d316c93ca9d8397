"""Wall time of ``batch`` (one Ray task per clip) against the clips processed one after another.

On a folder of clips plus one corrupt file (random bytes named ``corrupt.mp4``), in the same run
and taking turns in rounds (so that a change in the machine's load hits all alike), it times:

* ``video``: ``python -m fer_lib video CLIP --csv F`` run once per clip, one after another (what a
  user without ``batch`` does; each run starts Python and loads the model; the corrupt file fails);
* ``batch``: ``python -m fer_lib batch DIR --out OUT`` once (a local Ray started and stopped
  inside it), into a new OUT each round;
* ``loop``: :func:`fer_lib.video.process_video` on each clip in one process (no start-up costs):
  the compute alone, one clip after another.

It checks that every clip's CSV from ``batch`` equals the one from ``video`` and that the corrupt
file is listed in the summary with its reason, then prints the times (median over rounds) and
the ratios as a Markdown table. Run it with ``nice`` on a busy machine and say so with the numbers.

Usage::

    python benchmarks/bench_batch.py                        # the clips of ../shared/videos, 2 rounds
    python benchmarks/bench_batch.py --clips DIR --rounds 3 --workers 2
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from fer_lib.faces import make_detector
from fer_lib.params import FacesParams
from fer_lib.paths import PROJECT_ROOT
from fer_lib.study.export import load_fast_classifier
from fer_lib.video import VIDEO_SUFFIXES, process_video

DEFAULT_CLIPS: Path = PROJECT_ROOT.parent / "shared" / "videos"
DETECT_EVERY: int = 2
"""The ``video`` and ``batch`` commands' default detection interval (fer_lib.study.cli.common.VIDEO_DETECT_EVERY)."""


def command(*arguments: str) -> list[str]:
    """``python -m fer_lib ARGUMENTS`` with this interpreter."""
    return [sys.executable, "-m", "fer_lib", *arguments]


def timed(arguments: list[str], *, expect: tuple[int, ...]) -> float:
    """Run a command from the project root; return its wall time in seconds (exit code checked)."""
    start = time.perf_counter()
    result = subprocess.run(arguments, cwd=PROJECT_ROOT, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if result.returncode not in expect:
        raise SystemExit(f"{' '.join(arguments)} exited {result.returncode}: {result.stderr.strip()}")
    return seconds


def make_inputs(clips: list[Path], folder: Path) -> Path:
    """A folder with a link to every clip and a corrupt ``corrupt.mp4``."""
    folder.mkdir(parents=True)
    for clip in clips:
        (folder / clip.name).symlink_to(clip.resolve())
    (folder / "corrupt.mp4").write_bytes(os.urandom(50_000))
    return folder


def run_video_commands(inputs: Path, out: Path) -> float:
    """``video`` on every input one after another; return the total wall time in seconds."""
    out.mkdir(parents=True)
    total = 0.0
    for path in sorted(inputs.iterdir()):
        total += timed(
            command("video", str(path), "--csv", str(out / f"{path.name}.csv"), "--no-progress"),
            expect=(2,) if path.name == "corrupt.mp4" else (0,),
        )
    return total


def run_loop(clips: list[Path]) -> float:
    """``process_video`` on each clip in this process (model loaded before timing); return seconds."""
    detector = make_detector(FacesParams())
    classifier = load_fast_classifier(None)
    start = time.perf_counter()
    for clip in clips:
        process_video(clip, detector, classifier, detect_every=DETECT_EVERY, progress=False)
    return time.perf_counter() - start


def check_outputs(clips: list[Path], video_out: Path, batch_out: Path) -> None:
    """Stop if a clip's batch CSV differs from its ``video`` CSV or the corrupt file is not listed as failed."""
    for clip in clips:
        pd.testing.assert_frame_equal(
            pd.read_csv(batch_out / f"{clip.name}.csv"), pd.read_csv(video_out / f"{clip.name}.csv")
        )
    summary = pd.read_csv(batch_out / "summary.csv", keep_default_na=False).set_index("file")
    corrupt = summary.loc["corrupt.mp4"]
    if corrupt["status"] != "failed" or "corrupt.mp4: cannot open as a video" not in corrupt["error"]:
        raise SystemExit(f"the corrupt file is not reported as failed: {corrupt.to_dict()}")
    print(f"outputs agree; corrupt.mp4 listed as: {corrupt['error']}", flush=True)


def main() -> None:
    """Time the three ways in rounds and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--clips", type=Path, default=DEFAULT_CLIPS, help="folder of clips (default: ../shared/videos)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of the three ways (default: 2)")
    parser.add_argument("--workers", type=int, default=None, help="batch --workers (default: one per CPU)")
    args = parser.parse_args()
    clips = sorted(path for path in args.clips.iterdir() if path.suffix.lower() in VIDEO_SUFFIXES)
    if not clips:
        raise SystemExit(f"{args.clips}: no clips")
    load_fast_classifier(None)  # the shipped model's TFLite conversion is cached before anything is timed
    times: dict[str, list[float]] = {"video": [], "batch": [], "loop": []}
    workers = ["--workers", str(args.workers)] if args.workers else []
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as scratch:
        inputs = make_inputs(clips, Path(scratch) / "inputs")
        for number in range(args.rounds):
            video_out, batch_out = Path(scratch) / f"video-{number}", Path(scratch) / f"batch-{number}"
            order = ["video", "batch", "loop"] if number % 2 == 0 else ["loop", "batch", "video"]
            for way in order:
                if way == "video":
                    seconds = run_video_commands(inputs, video_out)
                elif way == "batch":
                    seconds = timed(command("batch", str(inputs), "--out", str(batch_out), *workers), expect=(2,))
                else:
                    seconds = run_loop(clips)
                times[way].append(seconds)
                print(f"round {number + 1}: {way} {seconds:.1f} s", flush=True)
            check_outputs(clips, video_out, batch_out)
        frames = sum(len(pd.read_csv(video_out / f"{clip.name}.csv")) for clip in clips)
    median = {way: statistics.median(values) for way, values in times.items()}
    print(
        f"\n{len(clips)} clips ({frames} frames) + 1 corrupt file, {os.cpu_count()} CPUs, "
        f"median of {args.rounds} rounds:\n"
    )
    print("| way | wall time (s) | frames per second | speed-up over `video` one after another |")
    print("|---|---|---|---|")
    descriptions = {
        "video": "`video` per clip, one after another",
        "batch": f"`batch` (local Ray{', ' + str(args.workers) + ' workers' if args.workers else ''}, start included)",
        "loop": "`process_video` per clip in one process (compute only)",
    }
    for way in ("video", "batch", "loop"):
        print(
            f"| {descriptions[way]} | {median[way]:.1f} | {frames / median[way]:.0f} | "
            f"{median['video'] / median[way]:.2f} |"
        )


if __name__ == "__main__":
    main()
