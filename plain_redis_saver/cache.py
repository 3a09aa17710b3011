"""PlainRedisCache: LangGraph's node and task cache (``BaseCache``) on plain Redis/Valkey.

Each entry is one string key with the server's own expiry, so an expired entry is gone
without any sweep. Entries of one namespace share a hash tag (one cluster slot) and an
index (a sorted set of their keys, scored by expiry) that ``clear`` reads instead of
``KEYS`` or a keyspace ``SCAN``; a small registry lists the namespaces for ``clear()``
of everything. ``get`` is one ``MGET`` per namespace and ``set`` one script per
namespace, all in one pipeline: one round trip (one per node on a cluster).

Errors: a server error (connection lost, ACL refusal, ...) raises, and a stored value
that cannot be decoded raises CorruptDataError naming its key. ``on_error="warn"``
turns both into a cache miss (``get`` returns what it could not read as absent; ``set``
and ``clear`` do nothing) and logs a warning with the error: never silently.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from typing import Any, Literal

from langgraph.cache.base import BaseCache, FullKey, Namespace, ValueT
from langgraph.checkpoint.serde.base import SerializerProtocol

from . import clients
from .bridge import Executor
from .core import MAX_ARGS_PER_CALL
from .errors import CorruptDataError, EventLoopError, InvalidConfigError, SerializationError
from .keys import DEFAULT_KEY_PREFIX
from .ops import Batch, Call, Emit, Eval, Plan
from .scripts import CACHE_SET
from .serde import SafeSerializer
from .store_keys import CacheKeys

logger = logging.getLogger(__name__)

#: Index members read per namespace and per round trip by clear().
CLEAR_PAGE = 1000
#: Index members of expired entries are dropped this long after their expiry, so that a
#: client clock running ahead of the server's never drops a live entry's member.
INDEX_SLACK_MS = 60_000

ErrorPolicy = Literal["raise", "warn"]
#: Mistakes of the caller raise whatever the error policy: they are not cache misses.
_CALLER_ERRORS = (InvalidConfigError, EventLoopError, SerializationError)


def encode_value(type_name: str, data: bytes) -> bytes:
    return f"{len(type_name)}:{type_name}".encode() + data


def decode_value(raw: bytes, key: bytes | str) -> tuple[str, bytes]:
    head, sep, rest = raw.partition(b":")
    if sep and head.isdigit() and int(head) <= len(rest):
        size = int(head)
        try:
            return rest[:size].decode(), rest[size:]
        except UnicodeDecodeError:
            pass
    raise CorruptDataError(
        f"corrupt cache entry {key!r}: it does not start with the serializer's type name "
        "as PlainRedisCache writes it; the key prefix may be shared with another "
        "application, or the key was written by hand"
    )


def _ttl_ms(ttl: float | None, key: FullKey) -> str:
    if ttl is None:
        return ""
    if isinstance(ttl, bool) or not isinstance(ttl, int | float) or math.isnan(ttl):
        raise InvalidConfigError(
            f"the cache ttl of {key!r} must be a number of seconds or None, got {ttl!r}"
        )
    return str(max(0, math.ceil(ttl * 1000)))


class CachePlans:
    """The cache's operations as plans (pure: no I/O, see core.py)."""

    def __init__(
        self, keys: CacheKeys, serde: SerializerProtocol, clock: Callable[[], float]
    ) -> None:
        self.keys = keys
        self.serde = serde
        self.clock = clock

    def _grouped(self, full_keys: Sequence[FullKey]) -> dict[str, list[FullKey]]:
        groups: dict[str, list[FullKey]] = {}
        for full_key in full_keys:
            ns, key = full_key
            groups.setdefault(self.keys.tag(ns), []).append((tuple(ns), key))
        return groups

    def get(self, full_keys: Sequence[FullKey]) -> Plan:
        wanted: list[tuple[FullKey, str]] = []
        ops: list[Call] = []
        for tag, members in self._grouped(full_keys).items():
            for start in range(0, len(members), MAX_ARGS_PER_CALL):
                chunk = [
                    (fk, self.keys.entry(tag, fk[1]))
                    for fk in members[start : start + MAX_ARGS_PER_CALL]
                ]
                wanted.extend(chunk)
                ops.append(Call(("MGET", *(name for _, name in chunk))))
        found: dict[FullKey, Any] = {}
        if ops:
            replies = yield Batch(tuple(ops))
            raws = [raw for reply in replies for raw in reply]
            for (full_key, name), raw in zip(wanted, raws, strict=True):
                if raw is not None:
                    found[full_key] = self.serde.loads_typed(decode_value(raw, name))
        yield Emit(found)

    def set(self, pairs: Mapping[FullKey, tuple[Any, float | None]]) -> Plan:
        now = int(self.clock() * 1000)
        by_tag: dict[str, list[tuple[str, bytes, str]]] = {}
        for full_key, (value, ttl) in pairs.items():
            ns, key = full_key
            tag = self.keys.tag(ns)
            encoded = encode_value(*self.serde.dumps_typed(value))
            by_tag.setdefault(tag, []).append(
                (self.keys.entry(tag, key), encoded, _ttl_ms(ttl, full_key))
            )
        ops: list[Eval | Call] = []
        per_call = MAX_ARGS_PER_CALL // 3
        for tag, entries in by_tag.items():
            for start in range(0, len(entries), per_call):
                chunk = entries[start : start + per_call]
                args: list[str | bytes | int] = [now, now - INDEX_SLACK_MS]
                for _, encoded, ttl_ms in chunk:
                    args += [encoded, ttl_ms]
                keys = (self.keys.index(tag), *(name for name, _, _ in chunk))
                ops.append(Eval(CACHE_SET, keys, tuple(args), ""))
            ops.append(Call(("HSET", self.keys.namespaces, tag, "1")))
        if ops:
            yield Batch(tuple(ops))
        yield Emit(None)

    def clear(self, namespaces: Sequence[Namespace] | None) -> Plan:
        if namespaces is None:
            found = yield Call(("HKEYS", self.keys.namespaces))
            tags = [t.decode() if isinstance(t, bytes) else t for t in found]
        else:
            tags = list(dict.fromkeys(self.keys.tag(ns) for ns in namespaces))
        pending = tags
        while pending:
            pages = yield Batch(
                tuple(Call(("ZRANGE", self.keys.index(t), 0, CLEAR_PAGE - 1)) for t in pending)
            )
            drops: list[Call] = []
            for tag, members in zip(pending, pages, strict=True):
                if members:
                    drops.append(Call(("UNLINK", *members)))
                    drops.append(Call(("ZREM", self.keys.index(tag), *members)))
            if drops:
                yield Batch(tuple(drops))
            pending = [t for t, page in zip(pending, pages, strict=True) if len(page) == CLEAR_PAGE]
        for start in range(0, len(tags), MAX_ARGS_PER_CALL):
            yield Call(("HDEL", self.keys.namespaces, *tags[start : start + MAX_ARGS_PER_CALL]))
        yield Emit(None)


