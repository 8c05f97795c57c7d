"""The sans-I/O core: what the SDK decides, with no I/O, no clock and no event loop.

Nothing here awaits, imports an HTTP library, anyio or redis, or reads a clock:
``now`` is always passed in. Settings are plain frozen values; the live objects a
client runs with (its observer, its rate limiter) are built by the client.
import-linter holds these rules (``[tool.importlinter]`` in ``pyproject.toml``).
"""
