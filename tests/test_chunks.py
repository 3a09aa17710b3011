"""chunks.py, no server: values cut into pieces come back byte for byte, pieces are
shared and hashed once, and the decoders survive any bytes.

Loops are bounded by iteration counts (hypothesis example counts, digest call counts);
a decoder that loops forever is caught by the alarm of test_hostile_data."""

from __future__ import annotations

import dataclasses
import datetime
import enum
from collections.abc import Callable
from typing import Any

import msgpack
import pydantic
import pytest
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langgraph.checkpoint.serde.base import SerializerProtocol
from langgraph.checkpoint.serde.encrypted import EncryptedSerializer
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

from plain_redis_saver import CorruptDataError, chunks
from plain_redis_saver.errors import SchemaVersionError
from plain_redis_saver.serde import SafeSerializer

from .test_hostile_data import interrupted_if_hung

PROPERTY = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


@dataclasses.dataclass
class Point:
    x: int
    label: str


class Profile(pydantic.BaseModel):
    name: str
    tags: list[str] = []


SERIALIZERS: dict[str, SerializerProtocol] = {
    "safe": SafeSerializer(),
    # pickle_fallback: what JsonPlus does with values msgpack cannot hold (ints beyond
    # 64 bits): a "pickle" value, which must stay whole.
    "jsonplus": JsonPlusSerializer(pickle_fallback=True),
}

texts = st.text(max_size=120)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**64), 2**64),  # beyond msgpack's range too
    st.integers(-(2**200), 2**200),
    st.floats(allow_nan=False),
    texts,
    st.binary(max_size=120),
    st.datetimes(timezones=st.none() | st.just(datetime.timezone.utc)),
    st.dates(),
    st.uuids(),
    st.decimals(allow_nan=False, allow_infinity=False),
    st.sampled_from(Colour),
)
messages = st.one_of(
    st.builds(HumanMessage, content=texts, id=st.uuids().map(str)),
    st.builds(AIMessage, content=texts, id=st.uuids().map(str)),
    st.builds(SystemMessage, content=texts),
    st.builds(ToolMessage, content=texts, tool_call_id=st.uuids().map(str)),
)
objects = st.one_of(
    messages,
    st.builds(Point, x=st.integers(-(2**63), 2**63 - 1), label=texts),
    st.builds(Profile, name=texts, tags=st.lists(texts, max_size=4)),
    st.sets(st.integers(-1000, 1000) | texts, max_size=5),
    st.frozensets(texts, max_size=5),
)
values = st.recursive(
    scalars | objects,
    lambda inner: st.one_of(
        st.lists(inner, max_size=12),
        st.lists(inner, max_size=6).map(tuple),
        st.dictionaries(texts, inner, max_size=10),
        st.dictionaries(st.integers(-5, 5), inner, max_size=4),
    ),
    max_leaves=40,
)
policies = st.builds(
    chunks.Policy,
    piece_min=st.sampled_from([1, 2, 16, chunks.PIECE_MIN, 300]),
    nested_min_count=st.integers(0, 10),
    max_depth=st.integers(0, 3),
)


def dumps(serde: SerializerProtocol, value: Any) -> tuple[str, bytes]:
    try:
        return serde.dumps_typed(value)
    except TypeError:  # msgpack cannot hold it and the serializer has no fallback
        reject()


def stored(*splits: chunks.Chunked) -> dict[bytes, bytes]:
    """The pieces a store holds after ``splits``, each piece checked against its name."""
    store: dict[bytes, bytes] = {}
    for split in splits:
        for name, data in split.pieces.items():
            assert chunks.digest(data) == name
            store[name] = data
    return store


# ------------------------------------------------------------- exact round trips


