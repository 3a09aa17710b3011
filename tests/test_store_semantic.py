"""Semantic search without modules: the ranking, scores and fill-up of InMemoryStore on
the same vectors, with every kind of ``embed`` InMemoryStore accepts."""

from __future__ import annotations

import sys
from typing import Any

import pytest
from langchain_core.embeddings import Embeddings
from langgraph.store.base import PutOp, SearchOp
from langgraph.store.memory import InMemoryStore

from plain_redis_saver import AsyncPlainRedisStore, PlainRedisStore

from .helpers import count_round_trips
from .store_reference import Clock, patch_clock

#: Vectors with float32-exact components: the store keeps float32, InMemoryStore the
#: embedder's floats, so scores agree exactly on such vectors (see the README).
VECTORS = {
    "cats": [1.0, 0.0, 0.0, 0.5],
    "dogs": [0.75, 0.25, 0.0, 0.5],
    "tea": [0.0, 1.0, 0.25, 0.0],
    "coffee": [0.0, 0.75, 0.5, 0.0],
    "rain": [0.0, 0.0, 1.0, 1.0],
    "zero": [0.0, 0.0, 0.0, 0.0],
}


def embed(texts: list[str]) -> list[list[float]]:
    return [VECTORS.get(t, [0.5, 0.5, 0.5, 0.5]) for t in texts]


async def aembed(texts: list[str]) -> list[list[float]]:
    return embed(texts)


class FakeEmbeddings(Embeddings):
    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return embed(texts)

    def embed_query(self, text: str) -> list[float]:
        return embed([text])[0]


def index(embedder: Any, fields: list[str] | None = None) -> Any:
    return {"dims": 4, "embed": embedder, "fields": fields or ["text", "tags[*]"]}


ITEMS: list[tuple[tuple[str, ...], str, dict[str, Any], Any]] = [
    (("docs",), "a", {"text": "cats", "kind": "pet"}, None),
    (("docs",), "b", {"text": "tea", "kind": "drink"}, None),
    (("docs", "x"), "c", {"text": "coffee", "tags": ["rain", "dogs"], "kind": "drink"}, None),
    (("docs",), "d", {"text": "unindexed", "kind": "pet"}, False),
    (("docs",), "e", {"text": "zero", "kind": "pet"}, None),
    (("docs", "y"), "f", {"other": "no text field"}, None),
    (("docs",), "g", {"text": "dogs", "kind": "pet"}, ["text"]),
    (("docs",), "h", {"text": "rain"}, None),
]


def fill(store: Any) -> None:
    # One put per batch: InMemoryStore fails a batch in which two items share a text
    # ("Number of embeddings ... does not match"); PlainRedisStore does not.
    for ns, key, value, idx in ITEMS:
        store.batch([PutOp(ns, key, value, index=idx)])


def _rows(results: list[Any]) -> list[tuple[Any, ...]]:
    # A zero query vector scores NaN in both stores; NaN is never equal to itself.
    return [
        (r.namespace, r.key, r.value, "nan" if r.score != r.score else r.score) for r in results
    ]


SEARCHES = [
    SearchOp(("docs",), query="cats"),
    SearchOp(("docs",), query="tea", limit=3),
    SearchOp(("docs",), query="rain", limit=4, offset=2),
    SearchOp(("docs",), query="coffee", limit=20, offset=1),
    SearchOp(("docs",), query="dogs", filter={"kind": "pet"}),
    SearchOp(("docs",), query="zero"),
    SearchOp(("docs", "x"), query="cats"),
    SearchOp((), query="unknown words", limit=5),
    SearchOp(("docs",), query="cats", limit=0),
]


