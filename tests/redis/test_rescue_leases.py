"""The rescue's leases on a real redis-server: a lease its worker never finishes goes
back to the queue, a code 5 on a re-leased id counts as cancelled, a stale token cannot
record, a slow but live worker keeps its leases, and two campaigns do not mix.

A worker that dies is played by the lease script itself, run with a token of its own
and never followed by a record, as a killed process leaves it.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import anyio
import pytest
import redis

from mailpartner_async import AsyncMailPartner, CancelCode, CancelOutcome, ScheduledMessage
from mailpartner_async._core.redis_rescue import rescue_keys
from mailpartner_async._core.redis_rescue_lua import LEASE, RECORD
from mailpartner_async._core.rescue import too_late_error
from mailpartner_async._core.rescue_ledger import NO_SEND, encode_outcome
from mailpartner_async.redis import AsyncRedisRescue, RedisRescue
from mailpartner_async.testing import FakeClock, FakeMailPartner
from tests.support.cut_proxy import CutProxy
from tests.support.redis_server import RedisServer
from tests.support.rescue_fleet import wait_until
from tests.support.server import ScriptedServer, reply

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def campaign(redis_server: RedisServer) -> Iterator[str]:
    name = f"test-{uuid.uuid4().hex[:12]}"
    yield name
    with RedisRescue(redis_server.url, campaign=name) as rescue:
        rescue.delete()


class DeadWorker:
    """Leases through the rescue's own script, then never records: a killed worker."""

    def __init__(self, url: str, campaign: str) -> None:
        self.client = redis.Redis.from_url(url)
        self.keys = list(rescue_keys(campaign).all)
        self.token = f"dead-{uuid.uuid4().hex[:6]}"

    def lease(self, want: int, lease_ms: int) -> list[str]:
        args: list[str | int] = [0, "", lease_ms, self.token, want, "dead", NO_SEND]
        reply = self.client.register_script(LEASE)(keys=self.keys, args=args)
        return [item.decode() for item in reply[5::3]]

    def record(
        self,
        message_id: str,
        *,
        lenient: bool = False,
        message: str = "x",
        outcome: CancelOutcome | None = None,
    ) -> int:
        fields = {"ok": True, "stopped": True, "code": 200, "message": message, "attempts": 1}
        entry, category = json.dumps(fields), "cancelled"
        if outcome is not None:
            entry, category = encode_outcome(outcome)
        args: list[str | int] = [0, message_id, self.token, int(lenient), category, entry]
        args.append(f"{NO_SEND} ")
        [flag] = self.client.register_script(RECORD)(keys=self.keys, args=args)
        return int(flag)

    def ledger(self, message_id: str) -> bytes | None:
        return self.client.hget(self.keys[5], message_id)  # type: ignore[return-value]

    def queued(self, message_id: str) -> bool:
        return self.client.zscore(self.keys[0], message_id) is not None


def _fake_with(count: int) -> tuple[FakeMailPartner, list[ScheduledMessage]]:
    fake = FakeMailPartner(clock=FakeClock(NOW))
    sends = [NOW + timedelta(minutes=10 + n) for n in range(count)]
    return fake, [ScheduledMessage(fake.schedule(send_at), send_at) for send_at in sends]


@pytest.mark.anyio
async def test_a_lease_its_worker_never_finishes_is_taken_back_after_the_lease_time(
    redis_server: RedisServer, campaign: str
) -> None:
    fake, messages = _fake_with(3)
    async with AsyncRedisRescue(
        redis_server.url, campaign=campaign, lease=1.0, clock=FakeClock(NOW)
    ) as rescue:
        await rescue.submit(messages)
        dead = DeadWorker(redis_server.url, campaign)
        taken = dead.lease(2, lease_ms=500)
        assert taken == [str(m.message_id) for m in messages[:2]]
        assert (await rescue.status()).in_flight == 2
        async with fake.async_client() as client:
            with anyio.fail_after(30):
                progress = await rescue.work(client)
        status = await rescue.status()
    assert sorted(str(r.message_id) for r in fake.requests) == sorted(
        str(m.message_id) for m in messages
    )
    assert (progress.cancelled, status.final.cancelled, status.left) == (3, 3, 0)
    assert dead.record(taken[0]) == 0  # the dead worker's token no longer counts


