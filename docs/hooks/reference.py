"""griffe extension: the API reference as a user needs it.

- A parameter whose default is a module constant (``timeout=DEFAULT_TIMEOUT``) shows
  the constant's value (``timeout=10.0``): the name means nothing to a reader, and is
  not importable from the package. Sentinels such as ``UNSET`` keep their name.
- Members the package uses between its own modules, public only in Python's sense,
  are left out of the reference: they are listed in ``INTERNAL``.
"""

from __future__ import annotations

import ast
from typing import Any, Final

import griffe

# Public in Python's sense, used by the package's other modules; not for users.
INTERNAL: Final = frozenset(
    {
        "mailpartner_async._core.models.BatchProgress.add",
        "mailpartner_async._async.batch.AsyncBatch.next_indexed",
        "mailpartner_async._sync.batch.Batch.next_indexed",
        "mailpartner_async._journal.Journal.is_final",
        "mailpartner_async._journal.Journal.record_start",
        "mailpartner_async._journal.Journal.settle",
        "mailpartner_async.testing._fake.FakeMailPartner.handle",
        "mailpartner_async.redis.RedisRateLimiter.async_pacer",
        "mailpartner_async.redis.RedisRateLimiter.pacer",
    }
)


def literal_value(default: Any) -> str | None:
    """The value of the constant a default names, when it is a plain literal."""
    if not isinstance(default, griffe.ExprName):
        return None
    try:
        target = default.parent.modules_collection.get_member(default.canonical_path)
    except (KeyError, AttributeError, griffe.AliasResolutionError, griffe.CyclicAliasError):
        return None
    value = getattr(target, "value", None)
    if value is None:
        return None
    text = str(value)
    try:
        ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return None  # an object, such as a sentinel: its name says more
    return text


class ReferenceView(griffe.Extension):
    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        self._visit(pkg)

    def _visit(self, obj: griffe.Object) -> None:
        for name, member in list(obj.members.items()):
            if member.is_alias:
                continue
            if member.path in INTERNAL:
                del obj.members[name]
                continue
            if isinstance(member, griffe.Function):
                for parameter in member.parameters:
                    value = literal_value(parameter.default)
                    if value is not None:
                        parameter.default = value
            if isinstance(member, griffe.Module | griffe.Class):
                self._visit(member)
