"""The ``mailpartner`` command line, run the way users run it: as a child process.

Every run goes through ``python -m mailpartner_async`` (the same CLI as the
``mailpartner`` console script, which one test runs too), with a hermetic
environment: no ``MAILPARTNER_*`` variables and no proxies. The HTTP tests start
``mailpartner serve-fake`` on a free port and point ``mailpartner cancel`` at it.
Every run also checks that the distinctive API key given with ``--api-key`` is
printed nowhere.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import pty
import re
import select
import socket
import struct
import subprocess
import sys
import termios
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import httpx
import pytest

CLI: Final = (sys.executable, "-m", "mailpartner_async")
CONSOLE_SCRIPT: Final = Path(sys.executable).parent / "mailpartner"
# Distinctive, so finding it in any output cannot be a coincidence.
SECRET_KEY: Final = "mpk-cli-test-Zq7Xw3Rt9Vb2"
FAKE_KEY: Final = "test-key"  # serve-fake's default key
RUN_TIMEOUT: Final = 30.0
BULK_TIMEOUT: Final = 120.0
SERVER_START_DEADLINE: Final = 15.0
CANCELLED_TEXT: Final = "The email has been canceled."
USAGE_ERROR_LINE: Final = re.compile(r"^mailpartner(?: cancel)?: error: \S.*$")

Record = dict[str, Any]


# --- running the CLI -----------------------------------------------------------------


def child_env(**extra: str) -> dict[str, str]:
    """This process's environment without MAILPARTNER_* and proxy variables."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.upper().startswith("MAILPARTNER_") and "PROXY" not in name.upper()
    }
    env.update(extra)
    return env


@dataclasses.dataclass(frozen=True)
class Run:
    returncode: int
    stdout: str
    stderr: str

    @property
    def records(self) -> list[Record]:
        records: list[Record] = []
        for line in self.stdout.splitlines():
            record = json.loads(line)
            assert isinstance(record, dict), line
            records.append(record)
        return records

    @property
    def stderr_lines(self) -> list[str]:
        return self.stderr.splitlines()


def assert_key_not_shown(*outputs: str | bytes) -> None:
    for output in outputs:
        text = output.decode(errors="replace") if isinstance(output, bytes) else output
        assert SECRET_KEY not in text


def run_cli(
    *args: str,
    stdin: str | None = None,
    env: Mapping[str, str] | None = None,
    program: Sequence[str] = CLI,
    timeout: float = RUN_TIMEOUT,
) -> Run:
    completed = subprocess.run(  # noqa: S603 - our own CLI, fixed arguments
        [*program, *args],
        input=stdin,
        stdin=subprocess.DEVNULL if stdin is None else None,
        capture_output=True,
        text=True,
        encoding="utf-8",
        env=dict(env) if env is not None else child_env(),
        timeout=timeout,
        check=False,
    )
    assert_key_not_shown(completed.stdout, completed.stderr)
    return Run(completed.returncode, completed.stdout, completed.stderr)


def ok_record(message_id: str) -> Record:
    return {
        "message_id": message_id,
        "ok": True,
        "stopped": True,
        "code": 200,
        "message": CANCELLED_TEXT,
        "error": None,
    }


def error_record(message_id: str, code: int, text: str, error: str) -> Record:
    return {
        "message_id": message_id,
        "ok": False,
        "stopped": code == 5,
        "code": code,
        "message": f"[code {code}] {text} (message id '{message_id}')",
        "error": error,
    }


def by_id(records: list[Record]) -> list[Record]:
    """Records sorted by id then code: outcomes come in completion order."""
    return sorted(records, key=lambda record: (record["message_id"], record["code"]))


def assert_usage_error(run: Run, *fragments: str) -> None:
    """Exit 2, nothing on stdout, one error line naming the problem, no traceback."""
    assert run.returncode == 2, run
    assert run.stdout == ""
    assert "Traceback" not in run.stderr
    error_lines = [line for line in run.stderr_lines if "error:" in line]
    assert len(error_lines) == 1, run.stderr
    assert run.stderr_lines[-1] == error_lines[0]
    assert USAGE_ERROR_LINE.match(error_lines[0]), error_lines[0]
    for fragment in fragments:
        assert fragment in error_lines[0]


# --- the sandbox ---------------------------------------------------------------------


