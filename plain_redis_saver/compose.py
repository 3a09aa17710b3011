"""Stored values as trees of shared content (storage schema 2), without I/O.

Why: each new version of a list channel (the functional API's ``previous``, a
StateGraph channel reduced by ``add_messages``) is the whole list again, so storing
versions whole makes a conversation's memory grow with the square of its length and a
turn's request with its length. Here a value the serializer wrote as a msgpack
container is cut into its elements (:mod:`plain_redis_saver.chunks`); each element of
:data:`~plain_redis_saver.chunks.PIECE_MIN` bytes or more is a *piece* named by its
digest, and the sequence of items (pieces and the literal bytes between them) is
grouped into *nodes* of about :data:`FANOUT` items, themselves named by digest and
grouped again until one node remains: a tree whose shape depends on the content only.
A version that appends to the list shares every node but those on the path to its last
item (and the first, whose literal header holds the list's length), so a put sends and
stores O(FANOUT x depth) bytes plus its new elements, whatever the history.

What a channel value or write field then stores (the *composed* form) is a small node
of its own: :data:`COMPOSED`, then items. Items are literals (``0x00``, 4-byte
big-endian length, bytes) or references (``0x01``, a 16-byte digest) to content stored
beside it in the thread's values hash. The server scripts (``includes/common.lua``)
count references, refuse a reference to content they do not hold, and rebuild the
exact bytes on every read, so the client decodes replies as before. Values that yield
no piece, or are short, are stored plain, exactly as schema 1 stored them; both forms
live side by side.

Boundaries are content-defined (an item ends a node when its digest's last byte is a
multiple of :data:`FANOUT`): inserting an element changes the nodes around it, not
all those after it, as fixed-size groups would.

A version that only appends to the last one the composer saw, without closing a run,
is stored as a *delta* (:data:`MAX_DELTAS`): one node naming the content that stood for
the last version's elements, then the new ones. The server counts the references of
each new node it stores, so a delta costs it the new elements and one more reference
instead of the whole right edge of a new tree.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable, Iterable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple

from . import chunks
from .chunks import DIGEST_SIZE
from .errors import CorruptDataError

__all__ = [
    "COMPOSED",
    "COMPOSE_MIN",
    "FANOUT",
    "RUN",
    "Composed",
    "Composer",
    "Held",
    "Memo",
    "compose",
    "expand",
    "is_node",
    "references",
]

#: First byte of a composed value: a byte msgpack never uses, and no netstring (schema
#: 1 channel values) starts with it.
COMPOSED = b"\xc1"
_LITERAL = b"\x00"
_REFERENCE = b"\x01"
#: Average items per node. Larger nodes make reads cheaper (fewer fields) and writes
#: dearer (a changed node is sent and stored again whole); 16 keeps a changed node near
#: 300 bytes with the depth at 3 for 4,000 items.
FANOUT = 16
#: Average elements per run. Consecutive elements are stored together, as one piece of
#: content: a run ends after an element whose digest's last byte is a multiple of RUN.
#: Reads then fetch and hand over a piece per run rather than per element (server CPU per
#: read falls with RUN). The elements after the last boundary (the open run, which the
#: next version of an appended list extends) stay single pieces, so no run is stored
#: twice; each element is stored about twice in all (alone while its run is open, then in
#: it). Measured with benchmarks/script_profile.py and the cost phase.
RUN = 16
#: Versions in a row stored as a *delta* of the one before, at most. A version that only
#: appends elements, none of which closes a run, is stored as one new node naming the
#: content that stood for the last version's elements, then the new elements: the
#: server then counts that node's references (the new elements and one more) rather
#: than those of every node on the tree's right edge and the open run (about 50 for a
#: 200-message history). A version that closes a run is a whole tree again, so every
#: copy of a list (a channel and a write holding it, composed by two memos) is whole at
#: the same versions and shares its deltas; MAX_DELTAS bounds the nesting deltas add
#: (well within MAX_NESTING) when no run closes for long.
MAX_DELTAS = 12
#: Values shorter than this stay plain: the references and stored entries would cost
#: more than they save.
COMPOSE_MIN = 2 * chunks.PIECE_MIN
#: Run digests a Composer remembers (about 3 MB) before it starts afresh.
_MAX_RUNS = 32_768
#: Runs closed lately whose items a Composer remembers, to send them as recipes: a run
#: is written by the calls that closed it, so a few hundred cover any concurrency. The
#: items hold their pieces' bytes (shared with the memo while it lives): a run of 16
#: 500-byte messages keeps 8 KB.
_MAX_RUN_ITEMS = 256
#: Items a node holds at most when no content-defined boundary comes sooner.
_NODE_MAX = 8 * FANOUT
#: Bounds on what stored content may make a read build (the server's scripts keep the
#: same, includes/common.lua): a client writes 4-5 levels for a million items.
MAX_NESTING = 24
MAX_BUILT = 512 * 2**20
MAX_PARTS = 256 * 2**10
#: Digests a read names as held, at most (2 KB): nodes whose whole tree the client
#: holds, then pieces (a 1,000-message history is about 60 runs and 15 elements).
_MAX_HINTS = 128
#: Nodes remembered per thread as candidates to name: the trees of the thread's latest
#: versions (a list page of ten checkpoints reaches ten roots per list channel).
_MAX_NODE_HINTS = 32
#: What an entry of the content cache costs beside its bytes (its digest and the
#: mapping's slot), counted in ``max_cache_bytes``.
_ENTRY_BYTES = 120
#: Entries (pointers to cached bytes) the remembered trees of cached nodes hold, at most.
_MAX_TREE_ENTRIES = 2**17


def _literal(data: bytes) -> bytes:
    return _LITERAL + len(data).to_bytes(4, "big") + data


def _reference(name: bytes) -> bytes:
    return _REFERENCE + name


def _items(node: bytes, start: int, where: str) -> list[tuple[bool, bytes]]:
    """The items of ``node`` from ``start`` (1 for a composed value, 0 for a stored
    node), in order: (True, digest) for a reference, (False, bytes) for a literal.
    Stored bytes are untrusted: each item must be whole, so the walk ends within
    ``len(node)`` steps, and anything else raises CorruptDataError naming ``where``."""
    items, pos, size = [], start, len(node)
    while pos < size:
        tag = node[pos]
        if tag == 1 and pos + 1 + DIGEST_SIZE <= size:
            items.append((True, node[pos + 1 : pos + 1 + DIGEST_SIZE]))
            pos += 1 + DIGEST_SIZE
            continue
        stop = pos + 5 + int.from_bytes(node[pos + 1 : pos + 5], "big")
        if tag != 0 or pos + 5 > size or stop > size:
            raise CorruptDataError(
                f"{where} is not a composed value: item {tag} at byte {pos} of {size} "
                "is malformed (the data was changed by hand)"
            )
        items.append((False, node[pos + 5 : stop]))
        pos = stop
    return items


def references(node: bytes, start: int, where: str) -> list[bytes]:
    """The digests the items of ``node`` (from ``start``: 1 for a composed value, 0 for a
    stored node) reference, in order (see :func:`_items`)."""
    return [data for is_reference, data in _items(node, start, where) if is_reference]


def expand(value: bytes, content: Mapping[bytes, bytes], where: str) -> bytes:
    """The bytes the composed ``value`` stands for, rebuilt from ``content`` (digest to
    piece or node: what a read returned and what the client held).

    Stored bytes are untrusted, so this is bounded as the server's expansion is: nodes
    nest at most :data:`MAX_NESTING` deep (a cycle nests forever), and a value is at
    most :data:`MAX_BUILT` bytes in :data:`MAX_PARTS` items. Each distinct node is
    measured and built once, so a tree naming one node many times over costs its
    distinct nodes only until the bound refuses it. Missing content or a malformed node
    raises CorruptDataError naming ``where``."""
    sizes: dict[bytes, tuple[int, int]] = {}
    parsed: dict[bytes, list[tuple[bool, bytes]]] = {}

    def measure(items: list[tuple[bool, bytes]], depth: int) -> tuple[int, int]:
        total = count = 0
        for is_reference, data in items:
            if not is_reference:
                total, count = total + len(data), count + 1
            else:
                known = sizes.get(data)
                if known is None:
                    if depth >= MAX_NESTING:
                        raise CorruptDataError(
                            f"{where}: composed value nested deeper than {MAX_NESTING} "
                            "levels, or a cycle (the data was changed by hand)"
                        )
                    piece = content.get(data)
                    if piece is None:
                        raise CorruptDataError(
                            f"{where}: content {data.hex()} of a composed value is missing"
                        )
                    if is_node(piece):
                        parsed[data] = _items(piece, 0, f"{where}, node {data.hex()}")
                        known = measure(parsed[data], depth + 1)
                    else:
                        known = (len(piece), 1)
                    sizes[data] = known
                total, count = total + known[0], count + known[1]
            if total > MAX_BUILT or count > MAX_PARTS:
                raise CorruptDataError(
                    f"{where}: composed value of over {MAX_BUILT:,} bytes or "
                    f"{MAX_PARTS:,} items (the data was changed by hand)"
                )
        return total, count

    root = _items(value, 1, where)
    measure(root, 0)
    built: dict[bytes, bytes] = {}

    def build(items: list[tuple[bool, bytes]]) -> bytes:
        parts = []
        for is_reference, data in items:
            if not is_reference:
                parts.append(data)
                continue
            done = built.get(data)
            if done is None:
                node = parsed.get(data)
                done = content[data] if node is None else build(node)
                built[data] = done
            parts.append(done)
        return b"".join(parts)

    return build(root)


def is_node(data: bytes) -> bool:
    """Whether stored content is a node (else a piece): see the module's docstring."""
    return data[:1] in (_LITERAL, _REFERENCE)


