"""Behaviour of the saver beyond the conformance suite, on every backend."""

from __future__ import annotations

import asyncio
import re
import threading
from typing import Any

import pytest
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.serde.encrypted import EncryptedSerializer

from plain_redis_saver import (
    AsyncPlainRedisSaver,
    AsyncRedisSaver,
    CorruptDataError,
    EventLoopError,
    InvalidConfigError,
    PlainRedisSaver,
    RedisSaver,
    SchemaVersionError,
    SerializationError,
)
from plain_redis_saver.codec import pack

from .conftest import Backend
from .helpers import (
    checkpoint,
    cold,
    config,
    count_round_trips,
    ids,
    ids_of,
    metadata,
    new_id,
    put_chain,
)


def keys_under(client: Any, prefix: str) -> set[bytes]:
    return set(client.scan_iter(match=f"{prefix}:*"))


def stored_values(saver: Any, admin: Any, thread_id: str) -> int:
    """Channel values stored for a thread (not counting the "#"/"=" count fields and
    the content composed values reference)."""
    fields = admin.hkeys(saver._core.keys.thread(thread_id).blobs)
    return len([f for f in fields if not f.startswith((b"#", b"=", b"*"))])


# ----------------------------------------------------------------------- latest / put


def test_latest_is_the_greatest_id_whatever_the_put_order(saver: Any) -> None:
    older, newer = new_id(), new_id()
    for cid in (newer, older):
        saver.put(config("t"), checkpoint(checkpoint_id=cid), metadata(), {})
    assert saver.get_tuple(config("t")).checkpoint["id"] == newer


def test_putting_the_same_checkpoint_twice_stores_it_once(saver: Any) -> None:
    cp = checkpoint({"a": 1})
    saver.put(config("t"), cp, metadata(), cp["channel_versions"])
    saver.put(config("t"), cp, metadata(), cp["channel_versions"])
    assert len(list(saver.list(config("t")))) == 1


def test_get_tuple_returns_none_for_an_unknown_thread(saver: Any) -> None:
    assert saver.get_tuple(config("nobody")) is None


def test_get_tuple_returns_none_for_an_unknown_checkpoint_id(saver: Any) -> None:
    put_chain(saver, "t", 2)
    assert saver.get_tuple(config("t", checkpoint_id=new_id())) is None


def test_channel_values_are_shared_between_checkpoints_that_reference_them(
    saver: Any, admin: Any
) -> None:
    version = saver.get_next_version(None, None)
    first = checkpoint({"big": "x" * 1000}, versions={"big": version})
    stored = saver.put(config("t"), first, metadata(), {"big": version})
    second = checkpoint({"big": "x" * 1000}, versions={"big": version})
    saver.put(stored, second, metadata(step=1), {})
    assert saver.get_tuple(config("t")).checkpoint["channel_values"] == {"big": "x" * 1000}
    assert stored_values(saver, admin, "t") == 1


def test_parent_config_points_to_the_parent_checkpoint(saver: Any) -> None:
    first, second = put_chain(saver, "t", 2)
    assert saver.get_tuple(second).parent_config == first


# ----------------------------------------------------------------------- list


def test_list_is_newest_first(saver: Any) -> None:
    stored = put_chain(saver, "t", 5)
    assert ids(saver.list(config("t"))) == ids_of(stored)[::-1]


def test_list_before_is_exclusive(saver: Any) -> None:
    stored = put_chain(saver, "t", 5)
    assert ids(saver.list(config("t"), before=stored[2])) == ids_of(stored[:2])[::-1]


def test_list_limit_counts_after_the_filter(saver: Any) -> None:
    parent = config("t")
    for i in range(30):
        parent = saver.put(parent, checkpoint(), metadata(step=i, parity=i % 2), {})
    found = list(saver.list(config("t"), filter={"parity": 1}, limit=4))
    assert [t.metadata["step"] for t in found] == [29, 27, 25, 23]


