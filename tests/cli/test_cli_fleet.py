"""``mailpartner rescue submit|work|status``, run as users run it, on a real Redis.

Each test runs ``python -m mailpartner_async`` as a child process, with a real
``redis-server`` (the session's, each test on a campaign of its own) and, for
``work``, ``serve-fake`` over HTTP. Every run checks that the API key and the Redis
password are printed nowhere. The tests that run ``work`` against ``serve-fake`` are
marked slow (two processes each).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

import pytest
import redis

from tests.cli.test_cli import (
    FAKE_KEY,
    SECRET_KEY,
    Run,
    child_env,
    free_port,
    run_cli,
    serving_fake,
)
from tests.cli.test_cli_progress import run_on_terminal
from tests.support.redis_server import RedisServer

REQUEST_LINE: Final = re.compile(r"messageId=(?P<id>[^&\s]+) -> \d+ code=(?P<code>\d+)")
PASSWORD: Final = "redis-pw-Kq8Lm2Vx"  # distinctive: found in any output, it leaked
FAR: Final = "2999-01-01T12:00:00+00:00"  # a send time no test reaches
ERROR_LINE: Final = re.compile(r"^mailpartner(?: rescue \w+)?: error: \S.*$")


def _rescue(
    step: str, url: str, campaign: str, *args: str, env: dict[str, str] | None = None
) -> Run:
    run = run_cli("rescue", step, "--redis-url", url, "--campaign", campaign, *args, env=env)
    assert PASSWORD not in run.stdout + run.stderr
    return run


def _campaign_file(path: Path, ids: list[str], send_at: str = FAR) -> Path:
    path.write_text("message_id,send_at\n" + "".join(f"{i},{send_at}\n" for i in ids))
    return path


def _served(log: Path) -> Counter[tuple[str, int]]:
    return Counter((m["id"], int(m["code"])) for m in REQUEST_LINE.finditer(log.read_text()))


def _reached(plan_line: str, total: int) -> int:
    """How many ids the plan's first line says can be cancelled in time."""
    found = re.fullmatch(rf"plan: (\d+) of {total} ids can be cancelled in time at .*", plan_line)
    assert found is not None, plan_line
    return int(found[1])


def _one_error_line(run: Run, *fragments: str) -> str:
    """Exit 2, nothing on stdout, one error line (no traceback) holding ``fragments``."""
    assert run.returncode == 2, run
    assert run.stdout == ""
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 or "usage:" in run.stderr, run.stderr
    assert "Traceback" not in run.stderr
    line = lines[-1]
    assert ERROR_LINE.match(line), line
    for fragment in fragments:
        assert fragment in line, line
    return line


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    log = tmp_path / "serve-fake.log"
    with serving_fake(log, "--schedule-unknown", "--schedule", "late=+4m") as url:
        yield url, log


def _work(url: str, campaign: str, base_url: str, *args: str) -> Run:
    env = child_env(MAILPARTNER_API_KEY=FAKE_KEY)
    return _rescue(
        "work", url, campaign, "--base-url", base_url, "--rate-limit", "60000", *args, env=env
    )


# --- submit ---------------------------------------------------------------------------


