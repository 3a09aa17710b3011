"""Exceptions raised by plain_redis_saver. All derive from PlainRedisSaverError."""

from __future__ import annotations


class PlainRedisSaverError(Exception):
    """Base class of every error this library raises on purpose."""


class InvalidConfigError(PlainRedisSaverError, ValueError):
    """A config, id or argument passed to the saver is malformed; nothing was written."""


class SerializationError(PlainRedisSaverError, TypeError):
    """A value could not be serialized by the saver's serde; nothing was written."""


class CorruptDataError(PlainRedisSaverError):
    """Data stored under the key prefix is not what this library wrote."""


class SchemaVersionError(PlainRedisSaverError):
    """Data under the key prefix was written by an unknown (newer) storage schema."""


class EventLoopError(PlainRedisSaverError, RuntimeError):
    """A blocking call was made on the async saver from inside its own event loop."""


class ReplicationError(PlainRedisSaverError):
    """``wait_replicas`` replicas did not acknowledge a write in time (the primary has it)."""


class ValueTooLargeError(PlainRedisSaverError, ValueError):
    """A serialized value is larger than the saver's ``max_value_size``; nothing was written."""


class DisallowedTypeError(CorruptDataError):
    """Stored data names a type (or function) that the serializer refuses to rebuild:
    reading never runs code named by the data. The message names the type and the
    option that allows it. A CorruptDataError: the reader cannot accept what is stored."""


class ConcurrentWriteError(PlainRedisSaverError):
    """A thread kept changing while it was being read in several requests (copy_thread,
    the CLI's export); nothing was written. Retry when the thread's writes pause."""


class ExportFormatError(PlainRedisSaverError, ValueError):
    """A thread export (``plain_redis_saver.transfer``) is malformed, truncated, of an
    unknown format version, or holds a value the saver's serializer cannot read; the
    message names the line. Nothing was written."""


class ThreadNotFoundError(PlainRedisSaverError, LookupError):
    """The thread holds no checkpoint under the saver's key prefix."""


class ThreadExistsError(PlainRedisSaverError):
    """An import's target thread already holds checkpoints; nothing was written. Pass
    ``replace=True`` to delete it first."""

    def __init__(self, message: str, *, thread_id: str) -> None:
        super().__init__(message)
        self.thread_id = thread_id


class IncompleteImportError(PlainRedisSaverError):
    """An import stopped part-way (the server refused a write, or the connection was
    lost): the target holds the checkpoints written before. Import again with
    ``replace=True``. ``written`` and ``total`` count checkpoints; the cause is chained."""

    def __init__(self, message: str, *, thread_id: str, written: int, total: int) -> None:
        super().__init__(message)
        self.thread_id = thread_id
        self.written = written
        self.total = total


class CheckpointRemovedError(InvalidConfigError):
    """A put continues from a checkpoint that is no longer stored (``max_checkpoints``
    retention, ``prune`` or ``delete_for_runs`` removed it) in a namespace that holds
    newer ones: storing it would silently start the thread over. Nothing was written."""


class ContentMissingError(PlainRedisSaverError):
    """A write referenced stored content the server does not hold, and was refused
    whole. The saver sends it again with the content; it reaches a caller only if the
    second attempt is refused too (content deleted by hand meanwhile)."""
