"""Reading back the checkpoint a saver wrote (plain_redis_saver.newest): the server
confirms the client's copy by the thread's write generation instead of sending it, and
anything else is read whole. Every read is compared with what another process (holding
nothing) reads."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langgraph.checkpoint.base import ERROR, INTERRUPT

from plain_redis_saver import AsyncPlainRedisSaver, CorruptDataError, PlainRedisSaver, codec
from plain_redis_saver.newest import _ENTRY_BYTES, HeldWrite, NewestWritten, Parts, Stored, merged

from .helpers import checkpoint, cold, config, metadata


def as_read(saver: Any, cfg: Any) -> Any:
    found = saver.get_tuple(cfg)
    return None if found is None else tuple(found)


class Reads:
    """Counts the reads ``saver`` decoded from what it holds."""

    def __init__(self, saver: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        self.known = 0
        core = saver._core
        real = core.decode_checkpoint

        def counting(
            thread_id: str, ns: str, reply: Any, content: Any, known: Any = None, *rest: Any
        ) -> Any:
            self.known += known is not None
            return real(thread_id, ns, reply, content, known, *rest)

        monkeypatch.setattr(core, "decode_checkpoint", counting)


def write_two(saver: Any, thread_id: str = "t") -> list[Any]:
    """Two checkpoints; the second changes channel "a" only, so "b" comes from the first."""
    first = saver.put(
        config(thread_id),
        checkpoint({"a": ["x"] * 40, "b": {"k": 1}}, versions={"a": 1, "b": 1}),
        metadata(step=0),
        {"a": 1, "b": 1},
    )
    second = saver.put(
        first,
        checkpoint({"a": ["y"] * 41, "b": {"k": 1}}, versions={"a": 2, "b": 1}),
        metadata(step=1),
        {"a": 2},
    )
    return [first, second]


def test_the_writer_reads_its_newest_checkpoint_as_another_process_does(warm: Any) -> None:
    write_two(warm)
    warm.put_writes(warm.get_tuple(config("t")).config, [("a", "w")], "task-1")
    mine = as_read(warm, config("t"))
    assert mine == as_read(cold(warm), config("t"))
    assert mine[1]["channel_values"] == {"a": ["y"] * 41, "b": {"k": 1}}


def test_the_writer_is_sent_neither_record_nor_values_of_its_newest_checkpoint(
    warm: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_two(warm)
    reads = Reads(warm, monkeypatch)
    warm.get_tuple(config("t"))
    assert reads.known == 1


def test_a_read_by_the_id_of_the_newest_checkpoint_is_served_the_same_way(
    warm: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = write_two(warm)
    reads = Reads(warm, monkeypatch)
    assert as_read(warm, second) == as_read(cold(warm), second)
    assert as_read(warm, first) == as_read(cold(warm), first)
    assert reads.known == 1


def test_the_writers_own_pending_writes_are_read_with_its_checkpoint(
    warm: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, second = write_two(warm)
    warm.put_writes(second, [("a", "w1"), ("b", "w2")], "task-1")
    warm.put_writes(second, [("a", "w3")], "task-2")
    reads = Reads(warm, monkeypatch)
    found = warm.get_tuple(config("t"))
    assert tuple(found) == as_read(cold(warm), config("t"))
    assert [(c, v) for _, c, v in found.pending_writes] == [("a", "w1"), ("b", "w2"), ("a", "w3")]
    assert reads.known == 1


def held_without_writes(saver: Any, thread_id: str = "t", ns: bytes = b"0:") -> bool:
    """Whether ``saver``'s next read of the thread's newest checkpoint names it as
    having no pending writes (the script then reads nothing more of it)."""
    known = saver._core.newest.known(thread_id, ns)
    return known is not None and known.unwritten


def test_a_checkpoint_the_writer_put_without_writes_is_named_as_having_none(
    warm: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_two(warm)
    assert held_without_writes(warm)
    mine, known = checked_read(warm, monkeypatch)
    assert (mine[4], known) == ([], 1)


def test_a_read_named_without_writes_reads_neither_values_nor_writes(
    warm: Any, admin: Any, backend: Any
) -> None:
    # A count of the server's commands, which only a real standalone server reports.
    if backend.fake_server is not None or backend.is_cluster:
        pytest.skip("INFO commandstats of one standalone server")
    write_two(warm)
    admin.config_resetstat()
    warm.get_tuple(config("t"))
    called = {name for name in admin.info("commandstats") if name.startswith("cmdstat_h")}
    # The generation and the record's presence only.
    assert called == {"cmdstat_hget", "cmdstat_hexists"}


def test_the_writers_own_write_to_its_checkpoint_makes_it_read_the_writes(warm: Any) -> None:
    _, second = write_two(warm)
    warm.put_writes(second, [("a", "w1")], "task-1")
    assert not held_without_writes(warm)
    found = warm.get_tuple(config("t"))
    assert [(c, v) for _, c, v in found.pending_writes] == [("a", "w1")]


def held_writes(saver: Any, thread_id: str = "t", ns: bytes = b"0:") -> list[tuple[str, str]]:
    """The (channel, serialized bytes) of the pending writes ``saver``'s next read of the
    thread's newest checkpoint names as held (the script then reads none of them)."""
    known = saver._core.newest.known(thread_id, ns)
    assert known is not None and known.writes is not None, "its writes are not held"
    return [(w.channel, w.typed[1]) for w in known.writes]


