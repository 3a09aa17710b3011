"""The public API shared by both savers, written once.

Each method builds a plan with :class:`~plain_redis_saver.core.Core` and hands it to
four hooks that the concrete savers define: ``_run``/``_iter`` (blocking) and
``_arun``/``_aiter`` (async).
"""

from __future__ import annotations

import builtins
import random
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

#: Constructor options of the savers that from_conn_string accepts among its keywords.
SAVER_OPTIONS = ("ttl", "refresh_on_read", "max_checkpoints", "wait_replicas", "wait_timeout")


def split_options(kwargs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Saver options and client options, from from_conn_string's keyword arguments."""
    options = {k: v for k, v in kwargs.items() if k in SAVER_OPTIONS}
    return options, {k: v for k, v in kwargs.items() if k not in SAVER_OPTIONS}


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


class BaseRedisSaver(BaseCheckpointSaver[str]):
    """LangGraph checkpointer on plain Redis / Valkey (no modules). Abstract.

    ``ttl`` (seconds or a timedelta; None = never) expires a thread that is neither
    written nor, with ``refresh_on_read``, read for that long: all of its keys at once.
    ``max_checkpoints`` keeps only the newest N checkpoints of each namespace of a
    thread (plus the ancestors their DeltaChannels still need); N=1 is a latest-only
    saver. ``wait_replicas=N`` sends WAIT N after every put, put_writes, delete_thread
    and copy_thread in the same round trip, and raises ReplicationError when fewer
    than N replicas acknowledge within ``wait_timeout`` (seconds or a timedelta).
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
        wait_replicas: int = 0,
        wait_timeout: float | timedelta = 1.0,
    ) -> None:
        super().__init__(serde=serde)
        if isinstance(client, (str, bytes)) or not hasattr(client, "evalsha"):
            raise InvalidConfigError(
                f"client must be a redis-py or valkey-py client, got {type(client).__name__}; "
                "to connect by URL use from_conn_string(url)"
            )
        if clients.connection_kwargs(client).get("decode_responses"):
            raise InvalidConfigError(
                "the Redis client was created with decode_responses=True; the checkpointer "
                "stores binary values, so give it a client with decode_responses=False"
            )
        if not isinstance(refresh_on_read, bool):
            raise InvalidConfigError(
                f"refresh_on_read must be True or False, got {refresh_on_read!r}"
            )
        if max_checkpoints is not None and (
            not isinstance(max_checkpoints, int)
            or isinstance(max_checkpoints, bool)
            or max_checkpoints < 1
        ):
            raise InvalidConfigError(
                f"max_checkpoints must be None (keep all) or an int >= 1, got {max_checkpoints!r}"
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
        self._core = self._make_core(Keyspace(key_prefix))
        self._attach(client)

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
        return f"{counter + 1:032}.{random.random():016}"
