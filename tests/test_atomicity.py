"""All or nothing at any size: large put / put_writes, copy_thread and export.

A put or put_writes too large for one request (ElastiCache Serverless takes at most
3,999 arguments) stages its rows and commits them in one script; copy_thread and the
CLI's export read a thread in several requests and must still see one state of it.
"""

from __future__ import annotations

import contextlib
import io
import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from plain_redis_saver import ConcurrentWriteError, PlainRedisSaver
from plain_redis_saver.core import MAX_ARGS_PER_CALL, STAGING_TTL_MS
from plain_redis_saver.keys import Keyspace
from plain_redis_saver.ops import Eval
from plain_redis_saver.transfer import export_thread

from .conftest import Backend
from .helpers import checkpoint, config, metadata, new_id, put_chain

#: More items than one request carries: the call spans three requests.
LARGE = 3000
#: Size of each value in the out-of-memory tests: a LARGE call carries ~3 MB.
VALUE_BYTES = 1000
assert LARGE > MAX_ARGS_PER_CALL // 2


# --------------------------------------------------------------------------- helpers


def stored_state(admin: Any, prefix: str, thread_id: str) -> tuple[Any, ...]:
    """Everything stored for a thread, read key by key with the admin client."""
    keys = Keyspace(prefix).thread(thread_id)
    return (
        admin.hgetall(keys.checkpoints),
        admin.zrange(keys.order, 0, -1),
        admin.hgetall(keys.blobs),
        admin.hgetall(keys.writes),
        admin.hgetall(keys.namespaces),
    )


def keys_of_thread(admin: Any, prefix: str, thread_id: str) -> list[bytes]:
    """Every key in the thread's hash tag: its own keys and any staging key."""
    tag = Keyspace(prefix).staging(thread_id, "").split(":s:")[0]
    return sorted(admin.scan_iter(match=tag + ":*", count=1000))


def staging_keys(admin: Any, prefix: str, thread_id: str) -> list[bytes]:
    return list(admin.scan_iter(match=Keyspace(prefix).staging_scan_pattern(thread_id)))


def wide_checkpoint(n: int, size: int = 8) -> Any:
    return checkpoint({f"c{i}": f"{i:0{size}d}" for i in range(n)})


def many_writes(n: int, size: int = 8) -> list[tuple[str, Any]]:
    return [(f"w{i}", f"{i:0{size}d}") for i in range(n)]


class Interposed:
    """Wraps a saver's runner: ``before(n, op)`` runs before the n-th operation."""

    def __init__(self, runner: Any, before: Callable[[int, Any], None]) -> None:
        self.runner, self.before, self.count = runner, before, 0

    def __call__(self, op: Any) -> Any:
        self.count += 1
        self.before(self.count, op)
        return self.runner(op)


@contextlib.contextmanager
def interposed(saver: Any, before: Callable[[int, Any], None]) -> Iterator[Interposed]:
    original = saver._runner
    saver._runner = Interposed(original, before)
    try:
        yield saver._runner
    finally:
        saver._runner = original


def is_commit(op: Any) -> bool:
    return isinstance(op, Eval) and op.script.name.endswith("_staged")


# --------------------------------------------------------------------------- large calls


def test_a_put_of_3000_new_channel_values_round_trips_exactly(saver: Any) -> None:
    cp = wide_checkpoint(LARGE)
    stored = saver.put(config("t"), cp, metadata(), cp["channel_versions"])
    assert saver.get_tuple(stored).checkpoint["channel_values"] == cp["channel_values"]


def test_a_put_writes_of_3000_writes_round_trips_exactly(saver: Any) -> None:
    [stored] = put_chain(saver, "t", 1)
    writes = many_writes(LARGE)
    saver.put_writes(stored, writes, "task")
    assert saver.get_tuple(stored).pending_writes == [("task", c, v) for c, v in writes]


async def test_an_async_put_writes_of_3000_writes_round_trips_exactly(asaver: Any) -> None:
    cp = checkpoint({"a": 1})
    stored = await asaver.aput(config("t"), cp, metadata(), cp["channel_versions"])
    writes = many_writes(LARGE)
    await asaver.aput_writes(stored, writes, "task")
    tup = await asaver.aget_tuple(stored)
    assert tup.pending_writes == [("task", c, v) for c, v in writes]


