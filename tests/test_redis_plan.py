"""The plan a RedisRateLimiter hands its pacers: exact values from its arguments, and a
repr that never shows the Redis URL's password (no Redis server needed)."""

from __future__ import annotations

import dataclasses

import pytest

from mailpartner_async import ConfigurationError
from mailpartner_async._core.redis_plan import RETRY_SECONDS, SOCKET_TIMEOUT, plan_redis
from mailpartner_async.redis import RedisRateLimiter

URL = "redis://localhost:6379/0"


def test_the_keys_share_one_hash_tag() -> None:
    plan = plan_redis(URL, 2000, "fleet", 60.0, None)

    assert plan.keys == ("{fleet}:next", "{fleet}:starts", "{fleet}:paused_until")


@pytest.mark.parametrize(
    ("rate_limit", "period", "reserve_args"),
    [
        (2000, 60.0, (2000, 60_000_000, 500_000)),  # the margin: period / 120, at most 0.5 s
        (2000, 120.0, (2000, 120_000_000, 500_000)),
        (10, 12.0, (10, 12_000_000, 100_000)),
        (4, 1.0, (4, 1_000_000, 50_000)),  # and never under 50 ms
        (4, 0.001, (4, 1_000, 50_000)),
    ],
)
def test_the_reserve_args_are_the_limit_the_period_and_the_margin_in_microseconds(
    rate_limit: int, period: float, reserve_args: tuple[int, int, int]
) -> None:
    assert plan_redis(URL, rate_limit, "k", period, None).reserve_args == reserve_args


@pytest.mark.parametrize(
    ("fallback", "period", "per_minute"),
    [
        (None, 60.0, 20),  # no fallback given: the rate limit's
        (7, 60.0, 7),  # a 60 s period is the local pacer's minute
        (10, 2.0, 292),  # floor(10 * 60 / (2 + 0.05))
        (4, 1.0, 228),  # floor(4 * 60 / (1 + 0.05))
        (1, 1000.0, 1),  # never under one a minute
    ],
)
def test_the_fallback_is_scaled_to_the_local_pacers_minute(
    fallback: int | None, period: float, per_minute: int
) -> None:
    plan = plan_redis(URL, 20, "k", period, fallback)

    assert plan.fallback_per_minute == per_minute
    assert plan.fallback_rate_limit == (20 if fallback is None else fallback)


def test_the_plan_carries_the_timeouts_of_its_module() -> None:
    plan = plan_redis(URL, 20, "k", 60, None)

    assert (plan.socket_timeout, plan.retry_seconds) == (SOCKET_TIMEOUT, RETRY_SECONDS)
    assert plan.period == 60.0
    assert isinstance(plan.period, float)


def test_the_plan_is_frozen() -> None:
    plan = plan_redis(URL, 20, "k", 60.0, None)

    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.rate_limit = 30  # type: ignore[misc]


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://localhost", "url must be"),
        (None, "url must be"),
    ],
)
def test_a_url_of_another_scheme_is_refused(url: object, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        plan_redis(url, 20, "k", 60.0, None)


PASSWORD = "s3cr3t-hunter2"


@pytest.mark.parametrize(
    "url",
    [
        f"redis://:{PASSWORD}@localhost:6379/0",
        f"redis://default:{PASSWORD}@localhost:6379/0",
        f"rediss://user:{PASSWORD}@cache.example:6380/1",
        f"unix://user:{PASSWORD}@/run/redis.sock?db=2",
        f"redis://localhost:6379/0?password={PASSWORD}",
    ],
)
def test_no_repr_or_str_of_the_plan_or_the_limiter_shows_the_urls_password(url: str) -> None:
    limiter = RedisRateLimiter(url, rate_limit=20, key="k")
    plan = plan_redis(url, 20, "k", 60.0, None)

    shown = [repr(plan), str(plan), f"{plan}", repr(limiter), str(limiter), f"{limiter}"]
    assert [text for text in shown if PASSWORD in text] == []
    assert limiter.url == url == plan.url.reveal()


def test_a_percent_encoded_password_is_not_shown_either() -> None:
    plan = plan_redis("redis://:p%40ss-w0rd-1@localhost/0", 20, "k", 60.0, None)

    assert "p%40ss-w0rd-1" not in repr(plan)
    assert "p@ss-w0rd-1" not in repr(plan)
