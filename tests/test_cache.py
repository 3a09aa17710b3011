"""PlainRedisCache: LangGraph's BaseCache on every backend, against InMemoryCache's
behaviour, with its round trips, its clean-up and its error policy."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
import redis

from plain_redis_saver import PlainRedisCache, PlainRedisSaver
from plain_redis_saver.embedded import _free_port
from plain_redis_saver.errors import CorruptDataError, EventLoopError, InvalidConfigError
from plain_redis_saver.store_keys import CacheKeys

from .conftest import Backend
from .helpers import config, count_round_trips, put_chain
from .test_managed_rules import Wire, _name, wire  # noqa: F401

PROGRAMS = Path(__file__).resolve().parent / "programs"
NS_A, NS_B = ("node", "a"), ("node", "b")


@pytest.fixture
def cache(client: Any, prefix: str) -> PlainRedisCache[Any]:
    return PlainRedisCache(client, key_prefix=prefix)


def test_set_then_get_returns_the_values_of_every_namespace(cache: PlainRedisCache[Any]) -> None:
    cache.set({(NS_A, "k"): ({"x": [1, 2]}, None), (NS_B, "k"): ("b", 60), ((), "top"): (3, None)})
    assert cache.get([(NS_A, "k"), (NS_B, "k"), ((), "top"), (NS_A, "missing")]) == {
        (NS_A, "k"): {"x": [1, 2]},
        (NS_B, "k"): "b",
        ((), "top"): 3,
    }


def test_get_of_no_keys_sends_nothing(cache: PlainRedisCache[Any]) -> None:
    with count_round_trips() as rt:
        assert cache.get([]) == {}
        cache.set({})
    assert rt.count == 0


def test_an_entry_expires_with_its_own_ttl_on_the_server(
    cache: PlainRedisCache[Any], admin: Any, prefix: str
) -> None:
    cache.set({(NS_A, "short"): (1, 30), (NS_A, "forever"): (2, None)})
    keys = CacheKeys(prefix)
    tag = keys.tag(NS_A)
    assert 0 < admin.pttl(keys.entry(tag, "short")) <= 30_000
    assert admin.pttl(keys.entry(tag, "forever")) == -1


def test_a_ttl_of_zero_stores_an_expired_entry_that_is_never_returned(
    cache: PlainRedisCache[Any],
) -> None:
    cache.set({(NS_A, "k"): (1, None)})
    cache.set({(NS_A, "k"): (2, 0)})
    assert cache.get([(NS_A, "k")]) == {}


def test_the_index_of_a_namespace_expires_with_its_last_entry(
    cache: PlainRedisCache[Any], admin: Any, prefix: str
) -> None:
    cache.set({(NS_A, "a"): (1, 10), (NS_A, "b"): (1, 20)})
    index = CacheKeys(prefix).index(CacheKeys(prefix).tag(NS_A))
    assert 10_000 < admin.pttl(index) <= 20_000
    cache.set({(NS_A, "c"): (1, None)})
    assert admin.pttl(index) == -1


def test_clear_of_some_namespaces_keeps_the_others(cache: PlainRedisCache[Any]) -> None:
    cache.set({(NS_A, "k"): (1, None), (NS_B, "k"): (2, None), (("other",), "k"): (3, 60)})
    cache.clear([NS_A, ("other",)])
    assert cache.get([(NS_A, "k"), (NS_B, "k"), (("other",), "k")]) == {(NS_B, "k"): 2}


def test_clear_of_everything_leaves_no_key(
    cache: PlainRedisCache[Any], admin: Any, prefix: str, backend: Backend
) -> None:
    cache.set({((f"n{i}",), f"k{j}"): (j, None) for i in range(5) for j in range(1500)})
    cache.clear()
    assert cache.get([(("n1",), "k1")]) == {}
    assert _keys_of(backend, admin, prefix) == []


def _keys_of(backend: Backend, admin: Any, prefix: str) -> list[bytes]:
    if backend.is_cluster:
        return sorted(admin.scan_iter(match=f"{prefix}*", target_nodes="primaries"))
    return sorted(admin.scan_iter(match=f"{prefix}*"))


def test_clear_sends_no_keys_and_no_scan(cache: PlainRedisCache[Any], wire: Wire) -> None:  # noqa: F811
    cache.set({(NS_A, "k"): (1, None), (NS_B, "k"): (2, None)})
    cache.clear()
    cache.clear([NS_A])
    sent = {_name(args[0]) for args in wire.requests}
    assert "HKEYS" in sent and not sent & {"KEYS", "SCAN"}


def test_clear_never_touches_the_savers_keys_and_the_saver_never_touches_the_cache(
    cache: PlainRedisCache[Any], saver: PlainRedisSaver
) -> None:
    stored = put_chain(saver, "t", 3, run_id="r")
    cache.set({(NS_A, "k"): (1, None)})
    cache.clear()
    assert saver.get_tuple(config("t")).config == stored[-1]  # type: ignore[union-attr]
    cache.set({(NS_A, "k"): (1, None)})
    assert len(list(saver.list(None))) == 3
    saver.delete_for_runs(["r"])
    saver.delete_thread("t")
    assert cache.get([(NS_A, "k")]) == {(NS_A, "k"): 1}


def test_get_and_set_of_several_namespaces_are_one_round_trip_each(
    cache: PlainRedisCache[Any], backend: Backend
) -> None:
    if backend.is_cluster:
        pytest.skip("on a cluster a pipeline is one round trip per node it touches")
    cache.client.ping()
    pairs = {((f"n{i}",), "k"): (i, 60) for i in range(10)}
    with count_round_trips() as rt:
        cache.set(pairs)
    assert rt.count == 1
    with count_round_trips() as rt:
        assert len(cache.get(list(pairs))) == 10
    assert rt.count == 1


def test_no_request_carries_more_than_3999_arguments(
    cache: PlainRedisCache[Any],
    wire: Wire,  # noqa: F811
) -> None:
    pairs = {(NS_A, f"k{i}"): (i, 60) for i in range(5000)}
    cache.set(pairs)
    assert len(cache.get(list(pairs))) == 5000
    cache.clear()
    assert max(len(args) for args in wire.requests) <= 3999


def test_a_corrupt_entry_raises_naming_its_key(
    cache: PlainRedisCache[Any], admin: Any, prefix: str
) -> None:
    keys = CacheKeys(prefix)
    admin.set(keys.entry(keys.tag(NS_A), "k"), b"not a cache entry")
    with pytest.raises(CorruptDataError, match=":e:k"):
        cache.get([(NS_A, "k")])


def _unreachable_cache(**options: Any) -> PlainRedisCache[Any]:
    client = redis.Redis(port=_free_port(), socket_connect_timeout=0.2)
    return PlainRedisCache(client, **options)


def test_a_server_error_raises_by_default() -> None:
    cache = _unreachable_cache()
    with pytest.raises(redis.ConnectionError):
        cache.get([(NS_A, "k")])
    with pytest.raises(redis.ConnectionError):
        cache.set({(NS_A, "k"): (1, None)})
    with pytest.raises(redis.ConnectionError):
        cache.clear()


def test_on_error_warn_counts_a_server_error_as_a_miss_and_logs_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cache = _unreachable_cache(on_error="warn")
    with caplog.at_level(logging.WARNING, logger="plain_redis_saver.cache"):
        assert cache.get([(NS_A, "k")]) == {}
        cache.set({(NS_A, "k"): (1, None)})
    assert [r.getMessage().split(" failed")[0] for r in caplog.records] == [
        "PlainRedisCache.get",
        "PlainRedisCache.set",
    ]


def test_a_bad_ttl_raises_whatever_the_error_policy(cache: PlainRedisCache[Any]) -> None:
    cache.on_error = "warn"
    with pytest.raises(InvalidConfigError, match="ttl"):
        cache.set({(NS_A, "k"): (1, "soon")})  # type: ignore[dict-item]


async def test_async_methods_are_native_on_an_asyncio_client(aclient: Any, prefix: str) -> None:
    cache: PlainRedisCache[Any] = PlainRedisCache(aclient, key_prefix=prefix)
    await cache.aset({(NS_A, "k"): ({"v": 1}, 60), (NS_B, "k"): (2, None)})
    assert await cache.aget([(NS_A, "k"), (NS_B, "k")]) == {(NS_A, "k"): {"v": 1}, (NS_B, "k"): 2}
    await cache.aclear([NS_A])
    assert await cache.aget([(NS_A, "k"), (NS_B, "k")]) == {(NS_B, "k"): 2}
    with pytest.raises(EventLoopError, match="await cache.aget"):
        cache.get([(NS_B, "k")])
    found = await asyncio.to_thread(cache.get, [(NS_B, "k")])
    assert found == {(NS_B, "k"): 2}


async def test_async_methods_of_a_blocking_client_leave_the_loop_free(
    cache: PlainRedisCache[Any],
) -> None:
    loop_thread = threading.get_ident()
    seen: list[int] = []
    original = cache._executor._sync

    def recording(op: Any) -> Any:
        seen.append(threading.get_ident())
        return original(op)  # type: ignore[misc]

    cache._executor._sync = recording  # type: ignore[assignment]
    await cache.aset({(NS_A, "k"): (1, None)})
    assert await cache.aget([(NS_A, "k")]) == {(NS_A, "k"): 1}
    assert seen and loop_thread not in seen


def test_a_cached_node_and_task_run_once_across_two_processes(
    backend: Backend, prefix: str
) -> None:
    if backend.url is None:
        pytest.skip("two processes share a server by URL; fakeredis lives in one process")
    env = {**os.environ, "REDIS_URL": backend.url, "KEY_PREFIX": prefix}
    outputs = []
    for _ in range(2):
        run = subprocess.run(
            [sys.executable, str(PROGRAMS / "cached_graph.py")],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert run.returncode == 0, run.stdout + run.stderr
        outputs.append(run.stdout.strip())
    assert outputs == ["node ran 1, task ran 1", "node ran 0, task ran 0"]
