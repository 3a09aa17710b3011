"""Thread TTL, bounded retention (max_checkpoints, latest-only) and DeltaChannel safety."""

from __future__ import annotations

import operator
from collections.abc import Sequence
from datetime import timedelta
from typing import Annotated, Any, TypedDict

import pytest
from langgraph.channels import DeltaChannel
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, interrupt

from plain_redis_saver import (
    AsyncPlainRedisSaver,
    CheckpointRemovedError,
    InvalidConfigError,
    PlainRedisSaver,
)

from .conftest import Backend
from .helpers import checkpoint, config, metadata, put_chain
from .test_composed import LAYOUTS

HOUR_MS = 3_600_000


def saver_with(client: Any, prefix: str, **options: Any) -> PlainRedisSaver:
    return PlainRedisSaver(client, key_prefix=prefix, **options)


def pttls(admin: Any, saver: PlainRedisSaver, thread_id: str) -> list[int]:
    """PTTL of every key of the thread that exists (-1: no expiry)."""
    keys = saver._core.keys.thread(thread_id)
    return [admin.pttl(k) for k in keys if admin.exists(k)]


def thread_keys(admin: Any, prefix: str) -> set[bytes]:
    return set(admin.scan_iter(match=f"{prefix}:*"))


# ------------------------------------------------------------------ TTL


def test_every_key_of_a_written_thread_gets_the_ttl(client: Any, admin: Any, prefix: str) -> None:
    saver = saver_with(client, prefix, ttl=timedelta(hours=1))
    stored = put_chain(saver, "t", 3, ns="child")
    saver.put_writes(stored[-1], [("a", 1)], "task")
    ttls = pttls(admin, saver, "t")
    assert len(ttls) == 5 and all(HOUR_MS - 60_000 < t <= HOUR_MS for t in ttls)


def test_no_key_without_expiry_is_left_under_the_prefix(
    client: Any, admin: Any, prefix: str
) -> None:
    saver = saver_with(client, prefix, ttl=60)
    for tid in ("a", "b"):
        stored = put_chain(saver, tid, 2)
        saver.put_writes(stored[-1], [("x", 1)], "task")
    saver.copy_thread("a", "c")
    assert thread_keys(admin, prefix) and all(admin.pttl(k) > 0 for k in thread_keys(admin, prefix))


def test_a_read_refreshes_the_whole_thread(client: Any, admin: Any, prefix: str) -> None:
    put_chain(saver_with(client, prefix, ttl=10), "t", 2)
    saver_with(client, prefix, ttl=3600).get_tuple(config("t"))
    assert all(t > 60_000 for t in pttls(admin, saver_with(client, prefix), "t"))


def test_reads_never_give_an_expiry_to_a_thread_written_without_ttl(
    client: Any, admin: Any, prefix: str
) -> None:
    stored = put_chain(saver_with(client, prefix), "t", 2)
    saver_with(client, prefix).put_writes(stored[-1], [("n", 1)], "task")
    reader = saver_with(client, prefix, ttl=60)
    reader.get_tuple(config("t"))
    reader.get_tuple(stored[0])
    list(reader.list(config("t")))
    reader.get_delta_channel_history(config=stored[-1], channels=["n"])
    assert set(pttls(admin, reader, "t")) == {-1}


def test_list_of_every_thread_gives_no_thread_an_expiry(
    client: Any, admin: Any, prefix: str
) -> None:
    for tid in ("a", "b"):
        put_chain(saver_with(client, prefix), tid, 1)
    assert len(list(saver_with(client, prefix, ttl=60).list(None))) == 2
    assert {admin.pttl(k) for k in thread_keys(admin, prefix)} == {-1}


async def test_async_reads_never_give_an_expiry_to_a_thread_written_without_ttl(
    client: Any, aclient: Any, admin: Any, prefix: str
) -> None:
    put_chain(saver_with(client, prefix), "t", 2)
    reader = AsyncPlainRedisSaver(aclient, key_prefix=prefix, ttl=60)
    await reader.aget_tuple(config("t"))
    assert [c async for c in reader.alist(None)]
    assert set(pttls(admin, saver_with(client, prefix), "t")) == {-1}


def test_a_write_refreshes_values_of_unchanged_channels(
    client: Any, admin: Any, prefix: str
) -> None:
    saver = saver_with(client, prefix, ttl=10)
    version = saver.get_next_version(None, None)
    first = saver.put(
        config("t"),
        checkpoint({"static": "x" * 100}, versions={"static": version}),
        metadata(),
        {"static": version},
    )
    longer = saver_with(client, prefix, ttl=3600)
    longer.put(first, checkpoint(versions={"static": version}), metadata(step=1), {})
    assert admin.pttl(saver._core.keys.thread("t").blobs) > 60_000


