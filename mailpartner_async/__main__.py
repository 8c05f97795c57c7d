"""``python -m mailpartner_async``: the same command line as ``mailpartner``."""

from .cli import main

raise SystemExit(main())