def _digest_at(joined: bytes, name: bytes) -> int:
    """Where digest ``name`` starts in ``joined`` (digests end to end), or -1."""
    at = joined.find(name)
    while at > 0 and at % DIGEST_SIZE:
        at = joined.find(name, at + 1)
    return at


def _digests(joined: bytes) -> Iterator[bytes]:
    """The digests of ``joined``, in order."""
    for i in range(0, len(joined), DIGEST_SIZE):
        yield joined[i : i + DIGEST_SIZE]


def _renewed(joined: bytes, new: Sequence[bytes], keep: int) -> bytes:
    """``joined`` (digests end to end, newest first) with ``new`` (oldest first) put in
    front, at most ``keep`` digests: work in the new names and one scan of the string
    per name, not in the ones kept. A thread's hints are kept joined so that a read
    names them by copying one string, not by touching each digest's object."""
    front: dict[bytes, None] = {}
    for name in reversed(new):
        if name in front:
            continue
        front[name] = None
        at = _digest_at(joined, name)
        if at >= 0:
            joined = joined[:at] + joined[at + DIGEST_SIZE :]
    if not front:
        return joined
    return (b"".join(front) + joined)[: keep * DIGEST_SIZE]


#: The items of a run of pieces, in order: (None, literal) or (digest, piece bytes).
RunItems = tuple[tuple[bytes | None, bytes], ...]