def test_refresh_on_read_false_leaves_the_expiry_alone(
    client: Any, admin: Any, prefix: str
) -> None:
    put_chain(saver_with(client, prefix, ttl=10), "t", 2)
    reader = saver_with(client, prefix, ttl=3600, refresh_on_read=False)
    reader.get_tuple(config("t"))
    list(reader.list(config("t")))
    assert all(t <= 10_000 for t in pttls(admin, reader, "t"))


def test_without_ttl_nothing_expires(client: Any, admin: Any, prefix: str) -> None:
    put_chain(saver_with(client, prefix), "t", 2)
    assert set(pttls(admin, saver_with(client, prefix), "t")) == {-1}


def test_a_changed_ttl_applies_at_the_next_write(client: Any, admin: Any, prefix: str) -> None:
    stored = put_chain(saver_with(client, prefix, ttl=60), "t", 1)
    saver_with(client, prefix).put_writes(stored[-1], [("a", 1)], "task")
    assert set(pttls(admin, saver_with(client, prefix), "t")) == {-1}


def test_expired_thread_leaves_no_key_behind(client: Any, admin: Any, prefix: str) -> None:
    saver = saver_with(client, prefix, ttl=60)
    put_chain(saver, "t", 2)
    for key in thread_keys(admin, prefix):  # let the server expire it now
        admin.pexpire(key, 1)
    assert all(admin.pttl(k) <= 1 for k in thread_keys(admin, prefix))


@pytest.mark.parametrize("ttl", [0, -5, "60", True])
def test_a_bad_ttl_is_refused(client: Any, ttl: Any) -> None:
    with pytest.raises(InvalidConfigError, match="ttl"):
        PlainRedisSaver(client, ttl=ttl)


@pytest.mark.parametrize("limit", [0, -1, 2.5, True])
def test_a_bad_max_checkpoints_is_refused(client: Any, limit: Any) -> None:
    with pytest.raises(InvalidConfigError, match="max_checkpoints"):
        PlainRedisSaver(client, max_checkpoints=limit)


# ------------------------------------------------------------------ retention


def test_max_checkpoints_keeps_the_newest_n(client: Any, prefix: str) -> None:
    saver = saver_with(client, prefix, max_checkpoints=3)
    stored = put_chain(saver, "t", 10)
    assert [t.config for t in saver.list(config("t"))] == stored[::-1][:3]


def test_max_checkpoints_applies_per_namespace(client: Any, prefix: str) -> None:
    saver = saver_with(client, prefix, max_checkpoints=2)
    put_chain(saver, "t", 5)
    put_chain(saver, "t", 5, ns="child")
    assert len(list(saver.list(config("t", ns=None)))) == 4


def test_latest_only_mode_forgets_older_checkpoints(client: Any, prefix: str) -> None:
    saver = saver_with(client, prefix, max_checkpoints=1)
    stored = put_chain(saver, "t", 4)
    assert (saver.get_tuple(stored[0]), saver.get_tuple(config("t")).config) == (None, stored[-1])


def test_retention_removes_pending_writes_of_dropped_checkpoints(
    client: Any, admin: Any, prefix: str
) -> None:
    saver = saver_with(client, prefix, max_checkpoints=1)
    parent = config("t")
    for i in range(5):
        parent = saver.put(parent, checkpoint(), metadata(step=i), {})
        saver.put_writes(parent, [("a", i), ("b", i)], f"task{i}")
    assert admin.hlen(saver._core.keys.thread("t").writes) == 3  # 2 writes + their index


def test_lowering_the_limit_trims_a_long_thread_over_the_next_puts(
    client: Any, prefix: str
) -> None:
    put_chain(saver_with(client, prefix), "t", 250)
    limited = saver_with(client, prefix, max_checkpoints=5)
    counts = []
    for _ in range(3):
        put_chain(limited, "t", 1)
        counts.append(len(list(limited.list(config("t")))))
    assert counts == [151, 52, 5]  # at most 100 removed per put keeps each put short


def _memory(admin: Any, saver: PlainRedisSaver, thread_id: str) -> tuple[list[int], int]:
    keys = saver._core.keys.thread(thread_id)
    lengths = [admin.hlen(k) if k != keys.order else admin.zcard(k) for k in keys]
    return lengths, sum(admin.memory_usage(k, samples=0) or 0 for k in keys)


