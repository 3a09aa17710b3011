"""compose.py without a server: every composed value rebuilds exactly, and what a
Composer remembers stays bounded."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

from plain_redis_saver import chunks
from plain_redis_saver.compose import (
    COMPOSED,
    MAX_DELTAS,
    MAX_PARTS,
    RUN,
    Composer,
    Held,
    _encoded,
    _renewed,
    _run_items,
    compose,
    expand,
    is_node,
    references,
)
from plain_redis_saver.errors import CorruptDataError

from .helpers import node_items

SERDE = JsonPlusSerializer()


def rebuild(value: bytes, content: dict[bytes, bytes]) -> bytes:
    """What the server scripts return for ``value``, joined: a Python model of
    expand_values in includes/common.lua."""

    def walk(node: bytes, start: int) -> bytes:
        out = []
        for is_reference, item in node_items(node, start):
            child = content[item] if is_reference else item
            out.append(walk(child, 0) if is_reference and child[0] in (0, 1) else child)
        return b"".join(out)

    assert value.startswith(COMPOSED)
    return walk(value, 1)


_leaf = st.one_of(
    st.text(min_size=0, max_size=300),
    st.integers(-(2**63), 2**64 - 1),
    st.binary(max_size=200),
    st.none(),
)
_element = st.one_of(_leaf, st.dictionaries(st.text(max_size=8), _leaf, max_size=4))
_value = st.one_of(
    st.lists(_element, max_size=80),
    st.dictionaries(st.text(max_size=12), st.lists(_element, max_size=30), max_size=6),
    _leaf,
)


@settings(max_examples=150, deadline=None)
@given(value=_value, prefix=st.binary(max_size=20), suffix=st.binary(max_size=20))
def test_a_composed_value_rebuilds_the_exact_bytes(
    value: Any, prefix: bytes, suffix: bytes
) -> None:
    typed = SERDE.dumps_typed(value)
    composed, _ = compose(prefix, typed, suffix)
    if composed is not None:
        assert rebuild(composed.value, composed.content) == prefix + typed[1] + suffix
        assert expand(composed.value, composed.content, "f") == prefix + typed[1] + suffix


def nesting(value: bytes, content: dict[bytes, bytes]) -> int:
    """How deep the composed ``value``'s references nest; every digest it reaches must
    be in ``content`` (what a put sends when the server holds none of it)."""

    def depth(node: bytes, start: int) -> int:
        deepest = 0
        for is_reference, item in node_items(node, start):
            if is_reference:
                child = content[item]  # KeyError: the content is not all there
                deepest = max(deepest, 1 + (depth(child, 0) if is_node(child) else 0))
        return deepest

    return depth(value, 1)


def check_remembered(remembered: Any, fresh: Any, data: bytes) -> bool:
    """Asserts what holds of a version composed with the memo: it rebuilds exactly, its
    content is all there, and it is either what a fresh compose makes or a delta (no
    deeper than MAX_DELTAS levels more). Returns whether it is a delta."""
    assert (remembered is None) == (fresh is None)
    if remembered is None:
        return False
    assert rebuild(remembered.value, remembered.content) == data
    assert expand(remembered.value, remembered.content, "f") == data
    if (remembered.value, remembered.content) == (fresh.value, fresh.content):
        return False
    assert nesting(remembered.value, remembered.content) <= (
        nesting(fresh.value, fresh.content) + MAX_DELTAS
    )
    return True


@settings(max_examples=60, deadline=None)
@given(
    versions=st.lists(
        st.lists(st.text(min_size=60, max_size=200), max_size=60), min_size=1, max_size=12
    )
)
def test_versions_composed_with_the_memo_rebuild_exactly_with_all_their_content(
    versions: list[list[str]],
) -> None:
    composer = Composer()
    for value in versions:
        typed = SERDE.dumps_typed(value)
        fresh, _ = compose(b"p", typed, b"")
        check_remembered(composer.compose("k", b"p", typed), fresh, b"p" + typed[1])


_edit = st.one_of(
    st.tuples(st.just("append"), st.integers(1, 40)),
    st.tuples(st.sampled_from(["insert", "small", "replace", "delete"]), st.integers(0, 10_000)),
)


@settings(max_examples=80, deadline=None)
@given(start=st.integers(0, 120), edits=st.lists(_edit, min_size=1, max_size=14))
def test_edited_versions_composed_with_the_memo_are_fresh_ones_or_deltas(
    start: int, edits: list[tuple[str, int]]
) -> None:
    # Versions that share a prefix with the last one (appends, edits anywhere, short
    # elements that stay literals between pieces): the memo's closed runs are taken
    # only where every item up to the boundary that closed them is unchanged, and a
    # version that only appends may be stored as a delta of the last. Two memo keys
    # share the cache of run digests, as a put and a write of one channel do, and
    # compose every version alike, so they share its content on the server.
    messages = [f"message {i} " + "m" * (60 + i % 50) for i in range(start)]
    composer = Composer()
    made = start
    for kind, at in edits:
        if kind == "append":
            messages += [f"appended {made + i} " + "a" * 70 for i in range(at)]
            made += at
        elif kind == "insert":
            messages.insert(at % (len(messages) + 1), f"inserted {made} " + "i" * 80)
            made += 1
        elif kind == "small":  # too short for a piece: a literal between pieces
            messages.insert(at % (len(messages) + 1), f"s{made}")
            made += 1
        elif messages and kind == "replace":
            messages[at % len(messages)] = f"replaced {made} " + "r" * 90
            made += 1
        elif messages:
            del messages[at % len(messages)]
        typed = SERDE.dumps_typed(messages)
        fresh, _ = compose(b"p", typed, b"s")
        put, write = (composer.compose(key, b"p", typed, b"s") for key in ("put", "write"))
        assert put == write
        # A delta that took a version for an append when it was not one would not
        # rebuild its bytes.
        check_remembered(put, fresh, b"p" + typed[1] + b"s")


def appended(messages: list[str], *, closes_a_run: bool) -> list[str]:
    """``messages`` and one more, whose piece closes a run or does not."""
    for n in range(1000):
        candidate = [*messages, f"appended {len(messages)}.{n} " + "z" * 120]
        last = chunks.split(SERDE.dumps_typed(candidate), chunks.Memo()).memo.digests[-1]
        if (last[-1] % RUN == 0) == closes_a_run:
            return candidate
    raise AssertionError("no such message")


def test_appended_versions_are_deltas_until_one_closes_a_run_or_max_deltas_in_a_row() -> None:
    messages = [f"message {i:04d} " + "y" * 120 for i in range(200)]
    composer = Composer()
    assert composer.compose("k", b"", SERDE.dumps_typed(messages)) is not None
    closing = [False] * 3 + [True] + [False] * (MAX_DELTAS + 2)
    kinds = []
    for closes in closing:
        messages = appended(messages, closes_a_run=closes)
        typed = SERDE.dumps_typed(messages)
        fresh, _ = compose(b"", typed, b"")
        kinds.append(check_remembered(composer.compose("k", b"", typed), fresh, typed[1]))
    whole = False
    assert kinds == [True] * 3 + [whole] + [True] * MAX_DELTAS + [whole, True]


def test_a_delta_adds_the_new_elements_and_one_small_node() -> None:
    messages = [f"message {i:04d} " + "y" * 300 for i in range(400)]
    composer = Composer()
    before = composer.compose("k", b"", SERDE.dumps_typed(messages))
    messages.append("appended " + "z" * 300)
    after = composer.compose("k", b"", SERDE.dumps_typed(messages))
    assert before is not None and after is not None
    new = {name: data for name, data in after.content.items() if name not in before.content}
    (node,) = [data for data in new.values() if is_node(data)]
    # The node names the last version's elements and the new message: two references.
    assert len(references(node, 0, "node")) == 2 and len(new) == 2


def test_a_version_that_only_changes_its_header_keeps_the_last_ones_elements() -> None:
    # A short element (a literal, not a piece) appended after the last piece only
    # changes the value's header and trailer: no new node at all.
    messages = [f"message {i:04d} " + "y" * 120 for i in range(50)]
    composer = Composer()
    before = composer.compose("k", b"", SERDE.dumps_typed(messages))
    after = composer.compose("k", b"", SERDE.dumps_typed([*messages, "tiny"]))
    assert before is not None and after is not None
    assert after.content == before.content
    assert [r for r in references(after.value, 1, "v")] == references(before.value, 1, "v")


def test_an_appended_version_walks_only_the_runs_it_closes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The Python work of composing a new version is O(new elements + runs): the runs
    # the last version closed in the unchanged prefix are taken as they are, so no
    # run key is built for them (every version used to rebuild every run's key).
    from plain_redis_saver import compose as compose_module

    messages = [f"message {i:04d} " + "y" * 120 for i in range(600)]
    composer = Composer()
    composer.compose("k", b"", SERDE.dumps_typed(messages[:590]))
    built: list[tuple[int, int]] = []
    real = compose_module._run_items

    def counted(names: Any, datas: Any, literals: Any, first: int, end: int) -> Any:
        built.append((first, end))
        return real(names, datas, literals, first, end)

    monkeypatch.setattr(compose_module, "_run_items", counted)
    for n in range(591, 601):
        assert composer.compose("k", b"", SERDE.dumps_typed(messages[:n])) is not None
    # Ten versions close a run or two between them, near the end of the list.
    assert len(built) <= 4 and all(first >= 500 for first, _ in built)


def test_an_appended_list_adds_little_new_content() -> None:
    messages = [f"message {i:04d} " + "y" * 300 for i in range(400)]
    before, _ = compose(b"", SERDE.dumps_typed(messages[:399]), b"")
    after, _ = compose(b"", SERDE.dumps_typed(messages), b"")
    assert before is not None and after is not None
    new = {name: data for name, data in after.content.items() if name not in before.content}
    assert sum(map(len, new.values())) < 12 * 1024  # the whole list is 130 KB


def test_values_of_other_types_and_short_values_stay_whole() -> None:
    assert compose(b"", ("json", b"[" + b"1," * 500 + b"1]"), b"")[0] is None
    assert compose(b"", SERDE.dumps_typed(["short"]), b"")[0] is None


def test_a_piece_that_is_not_msgpack_keeps_the_value_whole() -> None:
    # A serializer naming bytes "msgpack" that are not: a piece may not start like a node.
    assert compose(b"", ("msgpack", b"\x01" * 400), b"")[0] is None


def test_a_short_version_leaves_the_channels_memo_in_place() -> None:
    composer = Composer()
    long_version = SERDE.dumps_typed([f"message {i} " + "x" * 80 for i in range(40)])
    assert composer.compose("k", b"", long_version) is not None
    memo = composer._memos["k"]
    assert composer.compose("k", b"", SERDE.dumps_typed(["short"])) is None
    assert composer._memos["k"] is memo


def test_the_composer_forgets_the_oldest_memos_past_its_byte_budget() -> None:
    composer = Composer(max_memo_bytes=100_000)
    value = SERDE.dumps_typed(["z" * 200] * 200)  # ~40 KB
    for key in range(5):
        composer.compose(key, b"", value)
    assert composer._memo_bytes <= 100_000 and len(composer._memos) == 2


def test_the_composer_sends_only_what_the_server_is_not_known_to_hold() -> None:
    composer = Composer(max_held=3)
    content = {b"a": b"1", b"b": b"2"}
    assert composer.unsent("t", content)[0] == content
    composer.held("t", [b"a"])
    assert composer.unsent("t", content)[0] == {b"b": b"2"}
    composer.held("t", [b"b", b"c", b"d"])
    composer.held("t", [b"e"])  # past max_held: the record starts afresh
    assert composer.unsent("t", content)[0] == content
    composer.forget("t")
    assert composer.unsent("t", {b"e": b"5"})[0] == {b"e": b"5"}


def test_split_types_are_what_compose_cuts() -> None:
    assert "msgpack" in chunks.SPLIT_TYPES


def test_runs_that_differ_have_different_cache_keys_even_when_their_bytes_align() -> None:
    one, two = chunks.digest(b"one"), chunks.digest(b"two")
    # Piece `two` after a literal whose bytes equal digest `one`, against pieces `one`
    # and `two`: joined raw, both keys would be one + two.
    after_literal = _encoded(_run_items((b"?", two), (b"", b"2"), {1: one}, 1, 1))
    two_pieces = _encoded(_run_items((b"?", one, two), (b"", b"1", b"2"), {}, 1, 2))
    assert after_literal != two_pieces


@settings(max_examples=300, deadline=None)
@given(
    node=st.lists(
        st.one_of(
            st.binary(max_size=40),
            st.binary(max_size=16).map(lambda d: b"\x01" + d),
            st.tuples(st.integers(0, 2**32 - 1), st.binary(max_size=8)).map(
                lambda t: b"\x00" + t[0].to_bytes(4, "big") + t[1]
            ),
        ),
        max_size=6,
    ).map(b"".join),
    start=st.integers(0, 2),
)
def test_references_of_any_bytes_returns_digests_or_raises_corrupt_data(
    node: bytes, start: int
) -> None:
    try:
        refs = references(node, start, "field f of key k")
    except CorruptDataError as exc:
        assert "field f of key k" in str(exc)
    else:
        assert all(len(ref) == 16 for ref in refs)


def _hostile(shape: str) -> tuple[bytes, dict[bytes, bytes]]:
    names = [bytes([i]) * 16 for i in range(40)]
    if shape == "cycle":
        content = {names[0]: b"\x01" + names[1], names[1]: b"\x01" + names[0]}
    elif shape == "deep":
        content = {a: b"\x01" + b for a, b in zip(names, names[1:], strict=False)}
        content[names[-1]] = b"\x00\x00\x00\x00\x01x"
    elif shape == "bomb":  # 20 levels, each naming the next twice: a million pieces
        content = {a: (b"\x01" + b) * 2 for a, b in zip(names[:20], names[1:21], strict=True)}
        content[names[20]] = b"\xa3abc" * 40
    else:  # "missing"
        content = {names[0]: b"\x01" + names[1]}
    return COMPOSED + b"\x01" + names[0], content


@pytest.mark.parametrize(
    ("shape", "says"),
    [
        ("cycle", "nested deeper"),
        ("deep", "nested deeper"),
        ("bomb", f"{MAX_PARTS:,} items"),
        ("missing", "missing"),
    ],
)
def test_rebuilding_hostile_content_raises_corrupt_data_naming_where(shape: str, says: str) -> None:
    value, content = _hostile(shape)
    with pytest.raises(CorruptDataError, match=says) as caught:
        expand(value, content, "field f of key k")
    assert "field f of key k" in str(caught.value)


def _composed_history(n: int, tag: str = "m") -> Any:
    composed, _ = compose(b"", SERDE.dumps_typed([f"{tag}{i} " + "z" * 80 for i in range(n)]), b"")
    assert composed is not None
    return composed


def _root(composed: Any) -> bytes:
    """The digest of the tree's root: the one reference of the composed value."""
    return references(composed.value, 1, "value")[-1]


