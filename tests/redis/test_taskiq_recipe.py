"""The task-queue recipe of docs/workers.md, run for real: two taskiq worker processes
on a real Redis cancel 300 ids (250 enqueued one by one, 50 fanned out by a campaign
task) against ``serve-fake`` with its cap on, sharing one budget.

The window is scaled down so the pacing takes about 15 s: the workers share 200
starts per 10 s, and the fake refuses past 200 in any 10 s (``--rate-window``). Two
workers pacing alone would send twice that; 300 ids are more than one window's
worth, so the fake's cap bites if the budget is not shared.
"""

from __future__ import annotations

import asyncio
import collections
import importlib
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from taskiq import AsyncTaskiqTask

from tests.cli.test_cli import FAKE_KEY, child_env, serving_fake
from tests.support.redis_server import RedisServer

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "docs" / "examples"
RATE, PERIOD = 200, 10.0
# What serve-fake logs for each request it answers.
REQUEST_LINE = re.compile(r"messageId=(?P<id>\S+) -> (?P<status>\d+) code=(?P<code>\d+)")


async def _enqueue_and_collect(module: Any, ids: list[str]) -> list[dict[str, Any]]:
    broker = module.broker
    await broker.startup()
    try:
        tasks = [await module.cancel_email.kiq(message_id) for message_id in ids[:250]]
        campaign = await module.cancel_campaign.kiq(ids[250:])
        fanned = (await campaign.wait_result(timeout=60)).return_value
        tasks += [AsyncTaskiqTask(task_id, broker.result_backend) for task_id in fanned]
        results = [await task.wait_result(timeout=90, check_interval=0.2) for task in tasks]
    finally:
        await broker.shutdown()
    assert not any(result.is_err for result in results), [r.error for r in results if r.is_err]
    return [result.return_value for result in results]


@contextmanager
def taskiq_workers(env: dict[str, str], logs: list[Path]) -> Iterator[None]:
    """One ``taskiq worker`` process (one child each) per log; stopped as systemd does."""
    taskiq = shutil.which("taskiq", path=str(Path(sys.executable).parent))
    assert taskiq is not None, "taskiq's CLI is installed with the tests' dependencies"
    workers = []
    for log in logs:
        with log.open("wb") as stderr:
            workers.append(
                subprocess.Popen(  # noqa: S603 - taskiq's own CLI, fixed arguments
                    [taskiq, "worker", "taskiq_worker:broker", "--workers", "1"],
                    cwd=ROOT,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=stderr,
                )
            )
    try:
        yield
    finally:
        # SIGTERM: taskiq's main process passes it on and waits for its child, whose
        # stream read wakes at least every 2 s to see it.
        for worker in workers:
            worker.terminate()
        for worker in workers:
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
                raise


def test_two_taskiq_workers_cancel_300_ids_exactly_once_without_a_429(
    redis_server: RedisServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    redis_url = redis_server.url.removesuffix("/0") + "/3"  # a database of its own
    ids = [f"q{n}" for n in range(300)]
    logs = [tmp_path / f"worker{n}.log" for n in range(2)]
    fake_log = tmp_path / "fake.log"
    cap = ("--rate-limit-per-minute", str(RATE), "--rate-window", str(PERIOD))
    with serving_fake(fake_log, "--schedule-unknown", *cap) as base_url:
        env = child_env(
            REDIS_URL=redis_url,
            MAILPARTNER_API_KEY=FAKE_KEY,
            MAILPARTNER_BASE_URL=base_url,
            MAILPARTNER_RATE_LIMIT=str(RATE),
            MAILPARTNER_RATE_PERIOD=str(PERIOD),
            PYTHONPATH=os.pathsep.join([str(EXAMPLES), str(ROOT)]),
        )
        with taskiq_workers(env, logs):
            monkeypatch.setenv("REDIS_URL", redis_url)
            monkeypatch.syspath_prepend(str(EXAMPLES))
            monkeypatch.delitem(sys.modules, "taskiq_worker", raising=False)
            module = importlib.import_module("taskiq_worker")
            outcomes = asyncio.run(_enqueue_and_collect(module, ids))
        worker_logs = "".join(log.read_text() for log in logs)
    # Each task answered code 200 at its first attempt: no retry, no 429, and no
    # second delivery (that would have answered code 5).
    assert sorted(outcome["message_id"] for outcome in outcomes) == sorted(ids)
    assert collections.Counter((o["code"], o["attempts"]) for o in outcomes) == {(200, 1): 300}
    # The fake saw each id exactly once, and refused nothing.
    answered = [match.groupdict() for match in REQUEST_LINE.finditer(fake_log.read_text())]
    assert collections.Counter(answer["id"] for answer in answered) == dict.fromkeys(ids, 1)
    assert {(answer["status"], answer["code"]) for answer in answered} == {("200", "200")}
    assert "retrying" not in worker_logs
    assert FAKE_KEY not in worker_logs
    # Both processes worked, and each stopped cleanly through its shutdown event.
    for log in logs:
        text = log.read_text()
        assert "messageId=q" in text, text[-2000:]
        assert "Shutting down the broker" in text, text[-2000:]
