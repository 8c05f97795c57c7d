"""Shared fixtures: the event-loop backends each async test runs under, the transports.

``pytest --backend asyncio|trio|all`` picks the loops (nox runs one per session; the
default, ``all``, runs both). Each test is parametrized by loop and by transport in
``pytest_generate_tests`` below, through ``tests/support/transports.py``: the one
place that says which transports a test runs on. ``anyio_backend`` is defined here
without params because anyio >= 4.12 parametrizes its own fixture, which would
collide with that hook.
"""

from __future__ import annotations

import pytest

from tests.support.hostile import counting, hostile
from tests.support.redis_server import redis_server
from tests.support.server import server
from tests.support.transports import parametrize

__all__ = ["anyio_backend", "counting", "hostile", "redis_server", "server"]

# Suites that start processes or sweep the transport x hostile-network matrix: they
# carry the `slow` mark, and the gate runs them on the newest Python only.
SLOW_MODULES = frozenset(
    {
        "test_cli",
        "test_cli_progress",
        "test_cli_redis",
        "test_cli_rescue",
        "test_docs",
        "test_fuzz",
        "test_hostile",
        "test_parametrisation",
        "test_redis_fleet",
        "test_taskiq_recipe",
    }
)

# What a test takes when it runs under the session's loop: an anyio test, or a sync
# test that runs the loop itself (``anyio.run``).
LOOP_FIXTURES = frozenset({"anyio_backend", "run_backend"})


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--backend",
        choices=("asyncio", "trio", "all"),
        default="all",
        help="run anyio tests under this event loop (default: both)",
    )
    parser.addoption(
        "--loop-tests-only",
        action="store_true",
        help="leave out the tests that run under no event loop (the gate's trio sessions: "
        "the asyncio session of the same Python runs those, and they do not depend on it)",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    choice = metafunc.config.getoption("--backend")
    parametrize(metafunc, ["asyncio", "trio"] if choice == "all" else [choice])


@pytest.fixture(scope="session")
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.stem in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)

    def left_out(item: pytest.Item) -> bool:
        # Tests marked for pytest-asyncio are asyncio's own (asyncio.gather, loops):
        # a session that runs the async tests under trio only leaves them out.
        if config.getoption("--backend") == "trio" and item.get_closest_marker("asyncio"):
            return True
        names = getattr(item, "fixturenames", ())
        return config.getoption("--loop-tests-only") and not LOOP_FIXTURES & set(names)

    kept: list[pytest.Item] = []
    deselected: list[pytest.Item] = []
    for item in items:
        (deselected if left_out(item) else kept).append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = kept
