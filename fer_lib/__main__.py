"""``python -m fer_lib``: the command-line interface (see :mod:`fer_lib.study.cli`)."""

from fer_lib.study.cli import main

raise SystemExit(main())