def test_the_composer_names_as_held_the_root_of_a_tree_it_holds_whole() -> None:
    composer = Composer()
    composed = _composed_history(300)
    composer.learn("t", composed.content)
    held = composer.cached("t")
    assert held.names.startswith(_root(composed))
    assert held.content == composed.content
    assert composer.cached("other") == Held(b"", {})


def test_a_node_whose_tree_the_cache_lost_part_of_is_not_named() -> None:
    composer = Composer()
    composed = _composed_history(300)
    composer.learn("t", composed.content)
    lost = next(name for name, data in composed.content.items() if not is_node(data))
    del composer._cache[lost]
    held = composer.cached("t")
    names = {held.names[i : i + 16] for i in range(0, len(held.names), 16)}
    assert names and _root(composed) not in names
    assert lost not in held.content


def test_the_composer_names_the_roots_of_older_trees_after_the_newest() -> None:
    composer = Composer()
    older, newer = _composed_history(300), _composed_history(301)
    composer.learn("t", older.content)
    composer.learn("t", newer.content)
    held = composer.cached("t")
    assert held.names.startswith(_root(newer))
    assert _root(older) in {held.names[i : i + 16] for i in range(0, len(held.names), 16)}
    assert held.content == {**older.content, **newer.content}


def test_a_read_after_new_content_names_the_new_root_first() -> None:
    # What cached() answers is remembered per thread; new content must replace it.
    composer = Composer()
    older, newer = _composed_history(300), _composed_history(301)
    composer.learn("t", older.content)
    assert composer.cached("t").names.startswith(_root(older))
    composer.learn("t", newer.content)
    held = composer.cached("t")
    assert held.names.startswith(_root(newer))
    assert held.content == {**older.content, **newer.content}


