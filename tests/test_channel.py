"""The batch's outcome channel (``_compat.AsyncChannel``), on each event loop."""

from __future__ import annotations

import anyio
import pytest

from mailpartner_async._async.channel import AsyncChannel


@pytest.mark.anyio
async def test_items_come_out_in_order_and_a_full_channel_holds_the_sender() -> None:
    channel: AsyncChannel[int] = AsyncChannel(2)
    sent: list[int] = []

    async def produce() -> None:
        for item in range(5):
            assert await channel.send(item)
            sent.append(item)
        channel.close_sending()

    async with anyio.create_task_group() as group:
        group.start_soon(produce)
        await anyio.wait_all_tasks_blocked()
        assert sent == [0, 1]  # the third waits for room
        received = [await channel.receive() for _ in range(5)]
        assert await channel.receive() is None  # closed and drained
    assert received == [0, 1, 2, 3, 4]


@pytest.mark.anyio
async def test_closing_the_receiving_end_releases_a_waiting_sender_with_false() -> None:
    channel: AsyncChannel[int] = AsyncChannel(1)
    assert await channel.send(1)
    results: list[bool] = []

    async def produce() -> None:
        results.append(await channel.send(2))

    async with anyio.create_task_group() as group:
        group.start_soon(produce)
        await anyio.wait_all_tasks_blocked()
        channel.close_receiving()
    assert results == [False]
    assert await channel.receive() is None  # what was queued is dropped


@pytest.mark.anyio
async def test_a_cancelled_consumer_stops_even_while_items_are_queued() -> None:
    channel: AsyncChannel[int] = AsyncChannel(3)
    for item in range(3):
        await channel.send(item)
    with anyio.CancelScope() as scope:
        scope.cancel()
        await channel.receive()
    assert scope.cancelled_caught
    assert await channel.receive() == 0  # nothing was taken by the cancelled call


@pytest.mark.anyio
async def test_a_receiver_cancelled_while_waiting_loses_no_later_item() -> None:
    channel: AsyncChannel[int] = AsyncChannel(1)
    with anyio.move_on_after(0.01):
        await channel.receive()
    assert await channel.send(7)
    assert await channel.receive() == 7