class PlainRedisCache(BaseCache[ValueT]):
    """LangGraph cache on plain Redis >= 6.2 / Valkey >= 7.2 (no modules).

    ``client`` is a blocking (``redis.Redis``, ``RedisCluster``) or an asyncio client
    (``redis.asyncio.Redis`` ...), made with ``decode_responses=False``; one client can
    also serve a saver and a store. With an asyncio client ``aget``/``aset``/``aclear``
    are native; the blocking methods then work from other threads only (from inside the
    client's loop they raise EventLoopError). ``ttl`` of an entry is in seconds.
    ``on_error``: ``"raise"`` (default) or ``"warn"`` (see the module docstring).
    """

    def __init__(
        self,
        client: Any,
        *,
        key_prefix: str = DEFAULT_KEY_PREFIX,
        serde: SerializerProtocol | None = None,
        on_error: ErrorPolicy = "raise",
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(serde=serde or SafeSerializer())
        if on_error not in ("raise", "warn"):
            raise InvalidConfigError(f"on_error must be 'raise' or 'warn', got {on_error!r}")
        self.client = client
        self.on_error = on_error
        self._plans = CachePlans(CacheKeys(key_prefix), self.serde, clock)
        self._executor = Executor(client, "PlainRedisCache", "cache")

    @classmethod
    @contextlib.contextmanager
    def from_conn_string(
        cls, url: str, *, cluster: bool | None = None, **kwargs: Any
    ) -> Iterator[PlainRedisCache[Any]]:
        """A cache on a new blocking client for ``url``; keyword arguments that are not
        the cache's go to the client (``cluster`` as for PlainRedisSaver)."""
        options, client_kwargs = _split(kwargs)
        client = clients.sync_client(url, cluster, **client_kwargs)
        try:
            yield cls(client, **options)
        finally:
            clients.release_sync(client)

    @classmethod
    @contextlib.asynccontextmanager
    async def afrom_conn_string(
        cls, url: str, *, cluster: bool | None = None, **kwargs: Any
    ) -> AsyncIterator[PlainRedisCache[Any]]:
        """A cache on a new asyncio client for ``url`` (native async methods)."""
        options, client_kwargs = _split(kwargs)
        client = await clients.async_client(url, cluster, **client_kwargs)
        try:
            yield cls(client, **options)
        finally:
            await clients.release_async(client)

    def _failed(self, method: str, exc: Exception) -> None:
        if self.on_error == "raise" or isinstance(exc, _CALLER_ERRORS):
            raise exc
        logger.warning("PlainRedisCache.%s failed, treated as a miss: %r", method, exc)

    def get(self, keys: Sequence[FullKey]) -> dict[FullKey, ValueT]:
        """Cached values of ``keys`` that are present and not expired."""
        try:
            found: dict[FullKey, ValueT] = self._executor.run(self._plans.get(keys), "get")
        except Exception as exc:
            self._failed("get", exc)
            return {}
        return found

    async def aget(self, keys: Sequence[FullKey]) -> dict[FullKey, ValueT]:
        try:
            found: dict[FullKey, ValueT] = await self._executor.arun(self._plans.get(keys))
        except Exception as exc:
            self._failed("aget", exc)
            return {}
        return found

    def set(self, pairs: Mapping[FullKey, tuple[ValueT, int | None]]) -> None:
        """Store values with their TTL in seconds (None: no expiry)."""
        try:
            self._executor.run(self._plans.set(pairs), "set")
        except Exception as exc:
            self._failed("set", exc)

    async def aset(self, pairs: Mapping[FullKey, tuple[ValueT, int | None]]) -> None:
        try:
            await self._executor.arun(self._plans.set(pairs))
        except Exception as exc:
            self._failed("aset", exc)

    def clear(self, namespaces: Sequence[Namespace] | None = None) -> None:
        """Delete the entries of ``namespaces``, or every entry of this cache."""
        try:
            self._executor.run(self._plans.clear(namespaces), "clear")
        except Exception as exc:
            self._failed("clear", exc)

    async def aclear(self, namespaces: Sequence[Namespace] | None = None) -> None:
        try:
            await self._executor.arun(self._plans.clear(namespaces))
        except Exception as exc:
            self._failed("aclear", exc)


_CACHE_OPTIONS = ("key_prefix", "serde", "on_error", "clock")


def _split(kwargs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    options = {k: v for k, v in kwargs.items() if k in _CACHE_OPTIONS}
    return options, {k: v for k, v in kwargs.items() if k not in _CACHE_OPTIONS}