@pytest.mark.anyio
async def test_code_5_answered_to_a_re_leased_id_counts_as_cancelled(
    redis_server: RedisServer, campaign: str
) -> None:
    clock = FakeClock(NOW)
    fake = FakeMailPartner(clock=clock)
    sends = [NOW + timedelta(minutes=10), NOW + timedelta(minutes=20)]
    done_by_dead, done_before = (ScheduledMessage(fake.schedule(s), s) for s in sends)
    async with AsyncRedisRescue(
        redis_server.url, campaign=campaign, lease=1.0, clock=clock
    ) as rescue:
        await rescue.submit([done_by_dead, done_before])
        # The dead worker's request cancelled its id; its answer died with it.
        assert DeadWorker(redis_server.url, campaign).lease(1, 500) == [done_by_dead.message_id]
        async with fake.async_client() as client:
            await client.cancel(done_by_dead.message_id)
            await client.cancel(done_before.message_id)  # cancelled outside the rescue
            progress = await rescue.work(client)
        outcomes = {o.message_id: o async for o in rescue.outcomes()}
    again = outcomes[str(done_by_dead.message_id)]
    assert again.result is not None
    assert again.result.code == CancelCode.ALREADY_CANCELLED
    first = outcomes[str(done_before.message_id)]  # leased once: code 5 is someone else's
    assert type(first.error).__name__ == "AlreadyCancelledError"
    assert (progress.cancelled, progress.already_cancelled) == (1, 1)


@pytest.mark.anyio
async def test_a_stale_token_cannot_record_whether_its_id_is_queued_again_or_final(
    redis_server: RedisServer, campaign: str
) -> None:
    fake, [message] = _fake_with(1)
    dead = DeadWorker(redis_server.url, campaign)
    async with AsyncRedisRescue(
        redis_server.url, campaign=campaign, lease=1.0, clock=FakeClock(NOW)
    ) as rescue:
        await rescue.submit([message])
        [taken] = dead.lease(1, lease_ms=300)
        await anyio.sleep(0.6)
        assert dead.lease(0, lease_ms=300) == []  # takes the expired lease back to the queue
        assert dead.queued(taken)
        assert dead.record(taken) == 0  # its lease is gone: refused
        assert dead.queued(taken)
        assert dead.ledger(taken) is None
        async with fake.async_client() as client:
            await rescue.work(client)
        recorded = dead.ledger(taken)
        assert recorded is not None
        assert dead.record(taken) == 0
        assert dead.record(taken, lenient=True) == 0  # final: nothing may replace it
        assert dead.ledger(taken) == recorded
        assert (await rescue.status()).final.done == 1


def test_a_request_made_under_a_lease_taken_back_replaces_the_too_late_mark(
    redis_server: RedisServer, campaign: str
) -> None:
    # Redis's own clock decides: a cut-off 0.4 s from now, a lease of 0.2 s.
    send_at = datetime.now(UTC) + timedelta(minutes=5, seconds=0.4)
    slow, other = DeadWorker(redis_server.url, campaign), DeadWorker(redis_server.url, campaign)
    with RedisRescue(redis_server.url, campaign=campaign) as rescue:
        rescue.submit([ScheduledMessage("m-1", send_at)])
        assert slow.lease(1, lease_ms=200) == ["m-1"]  # its request goes out...
        time.sleep(0.8)  # ...and its lease runs out, then the cut-off passes
        assert other.lease(1, lease_ms=200) == []  # taken back: too late, no request
        assert rescue.status().final.too_late == 1

        assert slow.record("m-1") == 1  # the answer the request got: it was cancelled
        status = rescue.status()
        [outcome] = list(rescue.outcomes())
    assert (status.final.done, status.final.cancelled, status.final.too_late) == (1, 1, 0)
    assert outcome.stopped
    assert slow.record("m-1", message="another") == 0  # a real answer is not replaced