class Composed(NamedTuple):
    """A value in composed form: what its field stores, and every piece and node of
    its tree (digest to bytes), which the server must hold; and ``runs``, the items of
    each run it closed (run digest to items), so a write may send a run the server holds
    the pieces of as a recipe rather than as bytes (see :meth:`Composer.recipes`)."""

    value: bytes
    content: dict[bytes, bytes]
    runs: dict[bytes, RunItems] | None = None


def _tree(items: list[tuple[bytes, bool]], content: dict[bytes, bytes]) -> bytes:
    """One item standing for ``items`` (encoded items, each with whether a node may end
    after it): groups them into nodes, level after level, until one item is left."""
    while len(items) > 1:
        groups: list[list[bytes]] = []
        current: list[bytes] = []
        for encoded, boundary in items:
            current.append(encoded)
            if boundary or len(current) == _NODE_MAX:
                groups.append(current)
                current = []
        if current:
            groups.append(current)
        if len(groups) == len(items):  # every item a boundary: one node of them all
            groups = [[encoded for encoded, _ in items]]
        items = []
        for group in groups:
            node = b"".join(group)
            name = chunks.digest(node)
            content[name] = node
            items.append((_reference(name), name[-1] % FANOUT == 0))
    return items[0][0]


def _run_items(
    names: tuple[bytes, ...],
    datas: tuple[bytes, ...],
    literals: Mapping[int, bytes],
    first: int,
    end: int,
) -> RunItems:
    """The items of the run of pieces ``first`` to ``end``: the literal before each piece
    but the version's first (whose literal is the value's header), then the piece."""
    items: list[tuple[bytes | None, bytes]] = []
    for index in range(first, end + 1):
        if index and index in literals:
            items.append((None, literals[index]))
        items.append((names[index], datas[index]))
    return tuple(items)


def _encoded(items: RunItems) -> bytes:
    """``items`` as node items: each literal as its bytes, each piece by reference."""
    return b"".join(_literal(data) if name is None else _reference(name) for name, data in items)


class Memo(NamedTuple):
    """What :func:`compose` remembers of a channel's last version: the split's memo
    (:func:`chunks.split`), the literals between its pieces, and its closed runs as
    (index of the run's last piece, the run's digest). A new version that keeps a
    prefix of the pieces (an appended list) takes the runs closed inside it as they
    are: its Python work is O(new elements + runs), not O(elements).

    And, for a version stored composed: ``elements``, the digest of the content that
    stands for all its elements (the items between its header and its trailer);
    ``deltas``, how many versions in a row were stored as a delta of the one before
    (see :data:`MAX_DELTAS`); and ``content``, all the content its tree reaches, with
    ``content_bytes``, their size."""

    split: chunks.Memo
    literals: dict[int, bytes]
    runs: tuple[tuple[int, bytes], ...]
    elements: bytes | None = None
    deltas: int = 0
    content: Mapping[bytes, bytes] | None = None
    content_bytes: int = 0

    @property
    def size(self) -> int:
        """Bytes the memo holds (a copy of the version's bytes, and its content)."""
        return len(self.split.source) + self.content_bytes


_NO_COMPOSE_MEMO = Memo(chunks.Memo(), {}, ())


