"""Limits and small promises at the edges: version randomness, value size, writes that
arrive for a deleted thread, ids that are not valid Unicode, filters on huge ints."""

from __future__ import annotations

import random
from typing import Any

import fakeredis
import pytest
from langgraph.checkpoint.memory import InMemorySaver

from plain_redis_saver import PlainRedisSaver, ValueTooLargeError
from plain_redis_saver.codec import read_netstring

from .conftest import Backend
from .helpers import checkpoint, config, metadata, put_chain


def test_versions_differ_in_two_processes_that_seed_random_alike() -> None:
    saver = PlainRedisSaver(fakeredis.FakeRedis())
    random.seed(1234)
    first = saver.get_next_version(None, None)
    random.seed(1234)
    second = saver.get_next_version(None, None)
    assert first != second


def test_filter_on_an_int_beyond_64_bits_matches_nothing_as_in_memory(saver: Any) -> None:
    reference = InMemorySaver()
    for target in (saver, reference):
        cp = checkpoint({"a": 1})
        target.put(config("t"), cp, metadata(size=2**64 - 1), cp["channel_versions"])
    for value in (2**64 - 1, 2**64, -(2**63) - 1, 10**30):
        found = [t.metadata["size"] for t in saver.list(None, filter={"size": value})]
        expected = [t.metadata["size"] for t in reference.list(None, filter={"size": value})]
        assert found == expected, value


def test_a_value_over_max_value_size_is_refused_naming_the_channel(
    backend: Backend, client: Any, prefix: str
) -> None:
    saver = PlainRedisSaver(client, key_prefix=prefix, max_value_size=1000)
    cp = checkpoint({"small": "x" * 500, "big": "y" * 2000})
    with pytest.raises(ValueTooLargeError, match="channel 'big'.*max_value_size=1,000"):
        saver.put(config("t"), cp, metadata(), cp["channel_versions"])
    assert saver.get_tuple(config("t")) is None


def test_max_value_size_none_stores_a_value_over_the_default(
    backend: Backend, client: Any, prefix: str
) -> None:
    saver = PlainRedisSaver(client, key_prefix=prefix, max_value_size=None)
    big = b"z" * (8 * 2**20 + 1)
    cp = checkpoint({"big": big})
    saver.put(config("t"), cp, metadata(), cp["channel_versions"])
    assert saver.get_tuple(config("t")).checkpoint["channel_values"]["big"] == big


def _ttls(admin: Any, saver: Any, thread_id: str) -> dict[str, int]:
    keys = saver._core.keys.thread(thread_id)
    return {k: admin.pttl(k) for k in keys if admin.exists(k)}


def test_writes_that_arrive_after_delete_thread_expire(saver: Any, admin: Any) -> None:
    stored = put_chain(saver, "t", 2)
    saver.delete_thread("t")
    saver.put_writes(stored[-1], [("late", 1)], "task")
    ttls = _ttls(admin, saver, "t")
    assert ttls and all(0 < ttl <= 24 * 3600 * 1000 for ttl in ttls.values()), ttls


def test_writes_stored_before_the_first_checkpoint_stay_once_it_arrives(
    saver: Any, admin: Any
) -> None:
    cp = checkpoint({"a": 1})
    early = config("t", checkpoint_id=cp["id"])
    saver.put_writes(early, [("w", 1)], "task")
    saver.put(config("t"), cp, metadata(), cp["channel_versions"])
    assert set(_ttls(admin, saver, "t").values()) == {-1}
    assert saver.get_tuple(config("t")).pending_writes == [("task", "w", 1)]


def test_writes_after_delete_thread_keep_the_savers_ttl(
    backend: Backend, client: Any, admin: Any, prefix: str
) -> None:
    saver = PlainRedisSaver(client, key_prefix=prefix, ttl=600)
    stored = put_chain(saver, "t", 1)
    saver.delete_thread("t")
    saver.put_writes(stored[-1], [("late", 1)], "task")
    ttls = _ttls(admin, saver, "t")
    assert ttls and all(0 < ttl <= 600_000 for ttl in ttls.values()), ttls


SMALL_WRITES = 2000


def _many_small_writes(target: Any) -> Any:
    cp = checkpoint({"a": 1})
    stored = target.put(config("t"), cp, metadata(), cp["channel_versions"])
    for i in range(SMALL_WRITES):
        target.put_writes(stored, [(f"c{i % 7}", i)], f"task-{i:05d}", f"~{i}")
    return stored


