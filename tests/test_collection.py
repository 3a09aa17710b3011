"""Uncounted threads: what a saver composing values creates by default. They keep no
reference counts; removals leave garbage, and a collection (the generation-guarded
repair) deletes it: at once after prune and delete_for_runs, and after every
GARBAGE_FLOOR (or half the thread's checkpoints) removals by retention. On every
backend."""

from __future__ import annotations

from typing import Any

import pytest

from plain_redis_saver import PlainRedisSaver, scripts
from plain_redis_saver.codec import GARBAGE, GARBAGE_FLOOR, UNCOUNTED
from plain_redis_saver.drive import drive
from plain_redis_saver.ops import Eval

from .helpers import checkpoint, config, count_round_trips, metadata, put_chain
from .test_composed import history, put_versions, values_hash


def count_fields(saver: PlainRedisSaver, admin: Any, thread_id: str) -> list[bytes]:
    return [f for f in values_hash(saver, admin, thread_id) if f.startswith(b"#")]


def garbage(saver: PlainRedisSaver, admin: Any, thread_id: str) -> int:
    return int(admin.hget(saver._core.keys.thread(thread_id).blobs, GARBAGE) or 0)


@pytest.mark.parametrize(
    ("options", "uncounted"),
    [({}, True), ({"reference_counts": True}, False), ({"compose_values": False}, False)],
    ids=["default", "reference_counts", "whole-values"],
)
def test_which_savers_create_uncounted_threads(
    client: Any, prefix: str, admin: Any, options: dict[str, Any], uncounted: bool
) -> None:
    saver = PlainRedisSaver(client, key_prefix=prefix, **options)
    put_versions(saver, "t", [history(3), history(4)])
    stored = values_hash(saver, admin, "t")
    assert (UNCOUNTED in stored, not count_fields(saver, admin, "t")) == (uncounted, uncounted)
    assert saver.audit_thread("t").uncounted is uncounted


def test_a_thread_keeps_the_layout_it_was_created_with_whoever_writes_it(
    client: Any, prefix: str, admin: Any
) -> None:
    counting = PlainRedisSaver(client, key_prefix=prefix, reference_counts=True)
    default = PlainRedisSaver(client, key_prefix=prefix)
    for first, then, tid in ((counting, default, "counted"), (default, counting, "uncounted")):
        stored = put_versions(first, tid, [history(2)])
        cp = checkpoint({"m": history(5)}, versions={"m": 2})
        then.put(stored[-1], cp, metadata(step=1), {"m": 2})
        then.put_writes(stored[-1], [("m", history(6))], "task")
        found = then.audit_thread(tid)
        assert found.uncounted is (tid == "uncounted")
        assert (found.wrong_counts, found.unreferenced, found.missing) == ([], [], [])


def test_writes_before_the_first_put_create_an_uncounted_thread(
    saver: PlainRedisSaver, admin: Any
) -> None:
    saver.put_writes(config("t", checkpoint_id="1"), [("m", history(3))], "task")
    assert UNCOUNTED in values_hash(saver, admin, "t")
    put_chain(saver, "t", 1)
    assert saver.audit_thread("t").uncounted


def test_a_call_writing_nothing_creates_nothing(
    saver: PlainRedisSaver, admin: Any, prefix: str
) -> None:
    saver.put_writes(config("t", checkpoint_id="1"), [], "task")
    assert list(admin.scan_iter(match=f"{prefix}:*{{t}}*")) == []


def test_retention_collects_before_the_garbage_passes_the_floor(
    client: Any, prefix: str, admin: Any
) -> None:
    saver = PlainRedisSaver(client, key_prefix=prefix, max_checkpoints=1)
    parent, seen = config("t"), []
    for i in range(3 * GARBAGE_FLOOR):
        cp = checkpoint({"m": history(i + 1)}, versions={"m": i + 1})
        parent = saver.put(parent, cp, metadata(step=i), {"m": i + 1})
        seen.append(garbage(saver, admin, "t"))
        assert saver.get_tuple(config("t")).checkpoint["channel_values"]["m"] == history(i + 1)
    # Each put after the first removes one checkpoint; the put that brings the garbage
    # to the floor collects it, so it never stays there.
    assert max(seen) == GARBAGE_FLOOR - 1 and seen.count(0) == 3
    found = saver.audit_thread("t")
    # One channel value per removed checkpoint (and the content only it reached).
    assert len([f for f in found.unreferenced if not f.startswith(b"*")]) == seen[-1]
    assert (found.wrong_counts, found.missing) == ([], [])


def test_the_put_that_collects_makes_two_more_round_trips_the_others_one(
    client: Any, prefix: str
) -> None:
    saver = PlainRedisSaver(client, key_prefix=prefix, max_checkpoints=1)
    saver.setup()
    parent, trips, sent = config("t"), [], []
    for i in range(GARBAGE_FLOOR + 2):
        cp = checkpoint({"m": history(i + 1)}, versions={"m": i + 1})
        with count_round_trips() as rt:
            parent = saver.put(parent, cp, metadata(step=i), {"m": i + 1})
        trips.append(rt.count)
        sent.append(rt.sent)
    # One read of the (small) thread and one repair call; the put's own reply says when.
    assert trips == [1] * GARBAGE_FLOOR + [3, 1]
    # The collector forgets only the content it deleted: the next put sends what is new,
    # not the history the thread still holds.
    assert sent[-1] < sent[-3] + 1000


