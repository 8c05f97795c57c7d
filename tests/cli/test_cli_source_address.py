"""``--source-address``: ``mailpartner cancel`` leaves from the address given, and
``serve-fake --rate-limit-per-minute N`` counts each client address on its own.

Linux puts every 127.x.y.z address on the loopback interface, so one machine can
play a fleet of hosts: clients leave from 127.0.0.2 and 127.0.0.3 to a server on
127.0.0.1, which sees each connection's peer.
"""

from __future__ import annotations

import concurrent.futures
import sys
from pathlib import Path

import pytest

from mailpartner_async import MailPartner, RateLimitError
from tests.cli.test_cli import FAKE_KEY, SECRET_KEY, assert_usage_error, run_cli, serving_fake
from tests.support.server import ScriptedServer

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="only Linux puts all of 127/8 on loopback"
)


def test_cancel_leaves_from_the_source_address(server: ScriptedServer) -> None:
    run = run_cli(
        "cancel",
        "--api-key",
        SECRET_KEY,
        "--base-url",
        server.base_url,
        "--rate-limit",
        "none",
        "--source-address",
        "127.0.0.3",
        "s1",
        "s2",
    )

    assert run.returncode == 0, run.stderr
    assert sorted(r.message_id or "" for r in server.requests) == ["s1", "s2"]
    assert {r.peer for r in server.requests} == {"127.0.0.3"}


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        pytest.param("mail.example.com", "must be an IP address", id="host-name"),
        pytest.param("1.2.3.4:80", "no port, no brackets), got '1.2.3.4:80'", id="with-port"),
        pytest.param("", "must be an IP address of this host, like '192.0.2.10'", id="empty"),
        pytest.param("fe80::1%eth0", "has an IPv6 zone (%eth0)", id="ipv6-zone"),
    ],
)
def test_a_bad_source_address_exits_2_with_one_line_saying_what_to_give(
    value: str, fragment: str
) -> None:
    run = run_cli("cancel", "--sandbox", "--source-address", value, "1")

    assert_usage_error(run, "argument --source-address: ", fragment)


def test_the_sandbox_takes_a_source_address() -> None:
    run = run_cli("cancel", "--sandbox", "--source-address", "127.0.0.2", "1")

    assert run.returncode == 0, run.stderr


@pytest.mark.slow  # starts serve-fake
def test_a_served_fake_counts_each_client_address_on_its_own(tmp_path: Path) -> None:
    log = tmp_path / "fake.log"
    with serving_fake(log, "--schedule-unknown", "--rate-limit-per-minute", "2") as url:
        for address in ("127.0.0.2", "127.0.0.3"):
            with MailPartner(
                FAKE_KEY, base_url=url, local_address=address, rate_limit=None, max_retries=0
            ) as client:
                done = [client.cancel(f"{address}-{n}").code for n in range(2)]
                with pytest.raises(RateLimitError) as caught:
                    client.cancel(f"{address}-2")
            assert done == [200, 200]
            assert caught.value.retry_after is not None
            assert 0 < caught.value.retry_after <= 60  # the window and its answer as before

    lines = log.read_text().splitlines()
    assert sum("-> 200 code=200 from 127.0.0.2" in line for line in lines) == 2
    assert sum("-> 429 code=429 from 127.0.0.3" in line for line in lines) == 1


@pytest.mark.slow  # starts serve-fake
def test_serve_fakes_log_names_each_requests_own_address_under_concurrency(
    tmp_path: Path,
) -> None:
    log = tmp_path / "fake.log"
    addresses = ("127.0.0.2", "127.0.0.3")

    def cancel_from(url: str, address: str) -> None:
        with MailPartner(
            FAKE_KEY, base_url=url, local_address=address, rate_limit=None, max_concurrency=8
        ) as client:
            outcomes = client.cancel_many([f"{address}-{n}" for n in range(40)])
        assert all(outcome.ok for outcome in outcomes)

    with (
        serving_fake(log, "--schedule-unknown") as url,
        concurrent.futures.ThreadPoolExecutor(len(addresses)) as pool,
    ):
        for done in [pool.submit(cancel_from, url, address) for address in addresses]:
            done.result()

    lines = [line for line in log.read_text().splitlines() if "messageId=" in line]
    assert len(lines) == 80
    for line in lines:
        sent_as = line.split("messageId=")[1].split("-")[0]
        assert line.endswith(f"from {sent_as}"), line
