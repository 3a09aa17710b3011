"""PlainRedisStore and AsyncPlainRedisStore: round trips, TTL, errors, bounded work and
living beside the saver, on every backend (the model test covers the semantics)."""

from __future__ import annotations

import asyncio
import fnmatch
from collections.abc import Iterator
from typing import Any

import pytest
from langgraph.store.base import GetOp, InvalidNamespaceError, PutOp, SearchOp
from langgraph.store.memory import InMemoryStore

from plain_redis_saver import (
    AsyncPlainRedisStore,
    EventLoopError,
    PlainRedisSaver,
    PlainRedisStore,
)
from plain_redis_saver.acl import key_patterns
from plain_redis_saver.keys import Keyspace
from plain_redis_saver.store_core import SEARCH_BUDGET
from plain_redis_saver.store_keys import store_keys

from .helpers import config, count_round_trips, put_chain
from .store_reference import Clock
from .test_managed_rules import Wire, wire  # noqa: F401

NS = ("users", "ann")


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(client: Any, prefix: str, clock: Clock) -> Iterator[PlainRedisStore]:
    s = PlainRedisStore(client, key_prefix=prefix, clock=clock)
    s.setup()
    client.ping()
    yield s


def fill(store: PlainRedisStore, n: int, ns: tuple[str, ...] = NS) -> None:
    store.batch([PutOp(ns, f"k{i}", {"i": i, "even": i % 2 == 0}) for i in range(n)])


# ------------------------------------------------------------------ round trips


def test_get_put_and_delete_are_one_round_trip_each(store: PlainRedisStore) -> None:
    with count_round_trips() as rt:
        store.put(NS, "k", {"a": 1})
    assert rt.count == 1
    with count_round_trips() as rt:
        assert store.get(NS, "k") is not None
    assert rt.count == 1
    with count_round_trips() as rt:
        store.delete(NS, "k")
    assert rt.count == 1


def test_a_batch_of_gets_and_puts_is_one_round_trip(store: PlainRedisStore) -> None:
    fill(store, 5)
    ops: list[Any] = [GetOp(NS, f"k{i}") for i in range(5)]
    ops += [PutOp(("other", str(i)), "k", {"v": i}) for i in range(20)]
    with count_round_trips() as rt:
        results = store.batch(ops)
    assert rt.count == 1 and [r.value["i"] for r in results[:5]] == list(range(5))


def test_search_with_filter_and_limit_in_10000_items_is_one_round_trip(
    store: PlainRedisStore,
) -> None:
    fill(store, 10_000)
    with count_round_trips() as rt:
        found = store.search(NS, filter={"even": True}, limit=10)
    assert rt.count == 1 and [item.key for item in found] == [f"k{i}" for i in range(0, 20, 2)]


def test_a_search_examines_a_bounded_slice_per_call_and_resumes(store: PlainRedisStore) -> None:
    fill(store, 2 * SEARCH_BUDGET + 10)
    with count_round_trips() as rt:
        found = store.search(NS, filter={"i": 2 * SEARCH_BUDGET + 5})
    assert [item.key for item in found] == [f"k{2 * SEARCH_BUDGET + 5}"] and rt.count == 3


def test_list_namespaces_is_one_round_trip(store: PlainRedisStore) -> None:
    store.batch([PutOp(("users", str(i), "facts"), "k", {"v": i}) for i in range(50)])
    with count_round_trips() as rt:
        listed = store.list_namespaces(prefix=("users",), max_depth=2, limit=5, offset=3)
    assert rt.count == 1 and listed == [("users", str(i)) for i in sorted(map(str, range(50)))[3:8]]


def test_no_request_carries_more_than_3999_arguments(
    store: PlainRedisStore,
    wire: Wire,  # noqa: F811
) -> None:
    store.batch([PutOp(("ns", str(i % 7)), f"k{i}", {"i": i}) for i in range(5000)])
    store.batch([GetOp(("ns", "1"), f"k{i}") for i in range(5000)])
    assert len(store.search((), limit=5000)) == 5000
    assert 0 < max(len(args) for args in wire.requests) <= 3999


# ------------------------------------------------------------------ TTL


def test_an_expired_item_is_never_returned_and_leaves_no_key_behind(
    store: PlainRedisStore, clock: Clock, admin: Any, prefix: str
) -> None:
    store.put(NS, "short", {"a": 1}, ttl=1)
    store.put(("other",), "short", {"a": 2}, ttl=1)
    clock.advance(1)
    assert store.get(NS, "short") is None
    assert store.search(("other",)) == []
    assert store.list_namespaces() == []
    assert [admin.exists(key) for key in store_keys(prefix)] == [0] * 7


