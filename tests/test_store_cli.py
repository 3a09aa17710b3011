"""python -m plain_redis_saver.store_cli: the store's namespaces, items, search, delete
and counts, on every backend."""

from __future__ import annotations

import io
import json
from typing import Any

from langgraph.store.base import PutOp

from plain_redis_saver import PlainRedisCache, PlainRedisStore
from plain_redis_saver.store_cli import main

from .store_reference import Clock


def cli(admin: Any, prefix: str, *argv: str) -> tuple[int, list[Any]]:
    out = io.StringIO()
    code = main(["--key-prefix", prefix, *argv], client=admin, out=out)
    return code, [json.loads(line) for line in out.getvalue().splitlines()]


def seeded(client: Any, prefix: str, clock: Clock | None = None) -> PlainRedisStore:
    store = PlainRedisStore(client, key_prefix=prefix, clock=clock or Clock())
    store.batch(
        [
            PutOp(("users", u, "facts"), f"f{i}", {"rank": i})
            for u in ("ann", "bob")
            for i in range(3)
        ]
        + [PutOp(("users", "ann"), "profile", {"name": "Ann", "rank": 0}, ttl=5)]
    )
    return store


def test_namespaces_lists_them_with_prefix_and_depth(client: Any, admin: Any, prefix: str) -> None:
    seeded(client, prefix)
    assert cli(admin, prefix, "namespaces") == (
        0,
        [["users", "ann"], ["users", "ann", "facts"], ["users", "bob", "facts"]],
    )
    assert cli(admin, prefix, "namespaces", "--prefix", "users/*", "--max-depth", "2")[1] == [
        ["users", "ann"],
        ["users", "bob"],
    ]


def test_items_lists_one_namespace_only(client: Any, admin: Any, prefix: str) -> None:
    seeded(client, prefix)
    code, items = cli(admin, prefix, "items", '["users", "ann"]')
    assert code == 0 and [(i["key"], i["value"]) for i in items] == [
        ("profile", {"name": "Ann", "rank": 0})
    ]


def test_search_applies_the_filter(client: Any, admin: Any, prefix: str) -> None:
    seeded(client, prefix)
    code, items = cli(admin, prefix, "search", "users", "--filter", '{"rank": {"$gte": 2}}')
    assert code == 0 and [(i["namespace"], i["key"]) for i in items] == [
        (["users", "ann", "facts"], "f2"),
        (["users", "bob", "facts"], "f2"),
    ]


def test_reading_never_extends_a_ttl(client: Any, admin: Any, prefix: str) -> None:
    clock = Clock()
    store = seeded(client, prefix, clock)
    clock.advance(4)
    assert cli(admin, prefix, "get", "users/ann", "profile")[0] == 0
    clock.advance(1)
    assert store.get(("users", "ann"), "profile") is None


def test_delete_removes_the_item_and_a_missing_item_fails(
    client: Any, admin: Any, prefix: str
) -> None:
    seeded(client, prefix)
    assert cli(admin, prefix, "delete", "users/bob/facts", "f0")[0] == 0
    assert cli(admin, prefix, "get", "users/bob/facts", "f0") == (1, [])


def test_stats_counts_the_store_and_the_cache(client: Any, admin: Any, prefix: str) -> None:
    seeded(client, prefix)
    PlainRedisCache(client, key_prefix=prefix).set({(("node",), "k"): (1, None)})
    code, [stats] = cli(admin, prefix, "stats")
    assert code == 0
    assert {k: v for k, v in stats["store"].items() if k != "memory_bytes"} == {
        "items": 7,
        "namespaces": 3,
        "items_with_ttl": 1,
        "items_with_vectors": 0,
    }
    assert stats["cache"] == {"namespaces": 1}


def test_a_bad_namespace_is_a_usage_error(admin: Any, prefix: str) -> None:
    assert cli(admin, prefix, "items", '["users", 3]')[0] == 2
