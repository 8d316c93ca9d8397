"""Shared pytest fixtures: the real FER-2013 data from ../shared, extracted once per machine."""
from __future__ import annotations

import hashlib
import os
import tarfile
from pathlib import Path

import pytest

from fer_lib.params import PROJECT_ROOT

SHARED = PROJECT_ROOT.parent / "shared"
TARBALL = SHARED / "data" / "fer2013-train-publictest.tar.xz"
EXTRACT_ROOT = Path(os.environ.get("FER_TEST_CACHE", Path.home() / ".cache" / "fer-study-tests"))


@pytest.fixture(scope="session")
def fer2013_dir() -> Path:
    """Path of the extracted ``fer2013/`` folder (train/, test/), extracted on first use.

    Skips only when the tarball is absent and we are not in CI; in CI (env CI=true) a missing
    tarball is a failure, so real-data tests can never vanish silently.
    """
    if not TARBALL.is_file():
        if os.environ.get("CI"):
            pytest.fail(f"{TARBALL} is missing in CI: real-data tests cannot run")
        pytest.skip(f"{TARBALL} not found (real FER-2013 tests need ../shared)")
    digest = hashlib.sha256(f"{TARBALL.stat().st_size}:{TARBALL.stat().st_mtime_ns}".encode()).hexdigest()[:12]
    target = EXTRACT_ROOT / digest
    done = target / ".extracted"
    if not done.exists():
        target.mkdir(parents=True, exist_ok=True)
        with tarfile.open(TARBALL, "r:xz") as archive:
            archive.extractall(target, filter="data")
        done.touch()
    return target / "fer2013"