def test_sandbox_cancels_ids_given_as_arguments_one_json_line_each() -> None:
    run = run_cli("cancel", "--sandbox", "101", "102", "msg-c")

    assert run.returncode == 0
    assert by_id(run.records) == [ok_record("101"), ok_record("102"), ok_record("msg-c")]
    assert run.stderr_lines[1:] == ["this run: 3 cancelled now (of 3)"]


def test_mailpartner_console_script_runs_the_same_cli() -> None:
    assert CONSOLE_SCRIPT.is_file(), f"console script missing: {CONSOLE_SCRIPT}"

    run = run_cli("cancel", "--sandbox", "s-1", "s-2", program=[str(CONSOLE_SCRIPT)])

    assert run.returncode == 0
    assert by_id(run.records) == [ok_record("s-1"), ok_record("s-2")]
    assert run.stderr_lines[1:] == ["this run: 2 cancelled now (of 2)"]


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_sandbox_duplicate_id_is_reported_twice_second_already_cancelled_exit_0(
    fmt: str,
) -> None:
    run = run_cli("cancel", "--sandbox", "--format", fmt, "dup", "other", "dup")

    assert run.returncode == 0  # no id will go out
    assert by_id(run.records) == [
        error_record("dup", 5, "The mail has already been canceled", "AlreadyCancelledError"),
        ok_record("dup"),
        ok_record("other"),
    ]
    assert run.stderr_lines[1:] == ["this run: 2 cancelled now, 1 already cancelled (of 3)"]


def test_sandbox_format_xml_gives_the_same_outcomes_as_json() -> None:
    ids = ("x-1", "x-2", "x-1", "x-3")
    as_json = run_cli("cancel", "--sandbox", "--format", "json", *ids)
    as_xml = run_cli("cancel", "--sandbox", "--format", "xml", *ids)

    assert as_xml.returncode == as_json.returncode == 0
    assert by_id(as_xml.records) == by_id(as_json.records)
    assert len(as_xml.records) == 4
    assert as_xml.stderr == as_json.stderr


# --- reading ids from a file or stdin ------------------------------------------------

ID_FILE_TEXT: Final = "# ids to cancel\n\nf-1\n   \n# f-commented\n  f-2  \n\n#f-3\nf-4\n"
ID_FILE_IDS: Final = ("f-1", "f-2", "f-4")


def test_from_file_skips_blank_lines_and_comments(tmp_path: Path) -> None:
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text(ID_FILE_TEXT, encoding="utf-8")

    run = run_cli("cancel", "--sandbox", "--from-file", str(ids_file))

    assert run.returncode == 0
    assert by_id(run.records) == [ok_record(message_id) for message_id in ID_FILE_IDS]
    assert run.stderr_lines[1:] == ["this run: 3 cancelled now (of 3)"]


def test_from_file_dash_reads_ids_from_stdin() -> None:
    run = run_cli("cancel", "--sandbox", "--from-file", "-", stdin=ID_FILE_TEXT)

    assert run.returncode == 0
    assert by_id(run.records) == [ok_record(message_id) for message_id in ID_FILE_IDS]
    assert run.stderr_lines[1:] == ["this run: 3 cancelled now (of 3)"]


def test_stdin_from_a_file_read_part_way_starts_where_stdin_starts(tmp_path: Path) -> None:
    # `{ head -n1 >/dev/null; mailpartner cancel --from-file -; } < ids.txt`: the
    # ids are counted first, then read again from where stdin was, not from byte 0.
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text("skipped-0\nskipped-1\ns-1\ns-2\ns-3\n", encoding="utf-8")
    with ids_file.open("rb") as stdin:
        os.lseek(stdin.fileno(), len("skipped-0\nskipped-1\n"), os.SEEK_SET)
        completed = subprocess.run(  # noqa: S603 - our own CLI, fixed arguments
            [*CLI, "cancel", "--sandbox", "--from-file", "-"],
            stdin=stdin,
            capture_output=True,
            text=True,
            env=child_env(),
            timeout=RUN_TIMEOUT,
            check=False,
        )
    assert completed.returncode == 0, completed.stderr
    sent = [json.loads(line)["message_id"] for line in completed.stdout.splitlines()]
    assert sorted(sent) == ["s-1", "s-2", "s-3"]
    assert completed.stderr.splitlines()[1:] == ["this run: 3 cancelled now (of 3)"]


