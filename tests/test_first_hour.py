"""Mistakes a new user makes in the first hour, refused at the first call with a message
that says what to do; and the names code written for langgraph-checkpoint-redis uses."""

from __future__ import annotations

import asyncio
from typing import Any

import fakeredis
import pytest
import redis
import redis.asyncio
import valkey
import valkey.asyncio

from plain_redis_saver import (
    AsyncPlainRedisSaver,
    AsyncShallowRedisSaver,
    EventLoopError,
    InvalidConfigError,
    PlainRedisSaver,
    ShallowRedisSaver,
)

from .conftest import Backend
from .helpers import checkpoint, config, metadata, put_chain

ASYNC_CLIENTS = {
    "redis-asyncio": lambda: redis.asyncio.Redis(),
    "valkey-asyncio": lambda: valkey.asyncio.Valkey(),
    "fakeredis-async": lambda: fakeredis.FakeAsyncRedis(),
}
SYNC_CLIENTS = {
    "redis": lambda: redis.Redis(),
    "valkey": lambda: valkey.Valkey(),
    "fakeredis": lambda: fakeredis.FakeRedis(),
}


@pytest.mark.parametrize("make", ASYNC_CLIENTS.values(), ids=list(ASYNC_CLIENTS))
def test_the_blocking_saver_refuses_an_asyncio_client_naming_the_async_saver(make: Any) -> None:
    with pytest.raises(InvalidConfigError, match="asyncio .*use AsyncPlainRedisSaver"):
        PlainRedisSaver(make())


@pytest.mark.parametrize("make", SYNC_CLIENTS.values(), ids=list(SYNC_CLIENTS))
def test_the_async_saver_refuses_a_blocking_client_naming_the_blocking_saver(make: Any) -> None:
    with pytest.raises(InvalidConfigError, match="blocking .*use PlainRedisSaver"):
        AsyncPlainRedisSaver(make())


def test_cluster_clients_of_the_wrong_kind_are_refused(backend: Backend) -> None:
    if not backend.is_cluster:
        pytest.skip("cluster clients need the cluster backend")
    sync_client = backend.client()
    try:
        with pytest.raises(InvalidConfigError, match="use PlainRedisSaver"):
            AsyncPlainRedisSaver(sync_client)
    finally:
        sync_client.close()
    with pytest.raises(InvalidConfigError, match="use AsyncPlainRedisSaver"):
        PlainRedisSaver(backend.async_client())


@pytest.mark.parametrize(
    ("typo", "meant"),
    [("max_checkpoint", "max_checkpoints"), ("ttls", "ttl"), ("wait_replica", "wait_replicas")],
)
def test_a_misspelt_saver_option_is_refused_with_a_suggestion(typo: str, meant: str) -> None:
    # Refused before any connection is made: nothing listens on port 1.
    with (
        pytest.raises(InvalidConfigError, match=f"{typo!r}: did you mean {meant!r}"),
        PlainRedisSaver.from_conn_string("redis://127.0.0.1:1/0", **{typo: 1}),
    ):
        pass


def test_client_options_still_reach_the_client(backend: Backend) -> None:
    if backend.url is None:
        pytest.skip("from_conn_string needs a server URL")
    with PlainRedisSaver.from_conn_string(backend.url, socket_timeout=7) as saver:
        assert saver.client.get_connection_kwargs()["socket_timeout"] == 7


def test_from_conn_string_takes_redis_url_as_langgraph_checkpoint_redis_does(
    backend: Backend, prefix: str
) -> None:
    if backend.url is None:
        pytest.skip("from_conn_string needs a server URL")
    with PlainRedisSaver.from_conn_string(redis_url=backend.url, key_prefix=prefix) as saver:
        put_chain(saver, "t", 1)
        assert saver.get_tuple(config("t")) is not None


async def test_async_from_conn_string_takes_redis_url(backend: Backend, prefix: str) -> None:
    if backend.url is None:
        pytest.skip("from_conn_string needs a server URL")
    async with AsyncPlainRedisSaver.from_conn_string(
        redis_url=backend.url, key_prefix=prefix
    ) as saver:
        assert await saver.aget_tuple(config("t")) is None


@pytest.mark.parametrize("given", [{}, {"url": "redis://a", "redis_url": "redis://b"}])
def test_from_conn_string_needs_exactly_one_url(given: dict[str, str]) -> None:
    with (
        pytest.raises(InvalidConfigError, match="one URL"),
        PlainRedisSaver.from_conn_string(**given),
    ):
        pass


def test_shallow_saver_keeps_the_latest_checkpoint_only(client: Any, prefix: str) -> None:
    saver = ShallowRedisSaver(client, key_prefix=prefix)
    put_chain(saver, "t", 3)
    assert len(list(saver.list(config("t")))) == 1


async def test_async_shallow_saver_keeps_the_latest_checkpoint_only(
    aclient: Any, prefix: str
) -> None:
    saver = AsyncShallowRedisSaver(aclient, key_prefix=prefix)
    for step in range(3):
        cp = checkpoint({"n": step})
        await saver.aput(config("t"), cp, metadata(step=step), cp["channel_versions"])
    assert len([t async for t in saver.alist(config("t"))]) == 1


def test_shallow_saver_refuses_another_retention() -> None:
    with pytest.raises(InvalidConfigError, match="use PlainRedisSaver"):
        ShallowRedisSaver(fakeredis.FakeRedis(), max_checkpoints=5)


def _twice(saver: AsyncPlainRedisSaver) -> list[bool]:
    async def one(step: int) -> bool:
        cp = checkpoint({"n": step})
        await saver.aput(config("t"), cp, metadata(step=step), cp["channel_versions"])
        return (await saver.aget_tuple(config("t"))) is not None

    return [asyncio.run(one(1)), asyncio.run(one(2))]


def test_an_async_saver_serves_a_second_asyncio_run(backend: Backend, prefix: str) -> None:
    if backend.is_cluster:
        pytest.skip("a cluster client cannot move between loops (tested below)")
    assert _twice(AsyncPlainRedisSaver(backend.async_client(), key_prefix=prefix)) == [True, True]


def test_an_async_cluster_saver_in_a_second_asyncio_run_explains_the_rule(
    backend: Backend, prefix: str
) -> None:
    if not backend.is_cluster:
        pytest.skip("standalone clients move to the new loop (tested above)")
    with pytest.raises(EventLoopError, match="inside the asyncio.run"):
        _twice(AsyncPlainRedisSaver(backend.async_client(), key_prefix=prefix))
