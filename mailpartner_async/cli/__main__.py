"""``python -m mailpartner_async.cli``: the same command line as ``mailpartner``."""

from . import main

raise SystemExit(main())