def test_a_large_put_writes_with_repeated_special_channels_keeps_the_last(saver: Any) -> None:
    [stored] = put_chain(saver, "t", 1)
    writes = [*many_writes(LARGE), ("__error__", "first"), ("__error__", "last")]
    saver.put_writes(stored, writes, "task")
    pending = saver.get_tuple(stored).pending_writes
    assert len(pending) == LARGE + 1 and ("task", "__error__", "last") in pending


@pytest.mark.parametrize("call", ["put", "put_writes"])
def test_a_large_call_cut_before_its_commit_leaves_nothing_visible_and_no_staging(
    saver: Any, admin: Any, prefix: str, call: str
) -> None:
    [parent] = put_chain(saver, "t", 1)
    before = stored_state(admin, prefix, "t")
    listed = list(saver.list(config("t")))

    def cut(_n: int, op: Any) -> None:
        if is_commit(op):
            raise redis.ConnectionError("connection lost before the commit (injected)")

    with interposed(saver, cut), pytest.raises(redis.ConnectionError):
        if call == "put":
            cp = wide_checkpoint(LARGE)
            saver.put(parent, cp, metadata(step=1), cp["channel_versions"])
        else:
            saver.put_writes(parent, many_writes(LARGE), "task")
    assert (stored_state(admin, prefix, "t"), list(saver.list(config("t")))) == (before, listed)
    assert staging_keys(admin, prefix, "t") == []


def test_staged_rows_carry_a_short_expiry_until_the_commit(
    saver: Any, admin: Any, prefix: str
) -> None:
    [parent] = put_chain(saver, "t", 1)
    seen: list[int] = []

    def look(_n: int, op: Any) -> None:
        if is_commit(op):
            seen.extend(admin.pttl(k) for k in staging_keys(admin, prefix, "t"))

    with interposed(saver, look):
        saver.put_writes(parent, many_writes(LARGE), "task")
    assert len(seen) == 1 and 0 < seen[0] <= STAGING_TTL_MS
    assert staging_keys(admin, prefix, "t") == []


def test_a_commit_whose_staged_rows_expired_stores_nothing(
    saver: Any, admin: Any, prefix: str
) -> None:
    [parent] = put_chain(saver, "t", 1)
    before = stored_state(admin, prefix, "t")

    def expire(_n: int, op: Any) -> None:
        if is_commit(op):
            for key in staging_keys(admin, prefix, "t"):
                admin.delete(key)

    with interposed(saver, expire), pytest.raises(redis.ResponseError, match="staged rows"):
        saver.put_writes(parent, many_writes(LARGE), "task")
    assert stored_state(admin, prefix, "t") == before


# ------------------------------------------------------------------ out of memory


def _nodes(admin: Any, backend: Backend) -> list[dict[str, Any]]:
    if backend.is_cluster:
        return [{"target_nodes": node} for node in admin.get_primaries()]
    return [{}]


def limit_memory(admin: Any, backend: Backend, extra: int) -> None:
    """maxmemory on every node ``extra`` bytes above what it uses now (noeviction: a
    write that needs memory beyond it is refused)."""
    for target in _nodes(admin, backend):
        used = int(admin.info("memory", **target)["used_memory"])
        admin.config_set("maxmemory-policy", "noeviction", **target)
        admin.config_set("maxmemory", max(1, used + extra), **target)


def unlimit_memory(admin: Any, backend: Backend) -> None:
    for target in _nodes(admin, backend):
        admin.config_set("maxmemory", 0, **target)


@contextlib.contextmanager
def memory_headroom(admin: Any, backend: Backend, extra: int) -> Iterator[None]:
    try:
        limit_memory(admin, backend, extra)
        yield
    finally:
        unlimit_memory(admin, backend)


#: maxmemory headroom for each attempt: from refusing the first request of a ~3 MB call
#: to accepting all of it, with most steps landing in between.
HEADROOMS = [k * 400_000 for k in range(13)]