def _index_field_sizes(admin: Any, saver: Any, thread_id: str) -> list[int]:
    """Lengths of the pending-write index fields (heads and segments) of a thread."""
    key = saver._core.keys.thread(thread_id).writes
    sizes = []
    for field, value in admin.hscan_iter(key):
        if field[:1] == b"=":
            continue
        _, pos = read_netstring(field)
        _, pos = read_netstring(field, pos)
        if pos == len(field) or field[pos : pos + 1] == b"+":
            sizes.append(len(value))
    return sizes


def test_many_small_put_writes_on_one_checkpoint_rewrite_a_bounded_field(
    saver: Any, admin: Any
) -> None:
    _many_small_writes(saver)
    sizes = _index_field_sizes(admin, saver, "t")
    # Every call rewrites at most the index's head: its size stays bounded (4 KiB plus
    # one call's entries) while the whole index holds 2,000 entries of ~20 bytes.
    assert len(sizes) > 5 and max(sizes) <= 4096 + 64


def test_many_small_put_writes_read_back_as_in_memory(saver: Any) -> None:
    reference = InMemorySaver()
    _many_small_writes(reference)
    stored = _many_small_writes(saver)
    expected = reference.get_tuple(config("t")).pending_writes
    assert saver.get_tuple(stored).pending_writes == expected
    saver.copy_thread("t", "copy")
    assert saver.get_tuple(config("copy")).pending_writes == expected


def test_removing_a_checkpoint_removes_its_whole_write_index(saver: Any, admin: Any) -> None:
    _many_small_writes(saver)
    put_chain(saver, "t", 1)
    saver.prune(["t"])
    assert _index_field_sizes(admin, saver, "t") == []


def test_writes_for_a_checkpoint_retention_removed_are_not_stored(
    backend: Backend, client: Any, admin: Any, prefix: str
) -> None:
    """LangGraph may send a task's writes after the next checkpoint's put, which removed
    their checkpoint: stored, they would stay for good (max_checkpoints=1 leaked)."""
    saver = PlainRedisSaver(client, key_prefix=prefix, max_checkpoints=1)
    first, second = put_chain(saver, "t", 2)
    saver.put_writes(first, [("late", 1)], "task")
    assert not admin.exists(saver._core.keys.thread("t").writes)
    assert saver.get_tuple(second).pending_writes == []


def test_writes_before_their_checkpoint_are_kept_under_retention(
    backend: Backend, client: Any, prefix: str
) -> None:
    saver = PlainRedisSaver(client, key_prefix=prefix, max_checkpoints=1)
    put_chain(saver, "t", 2)
    cp = checkpoint({"a": 1})
    saver.put_writes(config("t", checkpoint_id=cp["id"]), [("early", 1)], "task")
    stored = saver.put(config("t"), cp, metadata(), cp["channel_versions"])
    assert saver.get_tuple(stored).pending_writes == [("task", "early", 1)]


def test_a_latest_only_functional_chatbot_keeps_no_writes_of_removed_checkpoints(
    backend: Backend, client: Any, admin: Any, prefix: str
) -> None:
    from langchain_core.messages import AIMessage, HumanMessage
    from langgraph.func import entrypoint, task

    saver = PlainRedisSaver(client, key_prefix=prefix, max_checkpoints=1)

    @task
    def reply(history: list[Any]) -> Any:
        return AIMessage(f"{len(history)} messages")

    @entrypoint(checkpointer=saver)
    def chatbot(message: Any, *, previous: list[Any] | None) -> Any:
        history = [*(previous or []), message]
        answer = reply(history).result()
        return entrypoint.final(value=answer, save=[*history, answer])

    thread = {"configurable": {"thread_id": "chat"}}
    for turn in range(30):
        chatbot.invoke(HumanMessage(f"turn {turn}"), thread)
    keys = saver._core.keys.thread("chat")
    stored = {field for field in admin.hkeys(keys.checkpoints)}
    for field in admin.hkeys(keys.writes) if admin.exists(keys.writes) else []:
        if field[:1] == b"=":
            continue
        _, pos = read_netstring(field)
        checkpoint_id, _ = read_netstring(field, pos)
        assert field[:pos] + checkpoint_id in stored, field
