"""Shared fixtures: the event-loop backends each async test runs under."""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--backend",
        choices=("asyncio", "trio", "all"),
        default="all",
        help="run anyio tests under this event loop (default: both)",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "anyio_backend" in metafunc.fixturenames:
        choice = metafunc.config.getoption("--backend")
        backends = ["asyncio", "trio"] if choice == "all" else [choice]
        metafunc.parametrize("anyio_backend", backends, scope="session")
