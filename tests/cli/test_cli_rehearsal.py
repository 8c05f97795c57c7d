"""A faithful rehearsal: the sandbox paces at ``--rate-limit`` and caps as the provider
does, and ``serve-fake --schedule-from FILE`` serves a campaign file's messages at their
send times, so the whole rescue runs end to end before the real one."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from mailpartner_async import AlreadySentError, CancellationTooLateError, RateLimitError
from mailpartner_async.cli import main
from mailpartner_async.cli.parser import build_parser
from mailpartner_async.cli.sandbox import PROVIDER_RATE_CAP, sandbox_client, sandbox_fake
from mailpartner_async.cli.serve_fake import build_fake
from mailpartner_async.testing import FAST_RETRY_POLICY, FakeMailPartner
from tests.cli.test_cli import FAKE_KEY, child_env, run_cli, serving_fake

PARIS = ZoneInfo("Europe/Paris")


def _at(delta: timedelta) -> str:
    return (datetime.now(UTC) + delta).isoformat(timespec="seconds")


# --- the sandbox ----------------------------------------------------------------------


def test_the_sandbox_plan_is_paced_at_the_rate_limit_given(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    campaign = tmp_path / "campaign.csv"
    rows = [f"r-{n},{_at(timedelta(hours=2))}" for n in range(120)]
    campaign.write_text("message_id,send_at\n" + "\n".join(rows) + "\n")

    argv = ["cancel", "--sandbox", "--dry-run", "--rate-limit", "60", "--from-file", str(campaign)]
    assert main(argv) == 0

    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "plan: 120 of 120 ids can be cancelled in time at 60/min"
    assert lines[1].endswith("(in 2.0 min)")  # 119 starts a second apart


def test_the_sandbox_default_plan_is_the_provider_pace(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["cancel", "--sandbox", "--dry-run", "a", "b"]) == 0
    assert capsys.readouterr().err.splitlines()[0] == (
        "plan: 2 of 2 ids can be cancelled in time at 2000/min"
    )


@pytest.mark.anyio
async def test_the_sandbox_client_paces_at_the_rate_limit_with_the_real_backoff() -> None:
    async with sandbox_client(sandbox_fake(), rate_limit=60, response_format="json") as client:
        assert client.rate_limit == 60
        assert client.retry_policy != FAST_RETRY_POLICY  # a Retry-After is waited for real


@pytest.mark.anyio
async def test_the_sandbox_fake_refuses_past_the_providers_2000_a_minute() -> None:
    fake = sandbox_fake()
    assert fake.rate_limit_per_minute == PROVIDER_RATE_CAP == 2000
    ids = [f"cap-{n}" for n in range(PROVIDER_RATE_CAP + 1)]

    client = sandbox_client(fake, rate_limit=None, response_format="json")
    async with client.with_options(max_retries=0) as unpaced:
        outcomes = await unpaced.cancel_many(ids, concurrency=1)

    assert [o.ok for o in outcomes[:-1]] == [True] * PROVIDER_RATE_CAP
    assert isinstance(outcomes[-1].error, RateLimitError)
    assert [r.code for r in fake.requests][-2:] == [200, 429]


# --- serve-fake --schedule-from ----------------------------------------------------------


def _fake(*options: str) -> FakeMailPartner:
    fake: FakeMailPartner = build_fake(build_parser().parse_args(["serve-fake", *options]))
    return fake


@pytest.mark.anyio
async def test_schedule_from_serves_each_message_at_its_send_time(tmp_path: Path) -> None:
    local = (datetime.now(PARIS) + timedelta(hours=3)).replace(tzinfo=None, microsecond=0)
    campaign = tmp_path / "campaign.csv"
    campaign.write_text(
        "message_id,send_at\n"
        f"far,{_at(timedelta(hours=1))}\n"
        f"soon,{_at(timedelta(minutes=4))}\n"
        f"gone,{_at(timedelta(minutes=-1))}\n"
        f"paris,{local.isoformat(sep=' ')}\n"
        f"far,{_at(timedelta(hours=1))}\n"  # the same message twice, same time: one
    )
    fake = _fake("--schedule-from", str(campaign))

    async with fake.async_client(max_retries=0) as client:
        outcomes = {o.message_id: o for o in await client.cancel_many(["far", "soon", "gone"])}
    assert outcomes["far"].ok
    assert isinstance(outcomes["soon"].error, CancellationTooLateError)  # code 6
    assert isinstance(outcomes["gone"].error, AlreadySentError)  # code 7
    assert fake.status("paris") == "scheduled"
    assert fake.status("far") == "cancelled"
    with pytest.raises(KeyError):
        fake.status("unknown-id")  # only the file's messages: others answer code 4


def test_schedule_from_a_plain_id_list_schedules_them_an_hour_ahead(tmp_path: Path) -> None:
    campaign = tmp_path / "ids.txt"
    campaign.write_text("a-1\na-2\n")
    fake = _fake("--schedule-from", str(campaign))

    with fake.client() as client:
        outcomes = client.cancel_many(["a-1", "a-2", "a-3"])
    assert [(o.message_id, o.ok) for o in outcomes] == [
        ("a-1", True),
        ("a-2", True),
        ("a-3", False),
    ]


@pytest.mark.parametrize(
    ("text", "options", "line"),
    [
        pytest.param(
            "message_id,send_at\nx,2999-01-01T00:00:00+00:00\nx,2999-01-02T00:00:00+00:00\n",
            (),
            "--schedule-from {path}: message 'x' has two send times, "
            "2999-01-01T00:00:00+00:00 and 2999-01-02T00:00:00+00:00; keep one",
            id="two-send-times",
        ),
        pytest.param(
            "x\n",
            ("--schedule", "x=+1h"),
            "--schedule-from {path}: message 'x' is given by --schedule too",
            id="also-in-schedule",
        ),
        pytest.param(
            "# nothing but a comment\n",
            (),
            "--schedule-from {path}: no messages in the file",
            id="empty",
        ),
    ],
)
def test_schedule_from_refuses_what_it_cannot_serve_with_one_line_and_exit_2(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    text: str,
    options: tuple[str, ...],
    line: str,
) -> None:
    campaign = tmp_path / "campaign.csv"
    campaign.write_text(text)

    assert main(["serve-fake", *options, "--schedule-from", str(campaign)]) == 2

    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [f"mailpartner: error: {line.format(path=campaign)}"]


def test_schedule_from_a_missing_file_exits_2_before_serving(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope.csv"

    assert main(["serve-fake", "--schedule-from", str(missing)]) == 2

    err = capsys.readouterr().err
    assert err.splitlines() == [
        f"mailpartner: error: cannot read {missing}: No such file or directory"
    ]


# --- the whole rescue, rehearsed --------------------------------------------------------


def test_a_campaign_file_rehearsed_end_to_end_over_http(tmp_path: Path) -> None:
    campaign = tmp_path / "campaign.csv"
    campaign.write_text(
        "message_id,send_at\n"
        f"e-1,{_at(timedelta(hours=1))}\n"
        f"e-2,{_at(timedelta(minutes=30))}\n"
        f"e-3,{_at(timedelta(minutes=2))}\n"
    )
    with serving_fake(tmp_path / "serve.log", "--schedule-from", str(campaign)) as url:
        run = run_cli(
            "cancel",
            "--base-url",
            url,
            "--from-file",
            str(campaign),
            env=child_env(MAILPARTNER_API_KEY=FAKE_KEY),
        )
    log = (tmp_path / "serve.log").read_text()

    assert run.returncode == 1  # e-3 goes out: too late
    outcomes = {
        r["message_id"]: r["code"] for r in (json.loads(x) for x in run.stdout.splitlines())
    }
    assert outcomes == {"e-1": 200, "e-2": 200, "e-3": 6}
    assert "plan: 2 of 3 ids can be cancelled in time at 2000/min" in run.stderr
    assert f"scheduled 3 messages from {campaign}" in log
    # Asked once, as the first answer has not yet told the server's clock (the
    # too-late skip never trusts the local clock alone); the fake says code 6.
    assert log.count("messageId=e-3") == 1
    assert log.count("-> 200 code=200") == 2
