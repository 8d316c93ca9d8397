"""Every committed report and the shipped model name a clean commit of this history; reports name no machine paths.

A report's provenance is its ``manifest.json`` (the commit the report was made at) and, for a
report made from a training run, ``training_manifest.json`` (the commit the model was trained at).
The shipped model is tied to its report by ``models/fer_mobilenetv2.json`` (SHA-256 of the model
file and the report folder; written by :func:`fer_lib.study.runs.write_model_provenance`).
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from fer_lib.paths import PROJECT_ROOT, SHIPPED_MODEL
from fer_lib.study.runs import MODEL_PROVENANCE, file_sha256

REPORTS = PROJECT_ROOT / "reports"

PROVENANCE_FILES: tuple[str, ...] = ("manifest.json", "training_manifest.json")
"""The files of a report that record a commit: the report's own and its training run's."""

TEXT_SUFFIXES: tuple[str, ...] = (".html", ".ipynb", ".json", ".csv", ".md", ".yaml", ".txt")

MACHINE_PATH = re.compile(
    r"(?<![\w.~$:/-])/(?:home|Users|root|tmp|work|mnt|var|opt|srv|data|private|scratch|usr)/[^\s\"'<>&]*"
    r"|\b[A-Za-z]:\\\\[^\s\"'<>&]*"
)
"""An absolute path on Linux, macOS or Windows (not a URL's path, which follows a host name)."""


def git(*arguments: str) -> subprocess.CompletedProcess[str]:
    """``git -C PROJECT_ROOT *arguments`` (no check)."""
    return subprocess.run(["git", "-C", str(PROJECT_ROOT), *arguments], capture_output=True, text=True, timeout=60)


def tracked(folder: str) -> list[str]:
    """Files of ``folder`` committed to git (project-relative), or [] without git."""
    try:
        listing = git("ls-files", "--", folder)
    except OSError:
        return []
    return listing.stdout.splitlines() if listing.returncode == 0 else []


def committed_reports() -> list[str]:
    """The report folders under reports/ that git tracks."""
    return sorted({Path(path).parts[1] for path in tracked("reports") if len(Path(path).parts) > 2})


def provenance_cases() -> list[str]:
    """One case per committed report and provenance file it holds (``manifest.json`` at least)."""
    cases = []
    for report in committed_reports():
        names = [name for name in PROVENANCE_FILES if (REPORTS / report / name).is_file()] or ["manifest.json"]
        cases += [f"{report}/{name}" for name in names]
    return cases


def assert_clean_commit(path: Path) -> None:
    """Fail unless ``path`` (a manifest) records a clean commit that is in this branch's history."""
    where = path.relative_to(PROJECT_ROOT)
    assert path.is_file(), f"{where}: missing; a committed report must record the commit it was made at"
    record = json.loads(path.read_text(encoding="utf-8")).get("git") or {}
    commit = str(record.get("commit"))
    assert re.fullmatch(r"[0-9a-f]{40}", commit), f"{where}: commit {commit!r} is not a commit hash"
    assert record.get("dirty") is False, (
        f"{where}: made from a tree with uncommitted changes (dirty: "
        f"{record.get('dirty')}); re-make it from a clean commit"
    )
    assert git("merge-base", "--is-ancestor", commit, "HEAD").returncode == 0, (
        f"{where}: commit {commit[:12]} is not in this branch's history"
    )


@pytest.fixture(scope="module", autouse=True)
def needs_git() -> None:
    """Skip where the project is not a git checkout (an unpacked archive has no history to check)."""
    if not committed_reports():
        pytest.skip("not a git checkout with committed reports: provenance cannot be checked")


@pytest.mark.parametrize("case", provenance_cases())
def test_committed_report_names_a_clean_commit_of_this_history(case: str) -> None:
    assert_clean_commit(REPORTS / case)


def test_shipped_model_is_tied_to_its_committed_report() -> None:
    where = MODEL_PROVENANCE.relative_to(PROJECT_ROOT)
    assert MODEL_PROVENANCE.is_file(), (
        f"{where}: missing; write it with fer_lib.study.runs.write_model_provenance(REPORT)"
    )
    record = json.loads(MODEL_PROVENANCE.read_text(encoding="utf-8"))
    assert record["model"] == SHIPPED_MODEL.name
    assert record["sha256"] == file_sha256(SHIPPED_MODEL), (
        f"{SHIPPED_MODEL.name} changed since {where} was written: write_model_provenance(its report) again"
    )
    assert record["report"] in [f"reports/{report}" for report in committed_reports()], (
        f"{where}: report {record['report']} is not a committed report"
    )
    training = json.loads((PROJECT_ROOT / record["report"] / "training_manifest.json").read_text(encoding="utf-8"))
    assert record["training_git"] == training["git"]


def test_shipped_model_was_trained_from_a_clean_commit() -> None:
    report = json.loads(MODEL_PROVENANCE.read_text(encoding="utf-8"))["report"]
    assert_clean_commit(PROJECT_ROOT / report / "training_manifest.json")


def test_committed_reports_and_model_records_name_no_absolute_machine_paths() -> None:
    machine = [str(PROJECT_ROOT), str(Path.home())]
    offenders = []
    for name in [*tracked("reports"), *tracked("models")]:
        path = PROJECT_ROOT / name
        if path.suffix not in TEXT_SUFFIXES or not path.is_file():
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            found = MACHINE_PATH.findall(line) + [prefix for prefix in machine if prefix in line]
            offenders += [f"{name}:{number}: {match[:80]}" for match in found]
    assert offenders == [], f"{len(offenders)} absolute paths, first: {offenders[:5]}"