def test_content_of_an_old_checkpoint_leaves_the_threads_newest_named_first() -> None:
    # A read by id of an old checkpoint must not make its content the thread's newest.
    composer = Composer()
    older, newer = _composed_history(300), _composed_history(301)
    composer.learn("t", newer.content)
    composer.learn("t", older.content, newest=False)
    assert composer.cached("t").names.startswith(_root(newer))


def test_content_of_an_old_checkpoint_is_kept_for_a_thread_the_client_knows_nothing_of() -> None:
    composer = Composer()
    older = _composed_history(300)
    composer.learn("t", older.content, newest=False)
    assert composer.cached("t").names.startswith(_root(older))


def test_a_tree_named_once_is_not_named_after_the_cache_evicts_part_of_it() -> None:
    # Trees found whole are remembered; an eviction must make the composer look again.
    composed = _composed_history(300)
    size = sum(len(data) + 120 for data in composed.content.values())
    composer = Composer(max_cache_bytes=size + 1_000)
    composer.learn("t", composed.content)
    assert composer.cached("t").names.startswith(_root(composed))
    composer.learn("other", {b"o" * 16: b"x" * 2_000})  # evicts the oldest pieces
    held = composer.cached("t")
    names = {held.names[i : i + 16] for i in range(0, len(held.names), 16)}
    assert _root(composed) not in names
    assert sum(len(data) for data in held.content.values()) <= size + 1_000


