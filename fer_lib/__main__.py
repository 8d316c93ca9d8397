"""``python -m fer_lib``: the command-line interface (see :mod:`fer_lib.cli`)."""

from fer_lib.cli import main

raise SystemExit(main())
