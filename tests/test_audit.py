"""audit_thread: a thread's reference counts checked against what it stores, on every
backend. Healthy threads written every way audit clean; each kind of damage made by
hand is reported as what it is."""

from __future__ import annotations

from typing import Any

import pytest

from plain_redis_saver import CorruptDataError, PlainRedisSaver, ThreadAudit, scripts
from plain_redis_saver.drive import drive
from plain_redis_saver.ops import Eval

from .helpers import checkpoint, config, metadata, put_chain
from .test_composed import LAYOUTS, history, put_versions

COUNT = b"#"


def assert_clean(found: ThreadAudit) -> None:
    assert (found.wrong_counts, found.unreferenced, found.missing) == ([], [], [])
    assert found.counts_ok and found.problem() is None


def blobs_key(saver: Any, thread_id: str) -> str:
    return saver._plans.keys.thread(thread_id).blobs


def fields(admin: Any, key: str, start: bytes) -> list[bytes]:
    return sorted(f for f in admin.hkeys(key) if f.startswith(start))


def assert_clean_once_collected(saver: PlainRedisSaver, thread_id: str) -> None:
    """Clean as its layout allows: a counted thread at once, an uncounted one (whose
    removals leave garbage) after a collection."""
    found = saver.audit_thread(thread_id)
    if found.uncounted:
        assert (found.wrong_counts, found.missing, found.problem()) == ([], [], None)
        saver.repair_thread(thread_id)
        found = saver.audit_thread(thread_id)
    assert_clean(found)


@pytest.fixture
def written(client: Any, prefix: str) -> PlainRedisSaver:
    """Thread "t" of a counted saver: twelve versions of a growing list, with pending
    writes on the last."""
    saver = PlainRedisSaver(client, key_prefix=prefix, reference_counts=True)
    saver.setup()
    configs = put_versions(saver, "t", [history(n) for n in range(1, 13)])
    saver.put_writes(configs[-1], [("m", history(14)), ("n", "plain")], "task")
    return saver


def test_a_written_thread_audits_clean_and_is_counted(written: PlainRedisSaver) -> None:
    found = written.audit_thread("t")
    assert_clean(found)
    assert (found.checkpoints, found.values) == (12, 12)
    assert found.content > 0


@LAYOUTS
def test_threads_after_retention_prune_removal_and_copy_audit_clean(
    client: Any, prefix: str, counts: bool
) -> None:
    saver = PlainRedisSaver(client, key_prefix=prefix, reference_counts=counts)
    saver.setup()
    kept = PlainRedisSaver(client, key_prefix=prefix, max_checkpoints=2, reference_counts=counts)
    put_versions(kept, "kept", [history(n) for n in range(1, 9)])
    configs = put_versions(saver, "pruned", [history(n) for n in range(1, 9)])
    saver.put_writes(configs[-1], [("m", history(10))], "task")
    saver.prune(["pruned"])
    put_chain(saver, "runs", 3, run_id="r1")
    put_chain(saver, "runs", 2, run_id="r2")
    saver.delete_for_runs(["r1"])
    saver.copy_thread("kept", "copied")
    for thread_id in ("kept", "pruned", "runs", "copied"):
        assert_clean_once_collected(saver, thread_id)


@LAYOUTS
def test_a_repeated_put_and_a_replaced_special_write_audit_clean(
    client: Any, prefix: str, counts: bool
) -> None:
    written = PlainRedisSaver(client, key_prefix=prefix, reference_counts=counts)
    [stored] = put_versions(written, "r", [history(3)])
    again = checkpoint({"m": history(5)}, versions={"m": 1})
    again["id"] = stored["configurable"]["checkpoint_id"]
    written.put(config("r"), again, metadata(step=0), {"m": 1})
    written.put_writes(stored, [("__error__", history(4))], "task")
    written.put_writes(stored, [("__error__", history(6))], "task")
    assert_clean_once_collected(written, "r")


