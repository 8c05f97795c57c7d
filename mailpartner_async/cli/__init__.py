"""The ``mailpartner`` command line: cancel ids in bulk, or serve the fake API.

Installed with the ``cli`` extra. ``mailpartner cancel`` prints one JSON line per id
on stdout (completion order), a summary on stderr, and a progress bar on stderr when
it is a terminal. Exit status: 0 when no id will go out (each was cancelled now or
already), 1 when any may (not found, too late, already sent, an error), 2 for a
usage or configuration error, 130 on Ctrl+C (after the summary so far).
"""

from .main import main

__all__ = ["main"]