@LAYOUTS
def test_a_long_thread_with_retention_takes_the_memory_of_a_short_one(
    backend: Backend, client: Any, admin: Any, prefix: str, counts: bool
) -> None:
    """Counted, at once; uncounted, once both are collected (between collections a
    thread holds at most GARBAGE_FLOOR removed checkpoints' values more, see
    test_collection.py)."""
    if backend.name not in ("valkey", "redis"):
        pytest.skip("MEMORY USAGE is measured on a standalone server")
    saver = saver_with(client, prefix, max_checkpoints=5, reference_counts=counts)
    sizes = {}
    for thread_id, turns in (("short", 10), ("long", 3000)):
        parent = config(thread_id)
        version = None
        for turn in range(turns):
            version = saver.get_next_version(version, None)
            cp = checkpoint({"reply": f"{turn:0200d}"}, versions={"reply": version})
            parent = saver.put(parent, cp, metadata(step=turn), {"reply": version})
            saver.put_writes(parent, [("reply", turn)], "task")
        if not counts:
            saver.repair_thread(thread_id)  # its collection, whenever it last ran
        sizes[thread_id] = _memory(admin, saver, thread_id)
    (short_lengths, short_bytes), (long_lengths, long_bytes) = sizes["short"], sizes["long"]
    assert short_lengths == long_lengths and long_bytes <= short_bytes * 1.3


# ------------------------------------------------------------------ graphs


class Draft(TypedDict, total=False):
    log: Annotated[list[str], operator.add]
    answer: str


def _hitl_graph(checkpointer: Any) -> Any:
    def write(state: Draft) -> Draft:
        return {"log": ["drafted"]}

    def review(state: Draft) -> Draft:
        return {"answer": interrupt("approve?"), "log": ["reviewed"]}

    builder = StateGraph(Draft)
    builder.add_node("write", write)
    builder.add_node("review", review)
    builder.add_edge(START, "write")
    builder.add_edge("write", "review")
    builder.add_edge("review", END)
    return builder.compile(checkpointer=checkpointer)


def test_interrupt_survives_latest_only_retention_and_resumes(client: Any, prefix: str) -> None:
    graph = _hitl_graph(saver_with(client, prefix, max_checkpoints=1))
    cfg = {"configurable": {"thread_id": "hitl"}}
    graph.invoke({"log": ["start"]}, cfg)
    assert graph.get_state(cfg).interrupts[0].value == "approve?"
    result = graph.invoke(Command(resume="yes"), cfg)
    assert result == {"log": ["start", "drafted", "reviewed"], "answer": "yes"}


def _chat(checkpointer: Any) -> Any:
    def reply(state: Draft) -> Draft:
        return {"log": [f"reply{len(state.get('log', []))}"]}

    builder = StateGraph(Draft)
    builder.add_node("reply", reply)
    builder.add_edge(START, "reply")
    builder.add_edge("reply", END)
    return builder.compile(checkpointer=checkpointer)


def _chat_with_removed_start(checkpointer: Any) -> tuple[Any, Any, Any]:
    """A chat of two turns under latest-only retention, the config of its first
    checkpoint (removed by retention since) and the thread's config."""
    graph = _chat(checkpointer)
    cfg = {"configurable": {"thread_id": "chat"}}
    graph.invoke({"log": ["hi"]}, cfg)
    first = graph.get_state(cfg).config
    graph.invoke({"log": ["again"]}, cfg)
    return graph, first, cfg


def test_update_state_from_a_checkpoint_retention_removed_is_refused(
    client: Any, prefix: str
) -> None:
    graph, first, cfg = _chat_with_removed_start(saver_with(client, prefix, max_checkpoints=1))
    before = graph.get_state(cfg)
    removed = first["configurable"]["checkpoint_id"]
    with pytest.raises(CheckpointRemovedError, match=f"'{removed}'.*max_checkpoints=1"):
        graph.update_state(first, {"log": ["edited"]})
    after = graph.get_state(cfg)
    assert (after.values, after.config) == (before.values, before.config)


async def test_async_update_state_from_a_removed_checkpoint_is_refused(
    aclient: Any, prefix: str
) -> None:
    saver = AsyncPlainRedisSaver(aclient, key_prefix=prefix, max_checkpoints=1)
    graph = _chat(saver)
    cfg = {"configurable": {"thread_id": "chat"}}
    await graph.ainvoke({"log": ["hi"]}, cfg)
    first = (await graph.aget_state(cfg)).config
    await graph.ainvoke({"log": ["again"]}, cfg)
    with pytest.raises(CheckpointRemovedError, match="max_checkpoints"):
        await graph.aupdate_state(first, {"log": ["edited"]})
    assert (await graph.aget_state(cfg)).values["log"][-1] == "reply3"


def test_replay_from_a_removed_checkpoint_is_refused(client: Any, prefix: str) -> None:
    graph, first, _ = _chat_with_removed_start(saver_with(client, prefix, max_checkpoints=1))
    with pytest.raises(CheckpointRemovedError, match="max_checkpoints"):
        graph.invoke({"log": ["fork"]}, first)


