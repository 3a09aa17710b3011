"""Claims: a write to an uncounted thread names a write generation at or after which
its client saw stored all the content it does not send, and the script stores what is
sent without looking for the rest while no content was deleted since (KEPT_SINCE <=
claim <= the generation). What makes a claim fail (a collection, a thread deleted and
written again elsewhere, a lost KEPT_SINCE) makes the write look after all: a
reference is never stored dangling. On every backend."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from plain_redis_saver import AsyncPlainRedisSaver, PlainRedisSaver, compose, scripts
from plain_redis_saver.codec import GENERATION, KEPT_SINCE
from plain_redis_saver.compose import Composer
from plain_redis_saver.ops import Eval

from .helpers import checkpoint, config, count_round_trips, metadata
from .test_composed import history, put_versions

#: Where each write script takes its claim: after the expiry, the keys and its head.
CLAIM_AT = {scripts.PUT_CHECKPOINT.sha: 6, scripts.PUT_WRITES.sha: 3}


def recording(saver: PlainRedisSaver) -> list[tuple[str, str, int | None]]:
    """Records (script name, claim, reply) of the saver's one-request writes; the reply
    None for a call that raised."""
    seen: list[tuple[str, str, int | None]] = []
    run: Callable[[Any], Any] = saver._runner

    def record(op: Any) -> Any:
        written = isinstance(op, Eval) and op.script.sha in CLAIM_AT
        entry = (op.script.name, str(op.args[CLAIM_AT[op.script.sha]])) if written else None
        try:
            reply = run(op)
        except Exception:
            if entry:
                seen.append((*entry, None))
            raise
        if entry:
            seen.append((*entry, int(reply)))
        return reply

    saver._runner = record  # type: ignore[assignment]
    return seen


def refused(name: str, reply: int | None) -> bool:
    """The reply bit saying the claim failed (see put_checkpoint.lua, put_writes.lua)."""
    assert reply is not None
    return bool(reply & (8 if name == "put_checkpoint" else 1))


def blobs(saver: PlainRedisSaver, thread_id: str) -> str:
    return saver._core.keys.thread(thread_id).blobs


def conversation(saver: PlainRedisSaver, thread_id: str, turns: int) -> Any:
    """``turns`` checkpoints of a growing message list, each with a task's write."""
    parent = config(thread_id)
    for n in range(1, turns + 1):
        cp = checkpoint({"m": history(2 * n)}, versions={"m": n})
        parent = saver.put(parent, cp, metadata(step=n), {"m": n})
        saver.put_writes(parent, [("m", history(2 * n + 1))], f"task-{n}")
    return parent


def test_a_conversation_of_one_saver_claims_at_every_write_and_every_claim_holds(
    saver: PlainRedisSaver,
) -> None:
    seen = recording(saver)
    conversation(saver, "t", 6)
    assert len(seen) == 12
    assert all(claim for _, claim, _ in seen)
    assert [name for name, claim, reply in seen if refused(name, reply)] == []
    # After the first put, the writes leave content out and claim a generation.
    assert all(claim.isdigit() for _, claim, _ in seen[2:])


#: A message list the writer stores first, whose content the next version drops.
OLD = [f"old {i} " + "o" * 200 for i in range(20)]


def two_savers(client: Any, prefix: str) -> tuple[PlainRedisSaver, PlainRedisSaver, list[Any]]:
    """A writer that stored OLD and then a shorter history in thread "t", the configs
    of those checkpoints, and another saver of the same prefix."""
    writer = PlainRedisSaver(client, key_prefix=prefix)
    stored = put_versions(writer, "t", [OLD, history(3)])
    return writer, PlainRedisSaver(client, key_prefix=prefix), stored


def test_a_claim_from_before_another_saver_collected_is_refused_and_the_write_resent(
    client: Any, prefix: str
) -> None:
    writer, other, stored = two_savers(client, prefix)
    old = OLD
    other.prune(["t"])  # deletes the content only the first checkpoint reached
    seen = recording(writer)
    with count_round_trips() as rt:
        writer.put_writes(stored[-1], [("m", old)], "task")
    # The claim fails, the content is missing: refused whole, then sent with all of it.
    assert rt.count == 2
    assert [(claim, reply is None) for _, claim, reply in seen][1:] == [("*", False)]
    assert seen[0][1].isdigit() and seen[0][2] is None
    assert other.get_tuple(config("t")).pending_writes[0][2] == old


def test_a_thread_deleted_and_written_again_elsewhere_refuses_the_old_claims(
    client: Any, prefix: str
) -> None:
    writer, other, _ = two_savers(client, prefix)
    old = OLD
    other.delete_thread("t")
    # Written again by another saver, as often as the writer wrote it and more: its
    # generations start from that saver's own seed, not from where the writer's were.
    stored = put_versions(other, "t", [history(n) for n in range(1, 6)])
    cp = checkpoint({"m": old}, versions={"m": 6})
    with count_round_trips() as rt:
        writer.put(stored[-1], cp, metadata(step=6), {"m": 6})
    assert rt.count == 2
    found = other.audit_thread("t")
    assert (found.missing, found.unreferenced) == ([], [])
    assert other.get_tuple(config("t")).checkpoint["channel_values"]["m"] == old