def test_a_malformed_node_is_neither_cached_nor_named() -> None:
    composer = Composer()
    bad = b"\x00\x00\x00\x00\xff"  # a literal claiming 255 bytes it does not have
    composer.learn("t", {b"n" * 16: bad})
    assert composer.cached("t") == Held(b"", {})


def test_an_empty_piece_a_node_references_is_named_without_error() -> None:
    # Content read from the server is only checked against its digest: an empty
    # piece passes, and naming the node that reaches it must not index its first byte.
    composer = Composer()
    empty = chunks.digest(b"")
    node = b"\x01" + empty
    composer.learn("t", {empty: b"", chunks.digest(node): node})
    held = composer.cached("t")
    assert held.names.startswith(chunks.digest(node))
    assert held.content[empty] == b""


def test_the_composer_names_at_most_128_digests() -> None:
    composer = Composer()
    for i in range(100):
        composer.learn("t", _composed_history(30, tag=f"v{i}-").content)
    for i in range(100):
        composer.learn("t", {bytes([i]) * 16: b"p" * 100, bytes([i, 1]) * 8: b"q" * 100})
    assert len(composer.cached("t").names) == 128 * 16


def test_unchecked_names_what_cached_names_when_every_tree_is_held() -> None:
    composer = Composer()
    for i in range(3):
        composer.learn("t", _composed_history(30, tag=f"v{i}-").content)
    composer.learn("t", {b"p" * 16: b"p" * 100})
    names = composer.unchecked("t")
    assert names and names == composer.cached("t").names


