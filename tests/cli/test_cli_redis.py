"""The command line joins a fleet's shared budget (``--redis-url``), and ``serve-fake``
enforces the provider's per-minute cap (``--rate-limit-per-minute``, ``--rate-window``)."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
import redis

from tests.cli.test_cli import FAKE_KEY, child_env, run_cli, serving_fake
from tests.support.redis_server import RedisServer


def test_cancel_with_redis_url_spends_the_shared_budget(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    with serving_fake(tmp_path / "fake.log", "--schedule-unknown") as url:
        env = child_env(MAILPARTNER_API_KEY=FAKE_KEY)
        args = ("--redis-url", redis_server.url, "--redis-key", "cli-fleet", "--base-url", url)
        first = run_cli("cancel", *args, "c1", "c2", "c3", env=env)
        second = run_cli("cancel", *args, "c4", env=env)
    assert (first.returncode, second.returncode) == (0, 0), first.stderr + second.stderr
    with redis.Redis.from_url(redis_server.url) as shared:
        assert shared.llen("{cli-fleet}:starts") == 4  # both runs started on one budget


def test_cancel_with_redis_url_refuses_rate_limit_none(redis_server: RedisServer) -> None:
    run = run_cli(
        "cancel", "--redis-url", redis_server.url, "--rate-limit", "none", "--api-key", "k", "1"
    )
    assert run.returncode == 2
    assert "--rate-limit none" in run.stderr


def test_serve_fake_rate_limit_per_minute_answers_429_past_the_cap(tmp_path: Path) -> None:
    with (
        serving_fake(
            tmp_path / "fake.log", "--schedule-unknown", "--rate-limit-per-minute", "2"
        ) as url,
        httpx.Client(trust_env=False, timeout=10) as http,
    ):
        codes = [
            http.get(
                f"{url}/message-cancel", params={"apiKey": FAKE_KEY, "messageId": f"r{n}"}
            ).status_code
            for n in range(3)
        ]
    assert codes == [200, 200, 429]


def test_serve_fake_rate_window_sets_the_window_of_the_cap(tmp_path: Path) -> None:
    with (
        serving_fake(
            tmp_path / "fake.log",
            "--schedule-unknown",
            "--rate-limit-per-minute",
            "1",
            "--rate-window",
            "2",
        ) as url,
        httpx.Client(trust_env=False, timeout=10) as http,
    ):

        def status(message_id: str) -> int:
            params = {"apiKey": FAKE_KEY, "messageId": message_id}
            return http.get(f"{url}/message-cancel", params=params).status_code

        first, refused = status("w0"), status("w1")
        time.sleep(2.1)  # past the 2-second window: a 60 s one would still refuse
        assert (first, refused, status("w2")) == (200, 429, 200)


def test_serve_fake_refuses_a_window_that_is_not_a_positive_number() -> None:
    run = run_cli("serve-fake", "--rate-window", "0")
    assert run.returncode == 2
    assert "--rate-window: must be a positive number of seconds" in run.stderr


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("redis://localhost:abc/0", "a port must be a number"),
        ("redis://localhost:99999/0", "Port out of range"),
        ("redis://localhost:6379/0?socket_timeout=abc", "socket_timeout"),
        ("redis://[::1", "Invalid IPv6 URL"),
    ],
)
def test_cancel_with_a_redis_url_redis_py_cannot_use_exits_2_with_one_line(
    url: str, says: str
) -> None:
    run = run_cli("cancel", "--redis-url", url, "--api-key", "k", "1")
    assert run.returncode == 2, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("mailpartner: error: --redis-url: ")
    assert says in lines[0]
    assert "redis://host:6379/0" in lines[0]  # what to do