def test_ids_from_arguments_and_file_are_all_cancelled(tmp_path: Path) -> None:
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text(ID_FILE_TEXT, encoding="utf-8")

    run = run_cli("cancel", "--sandbox", "arg-1", "--from-file", str(ids_file), "arg-2")

    assert run.returncode == 0
    expected = ["arg-1", "arg-2", *ID_FILE_IDS]
    assert by_id(run.records) == [ok_record(message_id) for message_id in expected]
    assert run.stderr_lines[1:] == ["this run: 5 cancelled now (of 5)"]


# --- usage and configuration errors: exit 2, one line, no traceback ------------------


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        pytest.param(
            ("cancel", "--sandbox", "--bogus-flag", "1"), "--bogus-flag", id="unknown-flag"
        ),
        pytest.param(("cancel", "--sandbox", "--concurrency", "0", "1"), "0", id="concurrency-0"),
        pytest.param(
            ("cancel", "--sandbox", "--concurrency", "abc", "1"), "abc", id="concurrency-abc"
        ),
        pytest.param(("cancel", "--sandbox", "--rate-limit", "0", "1"), "0", id="rate-limit-0"),
        pytest.param(("cancel", "--sandbox", "--format", "yaml", "1"), "yaml", id="format-yaml"),
        pytest.param((), "COMMAND", id="no-subcommand"),
    ],
)
def test_bad_arguments_exit_2_with_one_error_line(args: tuple[str, ...], fragment: str) -> None:
    run = run_cli(*args[:1], "--api-key", SECRET_KEY, *args[1:]) if args else run_cli()

    assert_usage_error(run, fragment)


@pytest.mark.parametrize(
    "typo", [("--api-kye", SECRET_KEY), (f"--api-kye={SECRET_KEY}",)], ids=["spaced", "equals"]
)
def test_mistyped_key_flag_exits_2_without_echoing_the_key(typo: tuple[str, ...]) -> None:
    # run_cli asserts the key is on neither stdout nor stderr.
    run = run_cli("cancel", "--sandbox", *typo, "1")

    assert_usage_error(run, "--api-kye")


def test_missing_api_key_exits_2_naming_the_variable() -> None:
    env = child_env()
    assert "MAILPARTNER_API_KEY" not in env

    run = run_cli("cancel", "--base-url", "http://127.0.0.1:9/v1", "1", env=env)

    assert_usage_error(run, "MAILPARTNER_API_KEY")


def test_blank_api_key_exits_2() -> None:
    run = run_cli("cancel", "1", env=child_env(MAILPARTNER_API_KEY="   "))

    assert_usage_error(run, "MAILPARTNER_API_KEY")


def test_missing_id_file_exits_2(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-ids.txt"

    run = run_cli("cancel", "--api-key", SECRET_KEY, "--from-file", str(missing))

    assert_usage_error(run, "cannot read", str(missing))


def test_sandbox_with_base_url_exits_2() -> None:
    run = run_cli(
        "cancel", "--sandbox", "--api-key", SECRET_KEY, "--base-url", "https://x.test/v1", "1"
    )

    assert_usage_error(run, "--sandbox", "--base-url")


def test_sandbox_with_api_key_exits_2() -> None:
    run = run_cli("cancel", "--sandbox", "--api-key", SECRET_KEY, "1")

    assert_usage_error(run, "--sandbox", "--api-key")


def test_plain_http_base_url_to_a_remote_host_exits_2() -> None:
    # .invalid never resolves: were the check gone, the run would fail fast, not hang.
    run = run_cli(
        "cancel", "--api-key", SECRET_KEY, "--base-url", "http://mailpartner.invalid/v1", "1"
    )

    assert_usage_error(run, "http://")


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(("--api-key", SECRET_KEY), id="api"),
        pytest.param(("--sandbox",), id="sandbox"),
        pytest.param(("--sandbox", "--from-file", "-"), id="stdin-only-comments"),
    ],
)
def test_no_ids_at_all_exits_2(args: tuple[str, ...]) -> None:
    run = run_cli("cancel", *args, stdin="# nothing here\n\n")

    assert_usage_error(run, "no ids")


# --- progress bar: on stderr only when it is a terminal ------------------------------

PROGRESS_IDS: Final = tuple(f"p-{n}" for n in range(60))


