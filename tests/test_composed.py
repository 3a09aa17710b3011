"""Storage schema 2: values stored as trees of shared content (compose.py and the
content helpers of includes/common.lua), on every backend."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plain_redis_saver import CorruptDataError, PlainRedisSaver, compose
from plain_redis_saver import core as core_module
from plain_redis_saver.codec import RECIPE_FIELD, unpack
from plain_redis_saver.compose import is_node
from plain_redis_saver.newest import NewestWritten
from plain_redis_saver.ops import Batch, Eval

from .helpers import checkpoint, cold, config, count_round_trips, metadata, node_items

CONTENT = b"*"
COUNT = b"#*"


def message(i: int) -> str:
    return f"message {i:04d} " + "x" * 280


def history(n: int) -> list[str]:
    return [message(i) for i in range(n)]


def put_versions(saver: Any, thread_id: str, lists: list[list[str]]) -> list[Any]:
    """One checkpoint per list, each storing it as a new version of channel "m"."""
    parent, out = config(thread_id), []
    for i, value in enumerate(lists):
        version = saver.get_next_version(None, None) if i == 0 else i + 1
        cp = checkpoint({"m": value}, versions={"m": version})
        parent = saver.put(parent, cp, metadata(step=i), {"m": version})
        out.append(parent)
    return out


def values_hash(saver: Any, admin: Any, thread_id: str) -> dict[bytes, bytes]:
    return admin.hgetall(saver._core.keys.thread(thread_id).blobs)


def content_fields(saver: Any, admin: Any, thread_id: str) -> set[bytes]:
    return {f for f in values_hash(saver, admin, thread_id) if f.startswith(CONTENT)}


def _references(data: bytes, start: int) -> list[bytes]:
    return [item for is_reference, item in node_items(data, start) if is_reference]


#: The two layouts a thread may have: uncounted (the default of a saver composing
#: values) and counted (reference_counts=True, and every release 0.1 thread).
LAYOUTS = pytest.mark.parametrize("counts", [False, True], ids=["uncounted", "counted"])


@pytest.fixture(params=[False, True], ids=["uncounted", "counted"])
def warm(request: Any, client: Any, prefix: str) -> PlainRedisSaver:
    """A set-up saver creating threads of either layout."""
    saver = PlainRedisSaver(client, key_prefix=prefix, reference_counts=request.param)
    saver.setup()
    return saver


def assert_counts_consistent(saver: Any, admin: Any, thread_id: str) -> None:
    """A counted thread: every content count equals the references to it from stored
    values and nodes, and no content is stored without references (nothing leaked,
    nothing dangling). An uncounted one: no count at all, nothing missing, and once
    collected nothing left that nothing reaches."""
    found = saver.audit_thread(thread_id)
    if found.uncounted:
        assert not [f for f in values_hash(saver, admin, thread_id) if f.startswith(b"#")]
        assert (found.wrong_counts, found.missing) == ([], [])
        saver.repair_thread(thread_id)
        found = saver.audit_thread(thread_id)
        assert (found.wrong_counts, found.unreferenced, found.missing) == ([], [], [])
        return
    keys = saver._core.keys.thread(thread_id)
    blobs = admin.hgetall(keys.blobs)
    writes = admin.hgetall(keys.writes)
    expected: dict[bytes, int] = {}
    for field, value in [*blobs.items(), *writes.items()]:
        if field.startswith(CONTENT):
            refs = _references(value, 0) if value[0] in (0, 1) else []
        elif value.startswith(b"\xc1"):
            refs = _references(value, 1)
        else:
            refs = []
        for ref in refs:
            expected[ref] = expected.get(ref, 0) + 1
    counts = {f[2:]: int(v) for f, v in blobs.items() if f.startswith(COUNT)}
    stored = {f[1:] for f in blobs if f.startswith(CONTENT)}
    assert counts == expected
    assert stored == set(expected)
    # The saver's own audit agrees: counts right, nothing unreachable, nothing missing.
    found = saver.audit_thread(thread_id)
    assert (found.wrong_counts, found.unreferenced, found.missing) == ([], [], [])


def test_a_growing_history_stores_each_message_a_bounded_number_of_times(
    warm: Any, admin: Any
) -> None:
    lists = [history(n) for n in range(1, 41)]
    put_versions(warm, "t", lists)
    stored = sum(len(v) for v in values_hash(warm, admin, "t").values())
    whole = len(warm.serde.dumps_typed(lists[-1])[1])
    # Schema 1 stored every version whole: 20x the last one here. Each element is now
    # stored twice at most (alone while its run is open, then in its run), plus nodes.
    assert stored < 3 * whole
    assert warm.get_tuple(config("t")).checkpoint["channel_values"]["m"] == lists[-1]


def test_a_put_sends_what_is_new_not_the_history(warm: Any) -> None:
    stored = put_versions(warm, "t", [history(n) for n in range(1, 40)])
    sent = []
    for n in (40, 41):
        cp = checkpoint({"m": history(n)}, versions={"m": n})
        with count_round_trips() as rt:
            stored.append(warm.put(stored[-1], cp, metadata(step=n), {"m": n}))
        sent.append(rt.sent)
    whole = len(warm.serde.dumps_typed(history(41))[1])
    assert max(sent) < whole / 4


def sent_recipes(saver: Any, monkeypatch: pytest.MonkeyPatch, before: Any = None) -> list[Any]:
    """The recipes each of ``saver``'s writes sends (a dict per write that has content),
    calling ``before(recipes)`` as each write is about to send them."""
    composer = saver._core.composer
    real = composer.recipes
    seen: list[Any] = []

    def recording(thread_id: str, unsent: dict[bytes, bytes]) -> dict[bytes, bytes]:
        recipes = real(thread_id, unsent)
        seen.append(recipes)
        if before is not None and recipes:
            before(recipes)
        return recipes

    monkeypatch.setattr(composer, "recipes", recording)
    return seen


def assert_read_back_elsewhere(saver: Any, stored: list[Any]) -> None:
    """Another process reads each of ``stored`` (put_versions of ``history(1)``,
    ``history(2)``, ...) back exactly."""
    reader = cold(saver)
    for n, saved in enumerate(stored, start=1):
        assert reader.get_tuple(saved).checkpoint["channel_values"]["m"] == history(n)


def is_recipe(arg: Any) -> bool:
    return isinstance(arg, bytes) and arg[:1] == RECIPE_FIELD and len(arg) == 17


def run_bytes(saver: Any, run: bytes) -> int:
    return sum(len(data) for _, data in saver._core.composer._runs_items[run])


def test_a_run_of_pieces_stored_one_by_one_is_sent_as_a_recipe(
    warm: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A list that grows closes a run of its elements now and then; the server holds
    # them, stored one by one while the run was open, and builds the run from them.
    recipes = sent_recipes(warm, monkeypatch)
    parent, sizes = config("t"), []
    for n in range(1, 60):
        cp = checkpoint({"m": history(n)}, versions={"m": n})
        with count_round_trips() as trips:
            parent = warm.put(parent, cp, metadata(step=n), {"m": n})
        sizes.append(trips.sent)
    closing = [(sent, r) for sent, r in zip(sizes, recipes, strict=True) if r]
    assert closing, "no put closed a run"
    for sent, made in closing:
        assert sent < sum(run_bytes(warm, run) for run in made)


def test_every_version_of_runs_built_from_recipes_reads_back_exactly(
    warm: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    recipes = sent_recipes(warm, monkeypatch)
    stored = put_versions(warm, "t", [history(n) for n in range(1, 60)])
    assert any(recipes)
    assert_read_back_elsewhere(warm, stored)


def test_a_recipe_naming_a_piece_the_server_lost_is_sent_again_with_the_bytes(
    warm: Any, admin: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    blobs = warm._core.keys.thread("t").blobs
    lost: list[bytes] = []

    def lose_a_piece(recipes: dict[bytes, bytes]) -> None:
        if lost:
            return
        run = next(iter(recipes))
        piece = next(d for d, _ in warm._core.composer._runs_items[run] if d is not None)
        admin.hdel(blobs, CONTENT + piece)
        lost.append(piece)

    recipes = sent_recipes(warm, monkeypatch, lose_a_piece)
    requests: list[Any] = []
    runner = warm._runner
    monkeypatch.setattr(warm, "_runner", lambda op: requests.append(op) or runner(op))
    parent = config("t")
    for n in range(1, 60):
        cp = checkpoint({"m": history(n)}, versions={"m": n})
        requests.clear()
        parent = warm.put(parent, cp, metadata(step=n), {"m": n})
        if lost:
            break
    assert lost, "no put closed a run"
    assert len(requests) == 2  # refused whole, then sent with the run's bytes
    assert recipes and any(is_recipe(arg) for arg in requests[0].args)
    assert not any(is_recipe(arg) for arg in requests[1].args)  # the run's bytes instead
    assert cold(warm).get_tuple(config("t")).checkpoint["channel_values"]["m"] == history(n)


def test_recipes_staged_with_a_call_too_large_for_one_request_are_built_at_its_commit(
    warm: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Staged rows reach the commit script as its arguments, recipes among them.
    monkeypatch.setattr(core_module, "MAX_ARGS_PER_CALL", 12)
    staged: list[Any] = []
    runner = warm._runner

    def spying(op: Any) -> Any:
        # The rows staged ahead, and those the commit carries itself.
        if isinstance(op, Batch):
            staged.extend(arg for call in op.ops for arg in call.args)
        elif isinstance(op, Eval) and op.script.name.endswith("_staged"):
            staged.extend(op.args)
        return runner(op)

    monkeypatch.setattr(warm, "_runner", spying)
    stored = put_versions(warm, "t", [history(n) for n in range(1, 60)])
    assert any(is_recipe(arg) for arg in staged)
    assert_read_back_elsewhere(warm, stored)


def test_a_malformed_recipe_fails_the_write_and_stores_nothing(
    warm: Any, admin: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    stored = put_versions(warm, "t", [history(n) for n in range(1, 10)])
    before = values_hash(warm, admin, "t")
    composer = warm._core.composer
    monkeypatch.setattr(composer, "recipes", lambda thread_id, unsent: {b"short": b"\x01" * 17})
    cp = checkpoint({"m": history(10)}, versions={"m": 10})
    with pytest.raises(CorruptDataError, match="recipe"):
        warm.put(stored[-1], cp, metadata(step=10), {"m": 10})
    assert values_hash(warm, admin, "t") == before


def test_every_version_reads_back_exactly(warm: Any) -> None:
    lists = [history(n) for n in range(0, 60, 3)]
    configs = put_versions(warm, "t", lists)
    for value, stored in zip(lists, configs, strict=True):
        assert warm.get_tuple(stored).checkpoint["channel_values"]["m"] == value
    listed = [t.checkpoint["channel_values"]["m"] for t in warm.list(config("t"))]
    assert listed == lists[::-1]


def test_a_write_and_a_channel_holding_one_list_share_its_content(warm: Any, admin: Any) -> None:
    [stored] = put_versions(warm, "t", [history(1)])
    value = history(30)
    warm.put_writes(stored, [("m", value)], "task")
    after_write = content_fields(warm, admin, "t")
    cp = checkpoint({"m": value}, versions={"m": 2})
    warm.put(stored, cp, metadata(step=1), {"m": 2})
    assert content_fields(warm, admin, "t") == after_write
    assert warm.get_tuple(config("t")).checkpoint["channel_values"]["m"] == value
    assert_counts_consistent(warm, admin, "t")


@LAYOUTS
def test_retention_frees_the_content_only_removed_checkpoints_used(
    backend: Any, client: Any, prefix: str, admin: Any, counts: bool
) -> None:
    saver = PlainRedisSaver(client, key_prefix=prefix, max_checkpoints=1, reference_counts=counts)
    lists = [[f"{i} {message(j)}" for j in range(10)] for i in range(8)]
    put_versions(saver, "t", lists)
    put_versions(saver, "last only", lists[-1:])
    assert_counts_consistent(saver, admin, "t")  # an uncounted thread is collected here
    assert content_fields(saver, admin, "t") and len(content_fields(saver, admin, "t")) == len(
        content_fields(saver, admin, "last only")
    )


def test_removing_every_checkpoint_leaves_no_content(warm: Any, admin: Any) -> None:
    stored = put_versions(warm, "t", [history(n) for n in range(1, 12)])
    warm.put_writes(stored[-1], [("m", history(13))], "task")
    warm.prune(["t"], strategy="delete")
    left = values_hash(warm, admin, "t")
    assert not [f for f in left if f.startswith((CONTENT, COUNT))]


def test_writes_removed_with_their_checkpoint_release_their_content(warm: Any, admin: Any) -> None:
    stored = put_versions(warm, "t", [history(3)] * 1)
    warm.put_writes(stored[0], [("m", [f"w {message(i)}" for i in range(20)])], "task")
    warm.put_writes(stored[0], [("__error__", [f"e {message(i)}" for i in range(20)])], "t2")
    warm.put_writes(stored[0], [("__error__", [f"f {message(i)}" for i in range(20)])], "t2")
    assert_counts_consistent(warm, admin, "t")
    warm.prune(["t"], strategy="delete")
    assert not [f for f in values_hash(warm, admin, "t") if f.startswith((CONTENT, COUNT))]


@LAYOUTS
def test_a_put_after_another_process_deleted_the_thread_resends_the_content(
    backend: Any, client: Any, prefix: str, admin: Any, counts: bool
) -> None:
    writer = PlainRedisSaver(client, key_prefix=prefix, reference_counts=counts)
    other = PlainRedisSaver(client, key_prefix=prefix)
    stored = put_versions(writer, "t", [history(n) for n in range(1, 6)])
    other.delete_thread("t")
    cp = checkpoint({"m": history(6)}, versions={"m": 6})
    with count_round_trips() as rt:
        writer.put(stored[-1], cp, metadata(step=6), {"m": 6})
    assert rt.count == 2  # refused whole, then sent with all its content
    assert writer.get_tuple(config("t")).checkpoint["channel_values"]["m"] == history(6)
    assert_counts_consistent(writer, admin, "t")
    cp = checkpoint({"m": history(7)}, versions={"m": 7})
    with count_round_trips() as rt:
        writer.put(config("t", checkpoint_id=cp["id"]), cp, metadata(step=7), {"m": 7})
    assert rt.count == 1


def test_missing_content_makes_a_read_raise_corrupt_data_naming_the_key(
    warm: Any, admin: Any
) -> None:
    put_versions(warm, "t", [history(20)])
    keys = warm._core.keys.thread("t")
    victim = sorted(content_fields(warm, admin, "t"))[0]
    admin.hdel(keys.blobs, victim)
    with pytest.raises(CorruptDataError, match="missing") as caught:
        cold(warm).get_tuple(config("t"))
    assert keys.blobs in str(caught.value)


def read_sent(saver: Any, read: Any, nodes: bool = False) -> tuple[Any, int]:
    """What ``read()`` returns, and how many pieces (and nodes, with ``nodes``) the
    server sent with it."""
    core = saver._core
    seen: list[int] = []
    real = core._read_content

    def counting(thread_id: str, flat: Any, held: Any, **options: Any) -> Any:
        seen.append(sum(1 for data in flat[1::2] if nodes or not is_node(data)))
        return real(thread_id, flat, held, **options)

    core._read_content = counting
    try:
        return read(), sum(seen)
    finally:
        del core._read_content


def test_a_read_by_the_writer_is_sent_none_of_the_pieces_it_wrote(warm: Any) -> None:
    put_versions(warm, "t", [history(n) for n in range(1, 60)])
    got, pieces = read_sent(warm, lambda: warm.get_tuple(config("t")))
    assert got.checkpoint["channel_values"]["m"] == history(59)
    assert pieces == 0


def test_another_process_reads_every_piece_once_then_holds_them(warm: Any) -> None:
    put_versions(warm, "t", [history(n) for n in range(1, 60)])
    reader = cold(warm)
    first, sent_first = read_sent(reader, lambda: reader.get_tuple(config("t")))
    again, sent_again = read_sent(reader, lambda: list(reader.list(config("t"), limit=3)))
    assert first.checkpoint["channel_values"]["m"] == history(59)
    assert [t.checkpoint["channel_values"]["m"] for t in again] == [
        history(59),
        history(58),
        history(57),
    ]
    assert sent_first > 0 and sent_again == 0


def test_a_read_by_the_writer_is_sent_no_content_not_even_nodes(warm: Any) -> None:
    put_versions(warm, "t", [history(n) for n in range(1, 60)])
    got, sent = read_sent(warm, lambda: list(warm.list(config("t"), limit=10)), nodes=True)
    assert [t.checkpoint["channel_values"]["m"] for t in got] == [
        history(n) for n in range(59, 49, -1)
    ]
    assert sent == 0


def test_a_reader_whose_cache_lost_a_piece_is_sent_the_tree_that_reaches_it(warm: Any) -> None:
    put_versions(warm, "t", [history(n) for n in range(1, 60)])
    reader = cold(warm)
    reader.get_tuple(config("t"))
    cache = reader._core.composer._cache
    lost = next(name for name, data in cache.items() if not is_node(data))
    del cache[lost]
    # The checkpoint read is held whole too (plain_redis_saver.newest): without it, the
    # next read is a full one, which names the pieces still cached.
    reader._core.newest = NewestWritten(0)
    got, sent = read_sent(reader, lambda: reader.get_tuple(config("t")), nodes=True)
    assert got.checkpoint["channel_values"]["m"] == history(59)
    assert sent > 0


def append_elsewhere(saver: Any, thread_id: str, n: int) -> None:
    """Another process appends message ``n`` to the newest version of channel "m"."""
    other = cold(saver)
    newest = other.get_tuple(config(thread_id))
    cp = checkpoint({"m": history(n + 1)}, versions={"m": n + 1})
    other.put(newest.config, cp, metadata(step=n), {"m": n + 1})


def test_a_writer_whose_copy_another_process_replaced_is_sent_only_what_is_new(
    warm: Any,
) -> None:
    # The writer holds its newest checkpoint (none of its writes pending), so its read
    # names its cached content without walking it; the server then sends the newer
    # checkpoint of another process, all but the content named.
    put_versions(warm, "t", [history(n) for n in range(1, 40)])
    append_elsewhere(warm, "t", 39)
    with count_round_trips() as trips:
        got, pieces = read_sent(warm, lambda: warm.get_tuple(config("t")))
    assert got.checkpoint["channel_values"]["m"] == history(40)
    assert (trips.count, pieces) == (1, 1)


def test_a_writer_whose_cache_lost_named_content_reads_again_naming_nothing(
    warm: Any,
) -> None:
    put_versions(warm, "t", [history(n) for n in range(1, 40)])
    append_elsewhere(warm, "t", 39)
    cache = warm._core.composer._cache
    del cache[next(name for name, data in cache.items() if not is_node(data))]
    with count_round_trips() as trips:
        got, pieces = read_sent(warm, lambda: warm.get_tuple(config("t")))
    assert got.checkpoint["channel_values"]["m"] == history(40)
    assert trips.count == 2
    assert pieces > 1  # the second read named nothing: every piece came


def test_a_read_by_id_of_an_old_checkpoint_leaves_the_newest_content_named_as_held(
    warm: Any,
) -> None:
    saved = put_versions(warm, "t", [history(n) for n in range(1, 40)])
    reader = cold(warm)
    reader.get_tuple(config("t"))
    before = reader._core.composer.cached("t").names
    old, sent = read_sent(reader, lambda: reader.get_tuple(saved[5]))
    assert old.checkpoint["channel_values"]["m"] == history(6)
    assert sent > 0  # the old version's content was not held: it came with the reply
    assert reader._core.composer.cached("t").names == before


def test_the_writer_reads_its_newest_values_without_rebuilding_them(
    warm: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    put_versions(warm, "t", [history(n) for n in range(1, 30)])
    rebuilt: list[bytes] = []
    real = compose.expand
    monkeypatch.setattr(
        compose, "expand", lambda value, *a: rebuilt.append(value) or real(value, *a)
    )
    got = warm.get_tuple(config("t"))
    assert got.checkpoint["channel_values"]["m"] == history(29)
    assert rebuilt == []


def test_a_saver_without_a_content_cache_is_sent_every_piece(warm: Any) -> None:
    put_versions(warm, "t", [history(n) for n in range(1, 30)])
    uncached = PlainRedisSaver(warm.client, key_prefix=warm.key_prefix, content_cache_bytes=0)
    got, first = read_sent(uncached, lambda: uncached.get_tuple(config("t")))
    _, second = read_sent(uncached, lambda: uncached.get_tuple(config("t")))
    assert got.checkpoint["channel_values"]["m"] == history(29)
    assert first == second > 0


def test_content_changed_on_the_server_raises_corrupt_data_naming_the_key(
    warm: Any, admin: Any
) -> None:
    put_versions(warm, "t", [history(20)])
    keys = warm._core.keys.thread("t")
    blobs = values_hash(warm, admin, "t")
    victim = next(f for f in sorted(content_fields(warm, admin, "t")) if not is_node(blobs[f]))
    data = blobs[victim]
    admin.hset(keys.blobs, victim, data[:-1] + bytes([data[-1] ^ 1]))
    with pytest.raises(CorruptDataError, match="does not match its digest") as caught:
        cold(warm).get_tuple(config("t"))
    assert keys.blobs in str(caught.value)


@pytest.mark.parametrize("shape", ["cycle", "deep", "bomb"])
def test_hostile_nodes_raise_corrupt_data_instead_of_looping(
    warm: Any, admin: Any, shape: str
) -> None:
    [stored] = put_versions(warm, "t", [history(20)])
    keys = warm._core.keys.thread("t")
    blobs = values_hash(warm, admin, "t")
    field = next(f for f, v in blobs.items() if v.startswith(b"\xc1"))
    names = [bytes([i]) * 16 for i in range(40)]
    if shape == "cycle":
        rows = {CONTENT + names[0]: b"\x01" + names[1], CONTENT + names[1]: b"\x01" + names[0]}
    elif shape == "deep":
        rows = {CONTENT + a: b"\x01" + b for a, b in zip(names, names[1:], strict=False)}
        rows[CONTENT + names[-1]] = b"\x00\x00\x00\x00\x01x"
    else:  # 20 levels, each naming the next twice: a million pieces from 21 fields
        rows = {
            CONTENT + a: (b"\x01" + b) * 2 for a, b in zip(names[:20], names[1:21], strict=True)
        }
        rows[CONTENT + names[20]] = b"\xa3abc" * 40
    admin.hset(keys.blobs, mapping=rows)
    admin.hset(keys.blobs, field, b"\xc1\x01" + names[0])
    # The server refuses nesting past its bound; what it returns, the client checks
    # against the digests before building anything. (Read by another process: the
    # writer's own copy is confirmed by the write generation, which edits made outside
    # the saver's scripts do not move.)
    with pytest.raises(CorruptDataError, match="composed value|does not match its digest"):
        cold(warm).get_tuple(stored)


def test_values_of_other_serializer_types_are_stored_whole(
    backend: Any, client: Any, prefix: str, admin: Any
) -> None:
    from langgraph.checkpoint.serde.encrypted import EncryptedSerializer

    serde = EncryptedSerializer.from_pycryptodome_aes(key=b"k" * 16)
    saver = PlainRedisSaver(client, key_prefix=prefix, serde=serde)
    put_versions(saver, "t", [history(n) for n in range(1, 8)])
    assert not content_fields(saver, admin, "t")
    assert saver.get_tuple(config("t")).checkpoint["channel_values"]["m"] == history(7)


def test_a_thread_written_in_schema_1_is_read_and_continued(
    backend: Any, client: Any, prefix: str, admin: Any
) -> None:
    old = PlainRedisSaver(client, key_prefix=prefix, compose_values=False)
    stored = put_versions(old, "t", [history(n) for n in range(1, 6)])
    old.put_writes(stored[-1], [("m", history(7))], "task")
    assert not content_fields(old, admin, "t")
    new = PlainRedisSaver(client, key_prefix=prefix)
    before = [(t.checkpoint, t.pending_writes) for t in old.list(config("t"))]
    assert [(t.checkpoint, t.pending_writes) for t in new.list(config("t"))] == before
    cp = checkpoint({"m": history(8)}, versions={"m": 8})
    new.put(stored[-1], cp, metadata(step=8), {"m": 8})
    assert content_fields(new, admin, "t")
    assert new.get_tuple(config("t")).checkpoint["channel_values"]["m"] == history(8)
    assert [(t.checkpoint, t.pending_writes) for t in new.list(config("t"))][1:] == before
    new.prune(["t"], strategy="keep_latest")
    assert_counts_consistent(new, admin, "t")


@pytest.mark.parametrize("older", [b"1", b"2"])
def test_setup_marks_the_prefix_with_schema_3_and_upgrades_older_ones(
    warm: Any, admin: Any, older: bytes
) -> None:
    schema = warm._core.keys.schema
    assert admin.get(schema) == b"3"
    admin.set(schema, older)
    warm.setup()
    assert admin.get(schema) == b"3"


def test_setup_with_compose_values_off_leaves_schema_1(
    backend: Any, client: Any, prefix: str, admin: Any
) -> None:
    old = PlainRedisSaver(client, key_prefix=prefix, compose_values=False)
    admin.set(old._core.keys.schema, b"1")
    old.setup()
    assert admin.get(old._core.keys.schema) == b"1"


@pytest.mark.parametrize(("compose_values", "record_format"), [(True, 2), (False, 1)])
def test_records_list_their_refs_as_json_unless_values_are_stored_whole(
    backend: Any, client: Any, prefix: str, admin: Any, compose_values: bool, record_format: int
) -> None:
    # Format 2 (JSON refs, which the scripts decode in C); a whole-value saver writes
    # format 1 (netstring refs), which release 0.1 reads.
    saver = PlainRedisSaver(client, key_prefix=prefix, compose_values=compose_values)
    put_versions(saver, "t", [history(n) for n in range(1, 3)])
    records = admin.hvals(saver._core.keys.thread("t").checkpoints)
    assert records and {unpack(record)[0] for record in records} == {record_format}


def test_a_page_of_records_in_both_formats_reads_every_value(
    backend: Any, client: Any, prefix: str
) -> None:
    # A rolling upgrade leaves format 1 records (a whole-value writer) older than format
    # 2 ones in one thread: a list page reads the newer in one pass, then the older by
    # the general reader, from the first record of the older format on.
    old = PlainRedisSaver(client, key_prefix=prefix, compose_values=False)
    stored = put_versions(old, "t", [history(n) for n in range(1, 4)])
    new = PlainRedisSaver(client, key_prefix=prefix)
    parent = stored[-1]
    for n in range(4, 7):
        cp = checkpoint({"m": history(n), "k": n % 2}, versions={"m": n, "k": n % 2 + 1})
        parent = new.put(parent, cp, metadata(step=n), {"m": n, "k": n % 2 + 1})
    for reader in (new, cold(new)):
        listed = [t.checkpoint["channel_values"]["m"] for t in reader.list(config("t"))]
        assert listed == [history(n) for n in range(6, 0, -1)]


def test_copy_thread_copies_composed_values_with_their_counts(warm: Any, admin: Any) -> None:
    stored = put_versions(warm, "src", [history(n) for n in range(1, 15)])
    warm.put_writes(stored[-1], [("m", history(16))], "task")
    warm.copy_thread("src", "dst")
    warm.delete_thread("src")
    got = warm.get_tuple(config("dst"))
    assert got.checkpoint["channel_values"]["m"] == history(14)
    assert got.pending_writes[0][2] == history(16)
    assert_counts_consistent(warm, admin, "dst")


_edit = st.one_of(
    st.tuples(st.just("append"), st.integers(0, 10_000)),
    st.tuples(st.just("insert"), st.integers(0, 10_000)),
    st.tuples(st.just("remove"), st.integers(0, 10_000)),
    st.tuples(st.just("replace"), st.integers(0, 10_000)),
)


@settings(
    max_examples=15,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(edits=st.lists(st.lists(_edit, min_size=1, max_size=4), min_size=1, max_size=12))
@LAYOUTS
def test_any_edits_read_back_exactly_and_keep_counts_consistent(
    backend: Any, client: Any, admin: Any, edits: list[list[tuple[str, int]]], counts: bool
) -> None:
    import uuid

    saver = PlainRedisSaver(
        client,
        key_prefix=f"lgtest{uuid.uuid4().hex[:10]}",
        max_checkpoints=3,
        reference_counts=counts,
    )
    current: list[str] = []
    lists = []
    for step, batch in enumerate(edits):
        for kind, n in batch:
            at = n % (len(current) + 1)
            if kind == "append":
                current.append(message(n))
            elif kind == "insert":
                current.insert(at, message(n))
            elif current and kind == "remove":
                current.pop(at % len(current))
            elif current:
                current[at % len(current)] = message(n + step)
        lists.append(list(current))
    configs = put_versions(saver, "t", lists)
    reader = cold(saver)  # rebuilds from the server's content alone
    for value, stored in list(zip(lists, configs, strict=True))[-3:]:
        assert saver.get_tuple(stored).checkpoint["channel_values"]["m"] == value
        assert reader.get_tuple(stored).checkpoint["channel_values"]["m"] == value
    assert_counts_consistent(saver, admin, "t")
    saver.delete_thread("t")


def test_a_value_whose_content_exceeds_one_request_is_staged_and_committed_whole(
    warm: Any, admin: Any
) -> None:
    # ~1,900 runs and nodes: more content rows than one request may carry.
    value = [f"{i:06d} " + "q" * 90 for i in range(30_000)]
    [stored] = put_versions(warm, "t", [value])
    warm.put_writes(stored, [("m", value[:20_000])], "task")
    got = warm.get_tuple(config("t"))
    assert got.checkpoint["channel_values"]["m"] == value
    assert got.pending_writes[0][2] == value[:20_000]
    assert_counts_consistent(warm, admin, "t")


async def test_the_async_saver_reads_and_writes_composed_values(asaver: Any) -> None:
    parent = config("t")
    for n in (10, 40):
        cp = checkpoint({"m": history(n)}, versions={"m": n})
        parent = await asaver.aput(parent, cp, metadata(step=n), {"m": n})
    await asaver.aput_writes(parent, [("m", history(41))], "task")
    got = await asaver.aget_tuple(config("t"))
    assert got.checkpoint["channel_values"]["m"] == history(40)
    assert got.pending_writes[0][2] == history(41)
    assert [t.checkpoint["channel_values"]["m"] async for t in asaver.alist(config("t"))] == [
        history(40),
        history(10),
    ]


def test_an_exported_thread_of_composed_values_imports_the_same(
    backend: Any, client: Any, prefix: str
) -> None:
    import io

    from plain_redis_saver.transfer import export_thread, import_thread

    source = PlainRedisSaver(client, key_prefix=prefix)
    stored = put_versions(source, "t", [history(n) for n in range(1, 20, 4)])
    source.put_writes(stored[-1], [("m", history(25))], "task")
    file = io.StringIO()
    export_thread(source, "t", file)
    file.seek(0)
    target = PlainRedisSaver(client, key_prefix=prefix + "b")
    import_thread(target, file)
    assert [(t.checkpoint, t.pending_writes) for t in target.list(config("t"))] == [
        (t.checkpoint, t.pending_writes) for t in source.list(config("t"))
    ]


def test_delta_channel_history_reads_composed_writes_and_seeds(warm: Any) -> None:
    stored = put_versions(warm, "t", [history(30)])
    warm.put_writes(stored[0], [("m", history(35))], "task")
    cp = checkpoint({"m": history(36)}, versions={"m": 2})
    warm.put(stored[0], cp, metadata(step=1), {"m": 2})
    found = warm.get_delta_channel_history(config=config("t"), channels=["m"])["m"]
    assert found["seed"] == history(30)
    assert [value for _, _, value in found["writes"]] == [history(35)]


@LAYOUTS
def test_appended_versions_stored_as_deltas_read_back_and_free_their_content(
    backend: Any, client: Any, admin: Any, prefix: str, counts: bool
) -> None:
    # One message per version: most versions are deltas of the last (compose.MAX_DELTAS),
    # nested in the ones before. Retention frees the deltas of removed checkpoints and
    # nothing the kept ones reach; another process rebuilds them from the server alone.
    saver = PlainRedisSaver(client, key_prefix=prefix, max_checkpoints=2, reference_counts=counts)
    lists = [history(n) for n in range(1, 61)]
    configs = put_versions(saver, "t", lists)
    for value, stored in zip(lists[-2:], configs[-2:], strict=True):
        assert cold(saver).get_tuple(stored).checkpoint["channel_values"]["m"] == value
    assert_counts_consistent(saver, admin, "t")


def test_a_put_onto_a_damaged_write_generation_raises_and_writes_nothing(
    warm: Any, admin: Any
) -> None:
    [stored] = put_versions(warm, "t", [history(3)])
    keys = warm._core.keys.thread("t")
    admin.hset(keys.blobs, "=g", "not a number")
    before = {key: admin.hgetall(key) for key in (keys.checkpoints, keys.blobs)}
    cp = checkpoint({"m": history(4)}, versions={"m": 2})
    with pytest.raises(CorruptDataError, match=keys.blobs):
        warm.put(stored, cp, metadata(step=1), {"m": 2})
    assert {key: admin.hgetall(key) for key in (keys.checkpoints, keys.blobs)} == before
