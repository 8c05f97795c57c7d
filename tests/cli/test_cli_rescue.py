"""The command line in a rescue: send times, the plan, the journal under SIGKILL, Ctrl+C.

Runs ``python -m mailpartner_async`` as a child process against ``serve-fake``, as
users do (helpers from ``tests.cli.test_cli``).
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import pytest

from mailpartner_async import __version__
from mailpartner_async.cli.parser import build_parser
from tests.cli.test_cli import CLI, FAKE_KEY, child_env, free_port, run_cli, serving_fake

REQUEST_LINE: Final = re.compile(r"messageId=(?P<id>[^&\s]+) -> \d+ code=(?P<code>\d+)")


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    log = tmp_path / "serve-fake.log"
    with serving_fake(log, "--schedule-unknown", "--schedule", "soon=+4m") as url:
        yield url, log


def _served(log: Path) -> list[tuple[str, int]]:
    return [(m["id"], int(m["code"])) for m in REQUEST_LINE.finditer(log.read_text())]


def _journal(path: Path) -> list[dict[str, str]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _finals(path: Path) -> Counter[str]:
    return Counter(r["id"] for r in _journal(path) if r["event"] == "final")


def test_version_is_printed() -> None:
    run = run_cli("--version")
    assert (run.returncode, run.stdout.strip()) == (0, f"mailpartner {__version__}")


def test_unknown_flag_after_cancel_prints_the_cancel_usage() -> None:
    run = run_cli("cancel", "--sandbox", "--bogus", "1")
    assert run.returncode == 2
    assert run.stderr.startswith("usage: mailpartner cancel")


@pytest.mark.parametrize(
    ("command", "defaults"),
    [
        (
            "cancel",
            [
                "(default: Europe/Paris)",
                "(default 2000,",
                "(default: json)",
                "(default: the transport's best)",
                "(default: no journal)",
                "(default: $MAILPARTNER_API_KEY;",
            ],
        ),
        (
            "serve-fake",
            [
                "(default: 127.0.0.1)",
                "(default: 8025)",
                "(default: test-key)",
                "(default: no cap)",
                "(otherwise: code 4)",
            ],
        ),
    ],
)
def test_help_shows_each_default_once_and_no_empty_one(command: str, defaults: list[str]) -> None:
    text = " ".join(run_cli(command, "--help").stdout.split())
    for default in defaults:
        assert default in text
    for empty in ("(default: None)", "(default: False)", "(default: [])"):
        assert empty not in text
    # Every option that takes a value says its default, once.
    parser = build_parser().commands[command]
    formatter = parser._get_formatter()
    for action in parser._actions:
        if action.option_strings and action.nargs != 0:
            said = str(formatter._get_help_string(action))
            assert said.replace("%(default)s", "").count("default") == 1, action.option_strings


def test_plain_http_error_names_the_flag_to_allow_it() -> None:
    run = run_cli(
        "cancel",
        "--base-url",
        "http://mailpartner.invalid/v1",
        "1",
        env=child_env(MAILPARTNER_API_KEY=FAKE_KEY),
    )
    assert run.returncode == 2
    assert "--allow-insecure-http" in run.stderr


def test_an_empty_file_says_there_are_no_ids_in_it(tmp_path: Path) -> None:
    empty = tmp_path / "ids.txt"
    empty.write_text("# nothing\n\n")
    run = run_cli("cancel", "--sandbox", "--from-file", str(empty))
    assert run.returncode == 2
    assert f"no ids in {empty}" in run.stderr


def test_a_utf8_bom_is_not_part_of_the_first_id(tmp_path: Path) -> None:
    ids = tmp_path / "ids.txt"
    ids.write_bytes("\ufeffb-1\nb-2\n".encode())
    run = run_cli("cancel", "--sandbox", "--from-file", str(ids))
    assert run.returncode == 0
    assert sorted(json.loads(line)["message_id"] for line in run.stdout.splitlines()) == [
        "b-1",
        "b-2",
    ]


SCHEDULED_CSV: Final = (
    "message_id,send_at\n"
    "late,2000-01-01T00:00:00+00:00\n"
    "far,2999-01-01 12:00:00\n"
    "near,2998-01-01T12:00:00Z\n"
)


def test_dry_run_prints_only_the_plan(tmp_path: Path) -> None:
    ids = tmp_path / "ids.csv"
    ids.write_text(SCHEDULED_CSV)
    run = run_cli("cancel", "--sandbox", "--dry-run", "--from-file", str(ids))
    assert (run.returncode, run.stdout) == (0, "")
    assert "plan: 2 of 3 ids can be cancelled in time" in run.stderr
    assert "plan: 1 already inside their last 5 minutes: late" in run.stderr


def test_json_lines_in_the_providers_form_start_the_soonest_first(
    tmp_path: Path, fake: tuple[str, Path]
) -> None:
    url, log = fake
    ids = tmp_path / "ids.jsonl"
    ids.write_text(
        '{"messageId": "j-far", "scheduledDeliveryDate": "2999-01-01 12:00:00"}\n'
        '{"messageId": "j-late", "scheduledDeliveryDate": "2000-01-01 12:00:00"}\n'
        '{"messageId": "j-near", "scheduledDeliveryDate": "2998-01-01 12:00:00"}\n'
    )
    run = run_cli(
        "cancel",
        "--base-url",
        url,
        "--from-file",
        str(ids),
        "--concurrency",
        "1",
        env=child_env(MAILPARTNER_API_KEY=FAKE_KEY),
    )
    assert run.returncode == 1  # j-late will go out
    assert "plan: 2 of 3" in run.stderr
    assert [message_id for message_id, _ in _served(log)] == ["j-near", "j-far"]
    late = next(json.loads(x) for x in run.stdout.splitlines() if "j-late" in x)
    assert (late["code"], late["error"]) == (6, "CancellationTooLateError")


def test_a_rerun_of_a_finished_campaign_exits_0(fake: tuple[str, Path]) -> None:
    url, _ = fake
    env = child_env(MAILPARTNER_API_KEY=FAKE_KEY)
    first = run_cli("cancel", "--base-url", url, "r-1", "r-2", env=env)
    again = run_cli("cancel", "--base-url", url, "r-1", "r-2", env=env)
    assert (first.returncode, again.returncode) == (0, 0)
    assert "0 cancelled now, 2 already cancelled (of 2)" in again.stderr


def test_serve_fake_schedule_makes_an_id_answer_code_6(fake: tuple[str, Path]) -> None:
    url, log = fake
    run = run_cli("cancel", "--base-url", url, "soon", env=child_env(MAILPARTNER_API_KEY=FAKE_KEY))
    assert run.returncode == 1
    assert json.loads(run.stdout)["code"] == 6
    assert "apiKey=[REDACTED]" in log.read_text()
    assert FAKE_KEY + "&" not in log.read_text()


@pytest.mark.parametrize(("frozen", "code"), [(True, 6), (False, 7)])
def test_serve_fake_freeze_clock_keeps_a_schedule_answering_as_at_the_start(
    tmp_path: Path, frozen: bool, code: int
) -> None:
    options = ["--schedule", "tick=+1s"] + (["--freeze-clock"] if frozen else [])
    with serving_fake(tmp_path / "serve-fake.log", *options) as url:
        time.sleep(1.2)  # past the send time, on a clock that runs
        env = child_env(MAILPARTNER_API_KEY=FAKE_KEY)
        run = run_cli("cancel", "--base-url", url, "--rate-limit", "none", "tick", env=env)
    assert json.loads(run.stdout)["code"] == code


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        pytest.param(("--port", "70000"), "port", id="bad-port"),
        pytest.param(("--api-key", " "), "--api-key", id="empty-key"),
        pytest.param(("--schedule", "x=soon"), "--schedule", id="bad-schedule"),
    ],
)
def test_serve_fake_refuses_bad_options_in_one_line(
    options: tuple[str, ...], fragment: str
) -> None:
    run = run_cli("serve-fake", "--port", str(free_port()), *options)
    assert run.returncode == 2
    assert fragment in run.stderr
    assert "http://" not in run.stderr


def test_serve_fake_on_a_port_in_use_exits_2_before_printing_its_url() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        run = run_cli("serve-fake", "--port", str(taken.getsockname()[1]))
    assert run.returncode == 2
    assert run.stderr.count("\n") == 1
    assert "cannot listen" in run.stderr


def _start_cancel(url: str, ids: Path, journal: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(  # noqa: S603 - our own CLI, fixed arguments
        [
            *CLI,
            "cancel",
            "--base-url",
            url,
            "--from-file",
            str(ids),
            "--journal",
            str(journal),
            *extra,
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env(MAILPARTNER_API_KEY=FAKE_KEY),
    )


def _wait_for_finals(journal: Path, count: int) -> None:
    deadline = time.monotonic() + 20
    while not journal.exists() or sum(_finals(journal).values()) < count:
        assert time.monotonic() < deadline, "the run recorded too little"
        time.sleep(0.02)


def test_sigkill_then_resume_gives_each_id_one_final_outcome_and_no_double_cancel(
    tmp_path: Path, fake: tuple[str, Path]
) -> None:
    url, log = fake
    ids = [f"k-{n}" for n in range(150)]
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text("\n".join(ids) + "\n")
    journal = tmp_path / "journal.jsonl"
    process = _start_cancel(url, ids_file, journal, "--rate-limit", "1500", "--concurrency", "8")
    _wait_for_finals(journal, 30)
    process.kill()  # SIGKILL: no handler runs
    process.communicate(timeout=10)
    before = _finals(journal)
    served_before = Counter(message_id for message_id, _ in _served(log))

    resumed = run_cli(
        "cancel",
        "--base-url",
        url,
        "--from-file",
        str(ids_file),
        "--journal",
        str(journal),
        "--rate-limit",
        "none",
        env=child_env(MAILPARTNER_API_KEY=FAKE_KEY),
    )

    assert resumed.returncode == 0, resumed.stderr
    finals = _finals(journal)
    assert set(finals) == set(ids)
    assert set(finals.values()) == {1}  # exactly one final outcome each
    assert {r["outcome"] for r in _journal(journal) if r["event"] == "final"} == {"cancelled"}
    served = _served(log)
    assert Counter(m for m, code in served if code == 200) == Counter(ids)  # once each
    requested = Counter(message_id for message_id, _ in served)
    for message_id in before:  # final before the kill: never asked again
        assert requested[message_id] == served_before[message_id] == 1
    assert f"{len(before)} ids final from earlier runs skipped" in resumed.stderr


def test_ctrl_c_prints_the_summary_so_far_and_exits_130(
    tmp_path: Path, fake: tuple[str, Path]
) -> None:
    url, _ = fake
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text("\n".join(f"c-{n}" for n in range(200)) + "\n")
    journal = tmp_path / "journal.jsonl"
    process = _start_cancel(url, ids_file, journal, "--rate-limit", "600")
    _wait_for_finals(journal, 5)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=15)
    assert process.returncode == 130, stderr
    done = len(stdout.splitlines())
    assert 5 <= done < 200
    assert f"this run: {done} cancelled now (of {done}); journal {journal}" in stderr
    left = 200 - done
    assert f"{left} emails will still go out: {left} never started." in stderr.splitlines()
    assert sum(_finals(journal).values()) == done
    os.stat(journal)