# Digests whose joined forms hold other digests at unaligned offsets ("ab" * 8 twice
# holds "ba" * 8 at offset 1), so a search that ignores alignment would go wrong.
_DIGESTS = [b"ab" * 8, b"ba" * 8, b"a" * 16, b"b" * 16, b"ab" * 7 + b"aa", bytes(range(16))]


@settings(max_examples=300, deadline=None)
@given(
    batches=st.lists(st.lists(st.sampled_from(_DIGESTS), max_size=6), max_size=8),
    keep=st.integers(1, 5),
)
def test_renewed_hints_match_an_ordered_set_of_the_newest(
    batches: list[list[bytes]], keep: int
) -> None:
    # The model: each new name moves to the end of an insertion-ordered set, the
    # oldest beyond `keep` drop out; named newest first.
    model: dict[bytes, None] = {}
    joined = b""
    for batch in batches:
        for name in batch:
            model.pop(name, None)
            model[name] = None
        while len(model) > keep:
            del model[next(iter(model))]
        joined = _renewed(joined, batch, keep)
        assert joined == b"".join(reversed(model))


def test_a_composer_without_a_cache_names_nothing_as_held() -> None:
    composer = Composer(max_cache_bytes=0)
    composed, _ = compose(b"", SERDE.dumps_typed(["m" * 100] * 50), b"")
    assert composed is not None
    composer.learn("t", composed.content)
    assert composer.cached("t") == Held(b"", {})


