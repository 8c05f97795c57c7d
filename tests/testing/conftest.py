"""Fixtures for the fake's tests: a fixed clock and a fake that reads it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mailpartner_async.testing import FakeClock, FakeMailPartner

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


@pytest.fixture
def fake(clock: FakeClock) -> FakeMailPartner:
    return FakeMailPartner(clock=clock)