def run_with_terminal_stderr(*args: str) -> tuple[int, str, bytes]:
    """Run the CLI with stderr on a pseudo-terminal; returns (status, stdout, terminal)."""
    master, slave = pty.openpty()
    try:
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
        with subprocess.Popen(  # noqa: S603 - our own CLI, fixed arguments
            [*CLI, *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=slave,
            env=child_env(TERM="xterm", COLUMNS="100", LINES="24"),
        ) as process:
            os.close(slave)
            slave = -1
            assert process.stdout is not None
            out_fd = process.stdout.fileno()
            output = read_until_closed([master, out_fd], process)
            status = process.wait(timeout=RUN_TIMEOUT)
    finally:
        os.close(master)
        if slave != -1:
            os.close(slave)
    terminal, stdout = output[master], output[out_fd]
    assert_key_not_shown(stdout, terminal)
    return status, stdout.decode(), terminal


def read_until_closed(fds: list[int], process: subprocess.Popen[bytes]) -> dict[int, bytes]:
    """Everything written to ``fds`` until each is closed (EOF, or EIO for a pty)."""
    chunks: dict[int, list[bytes]] = {fd: [] for fd in fds}
    still_open = set(fds)
    deadline = time.monotonic() + RUN_TIMEOUT
    while still_open:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            process.kill()
            pytest.fail("the CLI did not finish in time")
        ready, _, _ = select.select(sorted(still_open), [], [], remaining)
        for fd in ready:
            try:
                data = os.read(fd, 65536)
            except OSError:  # EIO: the terminal's last writer has gone
                data = b""
            if data:
                chunks[fd].append(data)
            else:
                still_open.discard(fd)
    return {fd: b"".join(parts) for fd, parts in chunks.items()}


def test_progress_bar_is_drawn_on_stderr_when_it_is_a_terminal() -> None:
    status, stdout, terminal = run_with_terminal_stderr("cancel", "--sandbox", *PROGRESS_IDS)

    assert status == 0
    records = [json.loads(line) for line in stdout.splitlines()]
    assert by_id(records) == by_id([ok_record(message_id) for message_id in PROGRESS_IDS])
    assert b"cancelling" in terminal  # the bar's label
    assert b"\x1b[" in terminal  # drawn with terminal control sequences
    assert terminal.rstrip().endswith(b"this run: 60 cancelled now (of 60)")


def test_no_progress_output_when_stderr_is_a_pipe() -> None:
    run = run_cli("cancel", "--sandbox", *PROGRESS_IDS)

    assert run.returncode == 0
    assert len(run.records) == len(PROGRESS_IDS)
    assert run.stderr == (
        "No email will go out: all 60 are stopped (cancelled now or already).\n"
        "this run: 60 cancelled now (of 60)\n"
    )


# --- serve-fake over real HTTP -------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def serving_fake(log_path: Path, *options: str) -> Iterator[str]:
    """Run ``serve-fake`` on a free port; yield its base URL; always stop it."""
    port = free_port()
    with log_path.open("wb") as log:
        process = subprocess.Popen(  # noqa: S603 - our own CLI, fixed arguments
            [*CLI, "serve-fake", "--port", str(port), *options],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=child_env(),
        )
        try:
            deadline = time.monotonic() + SERVER_START_DEADLINE
            while True:
                if process.poll() is not None:
                    pytest.fail(f"serve-fake exited early: {log_path.read_text()}")
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                        break
                except OSError:
                    if time.monotonic() > deadline:
                        pytest.fail(f"serve-fake did not listen in time: {log_path.read_text()}")
                    time.sleep(0.05)
            yield f"http://127.0.0.1:{port}/v1"
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


@pytest.fixture(scope="module")
def lenient_fake_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """serve-fake --schedule-unknown: any new id is scheduled an hour ahead."""
    log = tmp_path_factory.mktemp("serve-fake") / "lenient.log"
    with serving_fake(log, "--schedule-unknown") as url:
        yield url


@pytest.fixture(scope="module")
def strict_fake_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """serve-fake without --schedule-unknown: it knows no message at all."""
    log = tmp_path_factory.mktemp("serve-fake") / "strict.log"
    with serving_fake(log) as url:
        yield url


def test_serve_fake_answers_any_http_client(lenient_fake_url: str) -> None:
    with httpx.Client(trust_env=False, timeout=10) as http:
        first = http.get(
            f"{lenient_fake_url}/message-cancel",
            params={"apiKey": FAKE_KEY, "messageId": "direct-1"},
        )
        again = http.get(
            f"{lenient_fake_url}/message-cancel",
            params={"apiKey": FAKE_KEY, "messageId": "direct-1"},
        )

    assert first.status_code == 200
    assert first.json() == {"success": True, "code": 200, "message": CANCELLED_TEXT}
    assert again.json()["code"] == 5


def test_ten_thousand_ids_from_a_file_over_http_are_each_cancelled_once(
    lenient_fake_url: str, tmp_path: Path
) -> None:
    ids = [f"bulk-{n:05d}" for n in range(10_000)]
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text("\n".join(ids) + "\n", encoding="utf-8")

    run = run_cli(
        "cancel",
        "--from-file",
        str(ids_file),
        "--base-url",
        lenient_fake_url,
        "--api-key",
        FAKE_KEY,
        "--concurrency",
        "20",
        "--rate-limit",
        "none",  # the provider's 2000/min would make this take five minutes
        timeout=BULK_TIMEOUT,
    )

    assert run.returncode == 0, run.stderr
    records = run.records
    assert len(records) == 10_000
    seen = Counter(record["message_id"] for record in records)
    assert set(seen) == set(ids)
    assert set(seen.values()) == {1}
    assert all(record == ok_record(record["message_id"]) for record in records)
    assert run.stderr_lines[1:] == ["this run: 10000 cancelled now (of 10000)"]


def test_wrong_api_key_over_http_fails_every_id_with_code_10_and_never_shows_the_key(
    lenient_fake_url: str,
) -> None:
    ids = ("k-1", "k-2", "k-3")

    run = run_cli("cancel", "--base-url", lenient_fake_url, "--api-key", SECRET_KEY, *ids)

    assert run.returncode == 1
    assert by_id(run.records) == [
        error_record(message_id, 10, "Incorrect API key", "AuthenticationError")
        for message_id in ids
    ]
    assert run.stderr_lines[1:] == ["this run: 0 cancelled now, 3 failed (of 3)"]


def test_unknown_ids_over_http_are_not_found_with_code_4(strict_fake_url: str) -> None:
    ids = ("u-1", "u-2")

    run = run_cli(
        "cancel",
        *ids,
        env=child_env(MAILPARTNER_API_KEY=FAKE_KEY, MAILPARTNER_BASE_URL=strict_fake_url),
    )

    assert run.returncode == 1
    assert by_id(run.records) == [
        error_record(message_id, 4, "Message not found", "MessageNotFoundError")
        for message_id in ids
    ]
    assert run.stderr_lines[1:] == ["this run: 0 cancelled now, 2 not found (of 2)"]


def test_a_key_given_before_the_command_is_not_echoed_by_the_usage_error() -> None:
    run = run_cli("--api-key", SECRET_KEY, "cancel", "1")  # run_cli checks the key is absent
    assert run.returncode == 2
    assert "invalid choice: '[REDACTED]'" in run.stderr


def test_an_undecodable_ids_file_exits_2_before_any_request(tmp_path: Path) -> None:
    ids_file = tmp_path / "ids.txt"
    good = [str(number) for number in range(3000)]
    ids_file.write_bytes("\n".join(good).encode() + b"\n\xff\xfe broken\n9999\n")

    run = run_cli("cancel", "--sandbox", "--from-file", str(ids_file), timeout=BULK_TIMEOUT)

    # The file is read through (and counted) before the first request.
    assert_usage_error(
        run,
        f"{ids_file}: the ids are not UTF-8 text (byte 0xff): save the file as UTF-8; "
        "nothing was sent",
    )


def test_undecodable_ids_on_stdin_stop_cleanly_with_every_sent_id_reported() -> None:
    # Past stdin's first 8 KiB chunk, under the sandbox's cap of 2000 a minute.
    good = [str(number) for number in range(1900)]
    completed = subprocess.run(  # noqa: S603 - our own CLI, fixed arguments
        [*CLI, "cancel", "--sandbox", "--rate-limit", "none", "--from-file", "-"],
        input="\n".join(good).encode() + b"\n\xff\xfe broken\n9999\n",
        capture_output=True,
        env=child_env(),
        timeout=BULK_TIMEOUT,
        check=False,
    )
    run = Run(completed.returncode, completed.stdout.decode(), completed.stderr.decode())

    assert run.returncode == 2
    assert "Traceback" not in run.stderr
    assert run.stderr_lines[-1] == (
        "mailpartner: error: the ids are not UTF-8 text (byte 0xff): save the file as UTF-8; "
        "stopped there"
    )
    sent = [record["message_id"] for record in run.records]
    assert sent, "the ids before the bad chunk were cancelled"
    assert all(record["ok"] for record in run.records)
    assert sorted(sent, key=int) == good[: len(sent)]
    assert run.stderr_lines[-2] == f"this run: {len(sent)} cancelled now (of {len(sent)})"