def test_an_uncounted_thread_keeps_no_count_and_its_garbage_is_no_problem(
    client: Any, prefix: str, admin: Any
) -> None:
    saver = PlainRedisSaver(client, key_prefix=prefix, max_checkpoints=1)
    put_versions(saver, "t", [history(n) for n in range(1, 5)])
    key = blobs_key(saver, "t")
    found = saver.audit_thread("t")
    assert found.uncounted and fields(admin, key, COUNT) == []
    assert found.unreferenced and found.problem() is None


def test_a_count_written_into_an_uncounted_thread_is_reported_and_repaired_away(
    client: Any, prefix: str, admin: Any
) -> None:
    saver = PlainRedisSaver(client, key_prefix=prefix)
    put_versions(saver, "t", [history(3)])
    key = blobs_key(saver, "t")
    stray = b"#" + next(f for f in fields(admin, key, b"0:") if f != b"0:")
    admin.hset(key, stray, 1)
    assert saver.audit_thread("t").wrong_counts == [(stray, 1, 0)]
    saver.repair_thread("t")
    assert_clean(saver.audit_thread("t"))
    assert fields(admin, key, COUNT) == []


def test_an_absent_thread_audits_empty(saver: PlainRedisSaver) -> None:
    found = saver.audit_thread("nobody")
    assert_clean(found)
    assert (found.checkpoints, found.values, found.content) == (0, 0, 0)


async def test_the_async_audit_reads_what_the_sync_one_does(
    written: PlainRedisSaver, asaver: Any
) -> None:
    assert await asaver.aaudit_thread("t") == written.audit_thread("t")


def test_a_value_count_raised_by_hand_is_reported_with_both_numbers(
    written: PlainRedisSaver, admin: Any
) -> None:
    key = blobs_key(written, "t")
    count = next(f for f in fields(admin, key, COUNT) if not f.startswith(b"#*"))
    admin.hincrby(key, count, 2)
    found = written.audit_thread("t")
    assert found.wrong_counts == [(count, 3, 1)]
    assert repr(count) in (found.problem() or "")


def test_a_count_deleted_by_hand_is_reported_absent(written: PlainRedisSaver, admin: Any) -> None:
    key = blobs_key(written, "t")
    count = fields(admin, key, b"#*")[0]
    expected = int(admin.hget(key, count))
    admin.hdel(key, count)
    assert written.audit_thread("t").wrong_counts == [(count, None, expected)]


def test_a_checkpoint_count_changed_by_hand_is_reported(
    written: PlainRedisSaver, admin: Any
) -> None:
    key = blobs_key(written, "t")
    admin.hset(key, b"=0:", 11)
    assert written.audit_thread("t").wrong_counts == [(b"=0:", 11, 12)]


def test_a_value_nothing_references_is_listed_with_its_bytes_and_counts_stay_right(
    written: PlainRedisSaver, admin: Any
) -> None:
    admin.hset(blobs_key(written, "t"), b"0:1:x9", b"left over")
    found = written.audit_thread("t")
    assert (found.unreferenced, found.unreferenced_bytes) == ([b"0:1:x9"], 9)
    assert found.counts_ok and found.problem() is None


def test_a_value_deleted_by_hand_is_reported_missing(written: PlainRedisSaver, admin: Any) -> None:
    key = blobs_key(written, "t")
    value = next(f for f in fields(admin, key, b"0:") if f != b"0:")
    admin.hdel(key, value)
    found = written.audit_thread("t")
    assert value in found.missing
    assert "missing" in (found.problem() or "")


def test_a_count_that_is_no_number_raises_naming_it(written: PlainRedisSaver, admin: Any) -> None:
    key = blobs_key(written, "t")
    count = fields(admin, key, b"#*")[0]
    admin.hset(key, count, b"many")
    with pytest.raises(CorruptDataError, match="not a number"):
        written.audit_thread("t")


def test_an_evicted_key_raises_naming_it(written: PlainRedisSaver, admin: Any) -> None:
    lost = written._plans.keys.thread("t").checkpoints
    admin.unlink(lost)
    with pytest.raises(CorruptDataError, match=lost):
        written.audit_thread("t")