def composable(typed: tuple[str, bytes]) -> bool:
    """Whether a serialized value may be composed: a type :func:`chunks.split` cuts, of
    at least :data:`COMPOSE_MIN` bytes. Other types (encrypted, JSON, pickle) are
    opaque: nothing to share, and their bytes could start like a node."""
    return typed[0] in chunks.SPLIT_TYPES and len(typed[1]) >= COMPOSE_MIN


def _unchanged(prior: Memo, names: tuple[bytes, ...], literals: Mapping[int, bytes]) -> int:
    """How many leading pieces the version of ``names`` and ``literals`` shares with
    ``prior``'s, with the literals between them."""
    old = prior.split.digests
    same = min(len(old), len(names))
    if names[:same] != old[:same]:
        same = next(i for i, (a, b) in enumerate(zip(names, old, strict=False)) if a != b)
    for index in literals.keys() | prior.literals.keys():
        if 0 < index < same and literals.get(index) != prior.literals.get(index):
            same = index
    return same


def _kept_runs(prior: Memo, same: int) -> int:
    """How many of ``prior``'s closed runs a version that shares its first ``same``
    pieces (:func:`_unchanged`) closes the same way: those whose items, and the item
    after them (which decided the boundary), are unchanged."""
    kept = 0
    for last, _ in prior.runs:
        if last + 1 >= same:
            break
        kept += 1
    return kept


def compose(
    prefix: bytes,
    typed: tuple[str, bytes],
    suffix: bytes,
    memo: Memo | None = None,
    runs: dict[bytes, bytes] | None = None,
) -> tuple[Composed | None, Memo]:
    """The composed form of the stored value ``prefix + typed[1] + suffix`` (the field's
    own framing around the serializer's bytes), or None when it is better stored plain;
    and the memo for the channel's next version (see :class:`Memo`). ``runs`` caches
    the digests of runs by the digests of their elements (and their literals), so a run
    already seen (by another channel's memo) is not hashed again."""
    data = typed[1]
    prior = memo or _NO_COMPOSE_MEMO
    if not composable(typed):
        return None, prior
    cut = chunks.split(typed, prior.split)
    split = cut.memo
    if not split.digests or any(piece[0] < 2 for piece in cut.pieces.values()):
        # A msgpack object starting with 0x00 or 0x01 is one byte long; a piece that
        # starts so is not msgpack (a serializer naming its bytes wrongly): kept whole.
        return None, Memo(split, {}, ())
    names, starts, datas = split.digests, split.starts, split.datas
    literals = dict(cut.literals)
    last = len(names)
    same = _unchanged(prior, names, literals)
    kept = _appended_to(prior, names, same)
    if kept:
        return _delta(prefix, suffix, prior, split, literals, kept)
    content: dict[bytes, bytes] = {}
    items: list[tuple[bytes, bool]] = []
    closed: list[tuple[int, bytes]] = []

    def run_bytes(first: int, end: int) -> bytes:
        # A run's bytes lie together in ``data``: its pieces and the literals between
        # them (and the one before its first piece), in order.
        lo = starts[first] - len(literals.get(first, b"")) if first else starts[0]
        return data[lo : starts[end] + len(datas[end])]

    def close(end: int, run_name: bytes, run_data: bytes) -> None:
        content[run_name] = run_data
        items.append((_reference(run_name), run_name[-1] % FANOUT == 0))
        closed.append((end, run_name))

    first = 0
    for end, run_name in prior.runs[: _kept_runs(prior, same)]:
        close(end, run_name, run_bytes(first, end))
        first = end + 1
    # The runs closed here for the first time, by their items: the elements before the
    # last were stored one by one (the open run) by earlier versions.
    new_runs: dict[bytes, RunItems] = {}
    for index in range(first, last):
        name = names[index]
        if index + 1 < last:
            after = literals.get(index + 1) or datas[index + 1]
            # A run may not start with 0x00 or 0x01 (it would read as a node).
            if name[-1] % RUN != 0 or after[0] < 2:
                continue
        elif name[-1] % RUN != 0:
            break  # the open run at the end: its elements stay single pieces
        run_data = run_bytes(first, index)
        run_items = _run_items(names, datas, literals, first, index)
        if runs is None:
            run_name = chunks.digest(run_data)
        else:
            # The cache of run digests is keyed by the run's items encoded as a node's
            # (self-delimiting), so no two different runs share a key: joining the raw
            # literals and digests would not be, a 16-byte literal can equal a digest.
            key = _encoded(run_items)
            run_name = runs.get(key) or runs.setdefault(key, chunks.digest(run_data))
        close(index, run_name, run_data)
        new_runs[run_name] = run_items
        first = index + 1
    for index in range(first, last):
        if index and index in literals:
            items.append((_literal(literals[index]), False))
        name = names[index]
        content[name] = datas[index]
        items.append((_reference(name), name[-1] % FANOUT == 0))
    tree = _tree(items, content)
    value = _value(prefix, literals, tree, last, suffix)
    memo = Memo(
        split, literals, tuple(closed), tree[1:], 0, content, sum(map(len, content.values()))
    )
    return Composed(value, content, new_runs), memo


