"""Library modules written from the notebook cells that teach them (d2l's ``#@save``, nbdev's ``#| export``).

A code cell whose first line is ``#| export`` is library code: its source, in notebook order, makes up
the module that :data:`EXPORTS` names (after a header saying where it came from). The notebook runs
its cells as they stand, so a teacher who edits one changes what the notebook trains; the CLI imports
the module, so ``python -m fer_lib train`` runs the code the notebook shows. After editing such a
cell, write the module again::

    python -m fer_lib.study.notebook_export          # writes fer_lib/recipe.py
    python -m fer_lib.study.notebook_export --check  # exit 1 if it differs (tests/test_recipe.py)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from fer_lib.paths import PROJECT_ROOT

MARK: str = "#| export"
"""The first line of a cell that belongs to the library."""

EXPORTS: dict[str, str] = {"fer_lib/recipe.py": "notebooks/02_fine_tuning.ipynb"}
"""Module -> the notebook whose ``#| export`` cells it is (paths relative to the project root)."""

HEADER: str = '''# Written from {notebook} (its "{mark}" cells) by `python -m fer_lib.study.notebook_export`:
# edit the notebook, then run that command; tests/test_recipe.py fails while the two differ.
"""The fine-tuning recipe, as notebook 2 teaches it: the model (in-model preprocessing, MobileNetV2, the
head), the optimizer and the loss, and staged fine-tuning (:func:`fine_tune`). ``fer_lib.training`` runs
it from a params file (``python -m fer_lib train``); the notebook runs its own cells."""

'''


def exported_cells(notebook: Path) -> list[str]:
    """The sources of ``notebook``'s code cells that start with :data:`MARK`, without that line."""
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    sources = ["".join(cell["source"]) for cell in cells if cell["cell_type"] == "code"]
    return [source.split("\n", 1)[1].strip("\n") for source in sources if source.startswith(MARK + "\n")]


def module_source(notebook: Path, *, root: Path = PROJECT_ROOT) -> str:
    """The text of the module written from ``notebook``: the header, then each exported cell, two blank
    lines apart (the cells are ruff-formatted, so the module is too)."""
    header = HEADER.format(notebook=notebook.relative_to(root).as_posix(), mark=MARK)
    return header + "\n\n\n".join(exported_cells(notebook)) + "\n"


def stale_modules(*, root: Path = PROJECT_ROOT) -> list[str]:
    """The modules of :data:`EXPORTS` whose file differs from their notebook's cells."""
    return [
        module
        for module, notebook in EXPORTS.items()
        if not (root / module).is_file()
        or (root / module).read_text(encoding="utf-8") != module_source(root / notebook, root=root)
    ]


def main(argv: list[str] | None = None) -> int:
    """Write every module of :data:`EXPORTS` (``--check``: only say which differ, exit 1 if any)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a module is stale")
    check = parser.parse_args(argv).check
    stale = stale_modules()
    for module in stale:
        notebook = EXPORTS[module]
        if check:
            print(
                f"{module}: differs from the '{MARK}' cells of {notebook}; run python -m fer_lib.study.notebook_export"
            )
        else:
            (PROJECT_ROOT / module).write_text(module_source(PROJECT_ROOT / notebook), encoding="utf-8")
            print(f"{module}: written from {notebook}")
    return 1 if check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
