"""Eviction of any set of a thread's keys, on every backend.

Redis evicts whole keys, one at a time, and under memory pressure several keys of one
thread can go before anything reads it. For every non-empty proper subset of a thread's
keys removed (30 subsets of the five keys of a thread with checkpoints; 2 of a thread that
has only pending writes), each read either raises CorruptDataError naming a removed key
or answers exactly what it answered before the removal, and ``check`` lists the thread as
damaged. A test per read loops over the subsets on copies of one source thread, so the
suite stays fast. Then: the CLI's ``stats`` and ``threads`` report damaged threads and go
on, and every key of a thread leads discovery to it.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from plain_redis_saver import CorruptDataError, PlainRedisSaver
from plain_redis_saver.cli import Store, main

from .conftest import Backend
from .helpers import checkpoint, config, metadata

KEY_NAMES = ("checkpoints", "order", "blobs", "writes", "namespaces")


@dataclass
class Source:
    """A thread to copy, damage and read; ``present`` are the indexes of its keys."""

    thread_id: str
    present: tuple[int, ...]
    # checkpoint ids by role: "first" (with writes), "second" (shares a value with
    # "first", no writes), "inner" (another namespace, with writes)
    ids: dict[str, str]


def build_checkpoints_thread(saver: PlainRedisSaver, thread_id: str) -> Source:
    """Checkpoints in two namespaces, pending writes, a value two checkpoints share."""
    v1 = saver.get_next_version(None, None)
    v2 = saver.get_next_version(v1, None)
    first_cp = checkpoint({"shared": "same", "n": 1}, versions={"shared": v1, "n": v1})
    first = saver.put(
        config(thread_id), first_cp, metadata(step=0, run_id="r1"), {"shared": v1, "n": v1}
    )
    saver.put_writes(first, [("n", 2), ("shared", "w")], "task-a")
    second_cp = checkpoint({"shared": "same", "n": 2}, versions={"shared": v1, "n": v2})
    second = saver.put(first, second_cp, metadata(step=1, run_id="r1"), {"n": v2})
    inner_cp = checkpoint({"x": [1, 2]}, versions={"x": v1})
    inner = saver.put(config(thread_id, "inner"), inner_cp, metadata(step=0), {"x": v1})
    saver.put_writes(inner, [("x", 3)], "task-b")
    ids = {
        role: conf["configurable"]["checkpoint_id"]
        for role, conf in (("first", first), ("second", second), ("inner", inner))
    }
    return Source(thread_id, (0, 1, 2, 3, 4), ids)


def build_writes_only_thread(saver: PlainRedisSaver, thread_id: str) -> Source:
    """Pending writes stored before the thread's first checkpoint (LangGraph may call
    put_writes before put): only the writes and channel values keys exist."""
    ahead = config(thread_id, "", "1ef-not-yet-put")
    saver.put_writes(ahead, [("n", 1)], "task-a")
    return Source(thread_id, (2, 3), {"first": "1ef-not-yet-put"})


BUILDERS = {"checkpoints": build_checkpoints_thread, "writes-only": build_writes_only_thread}


@pytest.fixture(params=list(BUILDERS))
def source(request: pytest.FixtureRequest, saver: PlainRedisSaver) -> Source:
    return BUILDERS[request.param](saver, "src")


def subsets(present: tuple[int, ...]) -> Iterator[tuple[int, ...]]:
    """Every non-empty proper subset of the present keys (all of them gone is no thread)."""
    for size in range(1, len(present)):
        yield from itertools.combinations(present, size)


def view(tup: Any) -> Any:
    """A checkpoint tuple without its thread id (copies compare with their source)."""
    if tup is None:
        return None

    def conf(c: Any) -> Any:
        return c and {k: v for k, v in c["configurable"].items() if k != "thread_id"}

    return (
        conf(tup.config),
        tup.checkpoint,
        tup.metadata,
        conf(tup.parent_config),
        tup.pending_writes,
    )


Read = Callable[[PlainRedisSaver, str, Source], Any]


def each_subset_raises_or_reads_as_before(
    saver: PlainRedisSaver, admin: Any, source: Source, read: Read
) -> None:
    """For every subset: copy the source, read, remove the subset's keys, read again."""
    wrong = []
    for number, subset in enumerate(subsets(source.present)):
        victim = f"victim{number}"
        saver.copy_thread(source.thread_id, victim)
        before = read(saver, victim, source)
        keys = saver._plans.keys.thread(victim)
        removed = [keys[i] for i in subset]
        admin.delete(*removed)  # one hash tag: one slot, so one DEL on a cluster too
        gone = "+".join(KEY_NAMES[i] for i in subset)
        try:
            after = read(saver, victim, source)
        except CorruptDataError as exc:
            if not any(key in str(exc) for key in removed):
                wrong.append(f"{gone}: error names no removed key: {exc}")
        else:
            if after != before:
                wrong.append(f"{gone}: answered {after!r} instead of {before!r}")
        saver.delete_thread(victim)
    assert not wrong, "\n".join(wrong)


