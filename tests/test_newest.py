"""Reading back the checkpoint a saver wrote (plain_redis_saver.newest): the server
confirms the client's copy instead of sending it, and anything else is read whole.
Every read is compared with what another process (holding nothing) reads."""

from __future__ import annotations

from typing import Any

import pytest

from plain_redis_saver import AsyncPlainRedisSaver, CorruptDataError, PlainRedisSaver
from plain_redis_saver.newest import MAX_DIGESTED, NewestWritten, Stored

from .conftest import Backend
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

        def counting(thread_id: str, ns: str, reply: Any, content: Any, known: Any = None) -> Any:
            self.known += known is not None
            return real(thread_id, ns, reply, content, known)

        monkeypatch.setattr(core, "decode_checkpoint", counting)


def needs_sha1hex(backend: Backend) -> None:
    if backend.name == "fakeredis":
        pytest.skip("fakeredis scripts have no redis.sha1hex: every read there is a full one")


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
    warm: Any, backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    needs_sha1hex(backend)
    write_two(warm)
    reads = Reads(warm, monkeypatch)
    warm.get_tuple(config("t"))
    assert reads.known == 1


def test_a_read_by_the_id_of_the_newest_checkpoint_is_served_the_same_way(
    warm: Any, backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    needs_sha1hex(backend)
    first, second = write_two(warm)
    reads = Reads(warm, monkeypatch)
    assert as_read(warm, second) == as_read(cold(warm), second)
    assert as_read(warm, first) == as_read(cold(warm), first)
    assert reads.known == 1


def test_pending_writes_stored_after_the_put_are_read_with_it(
    warm: Any, backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    needs_sha1hex(backend)
    _, second = write_two(warm)
    cold(warm).put_writes(second, [("a", "w1"), ("b", "w2")], "task-1")
    reads = Reads(warm, monkeypatch)
    found = warm.get_tuple(config("t"))
    assert [(c, v) for _, c, v in found.pending_writes] == [("a", "w1"), ("b", "w2")]
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


def test_a_value_changed_on_the_server_is_read_as_stored(warm: Any, admin: Any) -> None:
    write_two(warm)
    blobs = warm._core.keys.thread("t").blobs
    fields = admin.hkeys(blobs)
    a1 = next(f for f in fields if f.startswith(b"0:1:a") and f.endswith(b"1"))
    a2 = next(f for f in fields if f.startswith(b"0:1:a") and f.endswith(b"2"))
    admin.hset(blobs, a2, admin.hget(blobs, a1))  # as if another writer stored it first
    mine = as_read(warm, config("t"))
    assert mine == as_read(cold(warm), config("t"))
    assert mine[1]["channel_values"]["a"] == ["x"] * 40


def test_an_evicted_value_makes_the_writers_read_raise_as_any_read(warm: Any, admin: Any) -> None:
    write_two(warm)
    blobs = warm._core.keys.thread("t").blobs
    a2 = next(f for f in admin.hkeys(blobs) if f.startswith(b"0:1:a") and f.endswith(b"2"))
    admin.hdel(blobs, a2, b"#" + a2)  # the value and its count: evicted, not freed
    with pytest.raises(CorruptDataError, match="is missing"):
        cold(warm).get_tuple(config("t"))
    with pytest.raises(CorruptDataError, match="is missing"):
        warm.get_tuple(config("t"))


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
    asaver: AsyncPlainRedisSaver, backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    await asaver.asetup()
    first = await asaver.aput(config("t"), checkpoint({"a": ["x"] * 40}), metadata(), {"a": 1})
    reads = Reads(asaver, monkeypatch)
    mine = await asaver.aget_tuple(config("t"))
    again = await AsyncPlainRedisSaver(asaver.client, key_prefix=asaver.key_prefix).aget_tuple(
        first
    )
    assert tuple(mine) == tuple(again)
    assert reads.known == (0 if backend.name == "fakeredis" else 1)


def _wrote(newest: NewestWritten, thread_id: str, size: int, *, refs: int = 1) -> None:
    fields = [f"0:{i}".encode() for i in range(refs)]
    newest.wrote(
        thread_id,
        b"0:",
        cid="c",
        record=b"r",
        parent=None,
        checkpoint=("msgpack", b"\x80"),
        metadata=("msgpack", b"\x80"),
        refs=[(f"ch{i}", field) for i, field in enumerate(fields)],
        new={field: Stored(b"v" * size, ("msgpack", b"v" * size)) for field in fields},
    )


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


def test_a_checkpoint_whose_stored_values_are_too_long_to_digest_is_not_remembered() -> None:
    newest = NewestWritten(10 * MAX_DIGESTED)
    _wrote(newest, "t", MAX_DIGESTED)
    assert newest.known("t", b"0:") is None
    _wrote(newest, "t", MAX_DIGESTED // 2)
    assert newest.known("t", b"0:") is not None


def test_a_long_value_stored_whole_is_read_whole_not_digested(
    warm: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = PlainRedisSaver(warm.client, key_prefix=warm.key_prefix + "-w", compose_values=False)
    whole.setup()
    long = ["x" * 1_000] * (2 * MAX_DIGESTED // 1_000)  # stored as one field's value
    whole.put(config("t"), checkpoint({"s": long}), metadata(), {"s": 1})
    reads = Reads(whole, monkeypatch)
    mine = as_read(whole, config("t"))
    assert mine == as_read(cold(whole), config("t"))
    assert mine[1]["channel_values"]["s"] == long
    assert reads.known == 0