def _over_the_edge(
    backend: Backend,
    admin: Any,
    prefix: str,
    call: Callable[[str, Any], None],
    expected: Callable[[str, Any], Any],
    actual: Callable[[str], Any],
) -> None:
    """Runs ``call`` on a fresh thread at each headroom: every failed call left the thread
    as it was and no staging key; every successful one stored all of it."""
    if backend.name == "fakeredis":
        pytest.skip("fakeredis does not model maxmemory (it has no CONFIG SET)")
    setup = PlainRedisSaver(backend.client(), key_prefix=prefix)
    outcomes = []
    for n, extra in enumerate(HEADROOMS):
        thread_id = f"edge{n}"
        [parent] = put_chain(setup, thread_id, 1)
        before = stored_state(admin, prefix, thread_id)
        try:
            with memory_headroom(admin, backend, extra):
                call(thread_id, parent)
        except redis.ResponseError as exc:
            assert "maxmemory" in str(exc), exc
            outcomes.append("refused")
            assert stored_state(admin, prefix, thread_id) == before, f"headroom {extra}"
            assert staging_keys(admin, prefix, thread_id) == []
        else:
            outcomes.append("stored")
            assert actual(thread_id) == expected(thread_id, parent)
        setup.delete_thread(thread_id)
    assert {"refused", "stored"} <= set(outcomes), outcomes


def test_a_large_put_refused_for_memory_at_any_point_leaves_nothing(
    backend: Backend, admin: Any, prefix: str
) -> None:
    wide = wide_checkpoint(LARGE, VALUE_BYTES)
    reader = PlainRedisSaver(backend.client(), key_prefix=prefix)

    def call(thread_id: str, parent: Any) -> None:
        newer = {**wide, "id": new_id()}  # newer than the parent
        reader.put(parent, newer, metadata(step=1), wide["channel_versions"])  # type: ignore[arg-type]

    _over_the_edge(
        backend,
        admin,
        prefix,
        call,
        lambda _t, _p: wide["channel_values"],
        lambda t: reader.get_tuple(config(t)).checkpoint["channel_values"],
    )


def test_a_large_put_writes_refused_for_memory_at_any_point_leaves_nothing(
    backend: Backend, admin: Any, prefix: str
) -> None:
    writes = many_writes(LARGE, VALUE_BYTES)
    reader = PlainRedisSaver(backend.client(), key_prefix=prefix)
    _over_the_edge(
        backend,
        admin,
        prefix,
        lambda _t, parent: reader.put_writes(parent, writes, "task"),
        lambda _t, _p: [("task", c, v) for c, v in writes],
        lambda t: reader.get_tuple(config(t)).pending_writes,
    )


# ------------------------------------------------------------------ consistent copies


def content(tup: Any) -> tuple[Any, ...]:
    return (
        tup.checkpoint["id"],
        tup.checkpoint["channel_values"],
        tup.metadata,
        tup.parent_config and tup.parent_config["configurable"]["checkpoint_id"],
        tup.pending_writes,
    )


def thread_content(saver: Any, thread_id: str) -> list[tuple[Any, ...]]:
    return [content(t) for t in saver.list(config(thread_id, None))]


#: Steps of the checkpoints a writer adds while a thread is read.
FIRST_STEP = 10_000


def build_source(saver: Any, thread_id: str, n: int) -> Any:
    """n checkpoints, each with two pending writes; returns the oldest one's config."""
    parent = config(thread_id)
    oldest = None
    for step in range(n):
        cp = checkpoint({"step": step}, versions={"step": saver.get_next_version(None, None)})
        parent = saver.put(parent, cp, metadata(step=step), cp["channel_versions"])
        saver.put_writes(parent, [("a", step), ("b", -step)], "task")
        oldest = oldest or parent
    return oldest


def write_one_step(saver: Any, oldest: Any, step: int) -> None:
    """A write to the oldest checkpoint (which a reader going newest first reads last),
    then a new checkpoint with a new value, then its writes."""
    saver.put_writes(oldest, [("late", step)], f"late{step}")
    thread_id = oldest["configurable"]["thread_id"]
    newest = saver.get_tuple(config(thread_id))
    cp = checkpoint({"step": step}, versions={"step": saver.get_next_version(None, None)})
    stored = saver.put(newest.config, cp, metadata(step=step), cp["channel_versions"])
    saver.put_writes(stored, [("a", step), ("b", -step)], "task")


@pytest.fixture
def source(saver: Any) -> Any:
    """The oldest checkpoint of thread 'src' of 1,200: more fields than one HSCAN page."""
    return build_source(saver, "src", 1200)


