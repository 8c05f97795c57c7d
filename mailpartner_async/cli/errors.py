"""How the command line ends: its exit statuses, and the error that means a usage one."""

from __future__ import annotations

__all__ = [
    "EXIT_INTERRUPTED",
    "EXIT_NOT_ALL_CANCELLED",
    "EXIT_OK",
    "EXIT_USAGE",
    "UsageError",
]

EXIT_OK = 0
EXIT_NOT_ALL_CANCELLED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class UsageError(Exception):
    """A problem with what the user typed or configured: exit 2, one line."""