def _value(
    prefix: bytes, literals: Mapping[int, bytes], tree: bytes, last: int, suffix: bytes
) -> bytes:
    """A composed value: its header (the field's prefix and the literal before the first
    piece), the item ``tree`` standing for its elements, and its trailer."""
    parts = [COMPOSED, _literal(prefix + literals.get(0, b"")), tree]
    tail = literals.get(last, b"") + suffix
    if tail:
        parts.append(_literal(tail))
    return b"".join(parts)


def _appended_to(prior: Memo, names: tuple[bytes, ...], same: int) -> int:
    """How many pieces of ``prior``'s version the version of ``names``, which shares its
    first ``same`` (:func:`_unchanged`), keeps when it may be stored as a delta of it
    (it only appends, or changes only its header and trailer); else 0."""
    kept = len(prior.split.digests)
    if prior.elements is None or prior.deltas >= MAX_DELTAS or not kept or same != kept:
        return 0
    if any(name[-1] % RUN == 0 for name in names[kept:]):
        return 0  # it closes a run: whole, as every copy of the list will be
    return kept


def _delta(
    prefix: bytes,
    suffix: bytes,
    prior: Memo,
    split: chunks.Memo,
    literals: dict[int, bytes],
    kept: int,
) -> tuple[Composed, Memo]:
    """The version of ``split`` stored as a delta of ``prior``'s, whose first ``kept``
    pieces it keeps (see :data:`MAX_DELTAS`): one node naming what stood for the prior
    version's elements, then the literals and pieces after them. Its content is the
    prior version's and what is new, so a call that must send it all can."""
    assert prior.elements is not None and prior.content is not None
    names, datas = split.digests, split.datas
    last = len(names)
    content = dict(prior.content)
    added = prior.content_bytes
    elements, deltas = prior.elements, prior.deltas
    if last > kept:
        items = [_reference(elements)]
        for index in range(kept, last):
            if index in literals:
                items.append(_literal(literals[index]))
            name = names[index]
            items.append(_reference(name))
            if name not in content:
                content[name] = datas[index]
                added += len(datas[index])
        node = b"".join(items)
        elements = chunks.digest(node)
        if elements not in content:
            content[elements] = node
            added += len(node)
        deltas += 1
    value = _value(prefix, literals, _reference(elements), last, suffix)
    memo = Memo(split, literals, prior.runs, elements, deltas, content, added)
    return Composed(value, content), memo


class Held(NamedTuple):
    """What a read names as held (see :meth:`Composer.cached`): ``names``, the digests
    joined as the read scripts take them, and ``content``, the bytes of everything they
    stand for (each named piece; each named node and all it reaches), which rebuilding
    the reply needs."""

    names: bytes
    content: dict[bytes, bytes]


