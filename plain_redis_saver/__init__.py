"""LangGraph checkpointers for plain Redis and Valkey: no modules, cluster-ready.

>>> from plain_redis_saver import PlainRedisSaver
>>> with PlainRedisSaver.from_conn_string("redis://localhost:6379/0") as saver:
...     saver.setup()
"""

from __future__ import annotations

from .aio import AsyncPlainRedisSaver
from .audit import ThreadAudit
from .base import BaseRedisSaver
from .cache import PlainRedisCache
from .errors import (
    CheckpointRemovedError,
    ConcurrentWriteError,
    CorruptDataError,
    DisallowedTypeError,
    EventLoopError,
    InvalidConfigError,
    PlainRedisSaverError,
    ReplicationError,
    SchemaVersionError,
    SerializationError,
    ValueTooLargeError,
)
from .saver import PlainRedisSaver
from .serde import SafeSerializer
from .shallow import AsyncShallowRedisSaver, ShallowRedisSaver
from .store import AsyncPlainRedisStore, PlainRedisStore

#: Drop-in names for code written for langgraph-checkpoint-redis.
RedisSaver = PlainRedisSaver
AsyncRedisSaver = AsyncPlainRedisSaver

__version__ = "0.1.0"

__all__ = [
    "AsyncPlainRedisSaver",
    "AsyncPlainRedisStore",
    "AsyncRedisSaver",
    "AsyncShallowRedisSaver",
    "BaseRedisSaver",
    "CheckpointRemovedError",
    "ConcurrentWriteError",
    "CorruptDataError",
    "DisallowedTypeError",
    "EventLoopError",
    "InvalidConfigError",
    "PlainRedisCache",
    "PlainRedisSaver",
    "PlainRedisSaverError",
    "PlainRedisStore",
    "RedisSaver",
    "ReplicationError",
    "SafeSerializer",
    "SchemaVersionError",
    "SerializationError",
    "ShallowRedisSaver",
    "ThreadAudit",
    "ValueTooLargeError",
    "__version__",
]
