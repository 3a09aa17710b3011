"""The replies of the read scripts, by name.

A script can only answer with an array (the server converts a Lua table's array part,
nothing else), so each reply is read by position once, here, into a NamedTuple that the
rest of the saver uses by name. The shape is checked as it is read: a reply of another
shape (a script of another release, or a server that answered something else) raises
:class:`~plain_redis_saver.errors.CorruptDataError` naming the script, instead of an
``IndexError`` or a value read from the wrong place.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from .errors import CorruptDataError


class CheckpointReply(NamedTuple):
    """What ``get_checkpoint.lua`` returns for a checkpoint it found (see its header)."""

    cid: bytes
    #: The record, or ``b""`` when the client's copy was confirmed.
    record: bytes
    #: Each channel value of the record once, in the order the record names them.
    blobs: list[Any]
    write_index: Any
    writes: list[Any]
    #: Content the composed values need and the client did not name held: digest,
    #: bytes, ...
    content: list[Any]
    #: Of a full read of the newest checkpoint, the thread's write generation it was
    #: read at (``b""`` when there is none); None otherwise.
    generation: int | bytes | None

    @property
    def confirmed(self) -> bool:
        """Whether the server confirmed the copy the client named (sent no record)."""
        return self.record == b""


class ListedCheckpoint(NamedTuple):
    """One checkpoint of a ``list_checkpoints.lua`` page."""

    ns: bytes
    cid: bytes
    record: bytes
    write_index: Any
    writes: list[Any]


class PageReply(NamedTuple):
    """What ``list_checkpoints.lua`` returns: one page (see its header)."""

    checkpoints: list[ListedCheckpoint]
    #: Each channel value the page references once, in the order the page first does.
    blobs: list[Any]
    #: Whether no older checkpoint remains.
    done: bool
    cursor: str
    cursor_ns: bytes
    #: Content the composed values need and the client did not name held.
    content: list[Any]


def _malformed(script: str, reply: Any) -> CorruptDataError:
    shape = f"{len(reply)} items" if isinstance(reply, list) else type(reply).__name__
    return CorruptDataError(
        f"{script} answered a reply of another shape ({shape}): is the server running "
        "another release's scripts, or a proxy changing replies?"
    )


def checkpoint_reply(reply: Any) -> CheckpointReply:
    """``get_checkpoint``'s reply for a checkpoint it found, by name."""
    if not isinstance(reply, list) or len(reply) not in (6, 7):
        raise _malformed("get_checkpoint", reply)
    cid, record, blobs, index, writes, content = reply[:6]
    if not (isinstance(cid, bytes) and isinstance(record, bytes)):
        raise _malformed("get_checkpoint", reply)
    if not (isinstance(blobs, list) and isinstance(writes, list)):
        raise _malformed("get_checkpoint", reply)
    generation = reply[6] if len(reply) == 7 else None
    return CheckpointReply(cid, record, blobs, index, writes, content, generation)


def page_reply(reply: Any) -> PageReply:
    """``list_checkpoints``'s reply, by name."""
    if not isinstance(reply, list) or len(reply) < 5:
        raise _malformed("list_checkpoints", reply)
    *items, blobs, done, cursor, cursor_ns, content = reply
    listed: list[ListedCheckpoint] = []
    for item in items:
        if not isinstance(item, list) or len(item) != 5:
            raise _malformed("list_checkpoints", reply)
        listed.append(ListedCheckpoint(*item))
    if not (isinstance(blobs, list) and isinstance(cursor, bytes)):
        raise _malformed("list_checkpoints", reply)
    return PageReply(listed, blobs, bool(done), cursor.decode(), cursor_ns, content)
