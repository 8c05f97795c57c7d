"""The retry policy and the checks on settings: key and base URL from arguments or env."""

from __future__ import annotations

import math
import random
from collections.abc import Callable

import pytest

from mailpartner_async import ConfigurationError
from mailpartner_async._core.settings import (
    API_KEY_ENV,
    BASE_URL_ENV,
    DEFAULT_BASE_URL,
    RetryPolicy,
    resolve_api_key,
    resolve_base_url,
)

POLICY = RetryPolicy()


def _fixed(value: float) -> Callable[[], float]:
    return lambda: value


# --- RetryPolicy.delay -----------------------------------------------------------


@pytest.mark.parametrize(
    ("retry_number", "rand", "expected"),
    [
        (1, 0.0, 0.5),
        (2, 0.0, 1.0),
        (3, 0.0, 2.0),
        (4, 0.0, 4.0),
        (5, 0.0, 8.0),
        (6, 0.0, 8.0),
        (30, 0.0, 8.0),
        (1, 1.0, 0.375),
        (2, 1.0, 0.75),
        (5, 1.0, 6.0),
        (9, 1.0, 6.0),
        (3, 0.5, 1.75),
        (4, 0.2, 3.8),
    ],
)
def test_delay_doubles_from_half_a_second_to_8_seconds_with_jitter(
    retry_number: int, rand: float, expected: float
) -> None:
    assert POLICY.delay(retry_number, rand=lambda: rand) == pytest.approx(expected)


@pytest.mark.parametrize("retry_number", [1, 2, 3, 4, 5, 6])
def test_jitter_keeps_delay_between_75_and_100_percent(retry_number: int) -> None:
    base = min(0.5 * 2 ** (retry_number - 1), 8.0)
    rng = random.Random(retry_number)
    draws = [0.0, 0.25, 0.5, 0.999999, *(rng.random() for _ in range(200))]

    delays = [POLICY.delay(retry_number, rand=_fixed(draw)) for draw in draws]

    assert all(0.75 * base <= delay <= base for delay in delays)
    assert max(delays) == base
    assert min(delays) < 0.76 * base


def test_default_jitter_draws_from_random_within_bounds() -> None:
    delays = {POLICY.delay(3) for _ in range(200)}

    assert all(1.5 <= delay <= 2.0 for delay in delays)
    assert len(delays) > 1


@pytest.mark.parametrize("retry_number", [1025, 1100, 10_000])
def test_delay_stays_capped_for_huge_retry_numbers(retry_number: int) -> None:
    assert POLICY.delay(retry_number, rand=lambda: 0.0) == 8.0


@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [
        (0.0, 0.0),
        (0.25, 0.25),
        (2.5, 2.5),
        (30.0, 30.0),
        (60.0, 60.0),
        (60.5, 0.5),
        (3600.0, 0.5),
        (-1.0, 0.5),
        (math.inf, 0.5),
        (math.nan, 0.5),
    ],
)
def test_retry_after_is_honoured_up_to_60_seconds(retry_after: float, expected: float) -> None:
    # rand=1.0 would shrink a backoff; a honoured Retry-After is waited as given.
    honoured = POLICY.delay(1, retry_after, rand=lambda: 0.0)
    jittered = POLICY.delay(1, retry_after, rand=lambda: 1.0)

    assert honoured == expected
    assert jittered == (expected if expected != 0.5 else 0.375)


# --- resolve_api_key -------------------------------------------------------------


@pytest.mark.parametrize(
    ("api_key", "env", "expected"),
    [
        ("key-arg", None, "key-arg"),
        ("key-arg", "key-env", "key-arg"),
        (None, "key-env", "key-env"),
        (None, None, None),
        (None, "", None),
        (None, "   ", None),
        (None, "key-env\n", "key-env"),
        ("", None, None),
        (" \t", None, None),
        (" key-arg ", None, "key-arg"),
    ],
)
def test_resolve_api_key(
    monkeypatch: pytest.MonkeyPatch, api_key: str | None, env: str | None, expected: str | None
) -> None:
    if env is None:
        monkeypatch.delenv(API_KEY_ENV, raising=False)
    else:
        monkeypatch.setenv(API_KEY_ENV, env)

    assert resolve_api_key(api_key) == expected


# --- resolve_base_url ------------------------------------------------------------


@pytest.mark.parametrize(
    ("base_url", "env", "expected"),
    [
        (None, None, DEFAULT_BASE_URL),
        (None, "", DEFAULT_BASE_URL),
        (None, "https://sandbox.example/v1/", "https://sandbox.example/v1"),
        ("https://api.example/v1", "https://env.example/v1", "https://api.example/v1"),
        ("https://api.mailpartner.fr/v1/", None, "https://api.mailpartner.fr/v1"),
        ("https://api.mailpartner.fr/v1///", None, "https://api.mailpartner.fr/v1"),
        ("  https://api.mailpartner.fr/v1  ", None, "https://api.mailpartner.fr/v1"),
        ("https://api.mailpartner.fr:8443/v1", None, "https://api.mailpartner.fr:8443/v1"),
        ("HTTPS://API.MAILPARTNER.FR/v1", None, "HTTPS://API.MAILPARTNER.FR/v1"),
    ],
)
def test_resolve_base_url(
    monkeypatch: pytest.MonkeyPatch, base_url: str | None, env: str | None, expected: str
) -> None:
    if env is None:
        monkeypatch.delenv(BASE_URL_ENV, raising=False)
    else:
        monkeypatch.setenv(BASE_URL_ENV, env)

    assert resolve_base_url(base_url, allow_insecure_http=False) == expected


