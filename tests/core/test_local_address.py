"""``check_local_address``: the address a client's connections leave from, pinned
exactly, each accepted value with the form kept and each refused one with its message."""

from __future__ import annotations

import pytest

from mailpartner_async import ConfigurationError
from mailpartner_async._core.settings import Settings, check_local_address

EXPECTED = "an IP address of this host, like '192.0.2.10' or '2001:db8::10'"


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        (None, None),
        ("192.0.2.10", "192.0.2.10"),
        ("127.0.0.2", "127.0.0.2"),
        ("0.0.0.0", "0.0.0.0"),  # httpx's way to leave over IPv4 only
        ("::", "::"),
        ("2001:DB8:0:0::10", "2001:db8::10"),
        ("::FFFF:192.0.2.10", "::ffff:192.0.2.10"),
    ],
)
def test_an_ip_address_is_kept_in_its_canonical_form(given: str | None, kept: str | None) -> None:
    assert check_local_address(given) == kept


@pytest.mark.parametrize(
    ("given", "message"),
    [
        pytest.param(
            "mail.example.com",
            f"local_address must be {EXPECTED} (no host name, no port, no brackets), "
            "got 'mail.example.com'",
            id="host-name",
        ),
        pytest.param(
            "localhost",
            f"local_address must be {EXPECTED} (no host name, no port, no brackets), "
            "got 'localhost'",
            id="localhost",
        ),
        pytest.param(
            "",
            f"local_address must be {EXPECTED} (no host name, no port, no brackets), got ''",
            id="empty",
        ),
        pytest.param(
            "1.2.3.4:80",
            f"local_address must be {EXPECTED} (no host name, no port, no brackets), "
            "got '1.2.3.4:80'",
            id="with-port",
        ),
        pytest.param(
            "[2001:db8::10]",
            f"local_address must be {EXPECTED} (no host name, no port, no brackets), "
            "got '[2001:db8::10]'",
            id="brackets",
        ),
        pytest.param(
            "192.0.2.010",
            f"local_address must be {EXPECTED} (no host name, no port, no brackets), "
            "got '192.0.2.010'",
            id="leading-zero",
        ),
        pytest.param(
            "192.0.2.0/24",
            f"local_address must be {EXPECTED} (no host name, no port, no brackets), "
            "got '192.0.2.0/24'",
            id="network",
        ),
        pytest.param(
            3221225994,
            f"local_address must be a string holding {EXPECTED}, got int",
            id="int",
        ),
        pytest.param(
            b"192.0.2.10",
            f"local_address must be a string holding {EXPECTED}, got bytes",
            id="bytes",
        ),
        pytest.param(
            ("192.0.2.10", 0),
            f"local_address must be a string holding {EXPECTED}, got tuple",
            id="aiohttp-tuple",
        ),
        pytest.param(
            "192.0.2.10\n",
            "local_address must not contain control characters or whitespace "
            "(U+000A at position 10)",
            id="newline",
        ),
        pytest.param(
            " 192.0.2.10",
            "local_address must not contain control characters or whitespace "
            "(U+0020 at position 0)",
            id="space",
        ),
        pytest.param(
            "192.0.2.10\x00",
            "local_address must not contain control characters or whitespace "
            "(U+0000 at position 10)",
            id="nul",
        ),
        pytest.param(
            "192.0.2.\u200b10",
            "local_address must not contain control characters or whitespace "
            "(U+200B at position 8)",
            id="zero-width",
        ),
        pytest.param(
            "fe80::1%eth0",
            "local_address 'fe80::1%eth0' has an IPv6 zone (%eth0), which is not supported: "
            "give a global address of this host",
            id="ipv6-zone",
        ),
        pytest.param(
            "224.0.0.1",
            "local_address '224.0.0.1' is a multicast address, which cannot be the source "
            "of a connection: give an address of this host",
            id="multicast-v4",
        ),
        pytest.param(
            "ff02::1",
            "local_address 'ff02::1' is a multicast address, which cannot be the source "
            "of a connection: give an address of this host",
            id="multicast-v6",
        ),
    ],
)
def test_anything_but_an_ip_address_is_refused_saying_what_is_expected(
    given: object, message: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        check_local_address(given)

    assert str(caught.value) == message
    assert isinstance(caught.value, ValueError)


def settings(base_url: str, local_address: str) -> Settings:
    return Settings.create(
        api_key="k",
        base_url=base_url,
        timeout=1,
        max_retries=0,
        response_format="json",
        max_concurrency=None,
        rate_limit=None,
        allow_insecure_http=True,
        transport="httpx",
        retry_policy=None,
        local_address=local_address,
    )


@pytest.mark.parametrize(
    ("base_url", "local_address"),
    [
        ("http://127.0.0.1:8025/v1", "::1"),
        ("http://[::1]:8025/v1", "127.0.0.2"),
        ("https://192.0.2.1/v1", "2001:db8::10"),
    ],
)
def test_a_local_address_of_the_other_ip_version_than_the_hosts_is_refused(
    base_url: str, local_address: str
) -> None:
    host = base_url.split("//")[1].split("/")[0].rsplit(":", 1)[0].strip("[]")
    with pytest.raises(ConfigurationError) as caught:
        settings(base_url, local_address)

    assert str(caught.value) == (
        f"local_address {local_address!r} cannot reach {host!r}, an address of the other IP "
        "version: give an IPv4 local_address for an IPv4 host, IPv6 for IPv6"
    )


@pytest.mark.parametrize(
    ("base_url", "local_address"),
    [
        ("http://127.0.0.1:8025/v1", "127.0.0.2"),
        ("http://[::1]:8025/v1", "::1"),
        ("https://api.mailpartner.fr/v1", "2001:db8::10"),  # a name: either may do
        ("https://api.mailpartner.fr/v1", "192.0.2.10"),
    ],
)
def test_a_local_address_of_the_hosts_ip_version_or_for_a_host_name_is_kept(
    base_url: str, local_address: str
) -> None:
    assert settings(base_url, local_address).local_address == local_address