def test_a_request_made_under_a_lease_taken_back_replaces_a_worker_s_own_too_late(
    redis_server: RedisServer, campaign: str
) -> None:
    send_at = datetime.now(UTC) + timedelta(minutes=5, seconds=0.4)
    message = ScheduledMessage("m-1", send_at)
    slow, other = DeadWorker(redis_server.url, campaign), DeadWorker(redis_server.url, campaign)
    with RedisRescue(redis_server.url, campaign=campaign) as rescue:
        rescue.submit([message])
        assert slow.lease(1, lease_ms=200) == ["m-1"]
        time.sleep(0.3)
        assert other.lease(1, lease_ms=5000) == ["m-1"]  # the lapsed lease, taken again
        time.sleep(0.3)  # the cut-off passes: the other worker's batch sends nothing
        late = CancelOutcome("m-1", error=too_late_error(message, datetime.now(UTC)))
        assert other.record("m-1", outcome=late) == 1
        assert slow.record("m-1") == 1  # the slow worker's request had cancelled it
        status = rescue.status()
        [outcome] = list(rescue.outcomes())
    assert (status.final.done, status.final.cancelled, status.final.too_late) == (1, 1, 0)
    assert outcome.stopped


@pytest.mark.anyio
async def test_a_slow_but_live_worker_renews_its_leases_and_no_other_worker_sends_them(
    redis_server: RedisServer, campaign: str, server: ScriptedServer
) -> None:
    server.default = reply(delay=1.5)  # each cancel takes 1.5 s: three leases of 0.5 s
    ids = [str(n) for n in range(4)]
    async with (
        AsyncRedisRescue(redis_server.url, campaign=campaign, lease=1.0) as first,
        AsyncRedisRescue(redis_server.url, campaign=campaign, lease=1.0) as second,
        AsyncMailPartner("k", base_url=server.base_url, max_concurrency=4) as slow,
        AsyncMailPartner("k", base_url=server.base_url, max_concurrency=4) as other,
    ):
        await first.submit(ids)
        with anyio.fail_after(60):
            async with anyio.create_task_group() as group:
                group.start_soon(first.work, slow)
                await anyio.sleep(0.3)  # the first worker holds every id by now
                group.start_soon(second.work, other)
        status = await first.status()
    assert sorted(str(r.message_id) for r in server.requests) == ids  # each once
    assert (status.final.cancelled, status.left) == (4, 0)


@pytest.mark.anyio
async def test_two_campaigns_at_once_with_the_same_ids_do_not_mix(
    redis_server: RedisServer, campaign: str
) -> None:
    other_name = f"{campaign}-other"
    ids = [str(n) for n in range(30)]
    fakes = [FakeMailPartner(schedule_unknown=True) for _ in range(2)]
    async with (
        AsyncRedisRescue(redis_server.url, campaign=campaign) as one,
        AsyncRedisRescue(redis_server.url, campaign=other_name) as two,
        fakes[0].async_client(max_concurrency=3) as client_one,
        fakes[1].async_client(max_concurrency=3) as client_two,
    ):
        try:
            assert await one.submit(ids) == 30
            assert await two.submit(ids[:20]) == 20
            with anyio.fail_after(60):
                async with anyio.create_task_group() as group:
                    group.start_soon(one.work, client_one)
                    group.start_soon(two.work, client_two)
            statuses = [await one.status(), await two.status()]
            counts = [len([o async for o in r.outcomes()]) for r in (one, two)]
        finally:
            await two.delete()
    assert sorted(str(r.message_id) for r in fakes[0].requests) == sorted(ids)
    assert sorted(str(r.message_id) for r in fakes[1].requests) == sorted(ids[:20])
    assert [s.final.cancelled for s in statuses] == [30, 20] == counts


