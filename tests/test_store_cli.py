"""plain-redis-saver store ...: the long-term memory store's namespaces, items, get,
search and delete, and its counts in stats, on every backend (as the saver's
least-privilege user, like the other commands)."""

from __future__ import annotations

from typing import Any

import pytest
from langgraph.store.base import PutOp

from plain_redis_saver import PlainRedisStore
from plain_redis_saver.store_keys import store_keys

from .store_reference import Clock
from .test_cli import CLI, cli  # noqa: F401

ANN_FACTS = ["users/ann/facts"]


def embed(texts: list[str]) -> list[list[float]]:
    """Two dimensions: tea, or anything else (``--embed tests.test_store_cli:embed``)."""
    return [[1.0, 0.0] if "tea" in t else [0.0, 1.0] for t in texts]


INDEX = {"dims": 2, "embed": embed, "fields": ["text"]}


@pytest.fixture
def seeded(client: Any, prefix: str) -> PlainRedisStore:
    store = PlainRedisStore(client, key_prefix=prefix, clock=Clock(), index=INDEX)  # type: ignore[arg-type]
    store.batch(
        [
            PutOp(("users", u, "facts"), f"f{i}", {"rank": i, "text": f"fact {i}"})
            for u in ("ann", "bob")
            for i in range(3)
        ]
        + [PutOp(("users", "ann", "facts"), "tea", {"rank": 9, "text": "likes green tea"})]
        + [PutOp(("users", "ann"), "profile", {"name": "Ann", "rank": 0}, ttl=5)]
    )
    return store


def _keys(run: Any) -> list[tuple[list[str], str]]:
    return [(item["namespace"], item["key"]) for item in run.json()["items"]]


def test_store_namespaces_lists_them_with_prefix_and_depth(cli: CLI, seeded: Any) -> None:  # noqa: F811
    assert cli("store", "namespaces", "--json").json()["namespaces"] == [
        ["users", "ann"],
        ["users", "ann", "facts"],
        ["users", "bob", "facts"],
    ]
    depth = cli("store", "namespaces", "--prefix", "users/*", "--max-depth", "2", "--json")
    assert depth.json()["namespaces"] == [["users", "ann"], ["users", "bob"]]


def test_store_items_lists_one_namespace_in_insertion_order(cli: CLI, seeded: Any) -> None:  # noqa: F811
    assert _keys(cli("store", "items", "users/ann", "--json")) == [(["users", "ann"], "profile")]
    facts = cli("store", "items", *ANN_FACTS, "--offset", "1", "--limit", "2", "--json")
    assert _keys(facts) == [(["users", "ann", "facts"], "f1"), (["users", "ann", "facts"], "f2")]


def test_store_search_applies_the_filter_limit_and_offset(cli: CLI, seeded: Any) -> None:  # noqa: F811
    run = cli("store", "search", "users", "--filter", '{"rank": {"$gte": 2}}', "--json")
    assert _keys(run) == [
        (["users", "ann", "facts"], "f2"),
        (["users", "ann", "facts"], "tea"),
        (["users", "bob", "facts"], "f2"),
    ]
    run = cli("store", "search", "", "--limit", "1", "--offset", "1", "--json")
    assert _keys(run) == [(["users", "ann", "facts"], "f1")]


def test_store_search_ranks_by_a_query_with_the_stores_embeddings(cli: CLI, seeded: Any) -> None:  # noqa: F811
    embed_spec = f"{__name__}:embed"
    run = cli(
        "store", "search", *ANN_FACTS, "--query", "tea?", "--embed", embed_spec, "--dims", "2"
    )
    assert run.code == 0 and run.out.splitlines()[1].split()[1] == "tea" and "SCORE" in run.out
    found = cli(
        "store", "search", *ANN_FACTS, "--query", "tea?", "--embed", embed_spec, "--dims", "2",
        "--limit", "1", "--json",
    ).json()["items"]  # fmt: skip
    assert [(item["key"], item["score"]) for item in found] == [("tea", 1.0)]


def test_store_search_by_query_needs_the_embeddings(cli: CLI, seeded: Any) -> None:  # noqa: F811
    run = cli("store", "search", "users", "--query", "tea")
    assert run.code == 2 and "--embed" in run.err
    missing = cli(
        "store", "search", "users", "--query", "t", "--embed", "nomodule:x", "--dims", "2"
    )
    assert missing.code != 0 and "Traceback" not in missing.err


def test_store_get_prints_the_item_and_never_extends_its_ttl(
    cli: CLI,  # noqa: F811
    seeded: Any,
    admin: Any,
    prefix: str,
) -> None:
    expiry = store_keys(prefix).expiry
    before = admin.zrange(expiry, 0, -1, withscores=True)
    item = cli("store", "get", "users/ann", "profile").json()
    assert item["value"] == {"name": "Ann", "rank": 0} and item["namespace"] == ["users", "ann"]
    assert admin.zrange(expiry, 0, -1, withscores=True) == before != []


def test_store_delete_removes_the_item_and_a_missing_item_fails(cli: CLI, seeded: Any) -> None:  # noqa: F811
    assert cli("store", "delete", "users/bob/facts", "f0").code == 0
    missing = cli("store", "get", "users/bob/facts", "f0")
    assert missing.code == 1 and "no item 'f0'" in missing.err
    assert cli("store", "delete", "users/bob/facts", "f0").code == 1


def test_store_tables_show_namespaces_and_items(cli: CLI, seeded: Any) -> None:  # noqa: F811
    assert cli("store", "namespaces").out.splitlines()[1:] == [
        "users/ann",
        "users/ann/facts",
        "users/bob/facts",
    ]
    lines = cli("store", "items", *ANN_FACTS, "--limit", "1").out.splitlines()
    assert lines[0].split() == ["NAMESPACE", "KEY", "UPDATED", "VALUE"]
    assert lines[1].startswith("users/ann/facts  f0 ") and '"rank": 0' in lines[1]


def test_stats_counts_the_stores_namespaces_and_items(
    cli: CLI,  # noqa: F811
    seeded: Any,
) -> None:
    stats = cli("stats", "--json")
    assert stats.json()["store_namespaces"] == 3 and stats.json()["store_items"] == 8
    assert "nothing" not in stats.err
    assert "store items" in cli("stats").out


def test_a_bad_namespace_or_filter_is_a_usage_error(cli: CLI) -> None:  # noqa: F811
    assert cli("store", "items", '["users", 3]').code == 2
    assert cli("store", "search", "users", "--filter", "[1]").code == 2
    assert cli("store", "items", "users", "--limit", "0").code == 2