@pytest.mark.parametrize("serde_name", sorted(SERIALIZERS))
@given(value=values, policy=policies)
@PROPERTY
def test_rebuild_of_split_is_the_serializers_bytes_for_any_value(
    serde_name: str, value: Any, policy: chunks.Policy
) -> None:
    serde = SERIALIZERS[serde_name]
    typed = dumps(serde, value)
    split = chunks.split(typed, policy=policy)
    rebuilt = chunks.rebuild(split.recipe, stored(split), verify=True)
    assert rebuilt == typed
    assert repr(serde.loads_typed(rebuilt)) == repr(serde.loads_typed(typed))


@given(value=values, earlier=values, policy=policies)
@PROPERTY
def test_rebuild_is_exact_whatever_the_previous_version_was(
    value: Any, earlier: Any, policy: chunks.Policy
) -> None:
    serde = SERIALIZERS["safe"]
    first = chunks.split(dumps(serde, earlier), policy=policy)
    typed = dumps(serde, value)
    second = chunks.split(typed, first.memo, policy=policy)
    assert chunks.rebuild(second.recipe, stored(first, second), verify=True) == typed


@given(value=values, earlier=values)
@PROPERTY
def test_a_memo_of_stored_pieces_gives_the_same_recipe_as_the_writers_memo(
    value: Any, earlier: Any
) -> None:
    serde = SERIALIZERS["safe"]
    first = chunks.split(dumps(serde, earlier))
    memo = chunks.Memo.of_stored(chunks.read_recipe(first.recipe), stored(first))
    typed = dumps(serde, value)
    mine, writers = chunks.split(typed, memo), chunks.split(typed, first.memo)
    assert (mine.recipe, mine.pieces, mine.memo.pieces) == (
        writers.recipe,
        writers.pieces,
        writers.memo.pieces,
    )


edits = st.lists(
    st.tuples(st.sampled_from(["insert", "remove", "replace", "append"]), st.integers(0, 30)),
    max_size=4,
)


@given(
    history=st.lists(messages | st.text(min_size=60, max_size=90), max_size=25),
    extra=messages,
    changes=edits,
    wrap=st.booleans(),
    policy=policies,
)
@PROPERTY
def test_an_edited_list_rebuilds_exactly_and_cuts_as_if_new(
    history: list[Any],
    extra: Any,
    changes: list[tuple[str, int]],
    wrap: bool,
    policy: chunks.Policy,
) -> None:
    serde = SafeSerializer()
    edited = list(history)
    for change, at in changes:
        at = at % (len(edited) + 1)
        if change == "insert":
            edited.insert(at, extra)
        elif change == "append":
            edited.append(extra)
        elif edited and at < len(edited):
            edited[at : at + 1] = [] if change == "remove" else [extra]

    def shape(items: list[Any]) -> Any:
        return {"messages": items, "n": len(items)} if wrap else items

    first = chunks.split(serde.dumps_typed(shape(history)), policy=policy)
    typed = serde.dumps_typed(shape(edited))
    second = chunks.split(typed, first.memo, policy=policy)
    assert chunks.rebuild(second.recipe, stored(first, second), verify=True) == typed
    assert second.recipe == chunks.split(typed, policy=policy).recipe


# ------------------------------------------------------------- what is cut, what stays whole


def conversation(turns: int) -> list[Any]:
    out: list[Any] = []
    for turn in range(turns):
        out.append(HumanMessage(content=f"question {turn}: " + "x" * 60, id=f"h-{turn}"))
        out.append(AIMessage(content=f"answer {turn}: " + "y" * 200, id=f"a-{turn}"))
    return out


def test_a_list_of_messages_is_one_piece_per_message() -> None:
    history = conversation(3)
    split = chunks.split(SafeSerializer().dumps_typed(history))
    recipe = chunks.read_recipe(split.recipe)
    element = [SafeSerializer().dumps_typed(m)[1] for m in history]
    assert recipe.digests == [chunks.digest(data) for data in element]
    assert recipe.literals == [(0, b"\x96")]  # the array header
    assert sorted(split.pieces.values()) == sorted(element)


