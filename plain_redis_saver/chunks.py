"""Serialized values as content-addressed pieces and back, without I/O.

Why: every new version of a list channel (the functional API's ``previous``, a
StateGraph channel reduced by ``add_messages``) is the whole list again, so storing each
version whole makes a conversation's memory grow with the square of its length. The
serializer (LangGraph's ``JsonPlusSerializer`` and this library's ``SafeSerializer``)
writes such a list as one msgpack array whose elements are self-delimiting byte spans
(a LangChain message is one ext object). This module cuts those spans out *without
decoding them*, names each by a digest of its bytes, and describes the value as a
*recipe*: the bytes between the pieces (the container's header, small elements) plus
the pieces' digests. Concatenating the literals and pieces in recipe order gives back
exactly the serializer's bytes, which then go to ``loads_typed`` as before; equal
elements of any version, channel or write share one stored piece.

Rules (each constant below says how it was chosen):

- Only the ``"msgpack"`` type is cut. Any other type (``"msgpack+aes"`` from
  ``EncryptedSerializer``, ``"json"``, ``"pickle"``, ``"null"``, ``"bytes"``, ...) and
  any msgpack value that is not an array or a map is one element.
- An element shorter than :data:`PIECE_MIN` stays in the recipe as literal bytes; a
  container whose cutting yields no piece is one element (a list of three ints is
  never cut). A value whose only content is literal is wholly inline in its recipe.
- One level below the top is cut too, for nested containers of at least
  :data:`NESTED_MIN_COUNT` items: a dict saved whole in one channel
  (``{"messages": [...], "step": 3}``) shares its messages like a list does.
- Hashing only what is new: :func:`split` takes a :class:`Memo` of the channel's
  previous version; an element whose bytes equal the previous version's element at the
  same place (one ``startswith``, no walk, no hash) reuses its digest.

Stored bytes are untrusted: :func:`read_recipe`, :func:`rebuild` and the msgpack walker
(:func:`skip_object`) check every count and length against the bytes that remain, every
loop consumes at least one byte per step, and malformed input raises
:class:`~plain_redis_saver.errors.CorruptDataError` naming what was being read.

Recipe format 1 (byte layout)::

    format      1 byte, RECIPE_FORMAT
    type        1 byte length n, then n bytes of UTF-8 (the serializer's type name)
    count       unsigned LEB128: how many pieces the value references
    digests     count x DIGEST_SIZE bytes, in value order (fixed width: a server script
                that marks live pieces reads this block without parsing anything else)
    literals    until the end, each: before (LEB128, strictly increasing, <= count),
                length (LEB128, >= 1), the bytes; a literal goes before piece ``before``

The encoding is canonical (a cut has one recipe; the decoder refuses any other form), so
recipes may be content-addressed too.
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

from .errors import CorruptDataError, SchemaVersionError, SerializationError

__all__ = [
    "DIGEST_SIZE",
    "NESTED_MIN_COUNT",
    "PIECE_MIN",
    "RECIPE_FORMAT",
    "DEFAULT_POLICY",
    "Chunked",
    "Memo",
    "MemoPiece",
    "Policy",
    "Recipe",
    "digest",
    "element_spans",
    "read_recipe",
    "rebuild",
    "skip_object",
    "split",
]

#: Format byte of the recipes this module writes.
RECIPE_FORMAT = 1
#: Digest width. 128 bits: accidental collisions are negligible at any thread size
#: (10^9 pieces: p ~ 10^-21), a second preimage of someone's piece costs 2^128, and a
#: crafted colliding pair costs ~2^64 hashes; digests are scoped to one thread, so only
#: a writer of that thread could plant one, and it can already write anything there.
#: 64 or 96 bits would put a crafted pair within reach (2^32, 2^48).
DIGEST_SIZE = 16
#: Serializer types whose bytes are msgpack this module may cut.
SPLIT_TYPES = frozenset({"msgpack"})
#: Elements shorter than this stay literal in the recipe. A piece costs its digest in
#: every recipe that references it plus a stored entry (~50-70 bytes of server
#: overhead) and a hash; a literal costs its length in every recipe. Elements of the
#: benchmark chatbots are 200-450 bytes, far above; see benchmarks/CHUNKING.md.
PIECE_MIN = 64
#: A container nested in the top one is cut when it holds at least this many items;
#: smaller ones (a message as a dict of a few fields) stay one element, so a list of
#: small dicts costs one digest per dict, not one per field.
NESTED_MIN_COUNT = 8
#: Containers cut: the top one and one level below it.
MAX_DEPTH = 1

_LITERAL_MAX_TYPE = 255


def digest(data: bytes) -> bytes:
    """The name of a piece: BLAKE2b, DIGEST_SIZE bytes (as the codec's metadata digests;
    as fast as SHA-256 at message sizes, where the call dominates)."""
    return hashlib.blake2b(data, digest_size=DIGEST_SIZE).digest()


# ---------------------------------------------------------------- msgpack framing

# For each first byte: (header bytes, length-field bytes, payload bytes per length unit,
# child objects per length unit, fixed child objects). The payload of str/bin/ext is
# skipped by its length; ext payloads (LangGraph nests msgpack in them) are opaque here.
_Frame = tuple[int, int, int, int, int]


def _frames() -> list[_Frame | None]:
    table: list[_Frame | None] = [None] * 256
    for b in range(0x00, 0x80):  # positive fixint
        table[b] = (1, 0, 0, 0, 0)
    for b in range(0xE0, 0x100):  # negative fixint
        table[b] = (1, 0, 0, 0, 0)
    for b in range(0x80, 0x90):  # fixmap
        table[b] = (1, 0, 0, 0, 2 * (b & 0x0F))
    for b in range(0x90, 0xA0):  # fixarray
        table[b] = (1, 0, 0, 0, b & 0x0F)
    for b in range(0xA0, 0xC0):  # fixstr
        table[b] = (1 + (b & 0x1F), 0, 0, 0, 0)
    for b in (0xC0, 0xC2, 0xC3):  # nil, false, true (0xC1 is never used)
        table[b] = (1, 0, 0, 0, 0)
    for b, size in ((0xC4, 1), (0xC5, 2), (0xC6, 4), (0xD9, 1), (0xDA, 2), (0xDB, 4)):
        table[b] = (1 + size, size, 1, 0, 0)  # bin8/16/32, str8/16/32
    for b, size in ((0xC7, 1), (0xC8, 2), (0xC9, 4)):  # ext8/16/32: + type byte
        table[b] = (2 + size, size, 1, 0, 0)
    for b, size in ((0xCA, 5), (0xCB, 9), (0xCC, 2), (0xCD, 3), (0xCE, 5), (0xCF, 9)):
        table[b] = (size, 0, 0, 0, 0)  # float32/64, uint8..64
    for b, size in ((0xD0, 2), (0xD1, 3), (0xD2, 5), (0xD3, 9)):  # int8..64
        table[b] = (size, 0, 0, 0, 0)
    for b, size in ((0xD4, 1), (0xD5, 2), (0xD6, 4), (0xD7, 8), (0xD8, 16)):  # fixext
        table[b] = (2 + size, 0, 0, 0, 0)
    for b, size, per in ((0xDC, 2, 1), (0xDD, 4, 1), (0xDE, 2, 2), (0xDF, 4, 2)):
        table[b] = (1 + size, size, 0, per, 0)  # array16/32, map16/32
    return table


_FRAMES = _frames()


def _malformed(where: str, data: bytes, pos: int, problem: str) -> CorruptDataError:
    return CorruptDataError(
        f"{where} is malformed: {problem} at byte {pos} of {len(data)} "
        f"({data[pos : pos + 16]!r}); the data was changed by hand, or the key prefix is "
        "shared with another application"
    )


def skip_object(data: bytes, pos: int = 0, where: str = "a stored value") -> int:
    """The position just after the msgpack object starting at ``pos``.

    Never decodes: it reads headers and lengths only. Each step consumes at least one
    byte and the objects still owed never exceed the bytes left (each takes one), so
    the loop ends within ``len(data) - pos`` steps whatever the bytes are."""
    size = len(data)
    owed = 1
    while owed:
        if pos >= size:
            raise _malformed(where, data, pos, f"truncated msgpack ({owed} objects missing)")
        frame = _FRAMES[data[pos]]
        if frame is None:
            raise _malformed(where, data, pos, "byte 0xc1 is not msgpack")
        head, len_size, per_byte, per_child, children = frame
        owed += children - 1
        if len_size:
            if pos + head > size:
                raise _malformed(where, data, pos, "truncated msgpack length")
            n = int.from_bytes(data[pos + 1 : pos + 1 + len_size], "big")
            owed += per_child * n
            pos += head + per_byte * n
        else:
            pos += head
        if pos > size or owed > size - pos:
            raise _malformed(where, data, pos, f"msgpack claims more than the {size} bytes")
    return pos


def _container(data: bytes, pos: int) -> tuple[int, int, int] | None:
    """(items, objects per item, position of the first item) of the array or map at
    ``pos``, or None if it is another kind of object (or the bytes end)."""
    if pos >= len(data):
        return None
    first = data[pos]
    if 0x90 <= first <= 0x9F:
        return first & 0x0F, 1, pos + 1
    if 0x80 <= first <= 0x8F:
        return first & 0x0F, 2, pos + 1
    if first in (0xDC, 0xDD, 0xDE, 0xDF):
        width = 2 if first in (0xDC, 0xDE) else 4
        count = int.from_bytes(data[pos + 1 : pos + 1 + width], "big")
        return count, 1 if first in (0xDC, 0xDD) else 2, pos + 1 + width
    return None


def element_spans(data: bytes, where: str = "a stored value") -> list[tuple[int, int]]:
    """The byte spans of the items of the msgpack array or map ``data`` (a map's item
    is a key and its value), after checking that they fill ``data`` exactly. Raises
    CorruptDataError naming ``where`` if ``data`` is not one array or map."""
    if not data:
        raise _malformed(where, data, 0, "empty value")
    found = _container(data, 0)
    if found is None:
        raise _malformed(where, data, 0, "not a msgpack array or map")
    count, per, pos = found
    if pos > len(data) or count * per > len(data) - pos:
        raise _malformed(where, data, 0, f"a container of {count} items in {len(data)} bytes")
    spans = []
    for _ in range(count):
        start = pos
        for _ in range(per):
            pos = skip_object(data, pos, where)
        spans.append((start, pos))
    if pos != len(data):
        raise _malformed(where, data, pos, "bytes after the container")
    return spans


# ---------------------------------------------------------------- cutting


@dataclass(frozen=True)
class Policy:
    """Where values are cut (the module constants; other values are for measuring)."""

    piece_min: int = PIECE_MIN
    nested_min_count: int = NESTED_MIN_COUNT
    max_depth: int = MAX_DEPTH


DEFAULT_POLICY = Policy()


class MemoPiece(NamedTuple):
    digest: bytes
    data: bytes
    #: msgpack objects in ``data``: 1 for an array element, 2 for a map item (key and
    #: value). A piece is only reused where an item of the same kind starts, so a
    #: match ends exactly where that item ends (msgpack is self-delimiting).
    objects: int


class Memo:
    """What :func:`split` remembers of a channel's previous version: its bytes and its
    pieces in value order (parallel tuples: the reuse path slices them in C, not one
    Python object per piece). Holding it costs about one copy of the value's bytes.

    ``breaks``: indices of the pieces that start a *run*, pieces of one kind that follow
    each other with no literal between them; a run found again in a new version is
    checked with one bytes comparison, so an append-only list costs O(1) Python steps
    for all its old elements. A piece is reused wherever an item of its kind starts,
    also at another depth: a container that was one piece below the cut levels stays one
    piece if it moves up, where a fresh cut might cut it (the bytes are the same)."""

    __slots__ = ("source", "starts", "digests", "datas", "objects", "breaks", "known")

    def __init__(
        self,
        source: bytes = b"",
        starts: tuple[int, ...] = (),
        digests: tuple[bytes, ...] = (),
        datas: tuple[bytes, ...] = (),
        objects: tuple[int, ...] = (),
        breaks: tuple[int, ...] = (),
    ) -> None:
        self.source = source
        self.starts = starts
        self.digests = digests
        self.datas = datas
        self.objects = objects
        self.breaks = breaks
        self.known = frozenset(digests)

    @property
    def pieces(self) -> tuple[MemoPiece, ...]:
        return tuple(map(MemoPiece, self.digests, self.datas, self.objects))

    def run_end(self, index: int) -> int:
        """The index after the last piece of the run holding piece ``index``."""
        after = bisect.bisect_right(self.breaks, index)
        return self.breaks[after] if after < len(self.breaks) else len(self.digests)

    @classmethod
    def of_stored(cls, recipe: Recipe, pieces: Mapping[bytes, bytes]) -> Memo:
        """A memo of a value read back (after a restart, or from another client), with
        no hashing: the recipe names the digests. A piece that is not one or two whole
        msgpack objects is left out (it is then hashed again, never misread). Runs are
        single pieces: where literals stood is not checked."""
        kept = []
        for name in recipe.digests:
            data = pieces.get(name)
            if data is not None and (objects := _objects(data)):
                kept.append(MemoPiece(name, data, objects))
        starts, pos = [], 0
        for piece in kept:
            starts.append(pos)
            pos += len(piece.data) + 1  # a gap: no two pieces form a run
        return cls(
            b"",
            tuple(starts),
            tuple(piece.digest for piece in kept),
            tuple(piece.data for piece in kept),
            tuple(piece.objects for piece in kept),
            tuple(range(len(kept))),
        )


def _objects(data: bytes) -> int:
    """How many msgpack objects ``data`` holds when that is 1 or 2, else 0."""
    pos, count = 0, 0
    try:
        while pos < len(data) and count < 3:
            pos = skip_object(data, pos)
            count += 1
    except CorruptDataError:
        return 0
    return count if pos == len(data) and count <= 2 else 0


class Chunked(NamedTuple):
    """A value cut into pieces: the recipe to store, the pieces the memo did not
    already hold (digest to bytes), and the memo to pass for the channel's next
    version."""

    recipe: bytes
    pieces: dict[bytes, bytes]
    memo: Memo
    #: The recipe's literals, as :class:`Recipe` holds them (no need to decode it).
    literals: list[tuple[int, bytes]]


_NO_MEMO = Memo()


class _Cutter:
    __slots__ = (
        "data",
        "policy",
        "memo",
        "known",
        "next",
        "runs",
        "starts",
        "digests",
        "datas",
        "objects",
        "breaks",
        "literals",
        "end",
        "new",
    )

    def __init__(self, data: bytes, memo: Memo, policy: Policy) -> None:
        self.data = data
        self.policy = policy
        self.memo = memo
        self.known = memo.known
        self.next = 0  # the memo piece expected next
        self.runs = True  # off after a run fails to match: no quadratic re-comparing
        self.reset()

    def reset(self) -> None:
        self.starts: list[int] = []
        self.digests: list[bytes] = []
        self.datas: list[bytes] = []
        self.objects: list[int] = []
        self.breaks: list[int] = []
        self.literals: list[tuple[int, bytes]] = []
        self.end = 0  # where the last piece ended
        self.new: dict[bytes, bytes] = {}

    def place(self, start: int, objects: int) -> None:
        """Book-keeping before a piece at ``start``: the literal before it, and whether
        it starts a run."""
        if start > self.end:
            self.literals.append((len(self.digests), self.data[self.end : start]))
            self.breaks.append(len(self.digests))
        elif not self.objects or self.objects[-1] != objects:
            self.breaks.append(len(self.digests))

    def element(self, start: int, end: int, objects: int) -> None:
        if end - start < self.policy.piece_min:
            return  # stays literal
        data = self.data[start:end]
        name = digest(data)
        self.place(start, objects)
        self.starts.append(start)
        self.digests.append(name)
        self.datas.append(data)
        self.objects.append(objects)
        self.end = end
        if name not in self.known:
            self.new[name] = data

    def reuse(self, start: int, objects: int, items: int) -> int:
        """How many of the next ``items`` items, from ``start``, equal the memo's next
        pieces (or those after one removed piece), booked as pieces. No walk, no hash:
        bytes comparisons only."""
        memo, data = self.memo, self.data
        for k in (self.next, self.next + 1):
            if (
                k < len(memo.digests)
                and memo.objects[k] == objects
                and data.startswith(memo.datas[k], start)
            ):
                j = k + 1
                if self.runs and items > 1:
                    j = min(memo.run_end(k), k + items)
                    if j > k + 1:
                        run = memoryview(memo.source)[
                            memo.starts[k] : memo.starts[j - 1] + len(memo.datas[j - 1])
                        ]
                        if not data.startswith(run, start):
                            self.runs = False
                            j = k + 1
                self.place(start, objects)
                shift = start - memo.starts[k]
                self.starts.extend(map(shift.__add__, memo.starts[k:j]))
                self.digests.extend(memo.digests[k:j])
                self.datas.extend(memo.datas[k:j])
                self.objects.extend(memo.objects[k:j])
                self.end = memo.starts[j - 1] + len(memo.datas[j - 1]) + shift
                self.next = j
                return j - k
        return 0

    def container(self, pos: int, depth: int) -> int:
        """Cuts the array or map at ``pos`` (the caller checked that it is one) into
        items; returns its end."""
        data = self.data
        count, per, pos = _container(data, pos) or (0, 1, pos)
        if pos > len(data) or count * per > len(data) - pos:
            raise _malformed("a value", data, pos, f"a container of {count} items")
        done = 0
        while done < count:  # each step takes at least one item
            start = pos
            if reused := self.reuse(start, per, count - done):
                done += reused
                pos = self.end
                continue
            done += 1
            if per == 2:
                pos = skip_object(data, pos, "a value")  # the key
            nested = _container(data, pos) if depth < self.policy.max_depth else None
            if nested is not None and nested[0] >= self.policy.nested_min_count:
                before = len(self.digests)
                pos = self.container(pos, depth + 1)
                if len(self.digests) == before:  # nothing worth a piece inside
                    self.element(start, pos, per)
            else:
                pos = skip_object(data, pos, "a value")
                self.element(start, pos, per)
        return pos

    def whole(self) -> None:
        memo = self.memo
        if len(memo.digests) == 1 and memo.datas[0] == self.data:
            self.reuse(0, memo.objects[0], 1)
        else:
            self.element(0, len(self.data), 1)


def split(
    typed: tuple[str, bytes], previous: Memo | None = None, policy: Policy = DEFAULT_POLICY
) -> Chunked:
    """``typed`` (what ``serde.dumps_typed`` returned) as a recipe and pieces.

    ``previous``: the memo :func:`split` returned for the same channel's previous
    version; items equal to its pieces are neither walked nor hashed, and pieces it
    holds are not returned again. Bytes the walker cannot frame (not what a msgpack
    serializer writes) are kept whole, so :func:`rebuild` always returns ``typed``."""
    type_name, data = typed
    cutter = _Cutter(data, previous or _NO_MEMO, policy)
    if (
        type_name in SPLIT_TYPES
        and len(data) >= policy.piece_min
        and _container(data, 0) is not None
    ):
        try:
            if cutter.container(0, 0) != len(data):
                cutter.reset()
        except CorruptDataError:
            cutter.reset()
    if not cutter.digests:  # not cut: one element
        cutter.reset()
        cutter.whole()
    if cutter.end < len(data):
        cutter.literals.append((len(cutter.digests), data[cutter.end :]))
    memo = Memo(
        data,
        tuple(cutter.starts),
        tuple(cutter.digests),
        tuple(cutter.datas),
        tuple(cutter.objects),
        tuple(cutter.breaks),
    )
    return Chunked(
        _encode_recipe(type_name, memo.digests, cutter.literals), cutter.new, memo, cutter.literals
    )


# ---------------------------------------------------------------- recipes


class Recipe(NamedTuple):
    """A decoded recipe: the serializer's type, the pieces' digests in value order and
    the literal bytes placed before piece ``before`` (``len(digests)``: at the end)."""

    type: str
    digests: list[bytes]
    literals: list[tuple[int, bytes]]


def _uvarint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append(0x80 | (n & 0x7F))
        n >>= 7
    out.append(n)
    return bytes(out)


def _encode_recipe(
    type_name: str, digests: tuple[bytes, ...], literals: list[tuple[int, bytes]]
) -> bytes:
    name = type_name.encode("utf-8")
    if len(name) > _LITERAL_MAX_TYPE:
        raise SerializationError(f"serializer type name {type_name!r} exceeds 255 bytes")
    out = [bytes((RECIPE_FORMAT, len(name))), name, _uvarint(len(digests)), *digests]
    for before, data in literals:
        out += (_uvarint(before), _uvarint(len(data)), data)
    return b"".join(out)


#: A LEB128 number in a recipe is at most this many bytes (2^35: beyond any count or
#: length a stored value can have, so longer ones are damage, not data).
_UVARINT_MAX_BYTES = 5


def _read_uvarint(data: bytes, pos: int, where: str, what: str) -> tuple[int, int]:
    value = 0
    for i in range(_UVARINT_MAX_BYTES):
        if pos + i >= len(data):
            raise _malformed(where, data, pos, f"recipe truncated in its {what}")
        byte = data[pos + i]
        value |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            if byte == 0 and i:
                raise _malformed(where, data, pos, f"recipe {what} is not minimally encoded")
            return value, pos + i + 1
    raise _malformed(where, data, pos, f"recipe {what} is longer than {_UVARINT_MAX_BYTES} bytes")


def read_recipe(recipe: bytes, where: str = "a stored recipe") -> Recipe:
    """Decodes ``recipe``; raises CorruptDataError naming ``where`` unless it is exactly
    what :func:`split` writes, SchemaVersionError for a newer format."""
    size = len(recipe)
    if size < 2:
        raise _malformed(where, recipe, 0, "recipe shorter than its format and type")
    if recipe[0] != RECIPE_FORMAT:
        if recipe[0] > RECIPE_FORMAT:
            raise SchemaVersionError(
                f"{where} has recipe format {recipe[0]}; this release reads format "
                f"{RECIPE_FORMAT}. Upgrade plain-redis-saver to read it."
            )
        raise _malformed(where, recipe, 0, f"unknown recipe format {recipe[0]}")
    pos = 2 + recipe[1]
    if pos > size:
        raise _malformed(where, recipe, 1, "recipe truncated in its type name")
    try:
        type_name = recipe[2:pos].decode("utf-8")
    except UnicodeDecodeError:
        raise _malformed(where, recipe, 2, "recipe type name is not UTF-8") from None
    count, pos = _read_uvarint(recipe, pos, where, "piece count")
    if count > (size - pos) // DIGEST_SIZE:
        raise _malformed(where, recipe, pos, f"recipe claims {count} digests")
    digests = [
        recipe[p : p + DIGEST_SIZE] for p in range(pos, pos + count * DIGEST_SIZE, DIGEST_SIZE)
    ]
    pos += count * DIGEST_SIZE
    literals: list[tuple[int, bytes]] = []
    while pos < size:  # each literal takes at least three bytes
        before, pos = _read_uvarint(recipe, pos, where, "literal position")
        length, pos = _read_uvarint(recipe, pos, where, "literal length")
        if before > count or (literals and before <= literals[-1][0]):
            raise _malformed(where, recipe, pos, f"recipe literal out of order (before {before})")
        if length == 0 or length > size - pos:
            raise _malformed(where, recipe, pos, f"recipe literal of {length} bytes")
        literals.append((before, recipe[pos : pos + length]))
        pos += length
    return Recipe(type_name, digests, literals)


def rebuild(
    recipe: bytes | Recipe,
    pieces: Mapping[bytes, bytes],
    where: str = "a stored value",
    *,
    verify: bool = False,
) -> tuple[str, bytes]:
    """The ``(type, bytes)`` a recipe describes, for ``serde.loads_typed``. ``pieces``
    maps digests to bytes (more than needed is fine). A missing piece raises
    CorruptDataError naming it; ``verify`` also re-hashes each piece (the bytes then
    go through the serializer either way, which refuses malformed input)."""
    parsed = recipe if isinstance(recipe, Recipe) else read_recipe(recipe, where)
    parts: list[bytes] = []
    literals = iter(parsed.literals)
    literal = next(literals, None)
    for index, name in enumerate(parsed.digests):
        if literal is not None and literal[0] == index:
            parts.append(literal[1])
            literal = next(literals, None)
        data = pieces.get(name)
        if data is None:
            raise CorruptDataError(
                f"piece {name.hex()} of {where} is missing (evicted, or deleted by hand)"
            )
        if verify and digest(data) != name:
            raise CorruptDataError(f"piece {name.hex()} of {where} does not match its digest")
        parts.append(data)
    if literal is not None:
        parts.append(literal[1])
    return parsed.type, b"".join(parts)