def test_a_read_restarts_the_ttl_unless_refresh_is_off(
    store: PlainRedisStore, clock: Clock
) -> None:
    store.put(NS, "read", {"a": 1}, ttl=2)
    store.put(NS, "unread", {"a": 1}, ttl=2)
    clock.advance(1.5)
    assert store.get(NS, "read") is not None
    assert store.get(NS, "unread", refresh_ttl=False) is not None
    clock.advance(1.5)
    assert store.get(NS, "read") is not None and store.get(NS, "unread") is None


def test_default_ttl_and_refresh_on_read_come_from_the_ttl_config(
    client: Any, prefix: str, clock: Clock
) -> None:
    store = PlainRedisStore(
        client, key_prefix=prefix, clock=clock, ttl={"default_ttl": 1, "refresh_on_read": False}
    )
    store.put(NS, "k", {"a": 1})
    store.put(NS, "forever", {"a": 1}, ttl=None)
    clock.advance(0.5)
    assert store.get(NS, "k") is not None
    clock.advance(0.5)
    assert store.get(NS, "k") is None and store.get(NS, "forever") is not None
    assert store.supports_ttl


def test_many_items_expiring_at_once_are_never_listed(store: PlainRedisStore, clock: Clock) -> None:
    store.batch([PutOp(("ns", str(i)), "k", {"i": i}, ttl=1) for i in range(1500)])
    store.put(("kept",), "k", {"i": 0})
    clock.advance(2)
    assert store.list_namespaces() == [("kept",)]


# ------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.put((), "k", {}),
        lambda s: s.put(("langgraph", "x"), "k", {}),
        lambda s: s.put(("a", ""), "k", {}),
        lambda s: s.put(("a.b",), "k", {}),
        lambda s: s.get(("a", "b.c"), "k"),
        lambda s: s.search(("a.b",)),
        lambda s: s.list_namespaces(prefix=("a", "")),
        lambda s: s.search(("a",), filter={"x": {"$gt": "abc"}}),
        lambda s: s.search(("a",), filter={"y": {"$gt": 1}}),
        lambda s: s.search(("a",), filter={"x": {"$regex": "a"}}),
    ],
    ids=[
        "empty", "reserved-root", "empty-label", "dotted-label", "get-dotted",
        "search-dotted", "list-empty-label", "gt-on-text", "gt-on-missing",
        "unknown-operator",
    ],
)  # fmt: skip
def test_bad_input_raises_what_in_memory_store_raises(store: PlainRedisStore, call: Any) -> None:
    reference = InMemoryStore()
    for s in (reference, store):
        s.put(("a",), "k", {"x": 1})
    with pytest.raises(Exception) as expected:
        call(reference)
    with pytest.raises(type(expected.value)) as got:
        call(store)
    assert str(got.value) == str(expected.value)


def test_batch_checks_labels_as_langgraph_asks_stores_to(store: PlainRedisStore) -> None:
    """InMemoryStore.batch takes any label; LangGraph asks stores to check them
    (validate_op_namespace), so that "a.b" never addresses ("a", "b")."""
    with pytest.raises(InvalidNamespaceError, match="periods"):
        store.batch([PutOp(("a", "b.c"), "k", {})])


def test_a_batch_with_a_bad_op_writes_nothing(store: PlainRedisStore) -> None:
    with pytest.raises(InvalidNamespaceError):
        store.batch([PutOp(("a",), "k", {"x": 1}), PutOp(("b", ""), "k", {})])
    assert store.get(("a",), "k") is None


# ------------------------------------------------------------------ async


async def test_async_store_serves_awaited_calls_and_refuses_blocking_ones_in_its_loop(
    aclient: Any, prefix: str
) -> None:
    store = AsyncPlainRedisStore(aclient, key_prefix=prefix)
    await store.aput(NS, "k", {"a": 1})
    assert (await store.aget(NS, "k")).value == {"a": 1}  # type: ignore[union-attr]
    assert [i.key for i in await store.asearch(("users",))] == ["k"]
    assert await store.alist_namespaces() == [NS]
    with pytest.raises(EventLoopError, match=r"await store\.abatch"):
        store.get(NS, "k")
    item = await asyncio.to_thread(store.get, NS, "k")
    assert item is not None and item.value == {"a": 1}
    await store.adelete(NS, "k")
    assert await store.aget(NS, "k") is None