@given(history=st.lists(messages, min_size=1, max_size=10), extra=messages)
@PROPERTY
def test_appending_a_message_adds_only_a_recipe_and_one_piece(
    history: list[Any], extra: Any
) -> None:
    serde = SafeSerializer()
    before = chunks.split(serde.dumps_typed(history))
    after = chunks.split(serde.dumps_typed([*history, extra]), before.memo)
    extra_bytes = serde.dumps_typed(extra)[1]
    if len(extra_bytes) < chunks.PIECE_MIN or chunks.digest(extra_bytes) in before.memo.known:
        assert after.pieces == {}
    else:
        assert after.pieces == {chunks.digest(extra_bytes): extra_bytes}
    assert chunks.read_recipe(after.recipe).digests[: len(before.memo.pieces)] == [
        piece.digest for piece in before.memo.pieces
    ]


def test_appending_to_a_long_list_hashes_only_the_new_element(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    serde = SafeSerializer()
    history = conversation(100)
    before = chunks.split(serde.dumps_typed(history))
    calls = counting_digests(monkeypatch)
    chunks.split(
        serde.dumps_typed([*history, HumanMessage(content="z" * 80, id="new")]), before.memo
    )
    assert calls == [1]


def test_appending_to_a_list_in_a_dict_hashes_only_the_new_element(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    serde = SafeSerializer()
    history = conversation(20)
    before = chunks.split(serde.dumps_typed({"messages": history, "summary": "s" * 100}))
    calls = counting_digests(monkeypatch)
    state = {"messages": [*history, HumanMessage(content="z" * 80, id="new")], "summary": "s" * 100}
    after = chunks.split(serde.dumps_typed(state), before.memo)
    assert calls == [1]
    assert len(after.pieces) == 1


def counting_digests(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls = [0]
    real: Callable[[bytes], bytes] = chunks.digest

    def counted(data: bytes) -> bytes:
        calls[0] += 1
        return real(data)

    monkeypatch.setattr(chunks, "digest", counted)
    return calls


def test_an_equal_element_has_one_digest_in_a_list_a_dict_and_alone() -> None:
    serde = SafeSerializer()
    message = AIMessage(content="shared " * 20, id="shared")
    others = conversation(4)
    alone = chunks.split(serde.dumps_typed(message))
    in_list = chunks.split(serde.dumps_typed([*others, message]))
    in_dict = chunks.split(serde.dumps_typed({"messages": [message, *others], "step": 3}))
    name = chunks.digest(serde.dumps_typed(message)[1])
    assert chunks.read_recipe(alone.recipe).digests == [name]
    for split in (in_list, in_dict):
        assert name in chunks.read_recipe(split.recipe).digests


def test_a_small_list_stays_inline_in_its_recipe() -> None:
    split = chunks.split(SafeSerializer().dumps_typed([1, 2, 3]))
    assert split.pieces == {}
    assert chunks.read_recipe(split.recipe) == chunks.Recipe(
        "msgpack", [], [(0, b"\x93\x01\x02\x03")]
    )


def test_a_list_of_small_dicts_is_one_piece_per_dict() -> None:
    rows = [{"role": "user", "content": f"message {i} " + "w" * 60} for i in range(10)]
    recipe = chunks.read_recipe(chunks.split(SafeSerializer().dumps_typed(rows)).recipe)
    assert len(recipe.digests) == 10


def test_a_list_of_short_strings_is_one_piece() -> None:
    items = [f"todo {i}" for i in range(40)]
    split = chunks.split(SafeSerializer().dumps_typed(items))
    assert chunks.read_recipe(split.recipe).digests == list(split.pieces)
    assert len(split.pieces) == 1


def test_an_encrypted_value_stays_whole() -> None:
    serde = EncryptedSerializer.from_pycryptodome_aes(key=b"k" * 16)
    typed = serde.dumps_typed(conversation(5))
    split = chunks.split(typed)
    assert typed[0] == "msgpack+aes"
    assert split.pieces == {chunks.digest(typed[1]): typed[1]}
    assert chunks.read_recipe(split.recipe).literals == []


@pytest.mark.parametrize(
    "typed",
    [
        ("null", b""),
        ("bytes", b"\x92" + b"a" * 100),
        ("json", b'["' + b"j" * 100 + b'"]'),
        ("pickle", b"\x80\x05" + b"p" * 100),
        ("msgpack", b"\x92\xc1" + b"not msgpack" * 10),  # no msgpack framing
        ("msgpack", b"\x92" + b"\xa1a" * 50),  # more items than the header says
    ],
)
def test_a_value_that_is_not_a_msgpack_container_stays_whole(typed: tuple[str, bytes]) -> None:
    split = chunks.split(typed)
    recipe = chunks.read_recipe(split.recipe)
    assert len(recipe.digests) + len(recipe.literals) <= 1
    assert chunks.rebuild(split.recipe, split.pieces) == typed


def test_an_unchanged_whole_value_is_not_hashed_again(monkeypatch: pytest.MonkeyPatch) -> None:
    typed = ("msgpack+aes", b"secret" * 50)
    first = chunks.split(typed)
    calls = counting_digests(monkeypatch)
    again = chunks.split(typed, first.memo)
    assert (calls, again.pieces, again.recipe) == ([0], {}, first.recipe)


# ------------------------------------------------------------- untrusted recipes and pieces


def test_a_missing_piece_is_corrupt_data_naming_it() -> None:
    split = chunks.split(SafeSerializer().dumps_typed(conversation(2)))
    name = chunks.read_recipe(split.recipe).digests[1]
    pieces = {k: v for k, v in split.pieces.items() if k != name}
    with pytest.raises(CorruptDataError, match=f"{name.hex()} of 'messages' of 'k'"):
        chunks.rebuild(split.recipe, pieces, "'messages' of 'k'")


def test_a_changed_piece_is_corrupt_data_when_verified() -> None:
    split = chunks.split(SafeSerializer().dumps_typed(conversation(2)))
    name = chunks.read_recipe(split.recipe).digests[0]
    with pytest.raises(CorruptDataError, match="does not match its digest"):
        chunks.rebuild(split.recipe, {**split.pieces, name: b"\xc0" * 70}, verify=True)


def test_a_newer_recipe_format_asks_for_an_upgrade() -> None:
    recipe = chunks.split(("null", b"")).recipe
    with pytest.raises(SchemaVersionError, match="Upgrade"):
        chunks.read_recipe(bytes([chunks.RECIPE_FORMAT + 1]) + recipe[1:])


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"\xdd\xff\xff\xff\xff", "claims more than"),  # array32 of 2^32-1 items in 5 bytes
        (b"\xdf\xff\xff\xff\xff\xc0", "claims more than"),  # map32
        (b"\xdb\xff\xff\xff\xffab", "claims more than"),  # str32 longer than the bytes
        (b"\xc9\xff\xff\xff\xff\x05", "claims more than"),  # ext32
        (b"\x91" * 10_000, "claims more than"),  # deep nesting, truncated
        (b"\xdc\x00", "truncated msgpack length"),
        (b"\xc1", "0xc1"),
        (b"", "truncated"),
    ],
)
def test_the_walker_refuses_counts_beyond_the_bytes(data: bytes, problem: str) -> None:
    with pytest.raises(CorruptDataError, match=f"'blob' is malformed: .*{problem}"):
        chunks.skip_object(data, 0, "'blob'")