def _get_latest(saver: PlainRedisSaver, tid: str, source: Source) -> Any:
    return [view(saver.get_tuple(config(tid, ns))) for ns in ("", "inner")]


def _get_by_id(saver: PlainRedisSaver, tid: str, source: Source) -> Any:
    return [
        view(saver.get_tuple(config(tid, "inner" if role == "inner" else "", cid)))
        for role, cid in source.ids.items()
    ]


def _list_namespace(saver: PlainRedisSaver, tid: str, source: Source) -> Any:
    return [[view(t) for t in saver.list(config(tid, ns))] for ns in ("", "inner")]


def _list_thread(saver: PlainRedisSaver, tid: str, source: Source) -> Any:
    return [view(t) for t in saver.list(config(tid, None))]


def _list_filtered(saver: PlainRedisSaver, tid: str, source: Source) -> Any:
    return [view(t) for t in saver.list(config(tid, None), filter={"run_id": "r1"})]


def _list_all_threads(saver: PlainRedisSaver, tid: str, source: Source) -> Any:
    return [(t.config["configurable"]["thread_id"], view(t)) for t in saver.list(None)]


def _delta_history(saver: PlainRedisSaver, tid: str, source: Source) -> Any:
    latest = saver.get_delta_channel_history(config=config(tid), channels=["n", "shared"])
    of_id = config(tid, "", source.ids.get("second", source.ids["first"]))
    return latest, saver.get_delta_channel_history(config=of_id, channels=["n", "shared"])


_copies = itertools.count()


def _copy_and_list(saver: PlainRedisSaver, tid: str, source: Source) -> Any:
    target = f"copy{next(_copies)}"
    try:
        saver.copy_thread(tid, target)
        return [view(t) for t in saver.list(config(target, None))]
    finally:
        saver.delete_thread(target)


READS: dict[str, Read] = {
    "get_tuple-latest": _get_latest,
    "get_tuple-by-id": _get_by_id,
    "list-one-namespace": _list_namespace,
    "list-every-namespace": _list_thread,
    "list-with-filter": _list_filtered,
    "list-all-threads": _list_all_threads,
    "delta-channel-history": _delta_history,
    "copy_thread": _copy_and_list,
}


@pytest.mark.parametrize("read", list(READS))
def test_every_read_of_a_thread_missing_any_keys_raises_or_answers_as_before(
    saver: PlainRedisSaver, admin: Any, source: Source, read: str
) -> None:
    each_subset_raises_or_reads_as_before(saver, admin, source, READS[read])


# --------------------------------------------------------------------------- the CLI


def run_cli(backend: Backend, prefix: str, *args: str) -> tuple[int, Any]:
    """Runs the CLI in-process on the least-privilege client; (exit code, JSON out)."""
    client = backend.client()
    try:
        with contextlib.redirect_stdout(_Out()) as out, contextlib.redirect_stderr(_Out()):
            code = main(["--key-prefix", prefix, *args, "--json"], client=client)
    finally:
        client.close()
    return code, json.loads(out.text) if out.text else None


class _Out:
    def __init__(self) -> None:
        self.text = ""

    def write(self, text: str) -> int:
        self.text += text
        return len(text)

    def flush(self) -> None:
        pass


def test_check_lists_a_thread_missing_any_keys_as_damaged(
    backend: Backend, saver: PlainRedisSaver, admin: Any, prefix: str, source: Source
) -> None:
    assert run_cli(backend, prefix, "check")[0] == 0
    wrong = []
    for number, subset in enumerate(subsets(source.present)):
        victim = f"victim{number}"
        saver.copy_thread(source.thread_id, victim)
        keys = saver._plans.keys.thread(victim)
        removed = [keys[i] for i in subset]
        admin.delete(*removed)
        code, report = run_cli(backend, prefix, "check")
        rows = {r["thread_id"]: r for r in report["results"]}
        problem = rows.get(victim, {}).get("problem")
        gone = "+".join(KEY_NAMES[i] for i in subset)
        if code != 1 or not problem or not any(key in problem for key in removed):
            wrong.append(f"{gone}: exit {code}, {victim} reported as {problem!r}")
        if rows[source.thread_id]["problem"] is not None:
            wrong.append(f"{gone}: the healthy source was reported damaged")
        saver.delete_thread(victim)
    assert not wrong, "\n".join(wrong)


@pytest.fixture
def one_damaged(saver: PlainRedisSaver, admin: Any) -> str:
    """Threads 'a' and 'c' healthy; 'b' lost its records and order index together."""
    for tid in ("a", "b", "c"):
        build_checkpoints_thread(saver, tid)
    keys = saver._plans.keys.thread("b")
    admin.delete(keys.checkpoints, keys.order)
    return keys.checkpoints


