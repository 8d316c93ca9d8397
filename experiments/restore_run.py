"""Rebuild a committed report's finished training run folder from the report's own records, so the
report can be rendered again with today's notebooks (``report --train-run``) without training again.

A report keeps its training run's history (``training_history.csv``) and manifest
(``training_manifest.json``: params, commit, versions); the shipped model's provenance
(``models/fer_mobilenetv2.json``) names the report it was trained in. Together they are the run's
``history.csv``, ``params.yaml``, ``manifest.json`` and ``model.keras``; ``state.json`` is written from
the history (finished, the epochs done, the best PublicTest epoch) with ``restored_from`` naming the
report. Only the shipped model's own report can be restored: no other trained model is in the
repository. The run folder must not exist (nothing is overwritten).

Usage (seconds; then render the report again, the model and every training figure unchanged):

    python experiments/restore_run.py reports/fer2013-cpu_best runs/cpu_best-restored
    python -m fer_lib report --params params/cpu_best.yaml --train-run runs/cpu_best-restored --data DIR
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import yaml

from fer_lib.errors import FerError
from fer_lib.paths import PROJECT_ROOT, SHIPPED_MODEL, RunLayout
from fer_lib.study.reproduce import load_recorded_training
from fer_lib.study.runs import file_sha256, is_finished


def restore_run(report_dir: Path, run_dir: Path) -> RunLayout:
    """Write the finished run folder ``run_dir`` of ``report_dir`` (see the module docstring); return its layout.

    Raises:
        FerError: naming the path, if ``run_dir`` exists, the shipped model was not trained in
            ``report_dir`` or its file does not match its recorded sha256, or the report has no training records.
    """
    if run_dir.exists():
        raise FerError(f"{run_dir}: exists; restore into a new folder")
    provenance = json.loads(SHIPPED_MODEL.with_suffix(".json").read_text(encoding="utf-8"))
    if (PROJECT_ROOT / provenance["report"]).resolve() != report_dir.resolve():
        raise FerError(f"{report_dir}: the shipped model was trained in {provenance['report']}, not here")
    if file_sha256(SHIPPED_MODEL) != provenance["sha256"]:
        raise FerError(f"{SHIPPED_MODEL}: does not match the sha256 its provenance records")
    recorded = load_recorded_training(report_dir)
    history = recorded.history
    best = history.loc[history["val_accuracy"].idxmax()]
    layout = RunLayout(run_dir)
    run_dir.mkdir(parents=True)
    shutil.copy2(SHIPPED_MODEL, layout.model)
    history.to_csv(layout.history, index=False)
    layout.params.write_text(yaml.safe_dump(recorded.params.to_dict(), sort_keys=False))
    layout.manifest.write_text(json.dumps(recorded.manifest, indent=2) + "\n")
    state = {
        "epochs_done": int(history["epoch"].iloc[-1]),
        "best_val_accuracy": float(best["val_accuracy"]),
        "best_epoch": int(best["epoch"]) if recorded.params.train.select == "best_val" else None,
        "finished": True,
        "plateau": None,
        "restored_from": str(report_dir),
    }
    layout.state.write_text(json.dumps(state, indent=2) + "\n")
    assert is_finished(run_dir)
    return layout


def main() -> int:
    """Parse the command line and restore; print the run folder, or one error line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("report", type=Path, help="the report folder, e.g. reports/fer2013-cpu_best")
    parser.add_argument("run_dir", type=Path, help="the run folder to write (must not exist)")
    args = parser.parse_args()
    try:
        layout = restore_run(args.report, args.run_dir)
    except FerError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"restored {layout.root} from {args.report} (model {SHIPPED_MODEL.name})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