def test_the_content_cache_keeps_within_its_byte_budget() -> None:
    composer = Composer(max_cache_bytes=10_000)
    for i in range(20):
        composer.learn(f"t{i}", {bytes([i]) * 16: b"x" * 1_000})
    held = [composer.cached(f"t{i}").content for i in range(20)]
    assert sum(len(data) for h in held for data in h.values()) <= 10_000
    assert held[-1] and not held[0]


def test_a_composed_value_rebuilt_once_is_rebuilt_again_without_its_content() -> None:
    composer = Composer()
    composed = _composed_history(300)
    whole = expand(composed.value, composed.content, "value")
    assert composer.built(composed.value, composed.content, "value") == whole
    assert composer.built(composed.value, {}, "value") == whole


def test_a_value_a_put_composed_is_rebuilt_without_its_content() -> None:
    composer = Composer()
    encoded = SERDE.dumps_typed([f"m{i} " + "z" * 80 for i in range(300)])[1]
    composed = _composed_history(300)
    composer.remember_built(composed.value, encoded)
    assert composer.built(composed.value, {}, "value") == encoded


def test_rebuilt_values_are_forgotten_past_a_quarter_of_the_cache_budget() -> None:
    composer = Composer(max_cache_bytes=400_000)
    values = [_composed_history(300, tag=f"v{i}-") for i in range(8)]
    for composed in values:
        composer.built(composed.value, composed.content, "value")
    assert composer._built_bytes <= 100_000
    with pytest.raises(CorruptDataError, match="missing"):
        composer.built(values[0].value, {}, "value")  # the oldest went first
    assert composer.built(values[-1].value, {}, "value")


def test_a_composer_without_a_cache_remembers_no_rebuilt_value() -> None:
    composer = Composer(max_cache_bytes=0)
    composed = _composed_history(30)
    composer.built(composed.value, composed.content, "value")
    with pytest.raises(CorruptDataError, match="missing"):
        composer.built(composed.value, {}, "value")
