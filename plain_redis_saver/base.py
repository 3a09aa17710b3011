"""The public API shared by both savers, written once.

Each method builds a plan with :class:`~plain_redis_saver.core.Core` and hands it to
four hooks that the concrete savers define: ``_run``/``_iter`` (blocking) and
``_arun``/``_aiter`` (async).
"""

from __future__ import annotations

import builtins
import difflib
import secrets
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from datetime import timedelta
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    DeltaChannelHistory,
)
from langgraph.checkpoint.serde.base import SerializerProtocol

from . import clients
from .core import Core, Plan
from .errors import InvalidConfigError
from .keys import DEFAULT_KEY_PREFIX, Keyspace
from .serde import SafeSerializer

#: Constructor options of the savers that from_conn_string accepts among its keywords.
SAVER_OPTIONS = (
    "ttl",
    "refresh_on_read",
    "max_checkpoints",
    "max_value_size",
    "wait_replicas",
    "wait_timeout",
)

#: Default of ``max_value_size``: a put or a read of a value this large kept the
#: server's script under 50 ms on a loaded 2-core machine (benchmarks/value_size.py).
DEFAULT_MAX_VALUE_SIZE = 8 * 2**20


def split_options(kwargs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Saver options and client options, from from_conn_string's keyword arguments.

    A keyword that is no client option but close to a saver option is a typo: it is
    refused here rather than by redis-py's connection class, much later and less clearly.
    """
    options = {k: v for k, v in kwargs.items() if k in SAVER_OPTIONS}
    rest = {k: v for k, v in kwargs.items() if k not in SAVER_OPTIONS}
    for name in rest:
        close = difflib.get_close_matches(name, SAVER_OPTIONS, n=1, cutoff=0.8)
        if close and name not in clients.CLIENT_OPTIONS:
            raise InvalidConfigError(
                f"unknown option {name!r}: did you mean {close[0]!r}? (saver options: "
                f"{', '.join(SAVER_OPTIONS)}; other keywords go to the Redis client)"
            )
    return options, rest


def conn_url(url: str | None, redis_url: str | None) -> str:
    """The URL given to from_conn_string, positionally or as langgraph-checkpoint-redis'
    ``redis_url=`` keyword."""
    if (url is None) == (redis_url is None):
        raise InvalidConfigError(
            "from_conn_string needs one URL: from_conn_string('redis://host:6379/0') "
            "(or redis_url='...', as langgraph-checkpoint-redis calls it)"
        )
    given = url if url is not None else redis_url
    if not isinstance(given, str):
        raise InvalidConfigError(f"the URL must be a str like 'redis://host:6379/0', got {given!r}")
    return given


#: Longest duration accepted (100 years): the server refuses expiries that overflow.
MAX_SECONDS = 100 * 365 * 24 * 3600


def _ms(duration: float | timedelta, name: str) -> int:
    seconds = duration.total_seconds() if isinstance(duration, timedelta) else duration
    if (
        isinstance(seconds, bool)
        or not isinstance(seconds, (int, float))
        or not 0 < seconds <= MAX_SECONDS
    ):
        raise InvalidConfigError(
            f"{name} must be a number of seconds > 0 (at most 100 years) or a timedelta, "
            f"got {duration!r}"
        )
    return max(1, round(seconds * 1000))


def _ttl_ms(ttl: float | timedelta | None) -> int | None:
    """None (never expire) or milliseconds."""
    return None if ttl is None else _ms(ttl, "ttl (None: never expire)")


def _check_limit(value: Any, rule: str) -> None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
        raise InvalidConfigError(f"{rule}, got {value!r}")


class BaseRedisSaver(BaseCheckpointSaver[str]):
    """LangGraph checkpointer on plain Redis / Valkey (no modules). Abstract.

    ``ttl`` (seconds or a timedelta; None = never) expires a thread that is neither
    written nor, with ``refresh_on_read``, read for that long: all of its keys at once.
    ``max_checkpoints`` keeps only the newest N checkpoints of each namespace of a
    thread (plus the ancestors their DeltaChannels still need); N=1 is a latest-only
    saver. ``max_value_size`` (bytes, default 8 MiB; None = no limit) refuses a channel
    value, pending write or checkpoint record whose serialized form is larger, with
    ValueTooLargeError naming it: the server copies a value in one piece, and a
    100 MB one blocks every other client for a good part of a second.
    ``wait_replicas=N`` sends WAIT N after every put, put_writes, delete_thread and
    copy_thread in the same round trip, and raises ReplicationError when fewer than N
    replicas acknowledge within ``wait_timeout`` (seconds or a timedelta).
    """

    def __init__(
        self,
        client: Any,
        *,
        key_prefix: str = DEFAULT_KEY_PREFIX,
        serde: SerializerProtocol | None = None,
        ttl: float | timedelta | None = None,
        refresh_on_read: bool = True,
        max_checkpoints: int | None = None,
        max_value_size: int | None = DEFAULT_MAX_VALUE_SIZE,
        wait_replicas: int = 0,
        wait_timeout: float | timedelta = 1.0,
    ) -> None:
        # Stored bytes are untrusted input: by default they are rebuilt only as data.
        super().__init__(serde=SafeSerializer() if serde is None else serde)
        if isinstance(client, (str, bytes)) or not hasattr(client, "evalsha"):
            raise InvalidConfigError(
                f"client must be a redis-py or valkey-py client, got {type(client).__name__}; "
                "to connect by URL use from_conn_string(url)"
            )
        if clients.is_async_client(client) != self._ASYNC_CLIENT:
            raise InvalidConfigError(self._wrong_client_kind(client))
        if clients.connection_kwargs(client).get("decode_responses"):
            raise InvalidConfigError(
                "the Redis client was created with decode_responses=True; the checkpointer "
                "stores binary values, so give it a client with decode_responses=False"
            )
        if not isinstance(refresh_on_read, bool):
            raise InvalidConfigError(
                f"refresh_on_read must be True or False, got {refresh_on_read!r}"
            )
        _check_limit(max_checkpoints, "max_checkpoints must be None (keep all) or an int >= 1")
        _check_limit(
            max_value_size, "max_value_size must be None (no limit) or a number of bytes >= 1"
        )
        if (
            isinstance(wait_replicas, bool)
            or not isinstance(wait_replicas, int)
            or wait_replicas < 0
        ):
            raise InvalidConfigError(
                f"wait_replicas must be an int >= 0 (0: do not wait), got {wait_replicas!r}"
            )
        self.wait_replicas = wait_replicas
        self.wait_timeout = wait_timeout
        self.client = client
        self.key_prefix = key_prefix
        self.ttl = ttl
        self.refresh_on_read = refresh_on_read
        self.max_checkpoints = max_checkpoints
        self.max_value_size = max_value_size
        self._core = self._make_core(Keyspace(key_prefix))
        self._attach(client)

    #: Whether the saver runs on an asyncio client (set by the concrete savers).
    _ASYNC_CLIENT = False

    @classmethod
    def _wrong_client_kind(cls, client: Any) -> str:
        if cls._ASYNC_CLIENT:
            return (
                f"{cls.__name__} needs an asyncio client (redis.asyncio.Redis, "
                "redis.asyncio.cluster.RedisCluster or valkey.asyncio.Valkey), got the "
                f"blocking {clients.describe(client)}: use PlainRedisSaver with it, or make an "
                "asyncio client"
            )
        return (
            f"{cls.__name__} needs a blocking client (redis.Redis, redis.cluster.RedisCluster "
            f"or valkey.Valkey), got the asyncio {clients.describe(client)}: use "
            "AsyncPlainRedisSaver with it, or make a blocking client"
        )

    def _attach(self, client: Any) -> None:
        """Prepare to run plans on ``client`` (the sync and async savers differ here)."""
        raise NotImplementedError

    def _make_core(self, keyspace: Keyspace) -> Core:
        return Core(
            keyspace,
            self.serde,
            ttl_ms=_ttl_ms(self.ttl),
            refresh_on_read=self.refresh_on_read,
            max_checkpoints=self.max_checkpoints,
            max_value_size=self.max_value_size,
            wait_replicas=self.wait_replicas,
            wait_timeout_ms=_ms(self.wait_timeout, "wait_timeout"),
        )

    # ---- hooks

    def _run(self, plan: Plan, method: str) -> Any:
        raise NotImplementedError

    def _iter(self, plan: Plan, method: str) -> Iterator[Any]:
        raise NotImplementedError

    async def _arun(self, plan: Plan) -> Any:
        raise NotImplementedError

    def _aiter(self, plan: Plan) -> AsyncIterator[Any]:
        raise NotImplementedError

    @property
    def _plans(self) -> Core:
        # Rebuilt if with_allowlist() or a user swapped the serializer on a copy.
        if self._core.serde is not self.serde:
            self._core = self._make_core(self._core.keys)
        return self._core

    # ---- set-up

    def setup(self) -> None:
        """Load the scripts and record the storage schema version. Idempotent, optional."""
        self._run(self._plans.setup(), "setup")

    async def asetup(self) -> None:
        """Async :meth:`setup`."""
        await self._arun(self._plans.setup())

    # ---- reads

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """The checkpoint named by ``config`` (the newest of its namespace if it names
        none), with channel values and pending writes; one round trip."""
        result: CheckpointTuple | None = self._run(self._plans.get_tuple(config), "get_tuple")
        return result

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """Async :meth:`get_tuple`."""
        result: CheckpointTuple | None = await self._arun(self._plans.get_tuple(config))
        return result

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        """Checkpoints newest first. ``config=None`` lists every thread; a config without
        ``checkpoint_ns`` lists every namespace of its thread. ``filter`` matches metadata
        keys by equality on the server; ``before`` is exclusive; ``limit`` counts matches."""
        plan = self._plans.list_checkpoints(config, filter=filter, before=before, limit=limit)
        return self._iter(plan, "list")

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        """Async :meth:`list`."""
        plan = self._plans.list_checkpoints(config, filter=filter, before=before, limit=limit)
        async for item in self._aiter(plan):
            yield item

    def get_delta_channel_history(
        self, *, config: RunnableConfig, channels: Sequence[str]
    ) -> Mapping[str, DeltaChannelHistory]:
        """Writes and seed of each channel along the parent chain, in one round trip."""
        plan = self._plans.get_delta_channel_history(config, channels)
        result: Mapping[str, DeltaChannelHistory] = self._run(plan, "get_delta_channel_history")
        return result

    async def aget_delta_channel_history(
        self, *, config: RunnableConfig, channels: Sequence[str]
    ) -> Mapping[str, DeltaChannelHistory]:
        """Async :meth:`get_delta_channel_history`."""
        plan = self._plans.get_delta_channel_history(config, channels)
        result: Mapping[str, DeltaChannelHistory] = await self._arun(plan)
        return result

    # ---- writes

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Store a checkpoint and its new channel values atomically; one round trip."""
        plan = self._plans.put(config, checkpoint, metadata, new_versions)
        result: RunnableConfig = self._run(plan, "put")
        return result

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Async :meth:`put`."""
        plan = self._plans.put(config, checkpoint, metadata, new_versions)
        result: RunnableConfig = await self._arun(plan)
        return result

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Store a task's pending writes atomically; one round trip."""
        self._run(self._plans.put_writes(config, writes, task_id, task_path), "put_writes")

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Async :meth:`put_writes`."""
        await self._arun(self._plans.put_writes(config, writes, task_id, task_path))

    # ---- maintenance

    def delete_thread(self, thread_id: str) -> None:
        """Delete every checkpoint, write and value of a thread; one round trip."""
        self._run(self._plans.delete_thread(thread_id), "delete_thread")

    async def adelete_thread(self, thread_id: str) -> None:
        """Async :meth:`delete_thread`."""
        await self._arun(self._plans.delete_thread(thread_id))

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Delete the checkpoints (and their writes) whose metadata run_id is listed."""
        self._run(self._plans.delete_for_runs(run_ids), "delete_for_runs")

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Async :meth:`delete_for_runs`."""
        await self._arun(self._plans.delete_for_runs(run_ids))

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Copy every checkpoint, write and value of a thread into another thread, as the
        source was at one moment; what the target already holds wins. All or nothing:
        raises ConcurrentWriteError, copying nothing, when either thread keeps being
        written while it is read."""
        self._run(self._plans.copy_thread(source_thread_id, target_thread_id), "copy_thread")

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Async :meth:`copy_thread`."""
        await self._arun(self._plans.copy_thread(source_thread_id, target_thread_id))

    def check_thread(self, thread_id: str) -> None:
        """Raise :class:`~plain_redis_saver.errors.CorruptDataError` naming the missing
        key when some of the thread's keys are gone (evicted, or deleted by hand) while
        others remain; one round trip that reads no checkpoint and keeps the expiry."""
        self._run(self._plans.check_thread(thread_id), "check_thread")

    async def acheck_thread(self, thread_id: str) -> None:
        """Async :meth:`check_thread`."""
        await self._arun(self._plans.check_thread(thread_id))

    def thread_snapshot(self, thread_id: str) -> builtins.list[CheckpointTuple]:
        """Every checkpoint of a thread (every namespace, newest first) as stored at one
        moment, unlike a ``list()`` of a thread being written, whose pages are read
        apart. Raises ConcurrentWriteError when the thread keeps being written."""
        result: builtins.list[CheckpointTuple] = self._run(
            self._plans.thread_snapshot(thread_id), "thread_snapshot"
        )
        return result

    async def athread_snapshot(self, thread_id: str) -> builtins.list[CheckpointTuple]:
        """Async :meth:`thread_snapshot`."""
        result: builtins.list[CheckpointTuple] = await self._arun(
            self._plans.thread_snapshot(thread_id)
        )
        return result

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """``keep_latest`` keeps the newest checkpoint of each namespace; ``delete``
        removes the threads."""
        self._run(self._plans.prune(thread_ids, strategy=strategy), "prune")

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """Async :meth:`prune`."""
        await self._arun(self._plans.prune(thread_ids, strategy=strategy))

    # ---- versions

    def get_next_version(self, current: str | None, channel: None) -> str:
        """``<counter>.<random>``: increasing, and never equal for two branches that fork
        from one checkpoint (so their channel values cannot overwrite each other).
        Accepts int versions and string versions written by other savers."""
        if current is None:
            counter = 0
        elif isinstance(current, (int, float)):
            counter = int(current)
        else:
            head = str(current).split(".", 1)[0]
            try:
                counter = int(head)
            except ValueError:
                raise InvalidConfigError(
                    f"cannot continue channel version {current!r}: expected an int or a "
                    "string starting with a decimal counter"
                ) from None
        # From the OS, not Python's generator: an application that seeds `random`
        # would give two processes the same versions, and two branches that fork from
        # one checkpoint would then read each other's channel values.
        return f"{counter + 1:032}.{secrets.randbelow(10**16):016}"