def test_list_pages_through_long_histories_without_limit(saver: Any) -> None:
    stored = put_chain(saver, "t", 250)
    assert ids(saver.list(config("t"))) == ids_of(stored)[::-1]


def test_list_filter_pages_through_many_non_matching_checkpoints(saver: Any) -> None:
    parent = config("t")
    parent = saver.put(parent, checkpoint(), metadata(step=0, tag="rare"), {})
    for i in range(1, 1500):
        parent = saver.put(parent, checkpoint(), metadata(step=i), {})
    assert [t.metadata["step"] for t in saver.list(config("t"), filter={"tag": "rare"})] == [0]


@pytest.mark.parametrize(
    ("stored", "query", "hit"),
    [
        ({"k": {"b": 1, "a": [1, 2]}}, {"k": {"a": [1, 2], "b": 1}}, True),
        ({"k": 3}, {"k": 3.0}, True),
        ({"k": 3}, {"k": "3"}, False),
        ({}, {"k": None}, True),
        ({"k": None}, {"k": None}, True),
        ({"k": 0}, {"k": None}, False),
        ({"k": "ü:{*}"}, {"k": "ü:{*}"}, True),
        ({"k": {}}, {"k": {}}, True),
        ({"k": {}}, {"k": []}, False),
        ({"k": []}, {"k": {}}, False),
    ],
    ids=[
        "dict-any-key-order",
        "int-equals-float",
        "int-is-not-str",
        "none-matches-missing",
        "none-matches-none",
        "zero-is-not-none",
        "unicode",
        "empty-dict",
        "empty-dict-is-not-empty-list",
        "empty-list-is-not-empty-dict",
    ],
)
def test_list_filter_is_equality_on_metadata_values(
    saver: Any, stored: dict[str, Any], query: dict[str, Any], hit: bool
) -> None:
    saver.put(config("t"), checkpoint(), metadata(**stored), {})
    assert len(list(saver.list(config("t"), filter=query))) == (1 if hit else 0)


def test_list_filter_matches_what_inmemory_matches(saver: Any) -> None:
    oracle = InMemorySaver()
    for target in (saver, oracle):
        parent = config("t")
        for i in range(12):
            md = metadata(step=i, source="input" if i % 3 == 0 else "loop", run_id=f"r{i % 4}")
            parent = target.put(parent, checkpoint(checkpoint_id=f"id{i:03}"), md, {})
    for query in ({"source": "input"}, {"run_id": "r1", "source": "loop"}, {"step": 5}):
        assert ids(saver.list(config("t"), filter=query)) == ids(
            oracle.list(config("t"), filter=query)
        )


def test_list_without_namespace_merges_every_namespace_newest_first(saver: Any) -> None:
    put = []
    for i, ns in enumerate(["", "child:1", "", "child:2", "child:1"]):
        cid = f"id{i:03}"
        saver.put(config("t", ns), checkpoint(checkpoint_id=cid), metadata(step=i), {})
        put.append((cid, ns))
    found = [
        (t.checkpoint["id"], t.config["configurable"]["checkpoint_ns"])
        for t in saver.list(config("t", ns=None))
    ]
    assert found == put[::-1]


def test_list_of_every_namespace_keeps_apart_equal_versions_of_different_namespaces(
    saver: Any,
) -> None:
    # The page sends each (namespace, channel value) once and the client hands them
    # back by reference: equal channel versions in two namespaces are two values.
    version = saver.get_next_version(None, None)
    for i in range(3):
        for ns in ("", "child"):
            cp = checkpoint(
                {"shared": f"{ns or 'root'} value", "own": f"{ns} {i}"},
                versions={"shared": version, "own": i + 1},
                checkpoint_id=f"id{i:03}",
            )
            saver.put(config("t", ns), cp, metadata(step=i), cp["channel_versions"])
    found = [
        (t.config["configurable"]["checkpoint_ns"], t.checkpoint["channel_values"])
        for t in saver.list(config("t", ns=None))
    ]
    assert found == [
        (ns, {"shared": f"{ns or 'root'} value", "own": f"{ns} {i}"})
        for i in (2, 1, 0)
        for ns in ("child", "")
    ]


