"""Benchmark: first (uncached) and cached load of FER-2013 with fer_lib.data.load_fer2013, and the
generation speed of the embedded synthetic dataset (fer_lib.synthetic.make_synthetic_dataset).

Usage: ``python benchmarks/bench_load.py [--data DIR_OR_CSV]`` (default: env FER2013_DIR; without
it only the synthetic faces are timed). The cache goes to a fresh temporary folder, so the first
load always reads and decodes every image. Targets on 2 CPU cores: for the 32,298-image Kaggle
folder, first load < 15 s and cached load < 1 s; synthetic faces well over 200 per second.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from fer_lib.data import load_fer2013
from fer_lib.synthetic import make_synthetic_dataset


def timed_load(path: str, cache_dir: str) -> tuple[int, float]:
    """Return (faces loaded, wall-clock seconds) for one ``load_fer2013`` call."""
    start = time.perf_counter()
    dataset = load_fer2013(path, cache_dir=cache_dir)
    return len(dataset), time.perf_counter() - start


def main() -> None:
    """Parse arguments, time an uncached then a cached load, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data",
        default=os.environ.get("FER2013_DIR"),
        help="FER-2013 image folder or fer2013.csv (default: env FER2013_DIR)",
    )
    args = parser.parse_args()
    start = time.perf_counter()
    synthetic = len(make_synthetic_dataset(per_class=60, seed=2))
    seconds = time.perf_counter() - start
    print(f"synthetic:    {synthetic} faces in {seconds:.2f} s   {synthetic / seconds:>9,.0f} faces/s   (target > 200)")
    if not args.data:
        return
    with tempfile.TemporaryDirectory(prefix="fer-bench-cache-") as cache_dir:
        faces, first = timed_load(args.data, cache_dir)
        _, cached = timed_load(args.data, cache_dir)
    print(f"data:         {args.data} ({faces} faces, {os.cpu_count()} CPU cores)")
    print(f"first load:   {first:7.2f} s   {faces / first:>9,.0f} images/s   (target < 15 s)")
    print(f"cached load:  {cached:7.2f} s   {faces / cached:>9,.0f} images/s   (target < 1 s)")
    print(f"speed-up:     {first / cached:7.1f}x")


if __name__ == "__main__":
    main()