def test_deep_nesting_is_walked_without_recursion() -> None:
    data = b"\x91" * 100_000 + b"\xc0"
    assert chunks.skip_object(data) == len(data)
    split = chunks.split(("msgpack", data))
    assert chunks.rebuild(split.recipe, split.pieces) == ("msgpack", data)


msgpack_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(width=32)
    | st.floats()
    | st.text(max_size=40)
    | st.binary(max_size=300)
    | st.builds(msgpack.ExtType, st.integers(0, 127), st.binary(max_size=300)),
    lambda inner: (
        st.lists(inner, max_size=20) | st.dictionaries(st.text(max_size=10), inner, max_size=20)
    ),
    max_leaves=60,
)


@given(value=msgpack_values)
@PROPERTY
def test_the_walker_frames_every_msgpack_type(value: Any) -> None:
    data = msgpack.packb(value, use_bin_type=True)
    assert chunks.skip_object(data + b"tail") == len(data)


def _reference_end(data: bytes) -> int | None:
    unpacker = msgpack.Unpacker(raw=True, strict_map_key=False, max_buffer_size=len(data) + 1)
    unpacker.feed(data)
    try:
        unpacker.skip()
    except Exception:
        return None
    return int(unpacker.tell())


damaged_msgpack = st.one_of(
    st.binary(max_size=64),
    st.builds(
        lambda value, cut, noise: msgpack.packb(value, use_bin_type=True)[:cut] + noise,
        msgpack_values,
        st.integers(0, 400),
        st.binary(max_size=8),
    ),
)