def test_list_without_namespace_pages_with_equal_ids_in_several_namespaces(saver: Any) -> None:
    expected = []
    for i in range(120):
        for ns in ("", "a", "b"):
            saver.put(config("t", ns), checkpoint(checkpoint_id=f"id{i:04}"), metadata(), {})
            expected.append((f"id{i:04}", ns))
    expected.sort(key=lambda x: (x[0], len(x[1]), x[1]), reverse=True)
    found = [
        (t.checkpoint["id"], t.config["configurable"]["checkpoint_ns"])
        for t in saver.list(config("t", ns=None))
    ]
    assert sorted(found) == sorted(expected) and len(found) == len(set(found))


def test_list_with_a_checkpoint_id_returns_only_that_checkpoint(saver: Any) -> None:
    stored = put_chain(saver, "t", 5)
    assert ids(saver.list(stored[2])) == ids_of(stored[2:3])


def test_list_of_all_threads_is_newest_first_across_threads(saver: Any) -> None:
    expected = []
    for i in range(9):
        tid = f"thread-{i % 3}"
        saver.put(config(tid), checkpoint(checkpoint_id=f"id{i:03}"), metadata(), {})
        expected.append(f"id{i:03}")
    assert ids(saver.list(None)) == expected[::-1]


def test_list_of_all_threads_honours_limit_and_filter(saver: Any) -> None:
    for i in range(9):
        saver.put(
            config(f"t{i % 3}"),
            checkpoint(checkpoint_id=f"id{i:03}"),
            metadata(step=i, even=i % 2 == 0),
            {},
        )
    found = list(saver.list(None, filter={"even": True}, limit=3))
    assert ids(found) == ["id008", "id006", "id004"]


def test_list_limit_zero_returns_nothing(saver: Any) -> None:
    put_chain(saver, "t", 3)
    assert list(saver.list(config("t"), limit=0)) == []


# ----------------------------------------------------------------------- writes


def test_regular_write_is_never_overwritten(saver: Any) -> None:
    [stored] = put_chain(saver, "t", 1)
    saver.put_writes(stored, [("ch", "first")], "task")
    saver.put_writes(stored, [("ch", "second")], "task")
    assert saver.get_tuple(stored).pending_writes == [("task", "ch", "first")]


@pytest.mark.parametrize("channel", ["__error__", "__interrupt__", "__scheduled__", "__resume__"])
def test_special_channel_write_takes_the_latest_value(saver: Any, channel: str) -> None:
    [stored] = put_chain(saver, "t", 1)
    saver.put_writes(stored, [(channel, "first")], "task")
    saver.put_writes(stored, [(channel, "second")], "task")
    assert saver.get_tuple(stored).pending_writes == [("task", channel, "second")]


def test_writes_may_arrive_before_their_checkpoint(saver: Any) -> None:
    cp = checkpoint()
    target = config("t", checkpoint_id=cp["id"])
    saver.put_writes(target, [("ch", 1)], "task")
    saver.put(config("t"), cp, metadata(), {})
    assert saver.get_tuple(target).pending_writes == [("task", "ch", 1)]


def test_pending_writes_come_back_in_writes_sort_key_order(saver: Any) -> None:
    [stored] = put_chain(saver, "t", 1)
    saver.put_writes(stored, [("ch", "b0"), ("ch", "b1")], "task-z", "~1")
    saver.put_writes(stored, [("ch", "a0")], "task-y", "~0")
    saver.put_writes(stored, [("ch", "input")], "task-x", "")
    assert [w[2] for w in saver.get_tuple(stored).pending_writes] == ["input", "a0", "b0", "b1"]


async def test_concurrent_writes_to_one_checkpoint_are_all_kept(asaver: Any) -> None:
    cp = checkpoint()
    stored = await asaver.aput(config("t"), cp, metadata(), {})
    await asyncio.gather(
        *(asaver.aput_writes(stored, [("ch", i)], f"task-{i:03}") for i in range(200))
    )
    tup = await asaver.aget_tuple(stored)
    assert sorted(w[2] for w in tup.pending_writes) == list(range(200))


