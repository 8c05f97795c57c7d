"""The task-queue recipe of docs/workers.md, run for real: two taskiq worker processes
on a real Redis cancel 300 ids (250 enqueued one by one, 50 fanned out by a campaign
task) against ``serve-fake`` with its per-minute cap on, sharing one budget."""

from __future__ import annotations

import asyncio
import importlib
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from taskiq import AsyncTaskiqTask

from tests.redis_server import RedisServer
from tests.test_cli import FAKE_KEY, child_env, serving_fake

ROOT = Path(__file__).resolve().parent.parent
# The fake refuses past 600 in 60 s; the workers share 600 a minute: 300 ids in ~30 s.
RATE = 600


async def _enqueue_and_collect(module: Any, ids: list[str]) -> list[dict[str, Any]]:
    broker = module.broker
    await broker.startup()
    try:
        tasks = [await module.cancel_email.kiq(message_id) for message_id in ids[:250]]
        campaign = await module.cancel_campaign.kiq(ids[250:])
        fanned = (await campaign.wait_result(timeout=60)).return_value
        tasks += [AsyncTaskiqTask(task_id, broker.result_backend) for task_id in fanned]
        results = [await task.wait_result(timeout=60, check_interval=0.2) for task in tasks]
    finally:
        await broker.shutdown()
    assert not any(result.is_err for result in results), [r.error for r in results if r.is_err]
    return [result.return_value for result in results]


@pytest.mark.skip(
    reason="unfinished (issue 12 stays open): with socket_timeout=None the workers no "
    "longer die on an idle BRPOP, but the run still times out waiting on them"
)
def test_two_taskiq_workers_cancel_300_ids_exactly_once_without_a_429(
    redis_server: RedisServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    taskiq = shutil.which("taskiq", path=str(Path(sys.executable).parent))
    assert taskiq is not None
    redis_url = redis_server.url.removesuffix("/0") + "/3"  # a database of its own
    ids = [f"q{n}" for n in range(300)]
    with serving_fake(
        tmp_path / "fake.log", "--schedule-unknown", "--rate-limit-per-minute", str(RATE)
    ) as base_url:
        env = child_env(
            REDIS_URL=redis_url,
            MAILPARTNER_API_KEY=FAKE_KEY,
            MAILPARTNER_BASE_URL=base_url,
            MAILPARTNER_RATE_LIMIT=str(RATE),
            PYTHONPATH=str(ROOT / "docs" / "examples") + os.pathsep + str(ROOT),
        )
        workers = [
            subprocess.Popen(  # noqa: S603 - taskiq's own CLI, fixed arguments
                [taskiq, "worker", "taskiq_worker:broker", "--workers", "1"],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=(tmp_path / f"worker{n}.log").open("wb"),
            )
            for n in range(2)
        ]
        try:
            monkeypatch.setenv("REDIS_URL", redis_url)
            monkeypatch.syspath_prepend(str(ROOT / "docs" / "examples"))
            module = importlib.import_module("taskiq_worker")
            outcomes = asyncio.run(_enqueue_and_collect(module, ids))
        finally:
            for worker in workers:
                worker.terminate()
            for worker in workers:
                worker.wait(timeout=30)
            sys.modules.pop("taskiq_worker", None)
    assert sorted(outcome["message_id"] for outcome in outcomes) == sorted(ids)
    # Code 200 for every id: none was cancelled twice (that answers 5), none refused.
    assert {outcome["code"] for outcome in outcomes} == {200}
    assert {outcome["attempts"] for outcome in outcomes} == {1}  # no 429, no retry
    logs = "".join((tmp_path / f"worker{n}.log").read_text() for n in range(2))
    assert "retrying" not in logs
