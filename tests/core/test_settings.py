"""The retry policy and the checks on settings: key and base URL from arguments or env.

Then the settings checks pinned exactly: each accepted value, each refused one and
its message. Written for the mutation gate (``nox -s mutate``): these functions are
otherwise reached only through the clients, over sockets.
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Callable
from typing import Any

import pytest

from mailpartner_async import (
    ConfigurationError,
)
from mailpartner_async._core.settings import (
    API_KEY_ENV,
    BASE_URL_ENV,
    DEFAULT_BASE_URL,
    UNSET,
    RetryPolicy,
    Settings,
    Timeout,
    check_concurrency,
    check_count,
    check_rate_limit,
    check_retries,
    check_seconds,
    check_timeout,
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


@pytest.mark.parametrize(
    ("base_url", "character"),
    [
        ("https://api.mailpartner.fr/v1\x00", "U+0000 at position 29"),
        ("https://api.mailpartner.fr\x00.evil.example/v1", "U+0000 at position 26"),
        ("https://api.mailpartner.fr/v1\r\nX-Injected: 1", "U+000D at position 29"),
        ("https://api.mailpartner.fr/v1\n", None),  # trailing: stripped like spaces
        ("https://api.mailpartner.fr/v\t1", "U+0009 at position 28"),
        ("https://api.mailpartner.fr/v 1", "U+0020 at position 28"),
        ("https://api.mail partner.fr/v1", "U+0020 at position 16"),
        ("https://api.mailpartner.fr/v1\x7f", "U+007F at position 29"),
        ("https://api.mailpartner.fr/v1\x85", None),  # NEL: whitespace, stripped
        ("https://api.mailpartner.fr/\x9bv1", "U+009B at position 27"),
        ("https://api.mailpartner.fr/v\u00a01", "U+00A0 at position 28"),
        ("https://api.mailpartner.fr/v\u20281", "U+2028 at position 28"),
        ("https://api.mailpartner.fr/v\u200b1", "U+200B at position 28"),
        ("https://api.mailpartner.fr/v\u202e1", "U+202E at position 28"),
        ("https://api.mailpartner.fr/v\ufeff1", "U+FEFF at position 28"),
    ],
)
@pytest.mark.parametrize("allow_insecure_http", [False, True])
def test_a_control_or_whitespace_character_in_base_url_is_refused(
    base_url: str, character: str | None, allow_insecure_http: bool
) -> None:
    if character is None:
        # Leading and trailing whitespace is trimmed, as it always was.
        assert resolve_base_url(base_url, allow_insecure_http=allow_insecure_http) == (
            "https://api.mailpartner.fr/v1"
        )
        return

    with pytest.raises(ConfigurationError, match="control characters or whitespace") as caught:
        resolve_base_url(base_url, allow_insecure_http=allow_insecure_http)

    assert f"({character})" in str(caught.value)
    assert "mailpartner" not in str(caught.value)


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


# --- pinned exactly: each accepted value, each refused one and its message -------


@dataclasses.dataclass
class PhasedTimeout:
    """Duck-typed like ``httpx.Timeout``: four phase attributes."""

    connect: object
    read: object
    write: object
    pool: object


# --- counts ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "minimum", "expected"),
    [(0, 0, 0), (1, 1, 1), (7, 1, 7), (2**40, 1, 2**40)],
)
def test_check_count_returns_an_int_at_or_over_the_minimum(
    value: int, minimum: int, expected: int
) -> None:
    assert check_count("n", value, minimum=minimum) == expected


@pytest.mark.parametrize(
    ("value", "minimum", "message"),
    [
        (-1, 0, "n must be an int >= 0, got -1"),
        (0, 1, "n must be an int >= 1, got 0"),
        (True, 0, "n must be an int >= 0, got True"),
        (False, 0, "n must be an int >= 0, got False"),
        (1.0, 0, "n must be an int >= 0, got 1.0"),
        ("3", 0, "n must be an int >= 0, got '3'"),
        (None, 0, "n must be an int >= 0, got None"),
    ],
)
def test_check_count_refuses_bools_non_ints_and_small_values_naming_them(
    value: object, minimum: int, message: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        check_count("n", value, minimum=minimum)
    assert caught.value.message == message


@pytest.mark.parametrize(
    ("value", "or_none", "expected"),
    [(1, False, 1.0), (0.25, False, 0.25), (2**40, False, 2.0**40), (None, True, None)],
)
def test_check_seconds_returns_a_float_over_0_or_none_when_allowed(
    value: object, or_none: bool, expected: float | None
) -> None:
    checked = check_seconds("s", value, or_none=or_none)
    assert (checked, type(checked)) == (expected, type(expected))


@pytest.mark.parametrize(
    ("value", "or_none", "message"),
    [
        (0, False, "s must be a positive number of seconds, got 0"),
        (-0.5, False, "s must be a positive number of seconds, got -0.5"),
        (math.inf, False, "s must be a positive number of seconds, got inf"),
        (math.nan, False, "s must be a positive number of seconds, got nan"),
        (True, False, "s must be a positive number of seconds, got True"),
        ("5", False, "s must be a positive number of seconds, got '5'"),
        (None, False, "s must be a positive number of seconds, got None"),
        (0, True, "s must be None or a positive number of seconds, got 0"),
        (False, True, "s must be None or a positive number of seconds, got False"),
    ],
)
def test_check_seconds_refuses_anything_but_a_finite_number_over_0_naming_it(
    value: object, or_none: bool, message: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        check_seconds("s", value, or_none=or_none)
    assert caught.value.message == message


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: check_retries(-1), "max_retries must be an int >= 0, got -1"),
        (lambda: check_retries(1.5), "max_retries must be an int >= 0, got 1.5"),
        (lambda: check_concurrency(0, 10), "concurrency must be an int >= 1, got 0"),
        (lambda: check_concurrency(True, 10), "concurrency must be an int >= 1, got True"),
        (lambda: check_rate_limit(0), "rate_limit must be an int >= 1, got 0"),
        (lambda: check_rate_limit("60"), "rate_limit must be an int >= 1, got '60'"),
    ],
)
def test_count_settings_name_themselves_and_their_minimum_when_refused(
    call: Callable[[], object], message: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        call()
    assert caught.value.message == message


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        (lambda: check_retries(0), 0),
        (lambda: check_retries(5), 5),
        (lambda: check_concurrency(None, 10), 10),
        (lambda: check_concurrency(None, 3), 3),
        (lambda: check_concurrency(1, 10), 1),
        (lambda: check_concurrency(25, 10), 25),
        (lambda: check_rate_limit(None), None),
        (lambda: check_rate_limit(1), 1),
        (lambda: check_rate_limit(2000), 2000),
    ],
)
def test_retries_zero_up_concurrency_none_is_default_rate_limit_none_is_no_cap(
    call: Callable[[], int | None], expected: int | None
) -> None:
    assert call() == expected


# --- timeouts ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (5, Timeout(5.0, 5.0, 5.0, 5.0)),
        (0.25, Timeout(0.25, 0.25, 0.25, 0.25)),
        (1e-9, Timeout(1e-9, 1e-9, 1e-9, 1e-9)),
        (Timeout(1.0, None, 3.0, None), Timeout(1.0, None, 3.0, None)),
        (PhasedTimeout(1, 2, 3, 4), Timeout(1.0, 2.0, 3.0, 4.0)),
        (PhasedTimeout(None, 2.5, None, None), Timeout(None, 2.5, None, None)),
        (PhasedTimeout(None, None, None, None), Timeout(None, None, None, None)),
    ],
)
def test_timeout_is_seconds_for_every_phase_or_phases_from_a_timeout_object(
    value: object, expected: Timeout
) -> None:
    got = check_timeout(value)
    assert got == expected
    assert all(phase is None or type(phase) is float for phase in dataclasses.astuple(got))


def test_a_timeout_value_is_returned_as_it_is() -> None:
    timeout = Timeout(1.0, 2.0, 3.0, 4.0)
    assert check_timeout(timeout) is timeout


@pytest.mark.parametrize(
    "value",
    [
        0,
        0.0,
        -1,
        -0.5,
        float("inf"),
        float("nan"),
        True,
        False,
        None,
        "5",
        [5],
        PhasedTimeout(0, 1, 1, 1),
        PhasedTimeout(1, -1, 1, 1),
        PhasedTimeout(1, 1, float("inf"), 1),
        PhasedTimeout(1, 1, 1, True),
        PhasedTimeout(1, 1, 1, "1"),
    ],
)
def test_timeout_refuses_non_positive_infinite_bool_and_non_numbers_naming_the_value(
    value: object,
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        check_timeout(value)
    assert caught.value.message == (
        f"timeout must be a positive number of seconds or an httpx.Timeout, got {value!r}"
    )


def test_object_with_only_some_phases_is_not_a_timeout() -> None:
    @dataclasses.dataclass
    class ThreePhases:
        connect: float = 1.0
        read: float = 1.0
        write: float = 1.0

    with pytest.raises(ConfigurationError, match="timeout must be a positive number"):
        check_timeout(ThreePhases())


# --- Settings ----------------------------------------------------------------------------


@pytest.fixture
def no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(API_KEY_ENV, raising=False)
    monkeypatch.delenv(BASE_URL_ENV, raising=False)


ARGS: dict[str, object] = {
    "api_key": " key-123456 ",
    "base_url": "https://api.example.test/v2/",
    "timeout": 3,
    "max_retries": 4,
    "response_format": "xml",
    "max_concurrency": 6,
    "rate_limit": 120,
    "allow_insecure_http": False,
    "transport": "aiohttp",
    "retry_policy": None,
    "local_address": "2001:DB8::0:10",
}


def _create(**changes: object) -> Settings:
    return Settings.create(**{**ARGS, **changes})  # type: ignore[arg-type]


@pytest.mark.usefixtures("no_env")
def test_settings_keep_every_checked_value() -> None:
    settings = _create()
    assert settings.api_key is not None
    assert settings.api_key.reveal() == "key-123456"
    assert dataclasses.replace(settings, api_key=None) == Settings(
        api_key=None,
        base_url="https://api.example.test/v2",
        timeout=Timeout(3.0, 3.0, 3.0, 3.0),
        max_retries=4,
        response_format="xml",
        max_concurrency=6,
        rate_limit=120,
        transport="aiohttp",
        retry_policy=RetryPolicy(),
        local_address="2001:db8::10",
    )


@pytest.mark.usefixtures("no_env")
@pytest.mark.parametrize(
    ("changes", "field", "expected"),
    [
        ({"api_key": None}, "api_key", None),
        ({"api_key": "   "}, "api_key", None),
        ({"response_format": "json"}, "response_format", "json"),
        ({"transport": "httpx"}, "transport", "httpx"),
        ({"rate_limit": None}, "rate_limit", None),
        ({"max_retries": 0}, "max_retries", 0),
        ({"max_concurrency": 1}, "max_concurrency", 1),
        ({"retry_policy": RetryPolicy(max_delay=2.0)}, "retry_policy", RetryPolicy(max_delay=2.0)),
        (
            {"base_url": "http://example.test", "allow_insecure_http": True},
            "base_url",
            "http://example.test",
        ),
    ],
)
def test_settings_accept_each_documented_value(
    changes: dict[str, object], field: str, expected: object
) -> None:
    assert getattr(_create(**changes), field) == expected


@pytest.mark.usefixtures("no_env")
def test_settings_keep_a_transport_object_as_given() -> None:
    transport = object()
    assert _create(transport=transport).transport is transport


@pytest.mark.usefixtures("no_env")
@pytest.mark.parametrize(
    ("transport", "expected"), [("httpx", 10), ("httpx2", 20), ("aiohttp", 50), (object(), 10)]
)
def test_settings_without_max_concurrency_take_the_transports_default_and_httpxs_for_an_object(
    transport: object, expected: int
) -> None:
    assert _create(max_concurrency=None, transport=transport).max_concurrency == expected


@pytest.mark.usefixtures("no_env")
def test_the_observer_keeps_the_hook_and_both_providers() -> None:
    from opentelemetry.metrics import NoOpMeterProvider
    from opentelemetry.trace import NoOpTracerProvider

    from mailpartner_async._telemetry import Observer

    def hook(info: object) -> None:
        pass

    tracer_provider, meter_provider = NoOpTracerProvider(), NoOpMeterProvider()
    observer = Observer.create(hook, tracer_provider, meter_provider)
    assert observer.on_attempt is hook
    assert observer.tracer_provider is tracer_provider
    assert observer.meter_provider is meter_provider


@pytest.mark.usefixtures("no_env")
def test_a_rate_limiter_without_pacers_is_refused_saying_what_one_is() -> None:
    from mailpartner_async._rate_limiter import check_rate_limiter

    with pytest.raises(ConfigurationError) as caught:
        check_rate_limiter(42)
    assert caught.value.message == (
        "rate_limiter must be a rate limiter with async_pacer() and pacer() "
        "(such as mailpartner_async.redis.RedisRateLimiter) or None, got 42"
    )


@pytest.mark.usefixtures("no_env")
def test_settings_read_the_key_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(API_KEY_ENV, "env-key-999")
    key = _create(api_key=None).api_key
    assert key is not None
    assert key.reveal() == "env-key-999"


@pytest.mark.usefixtures("no_env")
@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"response_format": "yaml"}, "response_format must be 'json' or 'xml', got 'yaml'"),
        ({"response_format": None}, "response_format must be 'json' or 'xml', got None"),
        (
            {"transport": "requests"},
            "transport must be one of 'httpx', 'httpx2', 'aiohttp' or an HTTP transport object, "
            "got 'requests'",
        ),
        (
            {"retry_policy": {"max_delay": 1}},
            "retry_policy must be a RetryPolicy, got {'max_delay': 1}",
        ),
        ({"timeout": 0}, "timeout must be a positive number of seconds or an httpx.Timeout, got 0"),
        ({"max_retries": -1}, "max_retries must be an int >= 0, got -1"),
        ({"max_concurrency": 0}, "max_concurrency must be an int >= 1, got 0"),
        ({"rate_limit": 0}, "rate_limit must be an int >= 1, got 0"),
        (
            {"base_url": "http://example.test"},
            "refusing plain http:// to 'example.test': the API key would travel "
            "unencrypted; use https:// or pass allow_insecure_http=True",
        ),
    ],
)
def test_settings_refuse_each_bad_value_with_its_message(
    changes: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        _create(**changes)
    assert caught.value.message == message


@pytest.mark.usefixtures("no_env")
def test_with_overrides_and_nothing_to_override_is_the_same_settings() -> None:
    settings = _create()
    assert settings.with_overrides() is settings


@pytest.mark.usefixtures("no_env")
@pytest.mark.parametrize(
    ("overrides", "timeout", "max_retries"),
    [
        ({"timeout": 1}, Timeout(1.0, 1.0, 1.0, 1.0), 4),
        ({"max_retries": 0}, Timeout(3.0, 3.0, 3.0, 3.0), 0),
        ({"timeout": 2.5, "max_retries": 9}, Timeout(2.5, 2.5, 2.5, 2.5), 9),
        ({"timeout": UNSET, "max_retries": 1}, Timeout(3.0, 3.0, 3.0, 3.0), 1),
    ],
)
def test_with_overrides_replaces_only_what_is_given(
    overrides: dict[str, object], timeout: Timeout, max_retries: int
) -> None:
    settings = _create()
    changed = settings.with_overrides(**overrides)
    assert (changed.timeout, changed.max_retries) == (timeout, max_retries)
    assert changed.api_key is settings.api_key
    assert dataclasses.replace(changed, timeout=settings.timeout, max_retries=4) == settings


@pytest.mark.usefixtures("no_env")
@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"timeout": -1},
            "timeout must be a positive number of seconds or an httpx.Timeout, got -1",
        ),
        ({"max_retries": True}, "max_retries must be an int >= 0, got True"),
    ],
)
def test_with_overrides_checks_what_is_given(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        _create().with_overrides(**overrides)
    assert caught.value.message == message


def test_unset_shows_as_unset() -> None:
    assert repr(UNSET) == "UNSET"


# --- base URL messages ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("base_url", "expected"),
    [
        ("https://api.example.test/apiX", "https://api.example.test/apiX"),
        ("https://api.example.test/v1//", "https://api.example.test/v1"),
        (" https://api.example.test/ ", "https://api.example.test"),
    ],
)
def test_base_url_loses_only_its_trailing_slashes(base_url: str, expected: str) -> None:
    assert resolve_base_url(base_url, allow_insecure_http=False) == expected


@pytest.mark.parametrize(
    ("base_url", "message"),
    [
        ("https://[::1", "base_url is not a valid URL"),
        (
            "https://example.test/v1?apiKey=k",
            "base_url must not carry a query, fragment or credentials",
        ),
        ("https://example.test/v1#top", "base_url must not carry a query, fragment or credentials"),
        (
            "https://user:pw@example.test",
            "base_url must not carry a query, fragment or credentials",
        ),
        (
            "ftp://example.test",
            "base_url must be an absolute http(s) URL with a host (scheme 'ftp')",
        ),
        (
            "http://10.0.0.1",
            "refusing plain http:// to '10.0.0.1': the API key would travel "
            "unencrypted; use https:// or pass allow_insecure_http=True",
        ),
        ("https://example.test:99999/v1", "base_url has an invalid port"),
        ("https://example.test:https/v1", "base_url has an invalid port"),
    ],
)
def test_bad_base_url_message_says_what_is_wrong(base_url: str, message: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        resolve_base_url(base_url, allow_insecure_http=False)
    assert caught.value.message == message


# --- pinned exactly: the newer options (max_concurrency, rate_limiter) -----------


def settings(**changes: Any) -> Settings:
    arguments: dict[str, Any] = {
        "api_key": "k" * 10,
        "base_url": None,
        "timeout": 10.0,
        "max_retries": 2,
        "response_format": "json",
        "max_concurrency": None,
        "rate_limit": 2000,
        "allow_insecure_http": False,
        "transport": "httpx",
        "retry_policy": None,
    }
    arguments.update(changes)
    return Settings.create(**arguments)


@pytest.mark.parametrize(
    ("transport", "expected"),
    [("httpx", 10), ("httpx2", 20), ("aiohttp", 50), (object(), 10)],
)
def test_max_concurrency_none_is_the_transports_default(transport: object, expected: int) -> None:
    assert settings(transport=transport).max_concurrency == expected
    assert settings(transport=transport, max_concurrency=4).max_concurrency == 4


@pytest.mark.parametrize("bad", [0, -1, True, 2.0, "10"])
def test_max_concurrency_must_be_an_int_of_at_least_one(bad: object) -> None:
    with pytest.raises(ConfigurationError, match=r"max_concurrency must be an int >= 1"):
        settings(max_concurrency=bad)


def test_a_rate_limiter_must_be_one_or_none() -> None:
    from mailpartner_async._rate_limiter import check_rate_limiter

    assert check_rate_limiter(None) is None
    with pytest.raises(ConfigurationError, match=r"rate_limiter must be a rate limiter.*got 5"):
        check_rate_limiter(5)