def test_stats_counts_damaged_threads_and_goes_on(
    backend: Backend, saver: PlainRedisSaver, prefix: str, one_damaged: str
) -> None:
    code, totals = run_cli(backend, prefix, "stats")
    assert code == 1
    assert totals["threads"] == 3 and totals["damaged_threads"] == 1
    assert totals["checkpoints"] == 2 * len(list(saver.list(config("a", None))))


def test_threads_reports_each_damaged_thread_and_goes_on(
    backend: Backend, prefix: str, one_damaged: str
) -> None:
    code, page = run_cli(backend, prefix, "threads", "--count", "1")
    rows = {row["thread_id"]: row for row in page["threads"]}
    cursor = page["cursor"]
    while cursor != "0":
        more = run_cli(backend, prefix, "threads", "--count", "1", "--cursor", cursor)[1]
        assert not set(rows) & {row["thread_id"] for row in more["threads"]}
        rows.update({row["thread_id"]: row for row in more["threads"]})
        cursor = more["cursor"]
    assert set(rows) == {"a", "b", "c"}
    assert rows["a"]["problem"] is None and rows["c"]["problem"] is None
    assert one_damaged in rows["b"]["problem"]


def test_threads_pages_list_every_thread_once_though_each_has_five_keys(
    backend: Backend, saver: PlainRedisSaver, prefix: str
) -> None:
    for n in range(12):
        build_checkpoints_thread(saver, f"t{n}")
    seen: list[str] = []
    cursor = "0"
    while True:
        code, page = run_cli(backend, prefix, "threads", "--count", "3", "--cursor", cursor)
        assert code == 0
        seen += [row["thread_id"] for row in page["threads"]]
        cursor = page["cursor"]
        if cursor == "0":
            break
    assert sorted(seen) == sorted(f"t{n}" for n in range(12))


# --------------------------------------------------------------------------- discovery


def test_list_of_all_threads_skips_a_thread_with_only_pending_writes(
    saver: PlainRedisSaver,
) -> None:
    build_checkpoints_thread(saver, "full")
    build_writes_only_thread(saver, "ahead")
    listed = {t.config["configurable"]["thread_id"] for t in saver.list(None)}
    assert listed == {"full"}


def test_list_of_all_threads_finds_a_thread_by_its_namespaces_key_alone(
    saver: PlainRedisSaver, admin: Any
) -> None:
    build_checkpoints_thread(saver, "full")
    keys = saver._plans.keys.thread("left")
    build_checkpoints_thread(saver, "left")
    admin.delete(keys.checkpoints, keys.order, keys.blobs, keys.writes)
    with pytest.raises(CorruptDataError, match=re.escape(keys.checkpoints)):
        list(saver.list(None))


def test_delete_for_runs_goes_past_a_thread_with_only_pending_writes(
    saver: PlainRedisSaver,
) -> None:
    build_checkpoints_thread(saver, "full")
    build_writes_only_thread(saver, "ahead")
    saver.delete_for_runs(["r1"])
    assert [t.metadata.get("run_id") for t in saver.list(config("full", None))] == [None]
    assert saver.get_tuple(config("ahead")) is None


def test_check_thread_names_a_missing_key(saver: PlainRedisSaver, admin: Any) -> None:
    build_checkpoints_thread(saver, "t")
    saver.check_thread("t")
    keys = saver._plans.keys.thread("t")
    admin.delete(keys.checkpoints, keys.namespaces)
    with pytest.raises(CorruptDataError, match=re.escape(keys.checkpoints)):
        saver.check_thread("t")


async def test_acheck_thread_names_a_missing_key(asaver: Any, admin: Any) -> None:
    await asaver.aput_writes(config("t", "", "1ef-not-yet-put"), [("n", 1)], "task")
    await asaver.acheck_thread("t")  # pending writes before the first checkpoint: healthy
    keys = asaver._plans.keys.thread("t")
    admin.delete(keys.blobs)
    with pytest.raises(CorruptDataError, match=re.escape(keys.blobs)):
        await asaver.acheck_thread("t")


def test_a_scan_page_names_each_thread_by_its_first_remaining_key_whatever_comes_before(
    saver: PlainRedisSaver, client: Any, admin: Any, prefix: str
) -> None:
    """A page holding a healthy thread's late key and a damaged thread's first remaining
    key: the answers about the healthy thread's earlier keys must not be read as the
    damaged thread's (one pipeline carries both)."""
    build_checkpoints_thread(saver, "healthy")
    build_checkpoints_thread(saver, "damaged")
    damaged = saver._plans.keys.thread("damaged")
    admin.delete(damaged.checkpoints, damaged.order)
    healthy = saver._plans.keys.thread("healthy")
    store = Store(client, prefix, None)
    owned = store._first_keys_of_threads([healthy.namespaces, damaged.blobs])
    assert owned == ["damaged"]