async def test_200_concurrent_writes_wait_for_a_connection_instead_of_failing(
    backend: Backend,
) -> None:
    if backend.url is None:
        pytest.skip("fakeredis has no URL for from_conn_string")
    async with AsyncPlainRedisSaver.from_conn_string(
        backend.url, key_prefix=f"lgtestpool{new_id()[:8]}", max_connections=4
    ) as asaver:
        stored = await asaver.aput(config("t"), checkpoint(), metadata(), {})
        await asyncio.gather(
            *(asaver.aput_writes(stored, [("ch", i)], f"task-{i:03}") for i in range(200))
        )
        tup = await asaver.aget_tuple(stored)
    assert len(tup.pending_writes) == 200


# ----------------------------------------------------------------------- odd ids


ODD = ["", ":", "{", "}", "{x}", "*", "a b", "ü日本", "%", "%7B", "1:x", "\x00"]


@pytest.mark.parametrize("odd", ODD, ids=[repr(o) for o in ODD])
def test_odd_ids_round_trip(saver: Any, odd: str) -> None:
    cp = checkpoint({odd: odd}, versions={odd: saver.get_next_version(None, None)})
    stored = saver.put(
        config(odd, odd), cp, metadata(**{odd or "empty": odd}), cp["channel_versions"]
    )
    saver.put_writes(stored, [(odd, odd)], odd, odd)
    tup = saver.get_tuple(config(odd, odd))
    assert (tup.checkpoint["channel_values"], tup.pending_writes, tup.config) == (
        {odd: odd},
        [(odd, odd, odd)],
        stored,
    )


def test_odd_thread_ids_never_collide(saver: Any) -> None:
    for i, tid in enumerate(ODD):
        saver.put(config(tid), checkpoint({"i": i}), metadata(), {"i": 1})
    assert [saver.get_tuple(config(t)).checkpoint["channel_values"]["i"] for t in ODD] == list(
        range(len(ODD))
    )


def test_delete_thread_leaves_similarly_named_threads_alone(saver: Any) -> None:
    for tid in ODD:
        put_chain(saver, tid, 2)
    saver.delete_thread("{x}")
    assert [saver.get_tuple(config(t)) is None for t in ODD] == [t == "{x}" for t in ODD]


def test_odd_namespaces_never_collide(saver: Any) -> None:
    for i, ns in enumerate(ODD):
        saver.put(config("t", ns), checkpoint({"i": i}), metadata(), {"i": 1})
    assert [
        saver.get_tuple(config("t", ns)).checkpoint["channel_values"]["i"] for ns in ODD
    ] == list(range(len(ODD)))


# ----------------------------------------------------------------------- versions


def test_next_versions_increase(saver: Any) -> None:
    v1 = saver.get_next_version(None, None)
    v2 = saver.get_next_version(v1, None)
    assert v1 < v2 < saver.get_next_version(v2, None)


def test_a_bool_version_is_refused_after_the_equal_int_version_was_stored(saver: Any) -> None:
    # True == 1 as a dict key: what is remembered about version 1 must not vouch for True.
    saver.put(config("t"), checkpoint({"a": 1}, versions={"a": 1}), metadata(), {"a": 1})
    with pytest.raises(InvalidConfigError, match="version"):
        saver.put(config("t"), checkpoint({"a": 2}, versions={"a": True}), metadata(), {"a": True})


def test_forked_branches_get_different_versions(saver: Any) -> None:
    base = saver.get_next_version(None, None)
    assert saver.get_next_version(base, None) != saver.get_next_version(base, None)


@pytest.mark.parametrize("current", [7, "7", "00000000000000000000000000000007.0.5"])
def test_next_version_continues_versions_of_other_savers(saver: Any, current: Any) -> None:
    assert saver.get_next_version(current, None).startswith(f"{8:032}.")