def test_a_repair_sets_wrong_counts_right_and_frees_what_nothing_reaches(
    written: PlainRedisSaver, admin: Any
) -> None:
    key = blobs_key(written, "t")
    raised = fields(admin, key, b"#0:")[0]
    dropped = fields(admin, key, b"#*")[0]
    expected = int(admin.hget(key, dropped))
    admin.hincrby(key, raised, 5)
    admin.hdel(key, dropped)
    admin.hset(key, b"0:1:x9", b"left over")
    read_before = written.get_tuple(config("t"))
    found = written.repair_thread("t")
    assert [(name, want) for name, _, want in found.wrong_counts] == [
        (dropped, expected),
        (raised, 1),
    ]
    assert found.unreferenced == [b"0:1:x9"]
    assert_clean(written.audit_thread("t"))
    assert written.get_tuple(config("t")) == read_before


def test_a_repair_of_a_healthy_thread_changes_nothing(written: PlainRedisSaver, admin: Any) -> None:
    keys = written._plans.keys.thread("t")
    before = [admin.hgetall(k) for k in (keys.checkpoints, keys.blobs, keys.writes)]
    assert_clean(written.repair_thread("t"))
    assert [admin.hgetall(k) for k in (keys.checkpoints, keys.blobs, keys.writes)] == before


def test_a_repair_refuses_a_thread_that_lost_a_key_and_deletes_nothing(
    written: PlainRedisSaver, admin: Any
) -> None:
    keys = written._plans.keys.thread("t")
    admin.unlink(keys.checkpoints)  # every value would look unreferenced
    before = admin.hgetall(keys.blobs)
    with pytest.raises(CorruptDataError, match=keys.checkpoints):
        written.repair_thread("t")
    assert admin.hgetall(keys.blobs) == before


def test_a_repair_applies_only_to_the_thread_it_audited(
    written: PlainRedisSaver, admin: Any
) -> None:
    """The thread is written between the audit's read and the repair: that repair call
    changes nothing, and the repair audits again and applies to what it reads then."""
    key = blobs_key(written, "t")
    admin.hset(key, b"0:1:x9", b"left over")
    [latest] = written.list(config("t"), limit=1)
    calls: list[Any] = []

    def execute(op: Any) -> Any:
        if isinstance(op, Eval) and op.script is scripts.REPAIR_THREAD:
            calls.append(admin.hget(key, b"0:1:x9"))
            if len(calls) == 1:  # a write lands between the audit and the repair
                written.put_writes(latest.config, [("n", "late")], "late-task")
        return written._runner(op)

    [found] = drive(written._plans.repair_thread("t"), execute)
    assert calls == [b"left over", b"left over"]  # the first call applied nothing
    assert found.unreferenced == [b"0:1:x9"] and admin.hget(key, b"0:1:x9") is None
    assert_clean(written.audit_thread("t"))


async def test_the_async_repair_frees_what_the_sync_audit_found(
    written: PlainRedisSaver, asaver: Any, admin: Any
) -> None:
    admin.hset(blobs_key(written, "t"), b"0:1:x9", b"left over")
    found = await asaver.arepair_thread("t")
    assert found.unreferenced == [b"0:1:x9"]
    assert_clean(written.audit_thread("t"))


def test_a_repair_refuses_a_thread_that_lost_a_key_after_the_audit_read_it(
    written: PlainRedisSaver, admin: Any
) -> None:
    keys = written._plans.keys.thread("t")
    admin.hset(keys.blobs, b"0:1:x9", b"left over")

    def execute(op: Any) -> Any:
        if isinstance(op, Eval) and op.script is scripts.REPAIR_THREAD:
            admin.unlink(keys.checkpoints)  # evicted; the generation does not move
        return written._runner(op)

    before = admin.hgetall(keys.blobs)
    with pytest.raises(CorruptDataError, match=keys.checkpoints):
        list(drive(written._plans.repair_thread("t"), execute))
    assert admin.hgetall(keys.blobs) == before
