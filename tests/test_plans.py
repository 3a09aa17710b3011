"""The sans-I/O seam: plans driven without a server. Each test feeds a plan the replies
a server would send and asserts the operations it asks for, so what a call costs in
requests is pinned down independently of any backend."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from plain_redis_saver import (
    CheckpointRemovedError,
    CorruptDataError,
    InvalidConfigError,
    SafeSerializer,
)
from plain_redis_saver.core import LIST_PAGE, MAX_ARGS_PER_CALL, Core
from plain_redis_saver.drive import drive
from plain_redis_saver.keys import Keyspace
from plain_redis_saver.ops import Batch, Call, Eval, Op, Plan
from plain_redis_saver.options import SaverOptions
from plain_redis_saver.scripts import (
    GET_CHECKPOINT,
    LIST_CHECKPOINTS,
    PUT_CHECKPOINT,
    PUT_WRITES,
    PUT_WRITES_STAGED,
)

from .helpers import checkpoint, config, metadata


def core(**options: Any) -> Core:
    return Core(Keyspace("lgplan"), SafeSerializer(), SaverOptions(**options))


def run(plan: Plan, reply: Callable[[Op], Any]) -> tuple[list[Op], list[Any]]:
    """Drive ``plan`` with ``reply`` standing in for the server: the operations it
    asked for, and what it emitted."""
    asked: list[Op] = []

    def execute(op: Op) -> Any:
        asked.append(op)
        return reply(op)

    return asked, list(drive(plan, execute))


def stored_record(plans: Core, thread_id: str = "t") -> tuple[str, bytes]:
    """A checkpoint id and its record as put() sends it (what the server then holds)."""
    cp = checkpoint({"n": 1}, versions={"n": "1"})
    asked, _ = run(plans.put(config(thread_id), cp, metadata(), {"n": "1"}), lambda _op: 1)
    put = asked[0]
    assert isinstance(put, Eval)
    return cp["id"], bytes(put.args[2])


def test_put_yields_one_eval_of_put_checkpoint() -> None:
    plans = core()
    cp = checkpoint({"n": 1}, versions={"n": "1"})
    asked, emitted = run(plans.put(config("t"), cp, metadata(), {"n": "1"}), lambda _op: 1)
    assert [type(op) for op in asked] == [Eval]
    put = asked[0]
    assert isinstance(put, Eval) and put.script is PUT_CHECKPOINT
    # "u": the thread, if new, is created uncounted; then the saver's generation seed
    # before "/"; "0": no expiry.
    assert put.keys == tuple(plans.keys.thread("t"))
    assert re.fullmatch(r"u[1-9][0-9]*/0", put.expiry)
    assert emitted == [config("t", checkpoint_id=cp["id"])]


def test_a_counting_saver_sends_no_u_before_the_seed() -> None:
    plans = core(reference_counts=True)
    cp = checkpoint({"n": 1}, versions={"n": "1"})
    asked, _ = run(plans.put(config("t"), cp, metadata(), {"n": "1"}), lambda _op: 1)
    assert isinstance(asked[0], Eval) and re.fullmatch(r"[1-9][0-9]*/0", asked[0].expiry)


def test_every_write_sends_a_seed_of_its_own() -> None:
    plans = core()
    assert plans.write_expiry != plans.write_expiry


def test_put_sends_its_parent_for_the_script_to_check() -> None:
    parent = config("t", checkpoint_id="1ef-parent")
    asked, _ = run(core().put(parent, checkpoint(), metadata(), {}), lambda _op: 1)
    assert isinstance(asked[0], Eval) and asked[0].args[5] == "1ef-parent"


def test_a_removed_parent_reported_by_the_script_names_max_checkpoints() -> None:
    def refuse(_op: Op) -> Any:
        raise CheckpointRemovedError("parent removed: 1ef-parent")

    plan = core(max_checkpoints=1).put(
        config("t", checkpoint_id="1ef-parent"), checkpoint(), metadata(), {}
    )
    with pytest.raises(CheckpointRemovedError, match="'1ef-parent'.*max_checkpoints=1"):
        run(plan, refuse)


def test_put_with_wait_replicas_sends_wait_in_the_same_round_trip() -> None:
    asked, _ = run(
        core(wait_replicas=1).put(config("t"), checkpoint(), metadata(), {}),
        lambda _op: [1, 1],
    )
    assert len(asked) == 1 and isinstance(asked[0], Batch)
    assert [type(op) for op in asked[0].ops] == [Eval, Call] and asked[0].ops[1].args[0] == "WAIT"


def test_reads_of_a_saver_with_ttl_refresh_only_an_existing_expiry() -> None:
    asked, emitted = run(core(ttl=60).get_tuple(config("t")), lambda _op: None)
    assert emitted == [None]
    assert isinstance(asked[0], Eval) and asked[0].script is GET_CHECKPOINT
    assert asked[0].expiry == "~60000"


def test_list_with_limit_250_takes_three_pages() -> None:
    plans = core()
    cid, record = stored_record(plans)
    ns = b"0:"

    def page(op: Op) -> Any:
        assert isinstance(op, Eval) and op.script is LIST_CHECKPOINTS
        size = int(op.args[3])
        entry = [ns, cid.encode(), record, b"", []]
        return [entry for _ in range(size)] + [[b""], 0, b"z", ns, []]

    asked, emitted = run(plans.list_checkpoints(config("t"), limit=250), page)
    assert [int(op.args[3]) for op in asked if isinstance(op, Eval)] == [LIST_PAGE, LIST_PAGE, 50]
    assert len(emitted) == 250


def test_a_list_page_with_fewer_values_than_its_records_reference_is_corrupt() -> None:
    plans = core()
    cid, record = stored_record(plans)
    ns = b"0:"
    entry = [ns, cid.encode(), record, b"", []]
    with pytest.raises(CorruptDataError, match="fewer than the page references"):
        run(plans.list_checkpoints(config("t"), limit=2), lambda _op: [entry, [], 1, b"", b"", []])


def test_a_3000_write_put_writes_stages_then_commits() -> None:
    plans = core()
    writes = [(f"ch{i}", i) for i in range(3000)]
    replies: dict[type, Any] = {Batch: [1, 1], Eval: 1}
    asked, _ = run(
        plans.put_writes(config("t", checkpoint_id="1"), writes, "task"),
        lambda op: replies[type(op)],
    )
    assert [type(op) for op in asked] == [Batch, Batch, Eval]
    first, second, commit = asked
    assert isinstance(first, Batch) and [c.args[0] for c in first.ops] == ["HSET", "PEXPIRE"]
    assert isinstance(commit, Eval) and commit.script is PUT_WRITES_STAGED
    staging = commit.keys[-1]
    assert all(op.args[1] == staging for batch in (first, second) for op in batch.ops)
    assert all(
        len(op.args) <= MAX_ARGS_PER_CALL
        for batch in (first, second)
        for op in batch.ops
        if isinstance(op, Call)
    )


def test_a_small_put_writes_is_one_eval() -> None:
    asked, _ = run(
        core().put_writes(config("t", checkpoint_id="1"), [("a", 1)], "task"), lambda _op: 1
    )
    assert len(asked) == 1 and isinstance(asked[0], Eval) and asked[0].script is PUT_WRITES


def test_bad_input_yields_no_operation() -> None:
    def server(op: Op) -> Any:
        raise AssertionError(f"bad input reached the server: {op!r}")

    with pytest.raises(InvalidConfigError, match="thread_id"):
        run(core().put({"configurable": {}}, checkpoint(), metadata(), {}), server)


def test_a_get_answered_with_a_reply_of_another_shape_raises_corrupt_data() -> None:
    plans = core()
    cid, record = stored_record(plans)
    with pytest.raises(CorruptDataError, match="get_checkpoint answered"):
        run(plans.get_tuple(config("t")), lambda _op: [cid.encode(), record, [], b""])