# ----------------------------------------------------------------------- delta history


def test_delta_channel_history_matches_the_base_implementation(saver: Any) -> None:
    parent = config("t")
    stored = []
    version = None
    for i in range(8):
        values, new = {}, {}
        if i % 3 == 0:
            version = saver.get_next_version(version, None)
            values, new = {"d": f"snapshot{i}"}, {"d": version}
        cp = checkpoint(values, versions={"d": version} if version else {})
        parent = saver.put(parent, cp, metadata(step=i), new)
        saver.put_writes(parent, [("d", f"w{i}b"), ("x", i)], f"task-b{i}", "~1")
        saver.put_writes(parent, [("d", f"w{i}a")], f"task-a{i}", "~0")
        stored.append(parent)
    for target in (stored[-1], stored[4], stored[0], config("t")):
        fast = saver.get_delta_channel_history(config=target, channels=["d", "x", "none"])
        slow = BaseCheckpointSaver.get_delta_channel_history(
            saver, config=target, channels=["d", "x", "none"]
        )
        assert fast == slow


def test_delta_channel_history_of_an_unknown_checkpoint_is_empty(saver: Any) -> None:
    assert saver.get_delta_channel_history(config=config("t"), channels=["a"]) == {
        "a": {"writes": []}
    }


# ----------------------------------------------------------------------- maintenance


def test_delete_for_runs_frees_values_no_checkpoint_references(saver: Any, admin: Any) -> None:
    put_chain(saver, "t", 3, run_id="doomed")
    saver.delete_for_runs(["doomed"])
    keys = saver._core.keys.thread("t")
    assert (admin.hlen(keys.checkpoints), admin.hlen(keys.blobs)) == (0, 0)


def test_delete_for_runs_keeps_values_that_remaining_checkpoints_reference(saver: Any) -> None:
    version = saver.get_next_version(None, None)
    cp = checkpoint({"shared": "value"}, versions={"shared": version})
    first = saver.put(config("t"), cp, metadata(run_id="doomed"), {"shared": version})
    saver.put(first, checkpoint(versions={"shared": version}), metadata(run_id="kept"), {})
    saver.delete_for_runs(["doomed"])
    assert saver.get_tuple(config("t")).checkpoint["channel_values"] == {"shared": "value"}


def test_prune_keep_latest_frees_values_of_removed_checkpoints(saver: Any, admin: Any) -> None:
    put_chain(saver, "t", 5)
    saver.prune(["t"])
    assert stored_values(saver, admin, "t") == 1


def test_prune_delete_removes_every_key_of_the_thread(saver: Any, prefix: str, admin: Any) -> None:
    put_chain(saver, "t", 3)
    saver.prune(["t"], strategy="delete")
    assert keys_under(admin, prefix) == set()


def test_delete_thread_removes_every_key_of_the_thread(saver: Any, prefix: str, admin: Any) -> None:
    stored = put_chain(saver, "t", 3, ns="child")
    saver.put_writes(stored[-1], [("a", 1)], "task")
    saver.delete_thread("t")
    assert keys_under(admin, prefix) == set()


def test_copy_thread_merges_into_an_existing_target(saver: Any) -> None:
    src = put_chain(saver, "src", 2)
    saver.put_writes(src[-1], [("a", 1)], "task")
    put_chain(saver, "dst", 1)
    copied = config("dst", checkpoint_id=src[-1]["configurable"]["checkpoint_id"])
    saver.put_writes(copied, [("b", 2)], "task2")
    saver.copy_thread("src", "dst")
    assert (len(list(saver.list(config("dst")))), saver.get_tuple(copied).pending_writes) == (
        3,
        [("task", "a", 1), ("task2", "b", 2)],
    )


def test_copy_thread_copies_large_threads_in_bounded_calls(saver: Any) -> None:
    stored = put_chain(saver, "src", 40)
    saver.put_writes(stored[-1], [(f"c{i}", i) for i in range(2500)], "task")
    saver.copy_thread("src", "dst")
    assert len(saver.get_tuple(config("dst")).pending_writes) == 2500