@pytest.mark.parametrize("embedder", [embed, FakeEmbeddings()], ids=["function", "embeddings"])
def test_query_search_ranks_as_in_memory_store(
    client: Any, prefix: str, embedder: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock()
    patch_clock(monkeypatch, clock)
    store = PlainRedisStore(client, key_prefix=prefix, index=index(embedder), clock=clock)
    reference = InMemoryStore(index=index(embedder))
    fill(store)
    fill(reference)
    for op in SEARCHES:
        assert _rows(store.batch([op])[0]) == _rows(reference.batch([op])[0]), op


@pytest.mark.parametrize("embedder", [aembed, FakeEmbeddings()], ids=["async", "embeddings"])
async def test_async_query_search_ranks_as_in_memory_store(
    aclient: Any, prefix: str, embedder: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock()
    patch_clock(monkeypatch, clock)
    store = AsyncPlainRedisStore(aclient, key_prefix=prefix, index=index(embedder), clock=clock)
    reference = InMemoryStore(index=index(embedder))
    for ns, key, value, idx in ITEMS:
        await store.abatch([PutOp(ns, key, value, index=idx)])
        await reference.abatch([PutOp(ns, key, value, index=idx)])
    for op in SEARCHES:
        got = (await store.abatch([op]))[0]
        assert _rows(got) == _rows((await reference.abatch([op]))[0]), op


def test_a_store_without_index_ignores_the_query_as_in_memory_store(
    client: Any, prefix: str
) -> None:
    store = PlainRedisStore(client, key_prefix=prefix)
    fill(store)
    found = store.search(("docs",), query="cats", limit=3)
    assert [(r.key, r.score) for r in found] == [("a", None), ("b", None), ("d", None)]


def test_an_update_replaces_the_items_vectors(client: Any, prefix: str) -> None:
    store = PlainRedisStore(client, key_prefix=prefix, index=index(embed))
    store.put(("docs",), "a", {"text": "cats"})
    store.put(("docs",), "b", {"text": "tea"})
    store.put(("docs",), "a", {"text": "coffee"})
    assert [r.key for r in store.search(("docs",), query="coffee")] == ["a", "b"]
    store.put(("docs",), "a", {"text": "cats"}, index=False)
    assert [(r.key, r.score) for r in store.search(("docs",), query="tea")][1] == ("a", None)


def test_items_sharing_a_text_in_one_batch_are_embedded_once_each(client: Any, prefix: str) -> None:
    store = PlainRedisStore(client, key_prefix=prefix, index=index(embed))
    store.batch([PutOp(ns, key, value, index=idx) for ns, key, value, idx in ITEMS])
    assert [r.key for r in store.search(("docs",), query="rain", limit=2)] == ["h", "c"]


def test_query_search_of_a_small_prefix_is_one_round_trip(client: Any, prefix: str) -> None:
    store = PlainRedisStore(client, key_prefix=prefix, index=index(embed))
    fill(store)
    store.setup()
    with count_round_trips() as rt:
        found = store.search(("docs",), query="cats", limit=2, refresh_ttl=False)
    assert [r.key for r in found] == ["a", "g"] and rt.count == 1


def test_a_provider_string_is_resolved_as_in_memory_store_resolves_it(
    client: Any, prefix: str
) -> None:
    with pytest.raises(Exception) as expected:
        InMemoryStore(index={"dims": 4, "embed": "openai:text-embedding-3-small"})
    with pytest.raises(type(expected.value)) as got:
        PlainRedisStore(
            client, key_prefix=prefix, index={"dims": 4, "embed": "openai:text-embedding-3-small"}
        )
    assert str(got.value) == str(expected.value)


def test_without_numpy_the_ranking_is_the_same(
    client: Any, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = PlainRedisStore(client, key_prefix=prefix, index=index(embed))
    fill(store)
    # A zero query scores NaN with numpy and 0.0 without, in InMemoryStore as here.
    searches = [op for op in SEARCHES if op.query != "zero"]
    with_numpy = [store.batch([op])[0] for op in searches]
    monkeypatch.setitem(sys.modules, "numpy", None)  # numpy is an optional extra
    without = [store.batch([op])[0] for op in searches]
    for a, b in zip(with_numpy, without, strict=True):
        assert [r.key for r in a] == [r.key for r in b]
        assert [r.score for r in a] == pytest.approx([r.score for r in b])