def test_a_thread_that_lost_kept_since_refuses_one_claim_and_sets_it_again(
    saver: PlainRedisSaver, admin: Any
) -> None:
    parent = conversation(saver, "t", 2)
    admin.hdel(blobs(saver, "t"), KEPT_SINCE)
    seen = recording(saver)
    cp = checkpoint({"m": history(7)}, versions={"m": 3})
    parent = saver.put(parent, cp, metadata(step=3), {"m": 3})
    assert admin.hget(blobs(saver, "t"), KEPT_SINCE) == admin.hget(blobs(saver, "t"), GENERATION)
    cp = checkpoint({"m": history(8)}, versions={"m": 4})
    saver.put(parent, cp, metadata(step=4), {"m": 4})
    assert [refused(name, reply) for name, _, reply in seen] == [True, False]


def test_a_collection_moves_the_generation_and_kept_since_together(
    client: Any, prefix: str, admin: Any
) -> None:
    saver = PlainRedisSaver(client, key_prefix=prefix)
    put_versions(saver, "t", [[f"old {i} " + "o" * 200 for i in range(20)], history(3)])
    before = int(admin.hget(blobs(saver, "t"), GENERATION))
    saver.prune(["t"])
    after = admin.hmget(blobs(saver, "t"), GENERATION, KEPT_SINCE)
    assert int(after[0]) > before and after[1] == after[0]


def seed_of(op: Any) -> int:
    """The number a generation the write ``op`` creates starts from (see write_expiry)."""
    return int(op.expiry.lstrip("u").split("/")[0])


def recording_seeds(saver: PlainRedisSaver) -> list[int]:
    """Records the seed of every script call the saver makes from now on."""
    seeds: list[int] = []
    run: Callable[[Any], Any] = saver._runner

    def record(op: Any) -> Any:
        if isinstance(op, Eval) and "/" in op.expiry:
            seeds.append(seed_of(op))
        return run(op)

    saver._runner = record  # type: ignore[assignment]
    return seeds


@pytest.mark.parametrize("first", ["put", "put_writes"])
def test_a_new_thread_counts_its_generations_from_the_seed_of_its_first_write(
    saver: PlainRedisSaver, admin: Any, first: str
) -> None:
    seeds = recording_seeds(saver)
    if first == "put":
        put_versions(saver, "t", [history(1)])
    else:
        saver.put_writes(config("t", checkpoint_id="1"), [("n", 1)], "task")
    assert int(admin.hget(blobs(saver, "t"), GENERATION)) == seeds[0]


def test_a_copy_counts_its_generations_from_the_seed_of_its_import(
    saver: PlainRedisSaver, admin: Any
) -> None:
    put_versions(saver, "src", [history(1), history(2)])
    seeds = recording_seeds(saver)
    saver.copy_thread("src", "dst")
    assert int(admin.hget(blobs(saver, "dst"), GENERATION)) - seeds[0] in range(3)


def test_every_write_draws_its_own_seed(saver: PlainRedisSaver) -> None:
    seeds = recording_seeds(saver)
    conversation(saver, "t", 3)
    assert len(set(seeds)) == len(seeds) == 6


def test_a_thread_its_creator_deletes_and_writes_again_refuses_another_savers_claims(
    client: Any, prefix: str
) -> None:
    creator = PlainRedisSaver(client, key_prefix=prefix)
    other = PlainRedisSaver(client, key_prefix=prefix)
    stored = put_versions(creator, "t", [history(2)])
    cp = checkpoint({"m": OLD}, versions={"m": 2})
    other.put(stored[-1], cp, metadata(step=1), {"m": 2})  # its claims now cover OLD
    creator.delete_thread("t")
    # The creator writes it again: its generations do not start where they did.
    again = put_versions(creator, "t", [history(n) for n in range(1, 6)])
    cp = checkpoint({"m": OLD}, versions={"m": 6})
    with count_round_trips() as rt:
        other.put(again[-1], cp, metadata(step=6), {"m": 6})
    assert rt.count == 2
    found = creator.audit_thread("t")
    assert (found.missing, found.unreferenced) == ([], [])


async def test_concurrent_writes_of_one_saver_and_another_savers_prunes_store_nothing_dangling(
    aclient: Any, client: Any, prefix: str
) -> None:
    """Replies of one saver's concurrent writes come back in any order while another
    saver prunes (collects) the thread: whatever order the server ran them in, every
    claim that held was right, so the thread references no missing content."""
    writer = AsyncPlainRedisSaver(aclient, key_prefix=prefix, max_checkpoints=3)
    other = PlainRedisSaver(client, key_prefix=prefix)
    parent = config("t")
    for step in range(1, 30):
        cp = checkpoint({"m": history(step)}, versions={"m": step})
        parent = await writer.aput(parent, cp, metadata(step=step), {"m": step})
        calls = [
            writer.aput_writes(parent, [("m", history(step + k))], f"task {k}") for k in range(3)
        ]
        if step % 5 == 0:
            calls.append(asyncio.to_thread(other.prune, ["t"]))
        await asyncio.gather(*calls)
    found = other.audit_thread("t")
    assert found.missing == []
    stored = other.get_tuple(config("t"))
    assert stored.checkpoint["channel_values"]["m"] == history(29)
    assert sorted(value for _, _, value in stored.pending_writes) == [
        history(29 + k) for k in range(3)
    ]