def test_the_writers_own_writes_to_its_checkpoint_are_held_and_read_from_there(
    warm: Any, admin: Any, backend: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, second = write_two(warm)
    warm.put_writes(second, [("a", "w1"), ("b", "w2")], "task-1")
    warm.put_writes(second, [("a", "w3")], "task-2")
    assert [c for c, _ in held_writes(warm)] == ["a", "b", "a"]
    mine, known = checked_read(warm, monkeypatch)
    assert ([(c, v) for _, c, v in mine[4]], known) == ([("a", "w1"), ("b", "w2"), ("a", "w3")], 1)


def test_a_read_of_held_writes_reads_no_write(warm: Any, admin: Any, backend: Any) -> None:
    if backend.fake_server is not None or backend.is_cluster:
        pytest.skip("INFO commandstats of one standalone server")
    _, second = write_two(warm)
    warm.put_writes(second, [("a", "w1")], "task-1")
    admin.config_resetstat()
    warm.get_tuple(config("t"))
    called = {name for name in admin.info("commandstats") if name.startswith("cmdstat_h")}
    # The generation, and the presence of the record and of the write index.
    assert called == {"cmdstat_hget", "cmdstat_hexists"}


def test_a_retried_task_keeps_the_writes_first_stored_in_what_is_held(
    warm: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, second = write_two(warm)
    warm.put_writes(second, [("a", "first"), ("__error__", "boom")], "task-1")
    warm.put_writes(second, [("a", "again"), ("__error__", "boom 2")], "task-1")
    mine, known = checked_read(warm, monkeypatch)
    assert known == 1
    assert sorted((c, v) for _, c, v in mine[4]) == [("__error__", "boom 2"), ("a", "first")]


def test_held_writes_whose_index_was_evicted_make_the_read_report_it(warm: Any, admin: Any) -> None:
    _, second = write_two(warm)
    warm.put_writes(second, [("a", "w1")], "task-1")
    admin.delete(warm._core.keys.thread("t").writes)  # eviction takes whole keys
    with pytest.raises(CorruptDataError) as theirs:
        cold(warm).get_tuple(config("t"))
    with pytest.raises(CorruptDataError) as mine:
        warm.get_tuple(config("t"))
    assert str(mine.value) == str(theirs.value)


def test_held_writes_whose_index_field_went_are_read_as_stored(warm: Any, admin: Any) -> None:
    # Nothing the saver does removes an index alone; a hand edit is read as it is.
    _, second = write_two(warm)
    warm.put_writes(second, [("a", "w1")], "task-1")
    warm.put_writes(config("t", checkpoint_id="0"), [("a", "other")], "task-2")  # keeps the key
    keys = warm._core.keys.thread("t")
    admin.hdel(keys.writes, b"0:" + codec.netstring(second["configurable"]["checkpoint_id"]))
    assert tuple(warm.get_tuple(config("t"))) == as_read(cold(warm), config("t"))


def test_a_reader_holds_the_writes_it_read_whole(
    warm: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, second = write_two(warm)
    warm.put_writes(second, [("a", "w1")], "task-1")
    reader = cold(warm)
    reader.get_tuple(config("t"))
    assert held_writes(reader) == held_writes(warm)
    mine, known = checked_read(reader, monkeypatch)
    assert ([(c, v) for _, c, v in mine[4]], known) == ([("a", "w1")], 1)


_task_writes = st.tuples(
    st.sampled_from(["task-1", "task-2", "task-3"]),
    st.lists(
        st.tuples(st.sampled_from(["a", "b", ERROR, INTERRUPT]), st.integers(0, 99)),
        min_size=1,
        max_size=3,
    ),
)


@settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(calls=st.lists(_task_writes, min_size=1, max_size=6))
def test_any_writes_of_the_writer_read_back_as_another_process_reads_them(
    backend: Any, client: Any, calls: list[tuple[str, list[tuple[str, int]]]]
) -> None:
    # Retried tasks, several tasks, regular and special channels: whatever the writer
    # holds must be what the server stores.
    saver = PlainRedisSaver(client, key_prefix=f"lgtest{uuid.uuid4().hex[:10]}")
    _, second = write_two(saver)
    for task, writes in calls:
        saver.put_writes(second, [(c, f"{c}-{n}") for c, n in writes], task)
    known = saver._core.newest.known("t", b"0:")
    assert known is not None and known.writes is not None
    assert as_read(saver, config("t")) == as_read(cold(saver), config("t"))
    saver.delete_thread("t")


def test_a_write_to_an_older_checkpoint_keeps_the_newest_named_without_writes(
    warm: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, _ = write_two(warm)
    warm.put_writes(first, [("a", "late")], "task-1")
    assert held_without_writes(warm)
    mine, known = checked_read(warm, monkeypatch)
    assert (mine[4], known) == ([], 1)


def test_writes_stored_before_their_checkpoint_are_read_with_it(
    warm: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # LangGraph may store a task's writes before the put of their checkpoint completes.
    first, _ = write_two(warm)
    cp = checkpoint({"a": ["z"] * 40}, versions={"a": 3})
    early = config("t", checkpoint_id=cp["id"])
    warm.put_writes(early, [("a", "early")], "task-1")
    warm.put(first, cp, metadata(step=2), {"a": 3})
    assert not held_without_writes(warm)
    mine, known = checked_read(warm, monkeypatch)
    assert ([(c, v) for _, c, v in mine[4]], known) == ([("a", "early")], 1)


def test_a_put_repeated_with_the_same_id_keeps_the_writes_it_had(warm: Any) -> None:
    _, second = write_two(warm)
    warm.put_writes(second, [("a", "w1")], "task-1")
    again = checkpoint(
        {"a": ["y"] * 41, "b": {"k": 1}},
        versions={"a": 2, "b": 1},
        checkpoint_id=second["configurable"]["checkpoint_id"],
    )
    parent = config(
        "t", checkpoint_id=warm.get_tuple(second).parent_config["configurable"]["checkpoint_id"]
    )
    warm.put(parent, again, metadata(step=1), {"a": 2})
    assert not held_without_writes(warm)
    assert [(c, v) for _, c, v in warm.get_tuple(config("t")).pending_writes] == [("a", "w1")]


def test_a_full_read_that_found_no_writes_is_named_so_from_then_on(warm: Any) -> None:
    write_two(warm)
    reader = cold(warm)
    reader.get_tuple(config("t"))
    assert held_without_writes(reader)


def test_a_full_read_that_found_writes_is_not_named_without_them(warm: Any) -> None:
    _, second = write_two(warm)
    warm.put_writes(second, [("a", "w1")], "task-1")
    reader = cold(warm)
    reader.get_tuple(config("t"))
    assert reader._core.newest.known("t", b"0:") is not None
    assert not held_without_writes(reader)


def test_pending_writes_of_another_process_make_the_read_whole(
    warm: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, second = write_two(warm)
    cold(warm).put_writes(second, [("a", "w1"), ("b", "w2")], "task-1")
    reads = Reads(warm, monkeypatch)
    found = warm.get_tuple(config("t"))
    assert tuple(found) == as_read(cold(warm), config("t"))
    assert [(c, v) for _, c, v in found.pending_writes] == [("a", "w1"), ("b", "w2")]
    assert reads.known == 0


def test_a_read_whose_copy_is_stale_reads_the_generation_once(
    warm: Any, admin: Any, backend: Any
) -> None:
    # The generation both decides that the copy is stale and comes back with the full
    # read: one HGET for it, one for the record. (A count of the server's commands,
    # which only a real standalone server reports for itself.)
    if backend.fake_server is not None or backend.is_cluster:
        pytest.skip("INFO commandstats of one standalone server")
    _, second = write_two(warm)
    cold(warm).put_writes(second, [("a", "w1")], "task-1")
    admin.config_resetstat()
    warm.get_tuple(config("t"))
    assert admin.info("commandstats")["cmdstat_hget"]["calls"] == 2


def test_a_write_that_changed_nothing_keeps_the_writers_copy_confirmed(
    warm: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, second = write_two(warm)
    warm.put_writes(second, [("a", "w1")], "task-1")
    cold(warm).put_writes(second, [("a", "other")], "task-1")  # a retry: never replaces
    reads = Reads(warm, monkeypatch)
    found = warm.get_tuple(config("t"))
    assert [(c, v) for _, c, v in found.pending_writes] == [("a", "w1")]
    assert reads.known == 1


def test_a_newer_checkpoint_of_another_process_is_read_whole(warm: Any) -> None:
    _, second = write_two(warm)
    cold(warm).put(second, checkpoint({"a": ["z"]}, versions={"a": 3}), metadata(step=2), {"a": 3})
    mine = as_read(warm, config("t"))
    assert mine == as_read(cold(warm), config("t"))
    assert mine[1]["channel_values"]["a"] == ["z"]


def test_a_checkpoint_another_process_stored_again_is_read_as_stored(warm: Any) -> None:
    first, second = write_two(warm)
    again = checkpoint(
        {"a": ["y"] * 41, "b": {"k": 1}},
        versions={"a": 2, "b": 1},
        checkpoint_id=second["configurable"]["checkpoint_id"],
    )
    cold(warm).put(first, again, metadata(step=1, note="again"), {"a": 2})
    mine = as_read(warm, config("t"))
    assert mine == as_read(cold(warm), config("t"))
    assert mine[2]["note"] == "again"


def test_a_value_another_writer_stored_first_is_read_as_stored(
    warm: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = warm.put(
        config("t"),
        checkpoint({"a": ["x"] * 40, "b": {"k": 1}}, versions={"a": 1, "b": 1}),
        metadata(step=0),
        {"a": 1, "b": 1},
    )
    # Another process stores version 2 of "a" first, with other bytes: the put below
    # does not overwrite it, so the writer's copy of it is not what is stored.
    cold(warm).put(
        first,
        checkpoint({"a": ["z"] * 3, "b": {"k": 1}}, versions={"a": 2, "b": 1}),
        metadata(step=1),
        {"a": 2},
    )
    warm.put(
        first,
        checkpoint({"a": ["y"] * 41, "b": {"k": 1}}, versions={"a": 2, "b": 1}),
        metadata(step=1),
        {"a": 2},
    )
    reads = Reads(warm, monkeypatch)
    mine = as_read(warm, config("t"))
    assert mine == as_read(cold(warm), config("t"))
    assert mine[1]["channel_values"]["a"] == ["z"] * 3
    assert reads.known == 0


def test_an_evicted_values_key_makes_the_writers_read_raise_as_any_read(
    warm: Any, admin: Any
) -> None:
    write_two(warm)
    admin.delete(warm._core.keys.thread("t").blobs)  # eviction takes whole keys
    with pytest.raises(CorruptDataError, match="missing"):
        cold(warm).get_tuple(config("t"))
    with pytest.raises(CorruptDataError, match="missing"):
        warm.get_tuple(config("t"))


def test_an_evicted_records_key_makes_the_writers_read_as_any_read(warm: Any, admin: Any) -> None:
    write_two(warm)
    admin.delete(warm._core.keys.thread("t").checkpoints)
    with pytest.raises(CorruptDataError) as theirs:
        cold(warm).get_tuple(config("t"))
    with pytest.raises(CorruptDataError) as mine:
        warm.get_tuple(config("t"))
    assert str(mine.value) == str(theirs.value)


def test_the_writers_own_prune_makes_its_next_read_whole(
    warm: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_two(warm)
    warm.prune(["t"], strategy="keep_latest")
    reads = Reads(warm, monkeypatch)
    assert as_read(warm, config("t")) == as_read(cold(warm), config("t"))
    assert reads.known == 0


def test_a_thread_deleted_by_another_process_reads_as_none(warm: Any) -> None:
    write_two(warm)
    cold(warm).delete_thread("t")
    assert warm.get_tuple(config("t")) is None


def test_a_process_that_did_not_write_every_value_reads_whole(
    warm: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, second = write_two(warm)
    late = cold(warm)  # writes "a" only: "b" it never saw
    late.put(
        second,
        checkpoint({"a": ["z"], "b": {"k": 1}}, versions={"a": 3, "b": 1}),
        metadata(step=2),
        {"a": 3},
    )
    assert late._core.newest.known("t", b"0:") is None
    reads = Reads(late, monkeypatch)
    assert as_read(late, config("t")) == as_read(cold(warm), config("t"))
    assert reads.known == 0


async def test_the_async_writer_reads_its_newest_checkpoint_as_another_process_does(
    asaver: AsyncPlainRedisSaver, monkeypatch: pytest.MonkeyPatch
) -> None:
    await asaver.asetup()
    first = await asaver.aput(config("t"), checkpoint({"a": ["x"] * 40}), metadata(), {"a": 1})
    reads = Reads(asaver, monkeypatch)
    mine = await asaver.aget_tuple(config("t"))
    again = await AsyncPlainRedisSaver(asaver.client, key_prefix=asaver.key_prefix).aget_tuple(
        first
    )
    assert tuple(mine) == tuple(again)
    assert reads.known == 1


def _wrote(
    newest: NewestWritten,
    thread_id: str,
    size: int,
    *,
    refs: int = 1,
    ns: bytes = b"0:",
    generations: tuple[int, int] = (0, 1),
    fresh: bool = True,
    new: bool = True,
    unwritten: bool = False,
) -> None:
    fields = [ns + f"{i}".encode() for i in range(refs)]
    newest.wrote(
        thread_id,
        ns,
        Parts(
            "c",
            b"r",
            None,
            ("msgpack", b"\x80"),
            ("msgpack", b"\x80"),
            [(f"ch{i}", field) for i, field in enumerate(fields)],
        ),
        new={field: Stored(b"v" * size, ("msgpack", b"v" * size)) for field in fields}
        if new
        else {},
        generations=generations,
        fresh=fresh,
        unwritten=unwritten,
    )


def stepped(newest: NewestWritten, generations: tuple[int, int]) -> None:
    """A put_writes of this process to another checkpoint of thread "t" that moved its
    generation by ``generations``."""
    newest.wrote_writes("t", b"0:", "elsewhere", generations)


def named(newest: NewestWritten, ns: bytes = b"0:") -> tuple[str, int] | None:
    """What a read of thread "t" would name as held: (checkpoint id, generation)."""
    known = newest.known("t", ns)
    return None if known is None else known.read_args()[:2]


def test_a_budget_of_zero_remembers_nothing() -> None:
    newest = NewestWritten(0)
    _wrote(newest, "t", 10)
    assert newest.known("t", b"0:") is None


def test_the_least_recently_read_thread_goes_first_past_the_byte_budget() -> None:
    newest = NewestWritten(3_000)
    _wrote(newest, "t1", 500)
    _wrote(newest, "t2", 500)
    assert newest.known("t1", b"0:") is not None  # t1 read last: t2 is the older
    _wrote(newest, "t3", 500)
    assert newest.known("t2", b"0:") is None
    assert newest.known("t1", b"0:") is not None
    assert newest.known("t3", b"0:") is not None


def test_a_checkpoint_larger_than_the_budget_is_not_remembered() -> None:
    newest = NewestWritten(1_000)
    _wrote(newest, "t", 2_000)
    assert newest.known("t", b"0:") is None


def test_a_read_names_the_generation_the_processs_last_write_left() -> None:
    newest = NewestWritten(10_000)
    _wrote(newest, "t", 10, generations=(4, 5))
    stepped(newest, (5, 6))
    stepped(newest, (6, 7))
    assert named(newest) == ("c", 7)


def test_while_another_processes_step_lies_between_reads_name_the_generation_before_it() -> None:
    newest = NewestWritten(10_000)
    _wrote(newest, "t", 10, generations=(4, 5))
    _wrote(newest, "t", 10, ns=b"1:", generations=(5, 6))
    stepped(newest, (7, 8))  # generation 6 -> 7 was another process's
    # The server is at 8: naming 6 makes the read a full one.
    assert (named(newest), named(newest, b"1:")) == (("c", 6), ("c", 6))


def test_steps_whose_replies_came_out_of_order_join_up() -> None:
    newest = NewestWritten(10_000)
    _wrote(newest, "t", 10, generations=(4, 5))
    stepped(newest, (6, 7))  # handled before the step 5 -> 6 it follows
    assert named(newest) == ("c", 5)
    stepped(newest, (5, 6))
    assert named(newest) == ("c", 7)


def test_a_put_whose_reply_came_before_the_steps_it_follows_waits_for_them() -> None:
    newest = NewestWritten(10_000)
    _wrote(newest, "t", 10, generations=(4, 5))
    _wrote(newest, "t", 10, generations=(6, 7), new=False)  # 5 -> 6 still to come
    assert named(newest) is None
    stepped(newest, (5, 6))
    assert named(newest) == ("c", 7)


def test_a_put_handled_after_a_later_one_of_the_namespace_leaves_the_later_one() -> None:
    newest = NewestWritten(10_000)
    _wrote(newest, "t", 10, generations=(4, 5))
    _wrote(newest, "t", 10, generations=(6, 7), new=False)
    _wrote(newest, "t", 99, generations=(5, 6))  # the earlier put's reply, handled last
    assert named(newest) == ("c", 7)
    assert newest._entries[("t", b"0:")].step == 7


def test_a_step_from_a_generation_already_passed_forgets_the_thread() -> None:
    newest = NewestWritten(10_000)
    _wrote(newest, "t", 10, generations=(4, 5))
    stepped(newest, (1, 2))  # the thread was deleted and written again
    assert named(newest) is None


def test_a_put_from_another_generation_keeps_only_the_values_it_stored() -> None:
    newest = NewestWritten(10_000)
    _wrote(newest, "t", 10, generations=(4, 5))
    _wrote(newest, "t", 10, generations=(1, 2), new=False)  # refs values of the first put
    assert named(newest) is None


def test_a_put_chained_to_the_last_carries_the_values_it_did_not_send() -> None:
    newest = NewestWritten(10_000)
    _wrote(newest, "t", 10, generations=(4, 5))
    _wrote(newest, "t", 10, generations=(5, 6), new=False)
    assert named(newest) == ("c", 6)


def test_a_put_whose_value_was_stored_first_by_another_writer_is_not_remembered() -> None:
    newest = NewestWritten(10_000)
    _wrote(newest, "t", 10, generations=(4, 5))
    _wrote(newest, "t", 10, ns=b"1:", generations=(5, 6))
    _wrote(newest, "t", 10, generations=(6, 7), fresh=False)
    # Another namespace's values are its own: still as remembered.
    assert (named(newest), named(newest, b"1:")) == (None, ("c", 7))


def test_a_put_that_found_no_writes_names_its_checkpoint_without_them() -> None:
    newest = NewestWritten(10_000)
    _wrote(newest, "t", 10, generations=(4, 5), unwritten=True)
    assert newest.known("t", b"0:").unwritten


def test_a_write_of_this_process_to_the_checkpoint_names_it_with_writes_again() -> None:
    newest = NewestWritten(10_000)
    _wrote(newest, "t", 10, generations=(4, 5), unwritten=True)
    newest.wrote_writes("t", b"0:", "c", (5, 6))
    assert named(newest) == ("c", 6)
    assert not newest.known("t", b"0:").unwritten


def test_a_write_that_stored_nothing_names_the_checkpoint_with_writes_too() -> None:
    newest = NewestWritten(10_000)
    _wrote(newest, "t", 10, generations=(4, 5), unwritten=True)
    newest.wrote_writes("t", b"0:", "c", None)
    assert named(newest) == ("c", 5)
    assert not newest.known("t", b"0:").unwritten


def test_a_write_to_another_checkpoint_or_namespace_leaves_it_named_without_writes() -> None:
    newest = NewestWritten(10_000)
    _wrote(newest, "t", 10, generations=(4, 5), unwritten=True)
    newest.wrote_writes("t", b"0:", "older", (5, 6))
    newest.wrote_writes("t", b"1:", "c", (6, 7))
    assert newest.known("t", b"0:").unwritten


def test_a_put_whose_reply_came_after_a_later_step_is_not_named_without_writes() -> None:
    # The later step may be a write to this very checkpoint, handled before the put.
    newest = NewestWritten(10_000)
    _wrote(newest, "t", 10, generations=(4, 5))
    stepped(newest, (6, 7))
    _wrote(newest, "t", 10, generations=(5, 6), unwritten=True)
    assert named(newest) == ("c", 7)
    assert not newest.known("t", b"0:").unwritten


def test_a_full_read_whose_reply_came_after_a_later_step_is_not_named_without_writes() -> None:
    newest = NewestWritten(10_000)
    _wrote(newest, "t", 10, generations=(4, 5))
    stepped(newest, (6, 7))  # waits for 5 -> 6
    parts = newest._entries[("t", b"0:")].parts
    newest.read("t", b"0:", parts, values={}, generation=5, writes=())
    assert newest._entries[("t", b"0:")].writes is None


def _write(task: str, idx: int, value: bytes = b"v", channel: str = "a") -> HeldWrite:
    return HeldWrite(task, idx, channel, ("msgpack", value), "")


def test_writes_stored_in_order_on_a_checkpoint_without_any_are_held() -> None:
    newest = NewestWritten(10_000)
    _wrote(newest, "t", 10, generations=(4, 5), unwritten=True)
    newest.wrote_writes("t", b"0:", "c", (5, 6), (_write("x", 0),))
    newest.wrote_writes("t", b"0:", "c", (6, 7), (_write("y", 0),))
    known = newest.known("t", b"0:")
    assert known.writes == (_write("x", 0), _write("y", 0))
    assert known.read_args() == ("c", 7, "2")


def test_a_held_write_is_kept_over_a_regular_one_and_replaced_by_a_special_one() -> None:
    held = (_write("x", 0, b"first"), _write("x", -1, b"error 1"))
    again = (_write("x", 0, b"again"), _write("x", -1, b"error 2"))
    assert merged(held, again) == (_write("x", 0, b"first"), _write("x", -1, b"error 2"))


def test_writes_whose_step_is_not_the_next_are_not_held() -> None:
    newest = NewestWritten(10_000)
    _wrote(newest, "t", 10, generations=(4, 5), unwritten=True)
    newest.wrote_writes("t", b"0:", "c", (6, 7), (_write("x", 0),))  # 5 -> 6 still to come
    newest.wrote_writes("t", b"0:", "c", (5, 6), (_write("y", 0),))
    assert newest.known("t", b"0:").writes is None


def test_writes_on_a_checkpoint_whose_writes_are_not_known_are_not_held() -> None:
    newest = NewestWritten(10_000)
    _wrote(newest, "t", 10, generations=(4, 5))
    newest.wrote_writes("t", b"0:", "c", (5, 6), (_write("x", 0),))
    assert newest.known("t", b"0:").writes is None


def test_a_write_that_stored_nothing_keeps_the_writes_held_when_they_say_so() -> None:
    newest = NewestWritten(10_000)
    _wrote(newest, "t", 10, generations=(4, 5), unwritten=True)
    newest.wrote_writes("t", b"0:", "c", (5, 6), (_write("x", 0),))
    newest.wrote_writes("t", b"0:", "c", None, (_write("x", 0, b"retried"),))
    assert newest.known("t", b"0:").writes == (_write("x", 0),)


def test_held_writes_count_against_the_budget() -> None:
    newest = NewestWritten(10_000)
    _wrote(newest, "t", 10, generations=(4, 5), unwritten=True)
    before = newest._bytes
    newest.wrote_writes("t", b"0:", "c", (5, 6), (_write("x", 0, b"w" * 1000),))
    assert newest._bytes == before + 1000 + _ENTRY_BYTES


def test_held_writes_that_would_pass_the_budget_are_not_held() -> None:
    newest = NewestWritten(2_000)
    _wrote(newest, "t", 10, generations=(4, 5), unwritten=True)
    newest.wrote_writes("t", b"0:", "c", (5, 6), (_write("x", 0, b"w" * 3_000),))
    assert newest.known("t", b"0:").writes is None
    assert newest._bytes <= 2_000


def test_held_writes_push_out_the_least_recently_used_thread() -> None:
    newest = NewestWritten(2_500)  # room for the written thread's entry with its writes
    _wrote(newest, "old", 10, unwritten=True)
    _wrote(newest, "t", 10, generations=(4, 5), unwritten=True)
    newest.wrote_writes("t", b"0:", "c", (5, 6), (_write("x", 0, b"w" * 2_000),))
    assert newest.known("old", b"0:") is None
    assert newest.known("t", b"0:").writes == (_write("x", 0, b"w" * 2_000),)
    assert newest._bytes <= 2_500


def test_writes_to_a_thread_it_remembers_nothing_of_are_not_tracked() -> None:
    newest = NewestWritten(10_000)
    stepped(newest, (1, 2))
    assert newest._threads == {}


def test_a_thread_whose_entries_all_left_the_budget_is_forgotten() -> None:
    newest = NewestWritten(1_500)
    _wrote(newest, "t1", 500)
    _wrote(newest, "t2", 500)
    assert set(newest._threads) == {"t2"}


def test_a_long_value_stored_whole_is_confirmed_too(
    warm: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = PlainRedisSaver(warm.client, key_prefix=warm.key_prefix + "-w", compose_values=False)
    whole.setup()
    long = ["x" * 1_000] * 100  # stored as one field's value
    whole.put(config("t"), checkpoint({"s": long}), metadata(), {"s": 1})
    reads = Reads(whole, monkeypatch)
    mine = as_read(whole, config("t"))
    assert mine == as_read(cold(whole), config("t"))
    assert mine[1]["channel_values"]["s"] == long
    assert reads.known == 1


def test_a_put_the_writer_repeats_with_the_same_id_is_read_as_stored(
    warm: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = write_two(warm)
    again = checkpoint(
        {"a": ["y"] * 41, "b": {"k": 2}},
        versions={"a": 2, "b": 2},
        checkpoint_id=second["configurable"]["checkpoint_id"],
    )
    warm.put(first, again, metadata(step=1, note="again"), {"b": 2})
    reads = Reads(warm, monkeypatch)
    mine = as_read(warm, config("t"))
    assert mine == as_read(cold(warm), config("t"))
    assert (mine[1]["channel_values"]["b"], mine[2]["note"]) == ({"k": 2}, "again")
    assert reads.known == 1


def checked_read(saver: Any, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, int]:
    """``saver``'s read of thread "t"'s newest checkpoint, checked equal to another
    process's, and the number of reads it decoded from what it holds (0 or 1)."""
    reads = Reads(saver, monkeypatch)
    mine = as_read(saver, config("t"))
    assert mine == as_read(cold(saver), config("t"))
    return mine, reads.known


def a_reader(warm: Any) -> tuple[Any, Any]:
    """Another process that has read the newest of :func:`write_two`'s checkpoints, and
    the config of that checkpoint."""
    _, second = write_two(warm)
    reader = cold(warm)
    reader.get_tuple(config("t"))
    return reader, second


def test_a_process_that_read_the_newest_checkpoint_whole_holds_it_from_then_on(
    warm: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    reader, _ = a_reader(warm)
    mine, known = checked_read(reader, monkeypatch)
    assert (mine[1]["channel_values"]["a"], known) == (["y"] * 41, 1)


def test_what_a_read_found_is_read_whole_again_once_another_process_writes(
    warm: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    reader, second = a_reader(warm)
    warm.put(second, checkpoint({"a": ["z"]}, versions={"a": 3}), metadata(step=2), {"a": 3})
    mine, known = checked_read(reader, monkeypatch)
    assert (mine[1]["channel_values"]["a"], known) == (["z"], 0)


def test_a_reader_that_then_writes_holds_the_values_it_read_and_did_not_write(
    warm: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    reader, second = a_reader(warm)
    reader.put(
        second,
        checkpoint({"a": ["z"], "b": {"k": 1}}, versions={"a": 3, "b": 1}),
        metadata(step=2),
        {"a": 3},
    )
    mine, known = checked_read(reader, monkeypatch)
    assert (mine[1]["channel_values"], known) == ({"a": ["z"], "b": {"k": 1}}, 1)


def test_a_read_by_id_is_not_held(warm: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    _, second = write_two(warm)
    reader = cold(warm)
    reader.get_tuple(second)
    assert checked_read(reader, monkeypatch)[1] == 0


def test_a_generation_that_is_not_a_number_holds_nothing(
    warm: Any, admin: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_two(warm)
    admin.hset(warm._core.keys.thread("t").blobs, "=g", "not a number")
    reader = cold(warm)
    first = as_read(reader, config("t"))
    mine, known = checked_read(reader, monkeypatch)
    assert (mine, known) == (first, 0)


def test_a_graphs_turns_read_back_what_the_process_wrote(
    warm: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # LangGraph stores a step's writes and the next checkpoint concurrently (background
    # threads), so their replies come in any order: every turn's read must still be
    # confirmed, and equal another process's read.
    from langchain_core.messages import AIMessage, HumanMessage
    from langgraph.graph import START, MessagesState, StateGraph

    def reply(state: MessagesState) -> dict[str, Any]:
        return {"messages": [AIMessage(f"reply {len(state['messages'])}")]}

    builder = StateGraph(MessagesState)
    builder.add_node("reply", reply)
    builder.add_edge(START, "reply")
    graph = builder.compile(checkpointer=warm)
    cfg = config("chat")
    graph.invoke({"messages": [HumanMessage("hello")]}, cfg)
    reads = Reads(warm, monkeypatch)
    for turn in range(8):
        graph.invoke({"messages": [HumanMessage(f"turn {turn}")]}, cfg)
    assert as_read(warm, cfg) == as_read(cold(warm), cfg)
    # Each turn reads the thread once, then the final read: nine. The last turn's
    # writes may still be in flight when invoke returns, which makes that read a full
    # one (rightly); a chain broken by reordered replies made a third of them full.
    assert reads.known >= 8


def test_a_graph_that_interrupts_reads_back_its_interrupts_and_resumes(warm: Any) -> None:
    # An interrupted run's newest checkpoint carries pending writes (the interrupt),
    # stored after its put: the writer must read them, and resume as with any saver.
    from langgraph.checkpoint.memory import InMemorySaver
    from langgraph.graph import START, StateGraph
    from langgraph.types import Command, interrupt
    from typing_extensions import TypedDict

    class State(TypedDict):
        log: list[str]

    def ask(state: State) -> dict[str, Any]:
        answer = interrupt(f"approve step {len(state['log'])}?")
        return {"log": [*state["log"], f"approved {answer}"]}

    def build(checkpointer: Any) -> Any:
        builder = StateGraph(State)
        builder.add_node("ask", ask)
        builder.add_edge(START, "ask")
        return builder.compile(checkpointer=checkpointer)

    def seen(result: dict[str, Any]) -> tuple[Any, ...]:
        # Interrupt ids derive from checkpoint ids, which differ between savers.
        return (result["log"], [i.value for i in result.get("__interrupt__", [])])

    graphs = [build(warm), build(InMemorySaver())]
    cfg = config("approvals")
    outputs: list[list[Any]] = [[], []]
    for turn in range(4):
        for graph, out in zip(graphs, outputs, strict=True):
            out.append(seen(graph.invoke({"log": [f"turn {turn}"]}, cfg)))
            assert as_read(warm, cfg) == as_read(cold(warm), cfg)
            out.append(seen(graph.invoke(Command(resume=f"yes {turn}"), cfg)))
            assert as_read(warm, cfg) == as_read(cold(warm), cfg)
    assert outputs[0] == outputs[1]
    assert outputs[0][-2:] == [
        (["turn 3"], ["approve step 1?"]),
        (["turn 3", "approved yes 3"], []),
    ]
