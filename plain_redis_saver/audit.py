"""The bookkeeping of one thread checked against what it stores (no I/O here).

A thread's values hash keeps reference counts beside the values (see ``adjust`` and the
content counts in ``lua/includes/common.lua``): ``#<NS><ref>`` counts the checkpoints of
namespace NS that reference a channel value, ``#*<digest>`` the references to a piece of
shared content from stored values, pending writes and nodes, and ``=<NS>`` counts the
checkpoints of NS. A removal lowers the counts and frees what reaches zero, so a count
that is too low frees a value still in use, and one too high keeps a value for good.
:func:`audit_rows` recomputes every count from a snapshot of the thread and compares,
and finds what no checkpoint or pending write reaches (values left by a large put or a
copy interrupted before it completed, or by damage).

A thread marked uncounted (``=u``, see ``UNCOUNTED`` in ``lua/includes/common.lua``)
keeps only the ``=<NS>`` counts: a ``#`` count there is wrong (expected none), and what
nothing reaches is garbage its next collection deletes, not a sign of damage.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from . import codec, compose
from .errors import CorruptDataError
from .keys import ThreadKeys

_META = b"="


@dataclass(frozen=True)
class ThreadAudit:
    """What :meth:`~plain_redis_saver.PlainRedisSaver.audit_thread` found in one thread.

    ``wrong_counts`` lists (field, stored count, expected count) for every count of the
    values hash that differs from what the stored checkpoints, values, writes and nodes
    reference (``None``: no such field); a removal would free too early, or never.
    ``unreferenced`` lists the value and content fields that no checkpoint or pending
    write reaches, and ``unreferenced_bytes`` what they hold. ``missing`` lists the
    fields referenced but not stored (reads of what references them raise).
    ``uncounted``: the thread keeps no reference counts (only the checkpoint counts
    ``=<NS>``); its ``unreferenced`` fields are garbage awaiting a collection.
    """

    checkpoints: int
    values: int
    content: int
    wrong_counts: list[tuple[bytes, int | None, int]] = field(default_factory=list)
    unreferenced: list[bytes] = field(default_factory=list)
    unreferenced_bytes: int = 0
    missing: list[bytes] = field(default_factory=list)
    uncounted: bool = False

    @property
    def counts_ok(self) -> bool:
        """Whether every count equals the references it stands for."""
        return not self.wrong_counts

    def problem(self) -> str | None:
        """A sentence naming what is wrong with the counts or missing, or None."""
        parts = []
        if self.wrong_counts:
            field, stored, expected = self.wrong_counts[0]
            parts.append(
                f"{len(self.wrong_counts)} reference count(s) differ from what is stored "
                f"(e.g. {field!r} is {stored if stored is not None else 'absent'}, expected "
                f"{expected}): a removal could free a value still in use, or never free one"
            )
        if self.missing:
            parts.append(
                f"{len(self.missing)} referenced value(s) missing, e.g. {self.missing[0]!r}"
            )
        return "; ".join(parts) or None


def _ns_of(record_field: bytes, key: str) -> bytes:
    """The NS part (a netstring) of a checkpoints-hash field NS..CID."""
    _, end = codec.read_netstring(record_field, 0, f"field {record_field!r} of {key!r}")
    return record_field[:end]


def held_references(field: bytes, value: bytes, key: str, is_content: bool) -> list[bytes]:
    """The content digests that ``value``, stored in ``field`` of ``key``, references
    (repeats count): a piece of content (``is_content``) if it is a node, else a composed
    channel value or pending write; nothing for any other value. Raises CorruptDataError
    naming the field for a malformed one."""
    where = f"field {field!r} of {key!r}"
    if is_content:
        return compose.references(value, 0, where) if compose.is_node(value) else []
    if value[:1] == compose.COMPOSED:
        return compose.references(value, 1, where)
    return []


def _number(name: bytes, data: bytes, key: str) -> int:
    try:
        return int(data)
    except ValueError:
        raise CorruptDataError(f"count {name!r} of {key!r} holds {data!r}, not a number") from None


def _reach(roots: Iterable[bytes], content: dict[bytes, bytes], key: str) -> set[bytes]:
    """The content digests reachable from ``roots`` through stored nodes."""
    seen: set[bytes] = set()
    stack = list(roots)
    while stack:
        digest = stack.pop()
        if digest in seen:
            continue
        seen.add(digest)
        data = content.get(digest)
        if data is not None and compose.is_node(data):
            stack.extend(compose.references(data, 0, f"content {digest.hex()} of {key!r}"))
    return seen


def audit_rows(
    keys: ThreadKeys,
    records: Sequence[tuple[bytes, bytes]],
    blobs: Sequence[tuple[bytes, bytes]],
    writes: Sequence[tuple[bytes, bytes]],
) -> ThreadAudit:
    """Checks the counts of a thread from its three hashes as of one moment. Raises
    :class:`~plain_redis_saver.errors.CorruptDataError` for a record or composed value
    that cannot be parsed (reads of it raise the same)."""
    values: dict[bytes, bytes] = {}
    content: dict[bytes, bytes] = {}
    stored_counts: dict[bytes, int] = {}
    uncounted = False
    for name, data in blobs:
        if name == codec.UNCOUNTED:
            uncounted = True
        if name[:1] == codec.COUNT_FIELD or (name[:1] == _META and name[1:2].isdigit()):
            # "=NS" counts the checkpoints of NS; "=g", "=w" are no counts.
            stored_counts[name] = _number(name, data, keys.blobs)
        elif name[:1] == codec.CONTENT_FIELD:
            content[name[1:]] = data
        elif name[:1] != _META:
            values[name] = data
    expected: Counter[bytes] = Counter()
    referenced: set[bytes] = set()
    missing: list[bytes] = []
    for name, data in records:
        ns = _ns_of(name, keys.checkpoints)
        expected[codec.checkpoint_count_field(ns)] += 1
        for ref in codec.Record(data, keys.checkpoints).refs:
            if not uncounted:
                expected[codec.COUNT_FIELD + ns + ref] += 1
            referenced.add(ns + ref)
            if ns + ref not in values:
                missing.append(ns + ref)
    # Content counts: every reference from a stored value, write or node (as the
    # scripts count them), whether or not a checkpoint reaches its holder.
    holders = [
        *((name, data, keys.blobs, False) for name, data in values.items()),
        *((codec.CONTENT_FIELD + d, data, keys.blobs, True) for d, data in content.items()),
        *((name, data, keys.writes, False) for name, data in writes),
    ]
    roots: list[bytes] = []
    for name, data, key, is_content in holders:
        refs = held_references(name, data, key, is_content)
        if not uncounted:
            for digest in refs:
                expected[codec.CONTENT_COUNT_FIELD + digest] += 1
        if key == keys.writes or name in referenced:
            roots += refs
    reached = _reach(roots, content, keys.blobs)
    missing += [codec.CONTENT_FIELD + d for d in sorted(reached - content.keys())]
    wrong = [
        (name, stored_counts.get(name), expected[name])
        for name in sorted(stored_counts.keys() | expected.keys())
        if stored_counts.get(name) != (expected[name] or None)
    ]
    loose_values = [name for name in values if name not in referenced]
    loose_content = [d for d in content if d not in reached]
    unreferenced = sorted(loose_values + [codec.CONTENT_FIELD + d for d in loose_content])
    size = sum(len(values[n]) for n in loose_values) + sum(len(content[d]) for d in loose_content)
    return ThreadAudit(
        checkpoints=len(records),
        values=len(values),
        content=len(content),
        wrong_counts=wrong,
        unreferenced=unreferenced,
        unreferenced_bytes=size,
        missing=sorted(set(missing)),
        uncounted=uncounted,
    )
