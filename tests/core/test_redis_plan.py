"""The shared budget's sans-I/O side: the plan a RedisRateLimiter hands its pacers (exact
values from its arguments, a repr that never shows the Redis URL's password) and the
outage decisions (no Redis server needed)."""

from __future__ import annotations

import dataclasses

import pytest

from mailpartner_async import ConfigurationError
from mailpartner_async._core.redis_plan import (
    RETRY_SECONDS,
    SOCKET_TIMEOUT,
    RedisHealth,
    RedisReplyError,
    Reservation,
    fleet_share,
    plan_redis,
    read_reservation,
)
from mailpartner_async.redis import RedisRateLimiter

URL = "redis://localhost:6379/0"


def test_the_keys_share_one_hash_tag() -> None:
    plan = plan_redis(URL, 2000, "fleet", 60.0, None)

    assert plan.keys == (
        "{fleet}:next",
        "{fleet}:starts",
        "{fleet}:paused_until",
        "{fleet}:members",
    )


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
        (7, 60.0, 7),  # a 60 s period is the local pacer's minute
        (10, 2.0, 272),  # floor(10 * 60 / (2 + 0.2)): a tenth of the period of slack
        (4, 1.0, 218),  # floor(4 * 60 / (1 + 0.1))
        (40, 600.0, 3),  # floor(40 * 60 / (600 + 60)), the margin's cap no bound here
        (1, 1000.0, 1),  # never under one a minute
    ],
)
def test_a_given_fallback_is_the_pace_whatever_the_fleet(
    fallback: int, period: float, per_minute: int
) -> None:
    plan = plan_redis(URL, 20, "k", period, fallback)

    assert [plan.local_per_minute(members) for members in (1, 4)] == [per_minute] * 2
    assert plan.fallback_rate_limit == fallback


@pytest.mark.parametrize(
    ("members", "share", "per_minute"),
    [
        (1, 20, 20),  # alone: the whole budget
        (2, 10, 10),
        (3, 6, 6),  # 20 // 3: the shares never add up to more than the budget
        (40, 1, 1),  # more members than requests: one each, never none
        (0, 20, 20),  # no heartbeat seen yet: counted as alone
    ],
)
def test_without_a_fallback_each_member_takes_its_share_of_the_fleet(
    members: int, share: int, per_minute: int
) -> None:
    plan = plan_redis(URL, 20, "k", 60.0, None)

    assert plan.fallback_rate_limit is None
    assert (plan.local_rate_limit(members), plan.local_per_minute(members)) == (
        share,
        per_minute,
    )
    assert fleet_share(20, members) == share


@pytest.mark.parametrize(
    ("seconds", "microseconds"),
    [(1.5, 1_500_000), (0.0000001, 1), (0.0, 0), (2, 2_000_000)],
)
def test_a_pause_is_given_in_whole_microseconds_rounded_up(
    seconds: float, microseconds: int
) -> None:
    plan = plan_redis(URL, 4, "k", 1.0, None)

    assert plan.pause_call(seconds) == (["{k}:paused_until"], [microseconds])


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


def test_redis_is_tried_every_time_while_it_answers() -> None:
    health = RedisHealth(retry_seconds=2.0)

    assert [health.try_redis(now) for now in (0.0, 0.0, 100.0)] == [True, True, True]
    assert health.up


def test_an_outage_starts_once_and_redis_is_probed_once_per_interval() -> None:
    health = RedisHealth(retry_seconds=2.0)

    assert health.failed(10.0) is True  # the outage starts: the pacer logs it
    assert health.failed(10.5) is False  # still the same outage
    assert not health.up
    # Retried 2 s after the last failure, by one caller: the next waits another 2 s.
    probes = [(now, health.try_redis(now)) for now in (11.0, 12.4, 12.5, 12.6, 14.4, 14.5)]
    assert probes == [
        (11.0, False),
        (12.4, False),
        (12.5, True),
        (12.6, False),
        (14.4, False),
        (14.5, True),
    ]


def test_an_answer_ends_the_outage_once() -> None:
    health = RedisHealth(retry_seconds=2.0)
    health.failed(0.0)

    assert health.answered() is True  # the pacer logs that Redis is back
    assert health.answered() is False
    assert health.up
    assert health.try_redis(0.1)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redis://localhost:abc/0", "a port must be a number"),
        ("redis://localhost:99999/0", "Port out of range"),
        ("redis://localhost:0/0", "port must be in 1..65535"),
        ("redis://[::1:6379/0", "Invalid IPv6 URL"),
        ("redis://localhost:6379/zero", "path must be a database number"),
        ("redis://localhost:6379/0?socket_timeout=abc", "socket_timeout"),
        ("redis://localhost:6379/0?db=x", "'db'"),
    ],
)
def test_a_redis_url_redis_py_cannot_use_is_refused_by_the_constructor(
    url: str, message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        RedisRateLimiter(url)


@pytest.mark.parametrize(
    "url",
    ["redis://localhost", "redis://[::1]:6379/0", "rediss://h:6380/15", "unix:///r.sock?db=2"],
)
def test_a_usable_redis_url_is_accepted(url: str) -> None:
    assert RedisRateLimiter(url).url == url


def test_a_refused_url_does_not_show_its_password() -> None:
    with pytest.raises(ConfigurationError) as caught:
        RedisRateLimiter(f"redis://:{PASSWORD}@localhost:99999/0?socket_timeout=x")

    assert PASSWORD not in str(caught.value)


MAX_DELAY = plan_redis(URL, 4, "k", 1.0, None).max_delay_us


def test_the_longest_healthy_wait_is_a_minute_or_a_period_and_the_margin() -> None:
    assert MAX_DELAY == 60_000_000 + 50_000  # a pause of up to a minute, at period 1
    assert plan_redis(URL, 2000, "k", 120.0, None).max_delay_us == 120_500_000


@pytest.mark.parametrize(
    ("reply", "reservation"),
    [
        ([0, 17, 0, 1], Reservation(0, 17, 0, 1)),
        ([MAX_DELAY, 0, 1, 3], Reservation(MAX_DELAY, 0, 1, 3)),
        ([5, 9, 2, 2], Reservation(5, 9, 2, 2)),
    ],
)
def test_a_reply_of_the_script_is_read_exactly(reply: object, reservation: Reservation) -> None:
    assert read_reservation(reply, MAX_DELAY) == reservation


@pytest.mark.parametrize(
    "reply",
    [
        b"1.5",  # a bulk string
        "1.5",
        [b"0", b"17", b"0", b"1"],  # an array of text
        7,  # an integer
        [0, 17],  # the old two items
        [0, 17, 0],  # three items
        [0, 17, 0, 1, 5],
        {b"delay": 0, b"start": 17},  # a RESP3 map
        None,  # a RESP3 null
        [0.5, 17, 0, 1],  # a RESP3 double: a fractional delay
        [True, 17, 0, 1],
        [-1, 17, 0, 1],  # a negative wait
        [MAX_DELAY + 1, 17, 0, 1],  # longer than a healthy budget ever asks
        [600_000_000, 17, 0, 1],  # {key}:next 600 s ahead (a clock stepped back)
        [0, -3, 0, 1],
        [0, 17, 9, 1],  # a flag the script never sets
        [0, 17, 0, 0],  # no member, not even the caller
    ],
)
def test_anything_else_is_a_reply_error(reply: object) -> None:
    with pytest.raises(RedisReplyError):
        read_reservation(reply, MAX_DELAY)