def test_submit_twice_queues_each_id_once_and_says_how_many_were_new(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    ids = _campaign_file(tmp_path / "campaign.csv", ["s-1", "s-2", "s-3"])

    first = _rescue("submit", redis_server.url, "submit-twice", "--from-file", str(ids))
    again = _rescue("submit", redis_server.url, "submit-twice", "--from-file", str(ids), "s-4")

    assert first.returncode == again.returncode == 0, first.stderr + again.stderr
    assert first.stdout.splitlines()[0] == (
        "submit: 3 of 3 ids newly queued; the campaign 'submit-twice' holds 3 ids, 3 not final yet"
    )
    assert again.stdout.splitlines()[0] == (
        "submit: 1 of 4 ids newly queued (the other 3 were queued already); the campaign "
        "'submit-twice' holds 4 ids, 4 not final yet"
    )
    assert again.stdout.splitlines()[1].startswith("plan: 4 of 4 ids can be cancelled in time")


def test_submit_plans_for_the_pools_given(redis_server: RedisServer, tmp_path: Path) -> None:
    # 6,000 ids whose cut-off is 2 minutes away: one address reaches about 4,000 of
    # them at 2,000 a minute, four addresses reach them all.
    send_at = (datetime.now(UTC) + timedelta(minutes=7)).isoformat(timespec="seconds")
    ids = _campaign_file(tmp_path / "campaign.csv", [f"p-{n}" for n in range(6000)], send_at)

    one = _rescue("submit", redis_server.url, "pools", "--from-file", str(ids))
    four = _rescue("submit", redis_server.url, "pools", "--from-file", str(ids), "--pools", "4")

    assert one.returncode == four.returncode == 0, one.stderr + four.stderr
    reached = [_reached(run.stdout.splitlines()[1], 6000) for run in (one, four)]
    assert 3000 < reached[0] < 6000
    assert reached[1] == 6000


def test_submit_refuses_a_bad_campaign_file_naming_its_line_and_queues_nothing(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    ids = tmp_path / "campaign.csv"
    ids.write_text(f"message_id,send_at\nb-1,{FAR}\nb-2,next tuesday\n")

    run = _rescue("submit", redis_server.url, "bad-file", "--from-file", str(ids))

    _one_error_line(run, str(ids), "line 3", "nothing was sent")
    status = _rescue("status", redis_server.url, "bad-file")
    _one_error_line(status, "no campaign 'bad-file'", "mailpartner rescue submit")


def test_submit_of_an_empty_file_exits_2(redis_server: RedisServer, tmp_path: Path) -> None:
    ids = tmp_path / "empty.txt"
    ids.write_text("# nothing here\n")

    run = _rescue("submit", redis_server.url, "empty", "--from-file", str(ids))

    _one_error_line(run, f"no ids in {ids}")


# --- status ---------------------------------------------------------------------------


def test_status_json_is_one_object_with_the_campaigns_counts(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    ids = _campaign_file(tmp_path / "campaign.csv", ["j-1", "j-2"])
    assert _rescue("submit", redis_server.url, "as-json", "--from-file", str(ids)).returncode == 0

    run = _rescue("status", redis_server.url, "as-json", "--json")

    assert run.returncode == 0, run.stderr
    (line,) = run.stdout.splitlines()
    status = json.loads(line)
    assert status["campaign"] == "as-json"
    assert (status["submitted"], status["left"], status["in_flight"]) == (2, 2, 0)
    assert status["workers"] == []


@pytest.mark.slow
def test_status_shows_done_and_total_rate_time_left_outcomes_workers_and_in_flight(
    redis_server: RedisServer, tmp_path: Path, fake: tuple[str, Path]
) -> None:
    base_url, _ = fake
    ids = _campaign_file(tmp_path / "campaign.csv", ["h-1", "h-2", "h-3"])
    assert _rescue("submit", redis_server.url, "human", "--from-file", str(ids)).returncode == 0
    before = _rescue("status", redis_server.url, "human")
    assert _work(redis_server.url, "human", base_url).returncode == 0

    after = _rescue("status", redis_server.url, "human")

    assert before.returncode == after.returncode == 0, before.stderr + after.stderr
    assert before.stdout.splitlines() == [
        "campaign 'human': 0 of 3 ids final, 3 left (0 in flight)",
        "rate: 0 outcomes in the last minute; time left: unknown until ids become final",
        "outcomes: none yet",
        "workers seen in the last minute: none",
        "in flight: none",
    ]
    lines = after.stdout.splitlines()
    assert lines[0] == "campaign 'human': 3 of 3 ids final, 0 left (0 in flight)"
    assert re.fullmatch(
        r"rate: 3 outcomes in the last minute; time left: none, every id is final", lines[1]
    )
    assert lines[2] == "outcomes: 3 cancelled"
    assert re.fullmatch(r"workers seen in the last minute \(1\): \S+", lines[3]), lines[3]
    assert lines[4] == "in flight: none"


# --- work -----------------------------------------------------------------------------


@pytest.mark.slow
def test_work_cancels_a_small_campaign_each_id_once_and_exits_0(
    redis_server: RedisServer, tmp_path: Path, fake: tuple[str, Path]
) -> None:
    base_url, log = fake
    ids = [f"w-{n}" for n in range(12)]
    campaign = _campaign_file(tmp_path / "campaign.csv", ids)
    assert _rescue("submit", redis_server.url, "work", "--from-file", str(campaign)).returncode == 0

    run = _work(redis_server.url, "work", base_url, "--pool", "cli-work-pool")

    assert run.returncode == 0, run.stderr
    assert run.stderr.splitlines()[-2:] == [
        "campaign 'work': No email will go out: all 12 are stopped (cancelled now or already).",
        "this worker: 12 cancelled now (of 12)",
    ]
    assert _served(log) == Counter({(message_id, 200): 1 for message_id in ids})
    with redis.Redis.from_url(redis_server.url) as shared:
        assert shared.llen("{cli-work-pool}:starts") == 12  # paced on the --pool budget


@pytest.mark.slow
def test_work_exits_1_when_an_email_of_the_campaign_will_still_go_out(
    redis_server: RedisServer, tmp_path: Path, fake: tuple[str, Path]
) -> None:
    base_url, _ = fake
    assert _rescue("submit", redis_server.url, "late", "late", "ok-1").returncode == 0

    run = _work(redis_server.url, "late", base_url)

    assert run.returncode == 1, run.stderr
    assert run.stderr.splitlines()[-2:] == [
        "campaign 'late': 1 email will still go out: 1 too late.",
        "this worker: 1 cancelled now, 1 too late (of 2)",
    ]


@pytest.mark.slow
def test_work_draws_the_campaigns_progress_line_on_a_terminal(
    redis_server: RedisServer, tmp_path: Path, fake: tuple[str, Path]
) -> None:
    base_url, _ = fake
    campaign = _campaign_file(tmp_path / "campaign.csv", [f"t-{n}" for n in range(40)])
    assert _rescue("submit", redis_server.url, "tty", "--from-file", str(campaign)).returncode == 0

    status, screens = run_on_terminal(
        *("rescue", "work", "--redis-url", redis_server.url, "--campaign", "tty"),
        *("--base-url", base_url, "--api-key", FAKE_KEY, "--rate-limit", "1200"),
    )

    assert status == 0
    bars = [line for shown in screens for line in shown if line.startswith("cancelling ")]
    assert bars, "the progress line was never on screen"
    assert all(re.match(r"cancelling \d+/40 · ", line) for line in bars), bars
    final = [line for line in screens[-1] if line]
    assert not any(line.startswith("cancelling") for line in final)  # cleared at the end
    assert final[-1] == "this worker: 40 cancelled now (of 40)"


def test_work_on_a_missing_campaign_exits_2(redis_server: RedisServer) -> None:
    run = _rescue("work", redis_server.url, "never-submitted", "--api-key", SECRET_KEY)

    _one_error_line(run, "no campaign 'never-submitted'")


def test_work_refuses_the_sandbox(redis_server: RedisServer) -> None:
    run = _rescue("work", redis_server.url, "any", "--sandbox")

    _one_error_line(run, "no --sandbox", "serve-fake")


def test_work_without_a_key_exits_2_naming_the_variable(redis_server: RedisServer) -> None:
    run = _rescue("work", redis_server.url, "any", "--base-url", "http://127.0.0.1:9/v1")

    _one_error_line(run, "MAILPARTNER_API_KEY")


# --- Redis: bad, away, or with a password -----------------------------------------------


@pytest.mark.parametrize("step", ["submit", "work", "status"])
def test_an_unreachable_redis_exits_2_with_one_line(step: str) -> None:
    url = f"redis://:{PASSWORD}@127.0.0.1:{free_port()}/0"  # nothing listens there
    extra = {"submit": ("r-1",), "work": ("--api-key", SECRET_KEY), "status": ()}[step]

    run = _rescue(step, url, "away", *extra)

    _one_error_line(run, "cannot use the Redis of --redis-url", "check the URL")


@pytest.mark.parametrize("step", ["submit", "work", "status"])
def test_a_redis_url_redis_py_cannot_use_exits_2_with_one_line(step: str) -> None:
    extra = {"submit": ("x-1",), "work": ("--api-key", SECRET_KEY), "status": ()}[step]

    run = _rescue(step, "redis://localhost:abc/0", "bad-url", *extra)

    _one_error_line(run, "--redis-url", "redis://host:6379/0")


def test_no_redis_url_exits_2_naming_the_variable() -> None:
    run = run_cli("rescue", "status", "--campaign", "c")

    _one_error_line(run, "--redis-url", "MAILPARTNER_REDIS_URL")


def test_the_redis_url_may_come_from_the_environment(redis_server: RedisServer) -> None:
    env = child_env(MAILPARTNER_REDIS_URL=redis_server.url)

    submitted = run_cli("rescue", "submit", "--campaign", "from-env", "e-1", env=env)
    status = run_cli("rescue", "status", "--campaign", "from-env", "--json", env=env)

    assert submitted.returncode == status.returncode == 0, submitted.stderr + status.stderr
    assert json.loads(status.stdout)["submitted"] == 1


def test_a_redis_password_is_printed_nowhere(redis_server: RedisServer, tmp_path: Path) -> None:
    with redis.Redis.from_url(redis_server.url) as admin:
        admin.acl_setuser(
            "rescuer", enabled=True, passwords=[f"+{PASSWORD}"], keys=["*"], commands=["+@all"]
        )
    url = redis_server.url.replace("redis://", f"redis://rescuer:{PASSWORD}@")
    wrong = redis_server.url.replace("redis://", f"redis://rescuer:{PASSWORD}x@")

    runs = [
        _rescue("submit", url, "with-password", "pw-1"),
        _rescue("status", url, "with-password"),
        _rescue("status", url, "with-password", "--json"),
        _rescue("status", wrong, "with-password"),
        _rescue("submit", url, "", "pw-2"),
    ]

    assert [run.returncode for run in runs] == [0, 0, 0, 2, 2], [run.stderr for run in runs]
    _one_error_line(runs[3], "cannot use the Redis of --redis-url")


def test_a_campaign_name_the_rescue_refuses_exits_2(redis_server: RedisServer) -> None:
    run = _rescue("submit", redis_server.url, "bad\x07name", "c-1")

    _one_error_line(run, "--campaign")


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        pytest.param(("submit", "--pools", "0", "x"), "--pools", id="pools-0"),
        pytest.param(("work", "--lease", "0"), "--lease", id="lease-0"),
        pytest.param(("work", "--lease", "0.5"), "of at least 1, got", id="lease-under-1-s"),
        pytest.param(("status", "--bogus"), "--bogus", id="unknown-flag"),
    ],
)
def test_bad_options_exit_2_with_one_error_line(args: tuple[str, ...], fragment: str) -> None:
    run = run_cli(
        "rescue", args[0], "--redis-url", "redis://127.0.0.1:9/0", "--campaign", "c", *args[1:]
    )

    line = _one_error_line(run, fragment)
    assert line.startswith(f"mailpartner rescue {args[0]}: error: ")
