"""The store's key layout: items are small on the server, and a store written by the
first layout (namespace text in every item's field and order member, four tokens
per filter node, the record as eight netstrings) is read, searched, listed, updated and
expired by the current code, which writes new items in the current layout beside it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from langgraph.store.base import PutOp
from langgraph.store.memory import InMemoryStore

from plain_redis_saver import PlainRedisStore, store_core
from plain_redis_saver.serde import SafeSerializer
from plain_redis_saver.store_keys import StoreKeys, store_keys

from .store_reference import Clock

ANN, BOB = ("users", "ann"), ("users", "bob")
LONG_TEXT = "likes long walks on the beach"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(client: Any, prefix: str, clock: Clock) -> PlainRedisStore:
    return PlainRedisStore(client, key_prefix=prefix, clock=clock)


def _ns(data: bytes) -> bytes:
    return b"%d:%s" % (len(data), data)


def _legacy_document(value: Mapping[str, Any]) -> bytes:
    """What the first layout wrote for a flat value of ints and strings: path,
    kind, equality token, float token per node."""
    out = b""
    for key, child in value.items():
        path = _ns(b"k" + key.encode())
        if isinstance(child, str):
            tokens = (b"s" + child.encode(), b"V" + child.encode())
        else:
            tokens = (b"#%d" % child, b"")
        out += b"".join(_ns(p) for p in (path, b"s", *tokens))
    return out


class LegacyWriter:
    """Writes items with raw commands, as the first layout's scripts did."""

    def __init__(self, admin: Any, keys: StoreKeys, clock: Clock) -> None:
        self.admin, self.keys, self.clock = admin, keys, clock
        self.seq = 0
        self.positions: dict[bytes, int] = {}
        self.written: dict[str, Any] = {}  # key -> when

    def put(
        self, namespace: tuple[str, ...], key: str, value: dict[str, Any], ttl_ms: int = 0
    ) -> None:
        ns = "\0".join(namespace).encode()
        field = ns + b"\0\0" + key.encode()
        self.seq += 1
        expiry = b"%d" % (self.clock.ms + ttl_ms) if ttl_ms else b""
        _, data = SafeSerializer().dumps_typed(value)
        fields = (b"%d" % self.seq, b"%d" % self.clock.us, b"", b"%d" % ttl_ms if ttl_ms else b"")
        record = b"".join(_ns(f) for f in (*fields, expiry, _legacy_document(value), b"", data))
        self.admin.hset(self.keys.items, field, record)
        self.admin.zadd(self.keys.order, {ns + b"\0\0" + b"%016d" % self.seq + key.encode(): 0})
        self.admin.zadd(self.keys.namespaces, {ns: 0})
        if ns not in self.positions:
            self.positions[ns] = len(self.positions) + 1
            self.admin.zadd(self.keys.created, {ns: self.positions[ns]})
        self.admin.hincrby(self.keys.counts, ns, 1)
        self.admin.hset(self.keys.counts, mapping={"\0seq": self.seq, "\0ns": len(self.positions)})
        if ttl_ms:
            self.admin.zadd(self.keys.expiry, {field: self.clock.ms + ttl_ms})
        self.written[key] = self.clock.now()
        self.clock.us += 1


@pytest.fixture
def legacy(admin: Any, prefix: str, clock: Clock) -> LegacyWriter:
    writer = LegacyWriter(admin, store_keys(prefix), clock)
    writer.put(ANN, "a", {"text": LONG_TEXT, "n": 1})
    writer.put(ANN, "b", {"text": "x", "n": 2})
    writer.put(BOB, "c", {"text": "y", "n": 3})
    return writer


def _keys(items: list[Any]) -> list[str]:
    return [item.key for item in items]


def test_a_legacy_item_is_read_with_its_value_and_times(
    store: PlainRedisStore, legacy: LegacyWriter
) -> None:
    item = store.get(ANN, "a")
    assert item is not None and item.value == {"text": LONG_TEXT, "n": 1}
    assert item.created_at == item.updated_at == legacy.written["a"]


