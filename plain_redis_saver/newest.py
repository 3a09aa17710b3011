"""The checkpoint a saver last wrote, per thread and namespace, kept so that reading it
back needs neither its record nor its values from the server.

A read names it (id, a SHA-1 of its record and stored values, its value fields); the
read script compares that with what is stored and, on a match, sends only the pending
writes (``client_has`` in includes/common.lua). A mismatch of any kind (a newer
checkpoint, a record or value changed by another process or by hand, a value field
another writer stored first) makes the read an ordinary one, in the same round trip, so
what is remembered is never trusted beyond what the server confirms.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import NamedTuple

#: A serialized value as the serializer's ``dumps_typed`` returned it.
Typed = tuple[str, bytes]

#: Accounting overhead per remembered value, on top of its bytes.
_ENTRY_BYTES = 200

#: Most bytes (record and stored values) the read script may digest to confirm a
#: checkpoint: composed values are a few dozen bytes each, so this bounds only values
#: stored whole, whose digest would cost the server more than sending them.
MAX_DIGESTED = 64 * 1024


class Stored(NamedTuple):
    """One channel value: what its field stores, and its serialized form (None for
    the empty value of a channel without one)."""

    field_value: bytes
    typed: Typed | None


class Known(NamedTuple):
    """A checkpoint whose record and values the client holds."""

    cid: str
    digest: str
    fields: tuple[bytes, ...]
    parent: str | None
    checkpoint: Typed
    metadata: Typed
    values: tuple[tuple[str, Typed], ...]  # channel, serialized value (non-empty only)

    def read_args(self) -> tuple[str | bytes, ...]:
        """The read script's arguments naming it (see get_checkpoint.lua)."""
        return (self.cid, self.digest, *self.fields)


class _Written:
    """What a put wrote to one (thread, namespace); :meth:`known` is worked out on the
    first read after it, since most puts of a turn are followed by another put."""

    __slots__ = (
        "values",
        "cid",
        "record",
        "parent",
        "checkpoint",
        "metadata",
        "refs",
        "size",
        "_known",
    )

    def __init__(
        self,
        values: dict[bytes, Stored],
        cid: str,
        record: bytes,
        parent: str | None,
        checkpoint: Typed,
        metadata: Typed,
        refs: list[tuple[str, bytes]],
    ) -> None:
        self.values = values  # by value field (NS..ref), only those `refs` name
        self.cid, self.record, self.parent = cid, record, parent
        self.checkpoint, self.metadata, self.refs = checkpoint, metadata, refs
        self.size = (
            len(record)
            + sum(
                len(field) + len(stored.field_value) + (len(stored.typed[1]) if stored.typed else 0)
                for field, stored in values.items()
            )
            + _ENTRY_BYTES * len(values)
        )
        self._known: Known | None | bool = False  # False: not worked out yet

    def known(self) -> Known | None:
        if self._known is False:
            self._known = self._work_out()
        return self._known  # type: ignore[return-value]

    def _work_out(self) -> Known | None:
        values, refs = self.values, self.refs
        if len(values) != len(refs):
            return None  # a value of an earlier checkpoint this process never saw
        stored = [values[field].field_value for _, field in refs]
        if len(self.record) + sum(map(len, stored)) > MAX_DIGESTED:
            return None
        digest = hashlib.sha1(self.record, usedforsecurity=False)
        for field_value in stored:
            digest.update(field_value)
        return Known(
            cid=self.cid,
            digest=digest.hexdigest(),
            fields=tuple(field for _, field in refs),
            parent=self.parent,
            checkpoint=self.checkpoint,
            metadata=self.metadata,
            values=tuple(
                (channel, typed)
                for channel, field in refs
                if (typed := values[field].typed) is not None
            ),
        )


class NewestWritten:
    """Per (thread, namespace), the stored values of the checkpoint last written and,
    when every value it references is among them, that checkpoint as :class:`Known`.
    At most ``max_bytes`` of values (least recently used threads out first); 0 keeps
    nothing. Thread-safe."""

    def __init__(self, max_bytes: int, max_entries: int = 1024) -> None:
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple[str, bytes], _Written] = OrderedDict()
        self._bytes = 0
        self._max_bytes = max_bytes
        self._max_entries = max_entries

    def wrote(
        self,
        thread_id: str,
        ns: bytes,
        *,
        cid: str,
        record: bytes,
        parent: str | None,
        checkpoint: Typed,
        metadata: Typed,
        refs: Iterable[tuple[str, bytes]],
        new: Mapping[bytes, Stored],
    ) -> None:
        """Records a checkpoint just stored: ``record``, its ``refs`` (channel, value
        field, in the record's order) and the values it stored (``new``, by field)."""
        if self._max_bytes <= 0:
            return
        key = (thread_id, ns)
        refs = list(refs)
        with self._lock:
            entry = self._entries.pop(key, None)
            if entry is not None:
                self._bytes -= entry.size
        earlier = entry.values if entry is not None else {}
        # Only the values this checkpoint references can serve the next one.
        values = {}
        for _, field in refs:
            stored = new.get(field) or earlier.get(field)
            if stored is not None:
                values[field] = stored
        written = _Written(values, cid, record, parent, checkpoint, metadata, refs)
        if written.size > self._max_bytes:
            return
        with self._lock:
            self._entries[key] = written
            self._bytes += written.size
            while self._entries and (
                self._bytes > self._max_bytes or len(self._entries) > self._max_entries
            ):
                _, dropped = self._entries.popitem(last=False)
                self._bytes -= dropped.size

    def known(self, thread_id: str, ns: bytes) -> Known | None:
        """The checkpoint of ``thread_id``'s namespace ``ns`` the client holds, if any."""
        with self._lock:
            entry = self._entries.get((thread_id, ns))
            if entry is None:
                return None
            self._entries.move_to_end((thread_id, ns))
        return entry.known()