async def test_async_methods_of_the_blocking_store_work(store: PlainRedisStore) -> None:
    await store.aput(NS, "k", {"a": 1})
    assert (await store.abatch([SearchOp(NS)]))[0][0].value == {"a": 1}


# ------------------------------------------------------------------ beside the saver


def test_store_keys_are_under_the_prefix_acl_rule_and_never_a_threads(
    store: PlainRedisStore, prefix: str
) -> None:
    keyspace = Keyspace(prefix)
    pattern = keyspace.thread_keys_scan_pattern()
    acl = [p.removeprefix("~") for p in key_patterns(prefix)]
    for key in store_keys(prefix):
        assert any(fnmatch.fnmatchcase(key, p) for p in acl)
        assert not fnmatch.fnmatchcase(key, pattern)
        tid = keyspace.thread_id_of(key)
        assert tid is None or key not in keyspace.thread(tid)


def test_store_and_saver_share_a_prefix_without_touching_each_other(
    store: PlainRedisStore, saver: PlainRedisSaver
) -> None:
    stored = put_chain(saver, "t", 3, run_id="r")
    fill(store, 5)
    assert len(list(saver.list(None))) == 3
    saver.delete_for_runs(["other"])
    saver.prune(["t"])
    assert len(store.search(NS)) == 5
    store.batch([PutOp(NS, f"k{i}", None) for i in range(5)])
    saver_tuple = saver.get_tuple(config("t"))
    assert saver_tuple is not None and saver_tuple.config == stored[-1]


ODD_VALUES = [
    {"v": 1}, {"v": 1.0}, {"v": True}, {"v": 2.5}, {"v": "2.5"}, {"v": " 3 "}, {"v": "1_0"},
    {"v": float("inf")}, {"v": float("-inf")}, {"v": 2**60 + 1}, {"v": float(2**60)},
    {"v": "x"}, {"v": "not a number, longer than a digest"}, {"v": None}, {"v": [1, 2]},
    {"v": {"w": 1}}, {"w": 1},
]  # fmt: skip
ODD_FILTERS = [
    {"v": 1}, {"v": True}, {"v": 2**60 + 1}, {"v": float(2**60)}, {"v": None}, {"v": [1, 2]},
    {"v": {"w": 1}}, {"v": {"$eq": {"w": 1}}}, {"v": {"$ne": 1}}, {"v": {"$gt": 2}},
    {"v": {"$gte": "2.5"}}, {"v": {"$lt": float("inf")}}, {"v": {"$lte": -1e308}},
    {"v": {"$gt": "abc"}}, {"v": {"$gt": None}}, {"v": "not a number, longer than a digest"},
    {"v": {"$ne": "not a number, longer than a digest"}},
]  # fmt: skip


@pytest.mark.parametrize("filter", ODD_FILTERS, ids=[str(f) for f in ODD_FILTERS])
def test_filters_on_odd_values_agree_with_in_memory_store(
    store: PlainRedisStore, filter: dict[str, Any]
) -> None:
    """Each value alone in its namespace: the same items match, or the same error."""
    reference = InMemoryStore()
    for s in (reference, store):
        for i, value in enumerate(ODD_VALUES):
            s.put(("odd", str(i)), "k", value)
    for i in range(len(ODD_VALUES)):
        outcomes = []
        for s in (reference, store):
            try:
                outcomes.append([r.key for r in s.search(("odd", str(i)), filter=filter)])
            except (TypeError, ValueError, OverflowError) as exc:
                outcomes.append([type(exc).__name__, str(exc)])
        assert outcomes[0] == outcomes[1], ODD_VALUES[i]


async def test_async_store_get_put_and_search_are_one_round_trip_each(
    aclient: Any, prefix: str
) -> None:
    store = AsyncPlainRedisStore(aclient, key_prefix=prefix)
    await store.asetup()
    await store.aput(NS, "warm", {"a": 0})
    with count_round_trips() as rt:
        await store.aput(NS, "k", {"a": 1})
        await store.aget(NS, "k")
        await store.asearch(NS, filter={"a": 1})
    assert rt.count == 3


def test_in_100000_items_every_script_call_examines_a_bounded_slice(
    store: PlainRedisStore, backend: Any
) -> None:
    """A filter that matches nothing walks the namespace in slices of SEARCH_BUDGET
    items, one script call each (how long a slice takes is in benchmarks/STORE.md)."""
    if backend.name not in ("valkey", "redis"):
        pytest.skip("100,000 items are written on the standalone servers only")
    fill(store, 100_000)
    with count_round_trips() as rt:
        assert store.search(NS, filter={"i": -1}) == []
    assert rt.count == 100_000 // SEARCH_BUDGET