# ----------------------------------------------------------------------- bad input


BAD_CONFIGS = [
    None,
    {},
    {"configurable": {}},
    {"configurable": {"thread_id": 1}},
    {"configurable": {"thread_id": "t", "checkpoint_ns": 3}},
    {"configurable": {"thread_id": "t", "checkpoint_id": 5}},
    "t",
]


@pytest.mark.parametrize("bad", BAD_CONFIGS, ids=[repr(b) for b in BAD_CONFIGS])
def test_put_with_a_bad_config_raises_and_writes_nothing(
    saver: Any, prefix: str, bad: Any, admin: Any
) -> None:
    with pytest.raises(InvalidConfigError):
        saver.put(bad, checkpoint({"a": 1}), metadata(), {"a": 1})
    assert keys_under(admin, prefix) == set()


@pytest.mark.parametrize("bad", BAD_CONFIGS, ids=[repr(b) for b in BAD_CONFIGS])
def test_get_tuple_with_a_bad_config_raises(saver: Any, bad: Any) -> None:
    with pytest.raises(InvalidConfigError):
        saver.get_tuple(bad)


def test_put_writes_without_checkpoint_id_raises(saver: Any) -> None:
    with pytest.raises(InvalidConfigError, match="checkpoint_id"):
        saver.put_writes(config("t"), [("a", 1)], "task")


def test_unserializable_value_raises_and_writes_nothing(
    saver: Any, prefix: str, admin: Any
) -> None:
    with pytest.raises(SerializationError, match="'a'"):
        saver.put(config("t"), checkpoint({"a": threading.Lock()}), metadata(), {"a": 1})
    assert keys_under(admin, prefix) == set()


def test_unserializable_write_raises_and_writes_nothing(saver: Any, prefix: str) -> None:
    [stored] = put_chain(saver, "t", 1)
    before = saver.get_tuple(stored)
    with pytest.raises(SerializationError):
        saver.put_writes(stored, [("ok", 1), ("bad", threading.Lock())], "task")
    assert saver.get_tuple(stored).pending_writes == before.pending_writes == []


@pytest.mark.parametrize("limit", [-1, "3", 1.5])
def test_list_with_a_bad_limit_raises(saver: Any, limit: Any) -> None:
    with pytest.raises(InvalidConfigError, match="limit"):
        list(saver.list(config("t"), limit=limit))


def test_prune_with_an_unknown_strategy_raises(saver: Any) -> None:
    with pytest.raises(InvalidConfigError, match="keep_latest"):
        saver.prune(["t"], strategy="keep_last")


def test_a_thread_id_string_instead_of_a_list_raises(saver: Any) -> None:
    with pytest.raises(InvalidConfigError, match="list"):
        saver.prune("t")


def test_key_prefix_with_a_brace_is_refused(client: Any) -> None:
    with pytest.raises(InvalidConfigError, match="key_prefix"):
        PlainRedisSaver(client, key_prefix="a{b}")


def test_client_that_decodes_responses_is_refused(backend: Backend) -> None:
    if backend.url is None:
        pytest.skip("fakeredis has no URL")
    import redis

    with pytest.raises(InvalidConfigError, match="decode_responses"):
        PlainRedisSaver(redis.Redis.from_url(backend.url, decode_responses=True))


# ----------------------------------------------------------------------- stored data


def test_corrupt_record_raises_an_error_naming_the_key(saver: Any, admin: Any) -> None:
    [stored] = put_chain(saver, "t", 1)
    key = saver._core.keys.thread("t").checkpoints
    field = admin.hkeys(key)[0]
    admin.hset(key, field, b"\x98garbage")
    # Read by another process: the writer's own copy is confirmed by the thread's write
    # generation, which an edit made outside the saver's scripts does not move.
    with pytest.raises(CorruptDataError, match=key.replace("{", r"\{").replace("}", r"\}")):
        cold(saver).get_tuple(stored)