def test_copy_thread_with_a_write_before_any_of_its_requests_copies_one_state(
    saver: Any, backend: Backend, admin: Any, prefix: str, source: Any
) -> None:
    writer = PlainRedisSaver(backend.client(), key_prefix=prefix)
    step = FIRST_STEP
    cut = 1
    while True:
        before = thread_content(saver, "src")

        def write(n: int, _op: Any, at: int = cut, s: int = step) -> None:
            if n == at:
                write_one_step(writer, source, s)

        with interposed(saver, write) as run:
            saver.copy_thread("src", f"copy{cut}")
        after = thread_content(saver, "src")
        copied = thread_content(saver, f"copy{cut}")
        assert copied in (before, after), f"write before request {cut}"
        if run.count < cut:
            break  # the copy needed fewer requests: the write came after it
        cut, step = cut + 1, step + 1
    assert cut > 3


class PacedWriter:
    """A thread running write_one_step on the thread of ``oldest`` concurrently with a
    reader: one step each time the reader has sent ``every`` more requests (so that some
    reads see no write and succeed, and the others race with a write at any point)."""

    def __init__(self, backend: Backend, prefix: str, oldest: Any, every: int = 3) -> None:
        self.saver = PlainRedisSaver(backend.client(), key_prefix=prefix)
        self.oldest, self.every = oldest, every
        self.turns = threading.Semaphore(0)
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._write)

    def _write(self) -> None:
        step = FIRST_STEP
        while not self.done.is_set():
            if self.turns.acquire(timeout=0.05):
                write_one_step(self.saver, self.oldest, step)
                step += 1

    def tick(self, n: int, _op: Any) -> None:
        if n % self.every == 0:
            self.turns.release()

    @contextlib.contextmanager
    def running(self, reader: Any) -> Iterator[None]:
        self.thread.start()
        try:
            with interposed(reader, self.tick):
                yield
        finally:
            self.done.set()
            self.thread.join()


def test_copy_thread_under_a_concurrent_writer_copies_one_state_or_nothing(
    saver: Any, backend: Backend, admin: Any, prefix: str, source: Any
) -> None:
    outcomes = []
    with PacedWriter(backend, prefix, source).running(saver):
        for attempt in range(10):
            try:
                saver.copy_thread("src", f"copy{attempt}")
                outcomes.append("copied")
            except ConcurrentWriteError:
                outcomes.append("refused")
                assert keys_of_thread(admin, prefix, f"copy{attempt}") == []
    final = {c[0]: c for c in thread_content(saver, "src")}
    for attempt, outcome in enumerate(outcomes):
        if outcome == "copied":
            assert_a_state_of(final, thread_content(saver, f"copy{attempt}"))


def assert_a_state_of(final: dict[str, tuple[Any, ...]], copied: list[tuple[Any, ...]]) -> None:
    """``copied`` is the thread at one moment of write_one_step's writer: its oldest
    checkpoints as they are now, except the moment's own traces. The oldest checkpoint
    holds the "late" write of every added checkpoint copied, and at most of one more (the
    step in progress); the newest may still lack its writes (each call all or nothing)."""
    by_id = {c[0]: c for c in copied}
    ids = sorted(by_id)
    assert ids == sorted(final)[: len(ids)]
    oldest, newest = ids[0], ids[-1]
    added = {by_id[i][2]["step"] for i in ids if by_id[i][2]["step"] >= FIRST_STEP}
    late = {value for _, channel, value in by_id[oldest][4] if channel == "late"}
    assert added <= late and late - added <= {max(added, default=FIRST_STEP - 1) + 1}
    for cid in ids:
        *rest, pending = by_id[cid]
        *now, now_pending = final[cid]
        assert rest == now
        if cid == oldest:
            assert pending == [w for w in now_pending if w[1] != "late" or w[2] in late]
        elif cid == newest:
            assert pending in ([], now_pending)
        else:
            assert pending == now_pending


def test_copy_thread_onto_a_target_written_during_the_copy_keeps_the_targets_write(
    saver: Any, backend: Backend, prefix: str, source: Any
) -> None:
    writer = PlainRedisSaver(backend.client(), key_prefix=prefix)
    [target] = put_chain(saver, "dst", 1)

    def write(_n: int, op: Any) -> None:
        if isinstance(op, Eval) and op.script.name == "commit_copy" and not written:
            written.append(1)
            writer.put_writes(target, [("mine", 1)], "own")

    written: list[int] = []
    with interposed(saver, write):
        saver.copy_thread("src", "dst")
    assert saver.get_tuple(target).pending_writes == [("own", "mine", 1)]
    assert len(list(saver.list(config("dst")))) == 1200 + 1