@pytest.mark.parametrize("how", ["prune", "delete_for_runs"])
def test_maintenance_removals_collect_at_once(saver: PlainRedisSaver, admin: Any, how: str) -> None:
    put_versions(saver, "t", [history(n) for n in range(1, 6)])
    put_chain(saver, "t", 2, run_id="r1")
    if how == "prune":
        saver.prune(["t"])
    else:
        saver.delete_for_runs(["r1"])
    found = saver.audit_thread("t")
    assert (found.unreferenced, garbage(saver, admin, "t")) == ([], 0)
    assert found.checkpoints == (1 if how == "prune" else 5)


def test_removing_every_checkpoint_leaves_no_key(
    saver: PlainRedisSaver, admin: Any, prefix: str
) -> None:
    put_versions(saver, "t", [history(n) for n in range(1, 4)])
    put_chain(saver, "t", 2, run_id="r1")
    saver.prune(["t"], strategy="delete")
    saver.delete_for_runs(["r1"])
    assert list(admin.scan_iter(match=f"{prefix}:*{{t}}*")) == []
    stored = put_chain(saver, "u", 3, run_id="r2")
    saver.put_writes(stored[-1], [("m", history(3))], "task")
    saver.delete_for_runs(["r2"])
    # The pending writes of a removed checkpoint go with it: nothing is left either.
    assert list(admin.scan_iter(match=f"{prefix}:*{{u}}*")) == []


def test_a_collection_skips_a_thread_written_meanwhile_and_runs_at_the_next_removal(
    client: Any, prefix: str, admin: Any
) -> None:
    saver = PlainRedisSaver(client, key_prefix=prefix, max_checkpoints=1)
    other = PlainRedisSaver(client, key_prefix=prefix)
    parent = config("t")
    for i in range(GARBAGE_FLOOR):
        cp = checkpoint({"m": history(i + 1)}, versions={"m": i + 1})
        parent = saver.put(parent, cp, metadata(step=i), {"m": i + 1})
    assert garbage(saver, admin, "t") == GARBAGE_FLOOR - 1
    i = GARBAGE_FLOOR
    cp = checkpoint({"m": history(i + 1)}, versions={"m": i + 1})
    late = config("t", checkpoint_id=cp["id"])

    def execute(op: Any) -> Any:
        if isinstance(op, Eval) and op.script is scripts.REPAIR_THREAD:
            other.put_writes(late, [("n", "late")], "late-task")  # lands before the repair
        return saver._runner(op)

    [parent] = drive(saver._plans.put(parent, cp, metadata(step=i), {"m": i + 1}), execute)
    assert garbage(saver, admin, "t") == GARBAGE_FLOOR  # not collected, nothing deleted
    assert saver.get_tuple(config("t")).checkpoint["channel_values"]["m"] == history(i + 1)
    cp = checkpoint({"m": history(i + 2)}, versions={"m": i + 2})
    saver.put(parent, cp, metadata(step=i + 1), {"m": i + 2})
    found = saver.audit_thread("t")
    assert (found.unreferenced, garbage(saver, admin, "t")) == ([], 0)


def test_content_collected_under_another_process_is_sent_again(client: Any, prefix: str) -> None:
    writer = PlainRedisSaver(client, key_prefix=prefix)
    other = PlainRedisSaver(client, key_prefix=prefix)
    old = [f"old {i} " + "o" * 200 for i in range(20)]
    stored = put_versions(writer, "t", [old, history(3), history(4)])
    other.prune(["t"])  # collects the content only the first checkpoint reached
    cp = checkpoint({"m": old}, versions={"m": 4})
    with count_round_trips() as rt:
        writer.put(stored[-1], cp, metadata(step=3), {"m": 4})
    assert rt.count == 2  # refused whole, then sent with all its content
    assert other.get_tuple(config("t")).checkpoint["channel_values"]["m"] == old


def test_a_copy_takes_the_layout_of_the_saver_that_makes_it(
    client: Any, prefix: str, admin: Any
) -> None:
    counting = PlainRedisSaver(client, key_prefix=prefix, reference_counts=True)
    default = PlainRedisSaver(client, key_prefix=prefix)
    stored = put_versions(counting, "src", [history(n) for n in range(1, 6)])
    counting.put_writes(stored[-1], [("m", history(7))], "task")
    default.copy_thread("src", "uncounted copy")
    counting.copy_thread("uncounted copy", "counted copy")
    for tid, uncounted in (("uncounted copy", True), ("counted copy", False)):
        found = default.audit_thread(tid)
        assert found.uncounted is uncounted
        assert (found.wrong_counts, found.unreferenced, found.missing) == ([], [], [])
        got = default.get_tuple(config(tid))
        assert got.checkpoint["channel_values"]["m"] == history(5)
        assert got.pending_writes[0][2] == history(7)


def test_a_copy_leaves_the_garbage_of_its_source_behind(client: Any, prefix: str) -> None:
    saver = PlainRedisSaver(client, key_prefix=prefix, max_checkpoints=1)
    put_versions(saver, "src", [history(n) for n in range(1, 6)])
    assert saver.audit_thread("src").unreferenced  # four removed checkpoints' values
    saver.copy_thread("src", "dst")
    found = saver.audit_thread("dst")
    assert (found.checkpoints, found.unreferenced, found.missing) == (1, [], [])
    assert saver.get_tuple(config("dst")).checkpoint["channel_values"]["m"] == history(5)
