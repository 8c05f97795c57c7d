"""Names a package exports but imports only on first use (PEP 562), written once.

``import mailpartner_async`` stays cheap, and so does ``mailpartner_async.testing``,
which pytest imports in every run of every project that installs the SDK (its
plugin's parent).

Example::

    __getattr__, __dir__ = lazy_exports(__name__, {"FakeClock": "._clock"}, __all__)
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping, Sequence

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, exports: Mapping[str, str], public: Sequence[str]
) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """A module ``__getattr__`` importing each name of ``exports`` (name -> module,
    relative to ``package``) when first read, and the matching ``__dir__``."""

    def __getattr__(name: str) -> object:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, package), name)
        vars(sys.modules[package])[name] = value  # read once, then a plain attribute
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[package]), *public})

    return __getattr__, __dir__