def test_copy_thread_cut_before_any_request_leaves_no_target_keys(
    saver: Any, admin: Any, prefix: str, source: Any
) -> None:
    cut = 1
    while True:

        def fail(n: int, _op: Any, at: int = cut) -> None:
            if n == at:
                raise redis.ConnectionError("connection lost (injected)")

        try:
            with interposed(saver, fail):
                saver.copy_thread("src", f"cut{cut}")
        except redis.ConnectionError:
            assert keys_of_thread(admin, prefix, f"cut{cut}") == []
            cut += 1
            continue
        break
    assert cut > 3 and thread_content(saver, f"cut{cut}") == thread_content(saver, "src")


def test_copy_staging_keys_carry_the_staging_expiry(
    saver: Any, admin: Any, prefix: str, source: Any
) -> None:
    seen: list[int] = []

    def look(_n: int, op: Any) -> None:
        if isinstance(op, Eval) and op.script.name == "commit_copy":
            seen.extend(admin.pttl(k) for k in staging_keys(admin, prefix, "copy"))

    with interposed(saver, look):
        saver.copy_thread("src", "copy")
    assert seen and all(0 < t <= STAGING_TTL_MS for t in seen)
    assert (
        staging_keys(admin, prefix, "copy") == []
        and admin.pttl(Keyspace(prefix).thread("copy").checkpoints) == -1
    )


# ------------------------------------------------------------------ export


def test_export_with_a_write_before_any_of_its_requests_exports_one_state(
    backend: Backend, prefix: str, saver: Any
) -> None:
    oldest = build_source(saver, "src", 250)  # three list pages
    writer = PlainRedisSaver(backend.client(), key_prefix=prefix)
    exporter = PlainRedisSaver(backend.client(), key_prefix=prefix)
    step, cut = FIRST_STEP, 1
    while True:
        before = thread_content(saver, "src")

        def write(n: int, _op: Any, at: int = cut, s: int = step) -> None:
            if n == at:
                write_one_step(writer, oldest, s)

        file = io.StringIO()
        with interposed(exporter, write) as run:
            export_thread(exporter, "src", file)
        lines = [json.loads(line) for line in file.getvalue().splitlines()]
        after = thread_content(saver, "src")
        exported = sorted(line["config"]["configurable"]["checkpoint_id"] for line in lines[1:-1])
        assert exported in (sorted(c[0] for c in before), sorted(c[0] for c in after))
        writes = sum(len(line["pending_writes"]) for line in lines[1:-1])
        assert writes in (sum(len(c[4]) for c in before), sum(len(c[4]) for c in after))
        if run.count < cut:
            break
        cut, step = cut + 1, step + 1
    assert cut > 3


def test_thread_snapshot_under_a_concurrent_writer_is_one_state_or_refused(
    saver: Any, backend: Backend, prefix: str
) -> None:
    oldest = build_source(saver, "src", 300)
    snapshots = []
    # A snapshot of 300 checkpoints takes five requests (three list pages).
    with PacedWriter(backend, prefix, oldest, every=6).running(saver):
        for _ in range(10):
            with contextlib.suppress(ConcurrentWriteError):
                snapshots.append([content(t) for t in saver.thread_snapshot("src")])
    final = {c[0]: c for c in thread_content(saver, "src")}
    for snap in snapshots:
        assert_a_state_of(final, snap)


def test_a_commit_sent_over_maxmemory_stores_the_whole_call(
    backend: Backend, saver: Any, admin: Any, prefix: str
) -> None:
    """Redis and Valkey refuse a script over maxmemory only at its first write that may
    grow memory; the commit first unlinks its staging hash, so once the rows are staged
    it runs whole (the memory they take moves from the staging hash to the thread)."""
    if backend.name == "fakeredis":
        pytest.skip("fakeredis does not model maxmemory (it has no CONFIG SET)")
    [parent] = put_chain(saver, "t", 1)
    writes = many_writes(LARGE, VALUE_BYTES)

    def squeeze(_n: int, op: Any) -> None:
        if is_commit(op):
            limit_memory(admin, backend, -1_000_000)

    try:
        with interposed(saver, squeeze):
            saver.put_writes(parent, writes, "task")
    finally:
        unlimit_memory(admin, backend)
    assert saver.get_tuple(parent).pending_writes == [("task", c, v) for c, v in writes]
    assert staging_keys(admin, prefix, "t") == []
