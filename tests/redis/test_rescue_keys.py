"""A campaign's keys in a real redis-server: one cluster hash slot, nothing but the nine
documented keys, deleted with one call, expiring a TTL after the last write, and
never the API key or the Redis password anywhere."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import pytest
import redis
from redis.crc import key_slot

from mailpartner_async import ConfigurationError, ScheduledMessage
from mailpartner_async._core.redis_rescue import rescue_keys
from mailpartner_async.redis import (
    AsyncRedisRescue,
    RedisRateLimiter,
    RedisRescue,
    RedisUnavailableError,
)
from mailpartner_async.testing import FakeMailPartner
from tests.support.redis_server import RedisServer
from tests.support.server import unused_port


@pytest.fixture
def campaign(redis_server: RedisServer) -> Iterator[str]:
    name = f"test {{{uuid.uuid4().hex[:8]}}}"  # braces in the name too
    yield name
    with RedisRescue(redis_server.url, campaign=name) as rescue:
        rescue.delete()


def keys_of(url: str, campaign: str) -> dict[bytes, bytes]:
    """Each key of the campaign in Redis, with its type."""
    client: Any = redis.Redis.from_url(url)  # redis-py's replies are loosely typed
    tag = rescue_keys(campaign).tag
    # SCAN's pattern: the tag's braces and the name's other glob characters escaped
    pattern = "".join(f"\\{c}" if c in "{}[]*?\\" else c for c in tag) + ":*"
    return {key: client.type(key) for key in client.scan_iter(match=pattern)}


async def worked_campaign(url: str, campaign: str, **options: float) -> FakeMailPartner:
    """A campaign worked to its end: three cancelled, one too late, one unknown."""
    fake = FakeMailPartner()
    now = datetime.now(UTC)
    sends = [now + timedelta(minutes=m) for m in (10, 11, 12, 2)]
    messages = [ScheduledMessage(fake.schedule(send_at), send_at) for send_at in sends]
    async with AsyncRedisRescue(url, campaign=campaign, **options) as rescue:  # type: ignore[arg-type]
        await rescue.submit([*messages, "unknown"])
        async with fake.async_client() as client:
            with anyio.fail_after(30):
                await rescue.work(client)
    return fake


@pytest.mark.anyio
async def test_every_key_a_campaign_writes_is_one_of_its_nine_in_one_hash_slot(
    redis_server: RedisServer, campaign: str
) -> None:
    await worked_campaign(redis_server.url, campaign)
    written = keys_of(redis_server.url, campaign)
    names = {key.decode() for key in written}
    assert names <= set(rescue_keys(campaign).all)
    assert len(names) >= 6  # sends, leased, ledger, counts, recent, workers
    assert len({key_slot(key) for key in written}) == 1
    assert {key_slot(key.encode()) for key in rescue_keys(campaign).all} == {
        key_slot(rescue_keys(campaign).tag.encode())
    }


@pytest.mark.anyio
async def test_delete_removes_every_key_of_the_campaign_and_no_other(
    redis_server: RedisServer, campaign: str
) -> None:
    await worked_campaign(redis_server.url, campaign)
    await worked_campaign(redis_server.url, campaign + "-kept")
    async with AsyncRedisRescue(redis_server.url, campaign=campaign) as rescue:
        await rescue.delete()
        status = await rescue.status()
    assert keys_of(redis_server.url, campaign) == {}
    assert (status.submitted, status.final.done) == (0, 0)
    assert keys_of(redis_server.url, campaign + "-kept") != {}
    async with AsyncRedisRescue(redis_server.url, campaign=campaign + "-kept") as rescue:
        await rescue.delete()


@pytest.mark.anyio
async def test_with_a_ttl_every_key_expires_that_long_after_the_last_write(
    redis_server: RedisServer, campaign: str
) -> None:
    await worked_campaign(redis_server.url, campaign, ttl=1.5)
    client = redis.Redis.from_url(redis_server.url)
    written = keys_of(redis_server.url, campaign)
    assert written
    assert all(0 < client.pttl(key) <= 1500 for key in written)
    await anyio.sleep(2.0)
    assert keys_of(redis_server.url, campaign) == {}


@pytest.mark.anyio
async def test_without_a_ttl_no_key_expires(redis_server: RedisServer, campaign: str) -> None:
    await worked_campaign(redis_server.url, campaign)
    client = redis.Redis.from_url(redis_server.url)
    assert {client.pttl(key) for key in keys_of(redis_server.url, campaign)} == {-1}


@pytest.mark.anyio
async def test_the_api_key_is_never_stored_in_redis(
    redis_server: RedisServer, campaign: str
) -> None:
    fake = await worked_campaign(redis_server.url, campaign)
    client: Any = redis.Redis.from_url(redis_server.url)
    stored = b""
    for key, kind in keys_of(redis_server.url, campaign).items():
        if kind == b"hash":
            stored += b"".join(k + v for k, v in client.hgetall(key).items())
        else:
            stored += b"".join(client.zrange(key, 0, -1))
    assert stored
    assert fake.api_key is not None
    assert fake.api_key.encode() not in stored


@pytest.mark.anyio
async def test_the_redis_password_is_in_no_repr_and_no_error() -> None:
    url = f"redis://:s3cr3t-pa55word@127.0.0.1:{unused_port()}/0"
    async with AsyncRedisRescue(url, campaign="c", worker="w") as rescue:
        assert repr(rescue) == "AsyncRedisRescue(campaign='c', lease=30.0, worker='w')"
        with pytest.raises(RedisUnavailableError) as caught:
            await rescue.status()
    assert "s3cr3t" not in str(caught.value)
    assert "s3cr3t" not in repr(caught.value)
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


@pytest.mark.parametrize(
    "password",
    [
        "s3cr/et7",
        "k2q?w8z",
        "k2q#w8z",
        "k2q\uff0fw8z",  # a fullwidth "/": urlsplit quotes the whole netloc
    ],
)
def test_a_url_refused_for_its_password_shows_no_piece_of_it(password: str) -> None:
    url = f"redis://user:{password}@localhost:6379/0"
    pieces = [password[i : i + 3] for i in range(len(password) - 2)]
    for make in (
        lambda: RedisRescue(url, campaign="c"),
        lambda: AsyncRedisRescue(url, campaign="c"),
        lambda: RedisRateLimiter(url),
    ):
        with pytest.raises(ConfigurationError, match="url is not a Redis URL") as caught:
            make()
        assert [piece for piece in pieces if piece in str(caught.value)] == []


@pytest.mark.parametrize(
    ("url", "options", "message"),
    [
        ("http://localhost", {}, "url must be"),
        ("redis://localhost:notaport", {}, "url is not a Redis URL"),
        ("redis://localhost/0?foo=1", {}, "query option redis-py does not take .*'foo'"),
        ("rediss://localhost/0?ssl_cert_reqs=bogus", {}, "redis-py can use: Invalid SSL"),
        ("redis://localhost/0?protocol=9", {}, "redis-py can use: protocol must be"),
        ("redis://localhost/²", {}, "path must be a database number"),
        ("redis://localhost", {"campaign": ""}, "campaign must be"),
        ("redis://localhost", {"lease": 0}, "lease must be"),
        ("redis://localhost", {"ttl": -1}, "ttl must be"),
        ("redis://localhost", {"clock": lambda: datetime(2030, 1, 1)}, "aware datetime"),
        ("redis://localhost", {"clock": "now"}, "clock must be"),
        ("redis://localhost", {"worker": ""}, "worker must be"),
    ],
)
def test_the_rescue_refuses_what_it_cannot_use(
    url: str, options: dict[str, object], message: str
) -> None:
    arguments: dict[str, object] = {"campaign": "c", **options}
    with pytest.raises(ConfigurationError, match=message):
        RedisRescue(url, **arguments)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match=message):
        AsyncRedisRescue(url, **arguments)  # type: ignore[arg-type]
