"""``python -m circuitgrad``: the command line (see :mod:`circuitgrad.cli`)."""

from .cli import main

raise SystemExit(main())
