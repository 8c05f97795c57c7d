"""What only the sync client shows: parity with the async one, threads, no event loop."""

from __future__ import annotations

import ast
import asyncio
import inspect
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from mailpartner_async import AsyncMailPartner, MailPartner
from tests.support.server import ScriptedServer

RENAMED = {"aclose": "close", "__aenter__": "__enter__", "__aexit__": "__exit__"}
DUNDERS = {"__init__", "__repr__", *RENAMED, *RENAMED.values()}


def _public(cls: type) -> dict[str, object]:
    return {
        RENAMED.get(name, name): member
        for name, member in vars(cls).items()
        if not name.startswith("_") or name in DUNDERS
    }


def test_sync_client_has_the_async_clients_public_surface() -> None:
    async_members = _public(AsyncMailPartner)
    sync_members = _public(MailPartner)
    assert sorted(async_members) == sorted(sync_members)
    assert {"cancel", "cancel_many", "cancel_iter", "with_options", "close"} <= set(sync_members)


@pytest.mark.parametrize("name", sorted(_public(AsyncMailPartner)))
def test_sync_and_async_signatures_match(name: str) -> None:
    async_member = _public(AsyncMailPartner)[name]
    sync_member = _public(MailPartner)[name]
    if isinstance(async_member, property):
        assert isinstance(sync_member, property)
        return
    assert callable(async_member)
    assert callable(sync_member)
    async_params = inspect.signature(async_member).parameters
    sync_params = inspect.signature(sync_member).parameters
    assert [(p.name, p.kind, p.default) for p in async_params.values()] == [
        (p.name, p.kind, p.default) for p in sync_params.values()
    ]
    assert inspect.iscoroutinefunction(sync_member) is False


def test_init_signatures_match() -> None:
    async_params = inspect.signature(AsyncMailPartner.__init__).parameters
    sync_params = inspect.signature(MailPartner.__init__).parameters
    assert [(p.name, p.kind, p.default) for p in async_params.values()] == [
        (p.name, p.kind, p.default) for p in sync_params.values()
    ]


def test_sync_client_works_inside_a_running_event_loop(server: ScriptedServer) -> None:
    async def handler_in_a_loop() -> str:
        # Jupyter and some frameworks call sync code from inside a running loop.
        with MailPartner("sync-key-123", base_url=server.base_url) as client:
            return client.cancel("41").message_id

    assert asyncio.run(handler_in_a_loop()) == "41"


def test_sync_client_code_imports_no_event_loop_library() -> None:
    # Together with the test above (asyncio.run() inside a running loop would raise),
    # this shows the sync client is synchronous all the way down.
    import mailpartner_async._sync.client as sync_client

    tree = ast.parse(inspect.getsource(sync_client))
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not imported & {"anyio", "asyncio", "trio"}
    assert not [
        node for node in ast.walk(tree) if isinstance(node, ast.Await | ast.AsyncFunctionDef)
    ]


def test_sync_batch_threads_are_gone_after_cancel_many(server: ScriptedServer) -> None:
    with MailPartner("sync-key-123", base_url=server.base_url, rate_limit=None) as client:
        outcomes = client.cancel_many([str(i) for i in range(30)], concurrency=5)
    assert len(outcomes) == 30
    assert not [t for t in threading.enumerate() if t.name.startswith("mailpartner-batch")]


def test_eight_threads_sharing_one_client_cancel_2000_ids_none_lost(
    server: ScriptedServer,
) -> None:
    ids = [str(i) for i in range(2000)]
    results: dict[str, int] = {}
    lock = threading.Lock()

    with MailPartner(
        "sync-key-123", base_url=server.base_url, max_concurrency=4, rate_limit=None
    ) as client:

        def work(chunk: list[str]) -> None:
            for message_id in chunk:
                result = client.cancel(message_id)
                with lock:
                    results[result.message_id] = results.get(result.message_id, 0) + 1

        with ThreadPoolExecutor(8) as pool:
            for future in [pool.submit(work, ids[i::8]) for i in range(8)]:
                future.result()

    assert sorted(results) == sorted(ids)
    assert set(results.values()) == {1}
    assert len(server.requests) == 2000
    assert server.max_in_flight <= 4