def test_wrong_redis_type_under_the_prefix_raises_instead_of_returning_none(
    saver: Any, admin: Any
) -> None:
    key = saver._core.keys.thread("t").order
    admin.set(key, b"not a sorted set")
    with pytest.raises(Exception, match="WRONGTYPE|wrong kind"):
        saver.get_tuple(config("t"))


def test_record_of_a_newer_format_is_refused(saver: Any, admin: Any) -> None:
    [stored] = put_chain(saver, "t", 1)
    key = saver._core.keys.thread("t").checkpoints
    field = admin.hkeys(key)[0]
    admin.hset(key, field, pack([99, None, b"", 0, [], "x", b"", "x", b""]))
    # As a newer version's script would, it moves the thread's write generation.
    admin.hincrby(saver._core.keys.thread("t").blobs, "=g", 1)
    with pytest.raises(SchemaVersionError, match="format 99"):
        saver.get_tuple(stored)


def test_setup_is_idempotent(saver: Any, admin: Any) -> None:
    saver.setup()
    saver.setup()
    assert admin.get(saver._core.keys.schema) == b"3"


def test_setup_refuses_data_of_a_newer_schema(saver: Any, admin: Any) -> None:
    admin.set(saver._core.keys.schema, b"4")
    with pytest.raises(SchemaVersionError, match="schema 4"):
        saver.setup()


def test_saver_works_without_setup(saver: Any) -> None:
    [stored] = put_chain(saver, "t", 1)
    assert saver.get_tuple(stored) is not None


def test_script_cache_flush_is_recovered_transparently(saver: Any, admin: Any) -> None:
    saver.setup()
    admin.script_flush()
    with count_round_trips() as rt:
        put_chain(saver, "t", 1)
    assert rt.count == 2  # EVALSHA answered NOSCRIPT, then EVAL


def test_encrypted_serializer_stores_no_plaintext(
    saver: Any, client: Any, prefix: str, admin: Any
) -> None:
    enc = PlainRedisSaver(
        client, key_prefix=prefix, serde=EncryptedSerializer.from_pycryptodome_aes(key=b"k" * 16)
    )
    cp = checkpoint({"secret": "attack at dawn"})
    stored = enc.put(config("t"), cp, metadata(note="attack at dawn"), cp["channel_versions"])
    enc.put_writes(stored, [("w", "attack at dawn")], "task")
    hashes = [k for k in keys_under(admin, prefix) if admin.type(k) == b"hash"]
    dump = b"".join(v for k in hashes for v in admin.hvals(k))
    assert b"attack at dawn" not in dump


def test_encrypted_serializer_reads_back_what_it_wrote(client: Any, prefix: str) -> None:
    enc = PlainRedisSaver(
        client, key_prefix=prefix, serde=EncryptedSerializer.from_pycryptodome_aes(key=b"k" * 16)
    )
    cp = checkpoint({"secret": "attack at dawn"})
    stored = enc.put(config("t"), cp, metadata(), cp["channel_versions"])
    assert enc.get_tuple(stored).checkpoint["channel_values"] == {"secret": "attack at dawn"}


# ----------------------------------------------------------------------- API shape


def test_migration_aliases_name_the_savers() -> None:
    assert (RedisSaver, AsyncRedisSaver) == (PlainRedisSaver, AsyncPlainRedisSaver)


def test_documented_pattern_uses_the_saver_after_the_with_block(backend: Backend) -> None:
    if backend.url is None:
        pytest.skip("fakeredis has no URL for from_conn_string")
    with PlainRedisSaver.from_conn_string(backend.url, key_prefix=f"lgtestdoc{new_id()[:8]}") as cp:
        cp.setup()
        checkpointer = cp
    [stored] = put_chain(checkpointer, "t", 1)
    assert checkpointer.get_tuple(stored) is not None