@pytest.mark.parametrize(
    "base_url",
    [
        "http://127.0.0.1:8025/v1",
        "http://127.0.0.2/v1",
        "http://localhost:8025/v1",
        "http://LOCALHOST/v1",
        "http://[::1]:8025/v1",
    ],
)
def test_plain_http_to_loopback_is_allowed(base_url: str) -> None:
    assert resolve_base_url(base_url, allow_insecure_http=False) == base_url


@pytest.mark.parametrize(
    "base_url",
    [
        "http://api.mailpartner.fr/v1",
        "http://10.0.0.1/v1",
        "http://192.168.1.10:8025/v1",
        "http://localhost.evil.example/v1",
        # Resolved through DNS like any name: it may leave the machine.
        "http://sandbox.localhost/v1",
        "http://127.0.0.1.nip.io/v1",
        "http://[::2]/v1",
        "http://0.0.0.0/v1",
    ],
)
def test_plain_http_to_other_hosts_needs_opt_in(base_url: str) -> None:
    with pytest.raises(ConfigurationError, match="allow_insecure_http=True"):
        resolve_base_url(base_url, allow_insecure_http=False)

    assert resolve_base_url(base_url, allow_insecure_http=True) == base_url


@pytest.mark.parametrize("base_url", ["http://127.0.0.1:abc/v1", "https://api.test:99999/v1"])
def test_a_base_url_with_an_invalid_port_is_refused(base_url: str) -> None:
    with pytest.raises(ConfigurationError, match="invalid port"):
        resolve_base_url(base_url, allow_insecure_http=False)


def test_plain_http_from_env_is_refused_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(BASE_URL_ENV, "http://api.mailpartner.fr/v1")

    with pytest.raises(ConfigurationError, match="allow_insecure_http=True"):
        resolve_base_url(None, allow_insecure_http=False)


@pytest.mark.parametrize(
    "base_url",
    [
        "",
        "   ",
        "not a url",
        "api.mailpartner.fr/v1",
        "//api.mailpartner.fr/v1",
        "ftp://api.mailpartner.fr/v1",
        "file:///etc/passwd",
        "https://",
        "https:///v1",
        "https://[::1",
        "https://api.mailpartner.fr/v1?apiKey=abc",
        "https://api.mailpartner.fr/v1?",
        "https://api.mailpartner.fr/v1#top",
        "https://api.mailpartner.fr/v1#",
        "https://user:pass@api.mailpartner.fr/v1",
        "https://user@api.mailpartner.fr/v1",
    ],
)
@pytest.mark.parametrize("allow_insecure_http", [False, True])
def test_malformed_base_url_is_a_configuration_error(
    base_url: str, allow_insecure_http: bool
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        resolve_base_url(base_url, allow_insecure_http=allow_insecure_http)

    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    "base_url",
    [
        "https://user:hunter2@api.mailpartner.fr/v1",
        "https://api.mailpartner.fr/v1?apiKey=hunter2",
        "ftp://user:hunter2@api.mailpartner.fr/v1",
        "api.mailpartner.fr/v1/message-cancel?apiKey=hunter2",
    ],
)
def test_base_url_error_never_shows_a_password_or_key(base_url: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        resolve_base_url(base_url, allow_insecure_http=False)

    assert "hunter2" not in str(caught.value)
    assert "hunter2" not in repr(caught.value)


def test_malformed_base_url_from_env_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(BASE_URL_ENV, "api.mailpartner.fr")

    with pytest.raises(ConfigurationError, match="absolute http"):
        resolve_base_url(None, allow_insecure_http=False)


@pytest.mark.parametrize(("transport", "expected"), [("httpx", 10), ("httpx2", 20)])
def test_max_concurrency_defaults_to_the_transports_measured_best(
    transport: str, expected: int
) -> None:
    from mailpartner_async import MailPartner

    with MailPartner("k" * 10, transport=transport) as client:  # type: ignore[arg-type]
        assert client.max_concurrency == expected
    with MailPartner("k" * 10, transport=transport, max_concurrency=3) as client:  # type: ignore[arg-type]
        assert client.max_concurrency == 3


@pytest.mark.anyio
async def test_max_concurrency_defaults_to_50_on_aiohttp() -> None:
    from mailpartner_async import AsyncMailPartner

    async with AsyncMailPartner("k" * 10, transport="aiohttp") as client:
        assert client.max_concurrency == 50