def test_update_state_from_a_kept_checkpoint_still_forks(client: Any, prefix: str) -> None:
    graph, _, cfg = _chat_with_removed_start(saver_with(client, prefix, max_checkpoints=1))
    graph.update_state(graph.get_state(cfg).config, {"log": ["edited"]})
    assert graph.get_state(cfg).values["log"][-1] == "edited"


def test_a_fork_into_a_new_thread_from_another_threads_checkpoint_is_stored(
    client: Any, prefix: str
) -> None:
    saver = saver_with(client, prefix, max_checkpoints=1)
    graph, first, _ = _chat_with_removed_start(saver)
    elsewhere = {"configurable": {**first["configurable"], "thread_id": "new"}}
    graph.update_state(elsewhere, {"log": ["start"]})
    assert graph.get_state({"configurable": {"thread_id": "new"}}).values["log"] == ["start"]


def test_a_put_repeated_after_its_parent_was_removed_is_stored(client: Any, prefix: str) -> None:
    saver = saver_with(client, prefix, max_checkpoints=1)
    first = saver.put(config("t"), checkpoint(), metadata(), {})
    second = checkpoint()
    stored = saver.put(first, second, metadata(step=1), {})
    assert saver.put(first, second, metadata(step=1), {}) == stored


def test_a_removed_parent_is_refused_in_a_subgraph_namespace_too(client: Any, prefix: str) -> None:
    saver = saver_with(client, prefix, max_checkpoints=1)
    first = put_chain(saver, "t", 3, ns="child")[0]
    with pytest.raises(CheckpointRemovedError, match="namespace 'child'"):
        saver.put(first, checkpoint(), metadata(step=5), {})


def _extend(state: list[str], writes: Sequence[list[str]]) -> list[str]:
    return [*state, *(item for write in writes for item in write)]


class DeltaState(TypedDict, total=False):
    items: Annotated[list[str], DeltaChannel(_extend, snapshot_frequency=4)]
    round: int


def _delta_graph(checkpointer: Any, rounds: int) -> Any:
    def step(state: DeltaState) -> DeltaState:
        r = state.get("round", 0)
        return {"round": r + 1, "items": [f"item{r}"]}

    builder = StateGraph(DeltaState)
    builder.add_node("step", step)
    builder.add_edge(START, "step")
    builder.add_conditional_edges("step", lambda s: END if s["round"] >= rounds else "step")
    return builder.compile(checkpointer=checkpointer)


def _delta_state(checkpointer: Any, rounds: int = 10) -> Any:
    graph = _delta_graph(checkpointer, rounds)
    cfg = {"configurable": {"thread_id": "delta"}}
    graph.invoke({"items": ["in"]}, cfg)
    return graph, cfg


def test_prune_keep_latest_keeps_the_delta_channel_state(client: Any, prefix: str) -> None:
    saver = saver_with(client, prefix)
    graph, cfg = _delta_state(saver)
    before = graph.get_state(cfg).values
    saver.prune(["delta"])
    after = graph.get_state(cfg).values
    assert after == before and len(before["items"]) == 11


def test_prune_keep_latest_still_drops_what_no_delta_channel_needs(
    client: Any, prefix: str
) -> None:
    saver = saver_with(client, prefix)
    graph, cfg = _delta_state(saver, rounds=20)
    total = len(list(saver.list(config("delta"))))
    saver.prune(["delta"])
    assert len(list(saver.list(config("delta")))) < total // 2


@pytest.mark.parametrize("limit", [1, 2])
def test_retention_keeps_the_delta_channel_state(client: Any, prefix: str, limit: int) -> None:
    graph, cfg = _delta_state(saver_with(client, prefix, max_checkpoints=limit))
    oracle_graph, oracle_cfg = _delta_state(InMemorySaver())
    assert graph.get_state(cfg).values == oracle_graph.get_state(oracle_cfg).values


def test_from_conn_string_hands_saver_options_to_the_saver(backend: Backend) -> None:
    if backend.url is None:
        pytest.skip("fakeredis has no URL")
    with PlainRedisSaver.from_conn_string(
        backend.url, key_prefix="lgtestopts", ttl=60, max_checkpoints=1, socket_timeout=5
    ) as saver:
        put_chain(saver, "t", 3)
        assert (len(list(saver.list(config("t")))), saver.ttl) == (1, 60)
        saver.delete_thread("t")


def test_prune_leaves_the_thread_expiry_alone(client: Any, admin: Any, prefix: str) -> None:
    put_chain(saver_with(client, prefix, ttl=3600), "t", 3)
    saver_with(client, prefix).prune(["t"])
    assert all(t > 60_000 for t in pttls(admin, saver_with(client, prefix), "t"))