def test_legacy_items_are_searched_by_filter_and_listed(
    store: PlainRedisStore, legacy: LegacyWriter
) -> None:
    assert _keys(store.search(("users",), filter={"text": LONG_TEXT})) == ["a"]
    assert _keys(store.search(("users",), filter={"text": {"$ne": "x"}})) == ["a", "c"]
    assert _keys(store.search(("users",), filter={"n": {"$gte": 2}})) == ["b", "c"]
    assert store.list_namespaces() == [ANN, BOB]


def test_a_filter_error_on_a_legacy_string_is_in_memory_stores(
    store: PlainRedisStore, legacy: LegacyWriter
) -> None:
    reference = InMemoryStore()
    reference.put(ANN, "a", {"text": LONG_TEXT, "n": 1})
    errors = []
    for s in (reference, store):
        with pytest.raises(ValueError) as caught:
            s.search(ANN, filter={"text": {"$gt": 1}})
        errors.append(str(caught.value))
    assert errors[0] == errors[1]


def test_new_items_follow_legacy_ones_and_an_update_keeps_its_place(
    store: PlainRedisStore, legacy: LegacyWriter
) -> None:
    store.put(ANN, "d", {"text": "z", "n": 4})
    store.put(ANN, "a", {"text": "rewritten", "n": 5})
    found = store.search(ANN)
    assert _keys(found) == ["a", "b", "d"] and found[0].value == {"text": "rewritten", "n": 5}
    assert found[0].created_at < found[0].updated_at
    assert _keys(store.search(ANN, filter={"text": "rewritten"})) == ["a"]
    assert _keys(store.search(("users",), limit=2, offset=2)) == ["d", "c"]


@pytest.mark.parametrize("budget", [1, 2, 3])
def test_a_search_resumes_across_legacy_and_new_items_of_a_namespace(
    store: PlainRedisStore, legacy: LegacyWriter, monkeypatch: pytest.MonkeyPatch, budget: int
) -> None:
    store.batch([PutOp(ANN, "d", {"n": 4}), PutOp(ANN, "e", {"n": 5})])
    monkeypatch.setattr(store_core, "SEARCH_BUDGET", budget)
    assert _keys(store.search(("users",), filter={"n": {"$gte": 0}})) == ["a", "b", "d", "e", "c"]
    assert _keys(store.search(("users",), limit=2, offset=1)) == ["b", "d"]


def test_deleting_every_item_of_both_layouts_leaves_no_key(
    store: PlainRedisStore, legacy: LegacyWriter, admin: Any, prefix: str
) -> None:
    store.put(ANN, "d", {"n": 4})
    for namespace, key in ((ANN, "a"), (ANN, "b"), (BOB, "c"), (ANN, "d")):
        store.delete(namespace, key)
    assert store.list_namespaces() == [] and store.search(()) == []
    assert [admin.exists(key) for key in store_keys(prefix)] == [0] * 7


def test_an_expired_legacy_item_is_swept_with_its_index_entries(
    store: PlainRedisStore, legacy: LegacyWriter, admin: Any, prefix: str, clock: Clock
) -> None:
    legacy.put(("tmp",), "t", {"n": 9}, ttl_ms=60_000)
    clock.advance(1)
    assert store.list_namespaces() == [ANN, BOB]
    assert admin.zcard(store_keys(prefix).order) == 3


# ------------------------------------------------------------------ size


def test_an_items_record_and_order_entry_fit_the_small_allocations(
    store: PlainRedisStore, admin: Any, prefix: str
) -> None:
    """The benchmark's item (benchmarks/store.py): a record of at most 132 bytes and an
    order member of at most 20 are what Valkey 9 keeps in about 176 and 76 bytes, under
    ValkeyStore's 271 per item."""
    value = {"i": 12345, "group": 45, "text": "fact number 12345 about user 24"}
    store.put(("bench", "items"), "k12345", value)
    keys = store_keys(prefix)
    [record] = admin.hvals(keys.items)
    [member] = admin.zrange(keys.order, 0, -1)
    assert len(record) <= 132 and len(member) <= 20
