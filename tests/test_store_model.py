"""Model-based test: random batches, TTL advances and searches on PlainRedisStore and
on InMemoryStore (tests/store_reference.py) give identical results, on every backend."""

from __future__ import annotations

import os
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from langgraph.store.base import (
    GetOp,
    ListNamespacesOp,
    MatchCondition,
    PutOp,
    SearchOp,
)

from plain_redis_saver import PlainRedisStore, store_core
from plain_redis_saver.store_keys import store_keys

from .store_reference import Clock, Reference, patch_clock

labels = st.sampled_from(["a", "b", "c"])
namespaces = st.lists(labels, min_size=1, max_size=3).map(tuple)
prefixes = st.lists(labels, min_size=0, max_size=2).map(tuple)
keys = st.sampled_from(["k1", "k2", "k3"])
values = st.fixed_dictionaries(
    {"n": st.integers(0, 4), "s": st.sampled_from(["x", "y", "z"])},
    optional={
        "m": st.fixed_dictionaries({"n": st.integers(0, 2)}),
        "f": st.sampled_from([1.0, 2.5, True, None, "2"]),
        "t": st.lists(st.integers(0, 2), max_size=2),
    },
)
filters = st.one_of(
    st.none(),
    st.fixed_dictionaries({"n": st.integers(0, 4)}),
    st.fixed_dictionaries({"n": st.fixed_dictionaries({"$gt": st.integers(0, 4)})}),
    st.fixed_dictionaries({"n": st.fixed_dictionaries({"$lte": st.floats(0, 4)})}),
    st.fixed_dictionaries({"s": st.fixed_dictionaries({"$ne": st.sampled_from(["x", "y"])})}),
    st.fixed_dictionaries({"m": st.fixed_dictionaries({"n": st.integers(0, 2)})}),
    st.fixed_dictionaries({"f": st.sampled_from([1, 2.5, True, None, "2"])}),
    st.fixed_dictionaries({"t": st.lists(st.integers(0, 2), max_size=2)}),
    st.fixed_dictionaries({"n": st.integers(0, 4), "s": st.sampled_from(["x", "y"])}),
)
ttls = st.one_of(st.none(), st.sampled_from([1.0, 2.0, 3.5]))
put_ops = st.builds(
    PutOp, namespaces, keys, st.one_of(st.none(), values, values), st.just(None), ttls
)
get_ops = st.builds(GetOp, namespaces, keys, st.booleans())
search_ops = st.builds(
    SearchOp,
    prefixes,
    filters,
    st.integers(0, 5),
    st.integers(0, 3),
    st.none(),
    st.booleans(),
)
conditions = st.lists(
    st.builds(
        MatchCondition,
        st.sampled_from(["prefix", "suffix"]),
        st.lists(st.sampled_from(["a", "b", "*"]), min_size=1, max_size=2).map(tuple),
    ),
    max_size=2,
).map(tuple)
list_ops = st.builds(
    ListNamespacesOp,
    conditions,
    st.one_of(st.none(), st.integers(1, 3)),
    st.integers(0, 6),
    st.integers(0, 2),
)
ops = st.one_of(put_ops, put_ops, get_ops, search_ops, list_ops)


def _comparable(result: Any) -> Any:
    if isinstance(result, list):
        return [_comparable(r) for r in result]
    if hasattr(result, "dict"):
        return result.dict()
    return result


def embed(texts: list[str]) -> list[list[float]]:
    """Deterministic vectors with float32-exact components (quarters)."""
    return [[float((ord(t[0]) * (i + 3)) % 7 - 3) / 4 for i in range(4)] for t in texts]


INDEX = {"dims": 4, "embed": embed, "fields": ["s", "t[*]"]}
query_searches = st.builds(
    SearchOp,
    prefixes,
    filters,
    st.integers(0, 5),
    st.integers(0, 3),
    st.sampled_from(["x", "y", "z", "q"]),
    st.booleans(),
)
indexed_puts = st.builds(
    PutOp,
    namespaces,
    keys,
    st.one_of(st.none(), values, values),
    st.sampled_from([None, None, False, ["s"]]),
    ttls,
)
indexed_ops = st.one_of(indexed_puts, indexed_puts, get_ops, query_searches, search_ops, list_ops)


def _texts(value: Any) -> list[str]:
    return [value["s"], *(str(t) for t in value.get("t", []))] if value else []


def make_machine(client: Any, clock: Clock, index: Any = None) -> type[RuleBasedStateMachine]:
    batches = st.lists(indexed_ops if index else ops, min_size=1, max_size=5)

    class StoreModel(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.prefix = f"lgtest{uuid.uuid4().hex[:10]}"
            self.store = PlainRedisStore(client, key_prefix=self.prefix, clock=clock, index=index)
            self.reference = Reference(clock, index=index)

        @rule(batch=batches)
        def run_batch(self, batch: list[Any]) -> None:
            # InMemoryStore fails a batch whose puts share a text (one vector per text).
            texts = [t for op in batch if isinstance(op, PutOp) for t in _texts(op.value)]
            assume(len(texts) == len(set(texts)))
            expected = self.reference.batch(batch)
            assert _comparable(self.store.batch(batch)) == _comparable(expected)

        @rule(minutes=st.sampled_from([0.5, 1.0, 2.0]))
        def advance(self, minutes: float) -> None:
            clock.advance(minutes)

        @invariant()
        def same_namespaces(self) -> None:
            op = [ListNamespacesOp(limit=1000)]
            assert self.store.batch(op) == self.reference.batch(op)

        def teardown(self) -> None:
            client.delete(*store_keys(self.prefix))

    return StoreModel


@pytest.mark.parametrize(
    ("indexed", "slices"),
    [(False, False), (True, False), (False, True), (True, True)],
    ids=["plain", "semantic", "plain-tiny-slices", "semantic-tiny-slices"],
)
def test_store_agrees_with_in_memory_store(
    client: Any, monkeypatch: pytest.MonkeyPatch, indexed: bool, slices: bool
) -> None:
    """With tiny slices every search, listing and sweep goes through its cursor."""
    clock = Clock()
    patch_clock(monkeypatch, clock)
    if slices:
        for budget in ("SEARCH_BUDGET", "QUERY_BUDGET", "LIST_BUDGET"):
            monkeypatch.setattr(store_core, budget, 2)
        monkeypatch.setattr(store_core, "SWEEP_BUDGET", 1)
    machine = make_machine(client, clock, INDEX if indexed else None)
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=int(os.environ.get("STORE_MODEL_EXAMPLES", "60")),
            stateful_step_count=12,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        ),
    )