def test_after_a_wipe_a_worker_still_records_the_ids_it_held_and_nothing_final_is_replaced(
    redis_server: RedisServer, campaign: str
) -> None:
    worker = DeadWorker(redis_server.url, campaign)
    # A campaign that no longer knows the id (its keys were wiped): recorded.
    assert worker.record("held-through-a-wipe") == 1
    assert worker.ledger("held-through-a-wipe") is not None
    with RedisRescue(redis_server.url, campaign=campaign) as rescue:
        status = rescue.status()
    assert (status.submitted, status.final.done, status.left) == (1, 1, 0)
    other = DeadWorker(redis_server.url, campaign)
    assert other.record("held-through-a-wipe", message="y") == 0  # final, another outcome
    # The same outcome again: recorded already, by another worker (2: not its own) ...
    assert other.record("held-through-a-wipe") == 2
    # ... and by this one (1: its earlier call's answer may have been lost).
    assert worker.record("held-through-a-wipe") == 1


@pytest.mark.anyio
async def test_a_cancel_got_while_redis_was_away_wins_over_the_lease_taken_back_meanwhile(
    redis_server: RedisServer, campaign: str, server: ScriptedServer
) -> None:
    server.default = reply(delay=2.5)  # the answer comes after the lease lapsed
    other = DeadWorker(redis_server.url, campaign)
    with CutProxy(redis_server.port) as proxy:
        async with (
            AsyncRedisRescue(proxy.url, campaign=campaign, lease=1.0) as rescue,
            AsyncMailPartner("k", base_url=server.base_url) as client,
        ):
            await rescue.submit(["x"])

            taken: list[list[str]] = []

            def outage() -> None:
                wait_until(lambda: bool(server.requests), timeout=10)
                proxy.cut()  # this worker's Redis is away while its request is out
                time.sleep(1.3)
                taken.append(other.lease(1, 60_000))  # taken back by another worker
                time.sleep(1.7)
                proxy.mend()

            cutter = threading.Thread(target=outage)
            cutter.start()
            try:
                with anyio.fail_after(15):
                    progress = await rescue.work(client)
            finally:
                cutter.join()
    assert taken == [["x"]]
    assert progress.cancelled == 1
    recorded = other.ledger("x")
    assert recorded is not None
    assert json.loads(recorded)["code"] == CancelCode.CANCELLED
    # The other worker's request can only find it cancelled: its outcome is refused,
    # the one in the ledger stays (one outcome for the id).
    assert other.record("x", message="code 5") == 0
    assert len(server.requests) == 1


@pytest.mark.anyio
async def test_a_worker_that_leases_its_own_lapsed_id_again_does_not_cancel_it_twice(
    redis_server: RedisServer, campaign: str, server: ScriptedServer
) -> None:
    server.default = reply(delay=3.0)  # the answer comes well after the lease lapsed
    with CutProxy(redis_server.port) as proxy:
        async with (
            AsyncRedisRescue(proxy.url, campaign=campaign, lease=1.0) as rescue,
            AsyncMailPartner("k", base_url=server.base_url, max_concurrency=4) as client,
        ):
            await rescue.submit(["x"])

            def outage() -> None:
                wait_until(lambda: bool(server.requests), timeout=10)
                proxy.cut()  # Redis away while the request is out, longer than a lease
                time.sleep(1.5)
                proxy.mend()  # back: the lease script finds x lapsed, and leases it again

            cutter = threading.Thread(target=outage)
            cutter.start()
            try:
                with anyio.fail_after(15):
                    progress = await rescue.work(client)
            finally:
                cutter.join()
            status = await rescue.status()
    assert len(server.requests) == 1  # the one cancel in flight, not a second
    assert (progress.cancelled, status.final.done, status.final.cancelled) == (1, 1, 1)