# ---- the client's record (no server)

A, B, C = (bytes([n]) * 16 for n in (1, 2, 3))


def test_a_write_sending_all_its_content_claims_star() -> None:
    composer = Composer()
    assert composer.unsent("t", {A: b"a"}) == ({A: b"a"}, "*")
    composer.held("t", [A])
    assert composer.unsent("t", {B: b"b"}) == ({B: b"b"}, "*")


def test_a_write_leaving_out_content_it_saw_stored_claims_where_it_saw_it() -> None:
    composer = Composer()
    composer.held("t", [A, B])
    composer.proved("t", 40, False, [A, B])
    assert composer.unsent("t", {A: b"a", C: b"c"}) == ({C: b"c"}, "40")


def test_content_held_but_not_seen_since_the_claimed_generation_makes_no_claim() -> None:
    composer = Composer()
    composer.held("t", [A, B])
    composer.proved("t", 40, False, [A])
    assert composer.unsent("t", {B: b"b", C: b"c"}) == ({C: b"c"}, "")


def test_later_writes_add_to_the_record_and_keep_its_generation() -> None:
    composer = Composer()
    composer.held("t", [A, B])
    composer.proved("t", 40, False, [A])
    composer.proved("t", 41, False, [B])
    assert composer.unsent("t", {A: b"a", B: b"b", C: b"c"})[1] == "40"


def test_a_refused_claim_starts_the_record_over() -> None:
    composer = Composer()
    composer.held("t", [A, B])
    composer.proved("t", 40, False, [A])
    composer.proved("t", 45, True, [B])
    assert composer.unsent("t", {B: b"b", C: b"c"})[1] == "45"
    assert composer.unsent("t", {A: b"a", C: b"c"})[1] == ""


def test_a_reply_from_before_the_records_generation_adds_nothing() -> None:
    composer = Composer()
    composer.held("t", [A, B])
    composer.proved("t", 40, True, [A])
    composer.proved("t", 39, False, [B])
    assert composer.unsent("t", {B: b"b", C: b"c"})[1] == ""


def test_a_refused_claim_of_a_call_that_changed_nothing_drops_the_record() -> None:
    composer = Composer()
    composer.held("t", [A])
    composer.proved("t", 40, False, [A])
    composer.proved("t", 0, True, [A])
    assert composer.unsent("t", {A: b"a", C: b"c"})[1] == ""


def test_forgetting_content_takes_it_out_of_the_record() -> None:
    composer = Composer()
    composer.held("t", [A, B])
    composer.proved("t", 40, False, [A, B])
    composer.forget("t", [A])
    composer.held("t", [A])  # a later write sent it again
    assert composer.unsent("t", {A: b"a", C: b"c"})[1] == ""


# ---- recipes: runs sent as the pieces the server holds

RUN, D = bytes([9]) * 16, bytes([4]) * 16


def with_run(composer: Composer, items: tuple[tuple[bytes | None, bytes], ...]) -> None:
    """``composer`` as if its last compose closed run RUN of ``items``."""
    composer._runs_items[RUN] = items


def test_a_run_whose_pieces_the_server_holds_goes_as_a_recipe_of_them() -> None:
    composer = Composer()
    with_run(composer, ((A, b"a" * 70), (None, b"lit"), (B, b"b" * 70), (C, b"c" * 70)))
    composer.held("t", [A, B])
    unsent = {RUN: b"a" * 70 + b"lit" + b"b" * 70 + b"c" * 70, D: b"d"}
    recipes = composer.recipes("t", unsent)
    assert unsent == {D: b"d"}
    items = compose._items(recipes[RUN], 0, "recipe")
    # Held pieces by reference, the rest (a literal, a piece not held) by their bytes.
    assert items == [(True, A), (False, b"lit"), (True, B), (False, b"c" * 70)]


def test_a_run_holding_fewer_than_two_held_pieces_goes_as_bytes() -> None:
    composer = Composer()
    with_run(composer, ((A, b"a" * 70), (C, b"c" * 70)))
    composer.held("t", [A])
    unsent = {RUN: b"a" * 70 + b"c" * 70}
    assert composer.recipes("t", unsent) == {}
    assert RUN in unsent


def test_a_run_of_another_threads_pieces_goes_as_bytes() -> None:
    composer = Composer()
    with_run(composer, ((A, b"a" * 70), (B, b"b" * 70)))
    composer.held("other", [A, B])
    assert composer.recipes("t", {RUN: b"a" * 70 + b"b" * 70}) == {}
