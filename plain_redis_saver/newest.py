"""The checkpoint a saver last wrote (or last read whole as the newest), per thread and
namespace, kept so that reading it back needs neither its record nor its values from
the server.

Every script that changes a thread moves its write generation (a counter in the
thread's value hash), and the saver's own writes reply with the generation before and
after them. While each of this process's writes found the generation its previous one
left, nothing else changed the thread in between, so what it remembers is what is
stored. A read names the checkpoint and that generation; the read script compares the
generation with the stored one and, on a match, sends only the pending writes
(``client_has`` in includes/common.lua), or nothing at all when the client also knows
them: that the checkpoint has none (a put that found none, and no write of this
process's to it since), or which they are (the writes this process stored on such a
checkpoint, each call finding the generation the one before left, or those a full read
found; the script then checks that the write index is there). Any other change (a
newer checkpoint, another process's write, delete or prune, a value another writer
stored first, eviction) moves or drops the generation and makes the read an ordinary
one, in the same round trip, so what is remembered is never trusted beyond what the
server confirms. A full read of a namespace's newest checkpoint names the generation it
was read at (in the same script), so a process that reads a thread it did not write
holds it from its second read on.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import NamedTuple

#: A serialized value as the serializer's ``dumps_typed`` returned it.
Typed = tuple[str, bytes]

#: Accounting overhead per remembered value, on top of its bytes.
_ENTRY_BYTES = 200


class Stored(NamedTuple):
    """One channel value: what its field stores, and its serialized form (None for
    the empty value of a channel without one)."""

    field_value: bytes
    typed: Typed | None


class HeldWrite(NamedTuple):
    """A pending write as put_writes stored it: the field ``idx`` of task ``task_id``
    (negative for LangGraph's special channels) and what it decodes to."""

    task_id: str
    idx: int
    channel: str
    typed: Typed
    task_path: str


#: The pending writes of a checkpoint, known exactly: none, or those this process stored.
HeldWrites = tuple[HeldWrite, ...]


def merged(held: HeldWrites, new: HeldWrites) -> HeldWrites:
    """The writes stored after put_writes stored ``new`` on a checkpoint holding ``held``
    (see put_writes.lua): a regular write never replaces one stored under its task and
    index; a special channel's does."""
    found = {(w.task_id, w.idx): w for w in held}
    for write in new:
        key = (write.task_id, write.idx)
        if write.idx < 0 or key not in found:
            found[key] = write
    return tuple(found.values())


def _writes_size(writes: HeldWrites | None) -> int:
    return sum(len(w.typed[1]) + _ENTRY_BYTES for w in writes or ())


class Known(NamedTuple):
    """A checkpoint whose record and values the client holds, as stored at the thread's
    write ``generation``; ``writes``, its pending writes when the client knows them
    (``()``: it has none), else None."""

    cid: str
    generation: int
    parent: str | None
    checkpoint: Typed
    metadata: Typed
    values: tuple[tuple[str, Typed], ...]  # channel, serialized value (non-empty only)
    writes: HeldWrites | None = None

    @property
    def unwritten(self) -> bool:
        """Whether it is known to have no pending writes."""
        return self.writes == ()

    def read_args(self) -> tuple[str, int, str]:
        """The read script's arguments naming it (see get_checkpoint.lua): "1" when it
        has no pending writes, "2" when the client holds them."""
        flag = "" if self.writes is None else "2" if self.writes else "1"
        return (self.cid, self.generation, flag)


class Parts(NamedTuple):
    """A checkpoint as written or read whole, but for its values."""

    cid: str
    record: bytes
    parent: str | None
    checkpoint: Typed
    metadata: Typed
    refs: list[tuple[str, bytes]]  # channel, value field (NS..ref), in the record's order


class _Written:
    """What a put wrote to one (thread, namespace), or a full read found there, and
    (:meth:`known`) that checkpoint as a read names it. The channel values a read
    decodes are gathered at once, from objects the put or read has just touched: a
    read, which may come long after, then touches only what it decodes."""

    __slots__ = ("values", "parts", "step", "writes", "size", "_channels")

    def __init__(
        self, values: dict[bytes, Stored], parts: Parts, step: int, writes: HeldWrites | None
    ) -> None:
        self.values = values  # by value field (NS..ref), only those `parts.refs` name
        self.parts = parts
        self.step = step  # the thread's write generation right after it was stored or read
        # Its pending writes as they were then, with those this process stored since
        # (any change by another process moves the generation past `step`); None when
        # not known.
        self.writes = writes
        self.size = _writes_size(writes) + (
            len(parts.record)
            + sum(
                len(field) + len(stored.field_value) + (len(stored.typed[1]) if stored.typed else 0)
                for field, stored in values.items()
            )
            + _ENTRY_BYTES * len(values)
        )
        # (channel, serialized value) of each non-empty value, in the record's order;
        # None when a value of an earlier checkpoint this process never saw is missing.
        self._channels: tuple[tuple[str, Typed], ...] | None = None
        if len(values) == len(parts.refs):
            self._channels = tuple(
                (channel, typed)
                for channel, field in parts.refs
                if (typed := values[field].typed) is not None
            )

    def known(self, generation: int, writes: HeldWrites | None) -> Known | None:
        """This checkpoint as :class:`Known` at the thread's ``generation``, with
        ``writes`` as its pending writes; None when a value is missing."""
        if self._channels is None:
            return None
        parts = self.parts
        return Known(
            parts.cid,
            generation,
            parts.parent,
            parts.checkpoint,
            parts.metadata,
            self._channels,
            writes,
        )


#: Most steps of a thread's generation a process may see ahead of the last one it
#: knows (replies of its own concurrent writes handled out of order) before it forgets
#: the thread.
MAX_AHEAD = 32


class _Thread:
    """The write generation up to which every change to a thread is one this process
    knows of (its own writes, or what it read), and the namespaces remembered. Replies
    of concurrent writes may be handled out of order: a step that does not start at
    ``generation`` waits in ``ahead`` until the steps before it arrive."""

    __slots__ = ("generation", "ahead", "namespaces")

    def __init__(self, generation: int) -> None:
        self.generation = generation
        self.ahead: dict[int, int] = {}  # before -> after
        self.namespaces: set[bytes] = set()

    def seen_after(self, generation: int) -> bool:
        """Whether a step from ``generation`` or later was taken already (a reply
        handled before that of the call that left ``generation``)."""
        return self.generation > generation or any(b >= generation for b in self.ahead)

    def step(self, before: int, after: int) -> bool:
        """Takes a step of this process's from generation ``before`` to ``after``; False
        if it cannot be one (a generation already passed: the thread was deleted and
        written again, or too many steps wait)."""
        if before == self.generation:
            self.generation = after
            while self.generation in self.ahead:
                self.generation = self.ahead.pop(self.generation)
            return True
        if before > self.generation and len(self.ahead) < MAX_AHEAD:
            self.ahead[before] = after
            return True
        return False


class NewestWritten:
    """Per (thread, namespace), the stored values of the checkpoint last written and,
    when every value it references is among them, that checkpoint as :class:`Known`.
    At most ``max_bytes`` of values (least recently used threads out first); 0 keeps
    nothing. Thread-safe, and replies of concurrent writes may come in any order.

    A remembered checkpoint is named with the generation up to which every change is
    known to be this process's: while some other process's change lies between, reads
    are full ones (the server's generation differs) until a full read of the newest
    checkpoint starts over from what it found."""

    def __init__(self, max_bytes: int, max_entries: int = 1024) -> None:
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple[str, bytes], _Written] = OrderedDict()
        self._threads: dict[str, _Thread] = {}
        self._bytes = 0
        self._max_bytes = max_bytes
        self._max_entries = max_entries

    def wrote(
        self,
        thread_id: str,
        ns: bytes,
        parts: Parts,
        *,
        new: Mapping[bytes, Stored],
        generations: tuple[int, int],
        fresh: bool,
        unwritten: bool = False,
    ) -> None:
        """Records a checkpoint just stored (``parts``) and the values it stored
        (``new``, by field); ``generations``, the thread's write generation before and
        after the put; ``fresh``, whether every value it sent is the one stored;
        ``unwritten``, whether the put stored a new record with no pending writes."""
        if self._max_bytes <= 0:
            return
        before, after = generations
        key = (thread_id, ns)
        with self._lock:
            thread = self._threads.get(thread_id)
            if thread is not None and not thread.step(before, after):
                self._forget(thread_id)
                thread = None
            if thread is None:
                thread = self._threads[thread_id] = _Thread(after)
            entry = self._entries.get(key)
            if entry is not None and entry.step > after:
                return  # a later put's, whose reply was handled first
            if entry is not None:
                self._pop(key)
            if fresh:
                # Only the values this checkpoint references can serve the next one.
                earlier = entry.values if entry is not None else {}
                values = {}
                for _, field in parts.refs:
                    stored = new.get(field) or earlier.get(field)
                    if stored is not None:
                        values[field] = stored
                # A write of this process's handled before this reply may be one to this
                # checkpoint, made after the put: its writes are then not known.
                unwritten = unwritten and not thread.seen_after(after)
                self._keep(key, _Written(values, parts, after, () if unwritten else None))
            # else: another writer stored one of its values first, with other bytes.
            self._drop_if_empty(thread_id)

    def read(
        self,
        thread_id: str,
        ns: bytes,
        parts: Parts,
        *,
        values: Mapping[bytes, Stored],
        generation: int,
        writes: HeldWrites | None = None,
    ) -> None:
        """Records the newest checkpoint of a namespace as a full read found it
        (``parts``, and ``values`` by field), with the thread's write ``generation`` it
        was read at (in the same script) and the pending writes it had (``writes``, ()
        for none): from then on the process holds it as if it had written it."""
        if self._max_bytes <= 0:
            return
        with self._lock:
            thread = self._threads.get(thread_id)
            if thread is not None and generation < thread.generation:
                return  # read before writes of this process's whose replies came first
            if thread is not None and generation > thread.generation:
                # Something this process did not do happened since what it remembers.
                self._forget(thread_id)
                thread = None
            if thread is None:
                thread = self._threads[thread_id] = _Thread(generation)
            if thread.seen_after(generation):
                writes = None  # a write of this process's may be one to this checkpoint
            self._pop((thread_id, ns))
            self._keep((thread_id, ns), _Written(dict(values), parts, generation, writes))
            self._drop_if_empty(thread_id)

    def _drop_if_empty(self, thread_id: str) -> None:
        """Forgets the generation of a thread left with no namespace remembered (its
        entry was not kept), so that the thread costs nothing (holds the lock)."""
        thread = self._threads.get(thread_id)
        if thread is not None and not thread.namespaces:
            del self._threads[thread_id]

    def _keep(self, key: tuple[str, bytes], written: _Written) -> None:
        """Adds ``written`` as the entry of ``key`` (its thread is known), then drops
        the least recently used entries past the budgets (holds the lock)."""
        if written.size > self._max_bytes:
            return
        self._threads[key[0]].namespaces.add(key[1])
        self._entries[key] = written
        self._bytes += written.size
        self._trim(key)

    def _trim(self, key: tuple[str, bytes]) -> None:
        """Drops the least recently used entries past the budgets; the caller looks
        after the thread of ``key``, its own (holds the lock)."""
        while self._entries and (
            self._bytes > self._max_bytes or len(self._entries) > self._max_entries
        ):
            oldest = next(iter(self._entries))
            self._pop(oldest)
            if oldest != key:
                self._drop_if_empty(oldest[0])

    def wrote_writes(
        self,
        thread_id: str,
        ns: bytes,
        cid: str,
        generations: tuple[int, int] | None,
        writes: HeldWrites | None = None,
    ) -> None:
        """Records the pending ``writes`` this process stored against checkpoint ``cid``
        of namespace ``ns`` (put_writes; None: not told which). ``generations``: the
        step the call moved the thread's write generation by, None when it stored
        nothing. The checkpoint's writes stay known when they were and this step follows
        the generation they are known at: nothing else happened in between."""
        with self._lock:
            entry = self._entries.get((thread_id, ns))
            thread = self._threads.get(thread_id)
            if entry is not None and entry.parts.cid == cid:
                after = None
                if entry.writes is not None and writes is not None:
                    after = merged(entry.writes, writes)
                if generations is None:
                    # Nothing stored: known still if that is what storing these changes.
                    after = after if after == entry.writes else None
                elif thread is None or not (entry.step <= generations[0] == thread.generation):
                    after = None
                grown = _writes_size(after) - _writes_size(entry.writes)
                if entry.size + grown > self._max_bytes:
                    # Held writes may not take a checkpoint past the budget alone.
                    after, grown = None, -_writes_size(entry.writes)
                entry.writes = after
                entry.size += grown
                self._bytes += grown
                self._trim((thread_id, ns))
            if generations is not None and thread is not None and not thread.step(*generations):
                self._forget(thread_id)

    def stepped(self, thread_id: str, generations: tuple[int, int]) -> None:
        """Records a change of this process's to ``thread_id`` that no read returns (a
        collection deleting unreferenced content): it moved the write generation by
        ``generations`` and leaves every remembered checkpoint as it was."""
        with self._lock:
            thread = self._threads.get(thread_id)
            if thread is not None and not thread.step(*generations):
                self._forget(thread_id)

    def _forget(self, thread_id: str) -> None:
        """Drops what is remembered of one thread (holds the lock)."""
        thread = self._threads.pop(thread_id, None)
        if thread is not None:
            for ns in list(thread.namespaces):
                self._pop((thread_id, ns))

    def _pop(self, key: tuple[str, bytes]) -> _Written | None:
        """Removes one entry (holds the lock)."""
        entry = self._entries.pop(key, None)
        if entry is None:
            return None
        self._bytes -= entry.size
        thread = self._threads.get(key[0])
        if thread is not None:
            thread.namespaces.discard(key[1])
        return entry

    def known(self, thread_id: str, ns: bytes) -> Known | None:
        """The checkpoint of ``thread_id``'s namespace ``ns`` the client holds, if any,
        named with the generation up to which every change is known to be this
        process's; None while the steps before it are still to come."""
        with self._lock:
            entry = self._entries.get((thread_id, ns))
            if entry is None:
                return None
            self._entries.move_to_end((thread_id, ns))
            generation = self._threads[thread_id].generation
            if entry.step > generation:
                return None
            writes = entry.writes  # as of `generation` (wrote_writes moves both)
        return entry.known(generation, writes)