class Composer:
    """What a saver remembers between calls, bounded: per (thread, namespace, call kind,
    channel) the memo of the last version composed, so unchanged elements are neither
    walked nor hashed again; and per thread the digests the server was seen to hold, so
    a call sends only content that is new. Both are hints: a stale record of the server
    makes it refuse the call, which is then sent again with all its content
    (:meth:`forget` first). Least recently used entries go first once the memos hold
    ``max_memo_bytes`` of values or ``max_memos`` memos, or ``max_threads`` threads are
    remembered; a thread's record starts afresh past ``max_held`` digests.

    And a cache of content (digest to bytes, pieces and nodes, at most
    ``max_cache_bytes``, least recently used first out), filled by what this client
    wrote and read, with per thread the digests its latest values reached: a read names
    those it still has as held, and the server then neither reads nor walks into them
    (see :meth:`cached`). Content is named by its digest, so a cached entry is never
    stale. And composed values with the bytes they stand for (:meth:`built`, at most a
    quarter of ``max_cache_bytes``). Thread-safe."""

    def __init__(
        self,
        *,
        max_memos: int = 4096,
        max_memo_bytes: int = 64 * 2**20,
        max_threads: int = 1024,
        max_held: int = 16_384,
        max_cache_bytes: int = 32 * 2**20,
    ) -> None:
        self._lock = threading.Lock()
        self._cache: OrderedDict[bytes, bytes] = OrderedDict()
        self._cache_bytes = 0
        self._max_cache_bytes = max_cache_bytes
        # The distinct digests each cached node references (parsed once, when cached).
        self._children: dict[bytes, tuple[bytes, ...]] = {}
        # Per thread, its latest pieces' and nodes' digests, each joined end to end,
        # newest first (see _renewed): at most 5 KB a thread.
        self._hints: OrderedDict[str, tuple[bytes, bytes]] = OrderedDict()
        self._memos: OrderedDict[Hashable, Memo] = OrderedDict()
        self._memo_bytes = 0
        self._held: OrderedDict[str, set[bytes]] = OrderedDict()
        # Per thread, [P, digests]: content this client's writes saw stored at write
        # generation P or later (see :meth:`proved`).
        self._proofs: OrderedDict[str, list[Any]] = OrderedDict()
        self._max_memos = max_memos
        self._max_memo_bytes = max_memo_bytes
        self._max_threads = max_threads
        self._max_held = max_held
        self._runs: dict[bytes, bytes] = {}
        self._runs_items: dict[bytes, RunItems] = {}
        # Per cached node, its whole tree (digest to bytes), so naming a node again
        # costs one dict update, not a walk. Forgotten whenever the cache drops an
        # entry, so a tree is always whole and never keeps bytes the cache let go.
        self._trees: OrderedDict[bytes, dict[bytes, bytes]] = OrderedDict()
        self._tree_entries = 0
        # Per thread, what :meth:`cached` last returned, until the thread's hints or
        # the cache's entries change (new content for the thread, or an eviction).
        self._named: dict[str, Held] = {}
        # Composed value to the bytes it stands for (see :meth:`built`); a quarter of
        # the content cache's budget, least recently used first out.
        self._built: OrderedDict[bytes, bytes] = OrderedDict()
        self._built_bytes = 0
        self._max_built_bytes = max_cache_bytes // 4

    def compose(
        self,
        key: Hashable,
        prefix: bytes,
        typed: tuple[str, bytes],
        suffix: bytes = b"",
    ) -> Composed | None:
        if not composable(typed):
            return None  # the channel's memo stays for its next version
        with self._lock:
            memo = self._memos.pop(key, None)
            if memo is not None:
                self._memo_bytes -= memo.size
            if len(self._runs) > _MAX_RUNS:
                self._runs = {}
            runs = self._runs
        composed, memo = compose(prefix, typed, suffix, memo, runs)
        with self._lock:
            if composed is not None and composed.runs:
                recipes = self._runs_items
                recipes.update(composed.runs)
                while len(recipes) > _MAX_RUN_ITEMS:
                    del recipes[next(iter(recipes))]
            self._memos[key] = memo
            self._memo_bytes += memo.size
            while self._memos and (
                len(self._memos) > self._max_memos or self._memo_bytes > self._max_memo_bytes
            ):
                _, dropped = self._memos.popitem(last=False)
                self._memo_bytes -= dropped.size
        return composed

    def built(self, value: bytes, content: Mapping[bytes, bytes], where: str) -> bytes:
        """:func:`expand` of the composed ``value``, remembered: a composed value names
        its content by digest, so the bytes it stands for never change, and the next
        read of the same version (the thread's newest, read turn after turn) need not
        rebuild them."""
        with self._lock:
            done = self._built.get(value)
            if done is not None:
                self._built.move_to_end(value)
                return done
        done = expand(value, content, where)
        self.remember_built(value, done)
        return done

    def remember_built(self, value: bytes, data: bytes) -> None:
        """Records that the composed ``value`` stands for ``data`` (a put composed it
        from them, or a read rebuilt them)."""
        size = len(value) + len(data) + _ENTRY_BYTES
        if size > self._max_built_bytes:
            return
        with self._lock:
            memo = self._built
            if value in memo:
                memo.move_to_end(value)
                return
            memo[value] = data
            self._built_bytes += size
            while self._built_bytes > self._max_built_bytes:
                old, dropped = memo.popitem(last=False)
                self._built_bytes -= len(old) + len(dropped) + _ENTRY_BYTES

    def unsent(self, thread_id: str, content: dict[bytes, bytes]) -> tuple[dict[bytes, bytes], str]:
        """The part of ``content`` the server is not known to hold for ``thread_id``,
        and the claim a write sending it may make: a write generation at or after which
        this client saw all the rest stored ("" when it did not; see :meth:`proved`),
        or "*" when nothing is left out."""
        with self._lock:
            held = self._held.get(thread_id)
            if held is None:
                return content, "*"
            self._held.move_to_end(thread_id)
            unsent = {name: data for name, data in content.items() if name not in held}
            if len(unsent) == len(content):
                return unsent, "*"
            proof = self._proofs.get(thread_id)
            if proof is None:
                return unsent, ""
            proven = proof[1]
            for name in content:
                if name not in unsent and name not in proven:
                    return unsent, ""
            return unsent, str(proof[0])

    def recipes(self, thread_id: str, unsent: dict[bytes, bytes]) -> dict[bytes, bytes]:
        """Takes out of ``unsent`` (see :meth:`unsent`) each run closed lately whose
        pieces the server is known to hold for ``thread_id`` (at least two), and returns
        them as recipes (run digest to node items: a reference for each piece held, the
        bytes of the rest), which the write scripts build the run from. A run closes
        when a list grows past it, and both of a turn's writes that hold the list (a
        task's write and the checkpoint, which LangGraph stores concurrently) would
        otherwise send its bytes again. A recipe that names a piece the server lacks
        fails the call as a claim that does not hold does (ContentMissingError)."""
        with self._lock:
            held = self._held.get(thread_id)
            if not held:
                return {}
            recipes: dict[bytes, bytes] = {}
            for name in [name for name in unsent if name in self._runs_items]:
                items = self._runs_items[name]
                if sum(1 for digest, _ in items if digest in held) < 2:
                    continue
                # Pieces the server does not hold go by their bytes, as literals.
                recipes[name] = _encoded(
                    tuple((digest if digest in held else None, data) for digest, data in items)
                )
                del unsent[name]
            return recipes

    def proved(self, thread_id: str, after: int, refused: bool, names: Iterable[bytes]) -> None:
        """Records a write to ``thread_id`` after which the server holds ``names`` (the
        content its composed values reference: the script stored what was sent and
        found, or was rightly claimed to hold, the rest), at write generation ``after``
        (0 when the call changed nothing); ``refused``, whether the claim it made
        failed. The record is a generation P and the digests seen stored at P or
        later: a claim of P holds while no content was deleted since P (see
        claim_holds in lua/includes/common.lua), which the server checks. A failed
        claim starts it over from ``names``; digests seen at a generation before P
        (a reply handled late) are left out.

        The claims rest on this record alone, not on the hints of :meth:`held`."""
        with self._lock:
            proof = self._proofs.pop(thread_id, None)
            if not after:
                if proof is not None and not refused:
                    self._proofs[thread_id] = proof
                return
            if refused or proof is None or len(proof[1]) > self._max_held:
                proof = [after, set(names)]
            elif after >= proof[0]:
                proof[1].update(names)
            self._proofs[thread_id] = proof
            while len(self._proofs) > self._max_threads:
                self._proofs.popitem(last=False)

    def held(self, thread_id: str, names: Iterable[bytes]) -> None:
        """Records that the server holds ``names`` for ``thread_id`` (after a call that
        referenced them succeeded)."""
        with self._lock:
            known = self._held.pop(thread_id, None) or set()
            if len(known) > self._max_held:
                known = set()
            known.update(names)
            self._held[thread_id] = known
            while len(self._held) > self._max_threads:
                self._held.popitem(last=False)

    def forget(self, thread_id: str, names: Iterable[bytes] | None = None) -> None:
        """Forgets what the server held for ``thread_id`` (it refused a call, or the
        thread was deleted), or only ``names`` of it (a collection deleted them)."""
        with self._lock:
            if names is None:
                self._held.pop(thread_id, None)
                self._proofs.pop(thread_id, None)
                return
            names = set(names)
            if thread_id in self._held:
                self._held[thread_id].difference_update(names)
            if thread_id in self._proofs:
                self._proofs[thread_id][1].difference_update(names)

    def learn(self, thread_id: str, content: Mapping[bytes, bytes], *, newest: bool = True) -> None:
        """Keeps ``content`` (digest to bytes, pieces and nodes, each verified or made by
        this client) in the cache, and its digests as the most recent of ``thread_id``'s.
        A node that is not well formed is left out: the read that brought it raises when
        it rebuilds it.

        ``newest=False`` says the content may be an old checkpoint's (a read by id): it
        is then kept only for a thread the client knows nothing of yet, since making an
        old version the thread's hints would cost the next read of its newest content
        (and a walk of the old trees on every such read)."""
        if self._max_cache_bytes <= 0 or not content:
            return
        if not newest and thread_id in self._hints:
            return
        pieces: list[tuple[bytes, bytes]] = []
        nodes: list[tuple[bytes, bytes, tuple[bytes, ...] | None]] = []
        for name, data in content.items():
            if not is_node(data):
                pieces.append((name, data))
            elif name in self._children:  # cached already: parsed already
                nodes.append((name, data, None))
            else:
                try:
                    named = references(data, 0, "a node")
                except CorruptDataError:
                    continue
                nodes.append((name, data, tuple(dict.fromkeys(named))))
        with self._lock:
            cache, children = self._cache, self._children
            for name, data in pieces:
                self._keep(name, data)
            for name, data, refs in nodes:
                self._keep(name, data)
                if refs is not None and name in cache:
                    children.setdefault(name, refs)
            if self._cache_bytes > self._max_cache_bytes:
                self._trees.clear()
                self._tree_entries = 0
                self._named.clear()
            while self._cache_bytes > self._max_cache_bytes:
                dropped_name, dropped = cache.popitem(last=False)
                children.pop(dropped_name, None)
                self._cache_bytes -= len(dropped) + _ENTRY_BYTES
            self._named.pop(thread_id, None)
            old_pieces, old_nodes = self._hints.pop(thread_id, (b"", b""))
            self._hints[thread_id] = (
                _renewed(old_pieces, [name for name, _ in pieces], _MAX_HINTS),
                _renewed(old_nodes, [name for name, _, _ in nodes], _MAX_NODE_HINTS),
            )
            while len(self._hints) > self._max_threads:
                dropped_thread, _ = self._hints.popitem(last=False)
                self._named.pop(dropped_thread, None)

    def _keep(self, name: bytes, data: bytes) -> None:
        """Puts ``data`` in the cache as its most recent entry (the lock is held)."""
        cache = self._cache
        if name in cache:
            cache.move_to_end(name)
        elif len(data) + _ENTRY_BYTES <= self._max_cache_bytes:
            cache[name] = data
            self._cache_bytes += len(data) + _ENTRY_BYTES

    def _tree_of(self, name: bytes, depth: int = 0) -> dict[bytes, bytes] | None:
        """Node ``name`` and all it reaches, from the cache, or None when the cache
        lacks any of it or it nests deeper than :data:`MAX_NESTING` (the lock is held).
        Each node's tree is remembered, so a new version's tree costs its new nodes and
        one dict update per subtree it shares with older versions."""
        cache, trees = self._cache, self._trees
        tree = trees.get(name)
        if tree is not None:
            trees.move_to_end(name)
            return tree
        data = cache.get(name)
        below = self._children.get(name)  # cached with its children
        if data is None or below is None or depth >= MAX_NESTING:
            return None
        tree = {name: data}
        for digest in below:
            if digest in tree:
                continue
            child = cache.get(digest)
            if child is None:
                return None
            if not is_node(child):
                tree[digest] = child
                continue
            subtree = self._tree_of(digest, depth + 1)
            if subtree is None:
                return None
            tree.update(subtree)
        trees[name] = tree
        self._tree_entries += len(tree)
        while self._tree_entries > _MAX_TREE_ENTRIES:
            _, dropped = trees.popitem(last=False)
            self._tree_entries -= len(dropped)
        return tree

    def cached(self, thread_id: str) -> Held:
        """What a read of ``thread_id`` names as held (at most :data:`_MAX_HINTS`
        digests): first the thread's latest nodes whose whole tree is cached, newest
        first, then its latest cached pieces. The server neither reads nor walks into
        what is named, so a page of checkpoints whose values are the client's trees
        costs it only their roots. The read keeps the returned content until its reply
        is rebuilt, so the cache may drop entries meanwhile. The answer is remembered
        until the thread's content or the cache changes, so callers must not change it."""
        with self._lock:
            hints = self._hints.get(thread_id)
            if not hints:
                return Held(b"", {})
            self._hints.move_to_end(thread_id)
            named = self._named.get(thread_id)
            if named is not None:
                return named
            pieces, nodes = hints
            names: list[bytes] = []
            content: dict[bytes, bytes] = {}
            for name in _digests(nodes):
                if len(names) == _MAX_HINTS:
                    break
                # A node inside a tree named already is named too: older versions
                # reference it directly (a delta names the last version's elements).
                if name not in content:
                    tree = self._tree_of(name)
                    if tree is None:
                        continue
                    content.update(tree)
                names.append(name)
            # Pieces those nodes reach are named as well: trees the client does not hold
            # (older versions) reference them too.
            cache = self._cache
            more = [name for name in _digests(pieces) if name in cache]
            more = more[: _MAX_HINTS - len(names)]
            content.update({name: cache[name] for name in more})
            named = self._named[thread_id] = Held(b"".join(names) + b"".join(more), content)
            return named

    def unchecked(self, thread_id: str) -> bytes:
        """What a read that expects the server to confirm the client's copy names as
        held: the digests :meth:`cached` names, or (when it has not worked them out
        since the thread's content last changed) its latest cached nodes and pieces,
        without walking their trees. Should the server send the checkpoint after all,
        :meth:`content_of` gathers what they stand for, or finds the cache lacks some of
        it (the read must then be made again naming nothing). A put changes the
        thread's content, so the walk :meth:`cached` makes is what this spares the read
        that follows it."""
        with self._lock:
            hints = self._hints.get(thread_id)
            if not hints:
                return b""
            self._hints.move_to_end(thread_id)
            named = self._named.get(thread_id)
            if named is not None:
                return named.names
            pieces, nodes = hints
            room = _MAX_HINTS * DIGEST_SIZE
            return nodes[:room] + pieces[: room - min(len(nodes), room)]

    def content_of(self, names: bytes) -> dict[bytes, bytes] | None:
        """The bytes of everything ``names`` (joined digests, as :meth:`unchecked` gives
        them) stands for: each piece, each node and all it reaches; None when the cache
        lacks any of it."""
        content: dict[bytes, bytes] = {}
        with self._lock:
            cache = self._cache
            for name in _digests(names):
                if name in content:
                    continue
                data = cache.get(name)
                if data is None:
                    return None
                if not is_node(data):
                    content[name] = data
                    continue
                tree = self._tree_of(name)
                if tree is None:
                    return None
                content.update(tree)
        return content
