"""Missing extras: one ``ConfigurationError``, worded for how the package was installed.

A feature whose library is not installed (a transport, Redis, OpenTelemetry, the
command line's server, the pytest plugin) raises :class:`MissingExtraError`, a
``ConfigurationError`` (and an ``ImportError``, for code that catches that), saying
the ``pip`` command that installs the extra. The command depends on the install,
read from its ``direct_url.json`` (PEP 610), as pip records it:

- from a clone (an editable install, or one from a local directory, or running from
  the source tree with no install at all): ``pip install -e '.[httpx2]'``, in that
  directory;
- from a wheel or an index: the package's name with the extra in brackets, which
  pip completes from the package already installed (it fetches only the extra's
  libraries, so this works for a wheel while the package is not on PyPI).

Example::

    httpx2 = require("httpx2", "transport='httpx2'", "httpx2")
"""

from __future__ import annotations

import importlib
import importlib.metadata
import json
from types import ModuleType
from urllib.parse import unquote, urlsplit

from ._core.errors import ConfigurationError

__all__ = ["DISTRIBUTION", "MissingExtraError", "install_command", "missing_extra", "require"]

DISTRIBUTION = "mailpartner-async"


class MissingExtraError(ConfigurationError, ImportError):
    """A feature's library is not installed; the message says how to install it."""


def install_command(extra: str, distribution: importlib.metadata.Distribution | None = None) -> str:
    """The ``pip`` command installing ``extra`` the way this package was installed.

    ``distribution`` is the installed package's (default: looked up by name).
    """
    if distribution is None:
        try:
            distribution = importlib.metadata.distribution(DISTRIBUTION)
        except importlib.metadata.PackageNotFoundError:
            return f"pip install -e '.[{extra}]' in a clone of the repository"
    clone = _clone_of(distribution)
    if clone is None:
        return f"pip install '{DISTRIBUTION}[{extra}]'"
    return f"pip install -e '.[{extra}]' in {clone}"


def _clone_of(distribution: importlib.metadata.Distribution) -> str | None:
    """The local directory the package was installed from; ``None`` for a wheel or an
    index (no ``direct_url.json``, or one naming an archive or a VCS URL)."""
    try:
        record = json.loads(distribution.read_text("direct_url.json") or "null")
    except ValueError:
        return None
    if not isinstance(record, dict) or "dir_info" not in record:
        return None
    url = record.get("url")
    if not isinstance(url, str) or not url.startswith("file:"):
        return None
    return unquote(urlsplit(url).path) or "the clone"


def missing_extra(what: str, extra: str) -> MissingExtraError:
    """The error for ``what`` (``"transport='httpx2'"``) without its ``extra``."""
    return MissingExtraError(f"{what} needs the {extra} extra: {install_command(extra)}")


def require(module: str, what: str, extra: str) -> ModuleType:
    """``module`` imported, or :class:`MissingExtraError` naming ``extra``."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise missing_extra(what, extra) from None
