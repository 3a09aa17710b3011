"""Making and inspecting clients: standalone or cluster, redis-py or valkey-py."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Mapping
from typing import Any, Protocol

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.cluster
import redis.connection


class BlockingClient(Protocol):
    """What PlainRedisSaver takes: ``redis.Redis``, ``redis.cluster.RedisCluster``,
    ``valkey.Valkey``, ``valkey.cluster.ValkeyCluster`` (or ``fakeredis.FakeRedis``).

    A structural type, so that valkey-py (not a dependency) needs no import: these
    clients are context managers with ``with``, which a URL string and the asyncio
    clients are not, so a type checker flags both."""

    def evalsha(self, sha: str, numkeys: int, *keys_and_args: Any) -> Any: ...

    def __enter__(self) -> Any: ...


class AsyncClient(Protocol):
    """What AsyncPlainRedisSaver takes: ``redis.asyncio.Redis``,
    ``redis.asyncio.cluster.RedisCluster``, ``valkey.asyncio.Valkey``,
    ``valkey.asyncio.cluster.ValkeyCluster`` (or ``fakeredis.FakeAsyncRedis``): the
    clients used with ``async with``, which a URL string and the blocking ones are not."""

    def evalsha(self, sha: str, numkeys: int, *keys_and_args: Any) -> Any: ...

    def __aenter__(self) -> Awaitable[Any]: ...


def connection_kwargs(client: Any) -> Mapping[str, Any]:
    """The options the client opens connections with, whatever kind of client it is."""
    pool = getattr(client, "connection_pool", None)
    kwargs = getattr(pool, "connection_kwargs", None)  # standalone, sync and asyncio
    if isinstance(kwargs, Mapping):
        return kwargs
    kwargs = getattr(client, "connection_kwargs", None)  # asyncio cluster
    if isinstance(kwargs, Mapping):
        return kwargs
    manager = getattr(client, "nodes_manager", None)  # sync cluster
    kwargs = getattr(manager, "connection_kwargs", None)
    return kwargs if isinstance(kwargs, Mapping) else {}


#: Keyword arguments the Redis clients take (standalone and cluster, sync and asyncio):
#: from_conn_string passes them on, and never mistakes one for a misspelt saver option.
CLIENT_OPTIONS = frozenset(
    name
    for cls in (redis.Redis, redis.cluster.RedisCluster, redis.asyncio.Redis)
    for name in inspect.signature(cls.__init__).parameters
) | frozenset(inspect.signature(redis.connection.Connection.__init__).parameters)


def is_cluster(client: Any) -> bool:
    return hasattr(client, "nodes_manager")


def is_async_client(client: Any) -> bool:
    """Whether ``client`` is an asyncio client (its commands are awaited): redis-py's,
    valkey-py's or fakeredis', standalone or cluster."""
    return inspect.iscoroutinefunction(getattr(client, "execute_command", None))


def describe(client: Any) -> str:
    kind = type(client)
    return f"{kind.__module__}.{kind.__qualname__}"


def _cluster_enabled(info: Any) -> bool:
    # INFO is answered by every managed service (ElastiCache Serverless included),
    # unlike CLUSTER INFO on a standalone server; we read one flag, never a version.
    return str(info.get("cluster_enabled", "0")) == "1"


def sync_client(url: str, cluster: bool | None, **kwargs: Any) -> Any:
    """A client for ``url``; ``cluster=None`` asks the server whether it is a cluster."""
    if cluster is None:
        probe = redis.Redis.from_url(url, **kwargs)
        try:
            cluster = _cluster_enabled(probe.info("cluster"))
        finally:
            probe.close()
    if cluster:
        return redis.cluster.RedisCluster.from_url(url, **kwargs)
    return redis.Redis.from_url(url, **kwargs)


def release_sync(client: Any) -> None:
    """Close the client's connections but keep it usable (it reconnects on demand)."""
    if is_cluster(client):
        client.disconnect_connection_pools()
    else:
        client.connection_pool.disconnect()


async def async_client(url: str, cluster: bool | None, **kwargs: Any) -> Any:
    if cluster is None:
        probe = redis.asyncio.Redis.from_url(url, **kwargs)
        try:
            cluster = _cluster_enabled(await probe.info("cluster"))
        finally:
            await probe.aclose()
    if cluster:
        return redis.asyncio.cluster.RedisCluster.from_url(url, **kwargs)
    # A blocking pool: callers beyond max_connections wait for a free connection.
    pool = redis.asyncio.BlockingConnectionPool.from_url(url, **kwargs)
    return redis.asyncio.Redis(connection_pool=pool)


async def release_async(client: Any) -> None:
    if is_cluster(client):
        await client.aclose()  # the cluster client re-initializes on its next command
    else:
        await client.connection_pool.disconnect()
