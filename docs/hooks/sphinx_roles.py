"""griffe extension: show the package's Sphinx-style docstring markup cleanly.

The docstrings use reStructuredText habits that mkdocstrings would print as they are:
roles such as ``:class:`~mailpartner_async.CancelOutcome``` become the code span
``CancelOutcome`` (a ``~`` keeps the last name only, as in Sphinx), and a paragraph
ending in ``::`` before a literal block ends in ``:`` instead. Only the rendering
changes; the source keeps its markup.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:py:)?(?:class|meth|func|attr|data|exc|mod|obj):`(?P<target>[^`]+)`")
LITERAL_INTRO = re.compile(r"(?<=\S)::$", re.MULTILINE)


def _code(match: re.Match[str]) -> str:
    target = match["target"]
    if target.startswith("~"):
        target = target[1:].rsplit(".", 1)[-1]
    return f"`{target}`"


def clean(text: str) -> str:
    """``text`` with Sphinx roles as code spans and ``Example::`` as ``Example:``."""
    return LITERAL_INTRO.sub(":", ROLE.sub(_code, text))


class SphinxRoles(griffe.Extension):
    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = clean(obj.docstring.value)