@given(data=damaged_msgpack)
@PROPERTY
def test_the_walker_of_any_bytes_agrees_with_msgpack(data: bytes) -> None:
    with interrupted_if_hung():
        try:
            end: int | None = chunks.skip_object(data, 0, "'blob'")
        except CorruptDataError as exc:
            assert "'blob'" in str(exc)
            end = None
    assert end == _reference_end(data)


@given(data=damaged_msgpack)
@PROPERTY
def test_element_spans_of_any_bytes_tile_the_value_or_raise(data: bytes) -> None:
    with interrupted_if_hung():
        try:
            spans = chunks.element_spans(data, "'blob'")
        except CorruptDataError as exc:
            assert "'blob'" in str(exc)
            return
    if spans:  # contiguous items from the first to the last byte, none empty
        assert b"".join(data[a:b] for a, b in spans) == data[spans[0][0] :]
        assert all(a < b for a, b in spans)


def _valid_recipes() -> st.SearchStrategy[bytes]:
    return st.builds(
        lambda value, policy: (
            chunks.split(SERIALIZERS["jsonplus"].dumps_typed(value), policy=policy).recipe
        ),
        values,
        policies,
    )


def _damaged(recipe: bytes, at: int, byte: int, cut: int) -> bytes:
    if not recipe:
        return recipe
    at %= len(recipe)
    return (recipe[:at] + bytes([byte]) + recipe[at + 1 :])[: max(cut, 1)]


recipe_bytes = st.one_of(
    st.binary(max_size=80),
    # a valid format and type, then anything
    st.binary(max_size=80).map(lambda b: bytes([chunks.RECIPE_FORMAT, 7]) + b"msgpack" + b),
    st.builds(
        _damaged, _valid_recipes(), st.integers(0, 10**6), st.integers(0, 255), st.integers(0, 400)
    ),
)


@given(data=recipe_bytes)
@PROPERTY
def test_read_recipe_of_any_bytes_returns_parts_that_rebuild_or_raises(data: bytes) -> None:
    with interrupted_if_hung():
        try:
            recipe = chunks.read_recipe(data, "'recipe' of 'k'")
        except SchemaVersionError:
            assert data[0] > chunks.RECIPE_FORMAT
            return
        except CorruptDataError as exc:
            assert "'recipe' of 'k'" in str(exc)
            return
    pieces = {name: b"\xa0" * chunks.PIECE_MIN for name in recipe.digests}
    typed = chunks.rebuild(data, pieces)
    assert len(typed[1]) == sum(len(b) for _, b in recipe.literals) + sum(
        len(pieces[name]) for name in recipe.digests
    )


# ------------------------------------------------------------- the measurement script


@pytest.mark.parametrize("style", ["functional", "stategraph"])
def test_the_chunking_benchmark_replays_a_chatbot_with_fewer_bytes(style: str) -> None:
    from benchmarks.chunking import record, replay, window

    row = window(replay(record(style, 10)), 10)
    assert row["sent_delta"] <= row["sent_chunked"] < row["sent_today"]
    assert row["stored_delta"] <= row["stored_chunked"] < row["stored_today"]