async def test_sync_saver_offers_the_async_api(saver: Any) -> None:
    stored = await saver.aput(config("t"), checkpoint(), metadata(), {})
    await saver.aput_writes(stored, [("a", 1)], "task")
    assert [t.checkpoint["id"] async for t in saver.alist(config("t"))] == [
        stored["configurable"]["checkpoint_id"]
    ]


async def test_blocking_call_inside_the_event_loop_names_the_async_method(asaver: Any) -> None:
    await asaver.asetup()
    with pytest.raises(EventLoopError, match="aput"):
        asaver.put(config("t"), checkpoint(), metadata(), {})


async def test_blocking_call_from_another_thread_works(asaver: Any) -> None:
    await asaver.asetup()
    stored = await asyncio.to_thread(asaver.put, config("t"), checkpoint(), metadata(), {})
    found = await asyncio.to_thread(lambda: list(asaver.list(config("t"))))
    assert ids(found) == [stored["configurable"]["checkpoint_id"]]


def test_evicted_channel_values_raise_an_error_naming_the_key(saver: Any, admin: Any) -> None:
    [stored] = put_chain(saver, "t", 1)
    blobs = saver._core.keys.thread("t").blobs
    admin.unlink(blobs)  # what volatile-lru eviction of one key of the thread looks like
    with pytest.raises(CorruptDataError, match="missing"):
        saver.get_tuple(stored)


def test_evicted_checkpoint_records_fail_get_tuple_instead_of_returning_none(
    saver: Any, admin: Any
) -> None:
    put_chain(saver, "t", 2)
    admin.unlink(saver._core.keys.thread("t").checkpoints)  # evicted alone
    with pytest.raises(CorruptDataError, match="record is missing"):
        saver.get_tuple(config("t"))


def test_evicted_checkpoint_records_fail_list_instead_of_listing_nothing(
    saver: Any, admin: Any
) -> None:
    put_chain(saver, "t", 2)
    admin.unlink(saver._core.keys.thread("t").checkpoints)
    with pytest.raises(CorruptDataError, match="record is missing"):
        list(saver.list(config("t")))


def test_evicted_order_index_fails_get_tuple_instead_of_returning_none(
    saver: Any, admin: Any
) -> None:
    put_chain(saver, "t", 2)
    order = saver._core.keys.thread("t").order
    admin.unlink(order)
    with pytest.raises(CorruptDataError, match=re.escape(order)):
        saver.get_tuple(config("t"))


def test_evicted_pending_writes_fail_get_tuple_instead_of_dropping_them(
    saver: Any, admin: Any
) -> None:
    [stored] = put_chain(saver, "t", 1)
    saver.put_writes(stored, [("a", 1)], "task")
    writes = saver._core.keys.thread("t").writes
    admin.unlink(writes)
    with pytest.raises(CorruptDataError, match=re.escape(writes)):
        saver.get_tuple(stored)


def test_evicted_namespaces_fail_list_instead_of_listing_nothing(saver: Any, admin: Any) -> None:
    put_chain(saver, "t", 2)
    namespaces = saver._core.keys.thread("t").namespaces
    admin.unlink(namespaces)
    with pytest.raises(CorruptDataError, match=re.escape(namespaces)):
        list(saver.list(config("t", None)))  # every namespace of the thread


def test_a_thread_whose_writes_were_all_deleted_reads_without_error(saver: Any) -> None:
    # The checkpoint holding the thread's only writes goes, and the writes key with it:
    # the next read must not take the thread for one whose writes were evicted.
    doomed = saver.put(config("t"), checkpoint(), metadata(run_id="doomed"), {})
    saver.put_writes(doomed, [("a", 1)], "task")
    kept = saver.put(doomed, checkpoint(), metadata(run_id="kept"), {})
    saver.delete_for_runs(["doomed"])
    assert saver.get_tuple(kept).pending_writes == []


def test_channel_never_stored_is_absent_not_an_error(saver: Any) -> None:
    cp = checkpoint(versions={"never-written": 1})
    stored = saver.put(config("t"), cp, metadata(), {})
    assert saver.get_tuple(stored).checkpoint["channel_values"] == {}
