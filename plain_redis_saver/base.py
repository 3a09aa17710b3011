"""The public API shared by both savers, written once.

Each method builds a plan with :class:`~plain_redis_saver.core.Core` and hands it to
four hooks that the concrete savers define: ``_run``/``_iter`` (blocking) and
``_arun``/``_aiter`` (async).
"""

from __future__ import annotations

import builtins
import difflib
import inspect
import secrets
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from datetime import timedelta
from typing import Any, Generic, TypeVar

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
from .audit import ThreadAudit
from .core import Core
from .errors import InvalidConfigError
from .keys import DEFAULT_KEY_PREFIX, Keyspace
from .ops import Plan
from .options import (
    DEFAULT_CONTENT_CACHE_BYTES,
    DEFAULT_MAX_VALUE_SIZE,
    SAVER_OPTIONS,
    SaverOptions,
)
from .serde import SafeSerializer


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


#: The kind of client a saver runs on (see the concrete savers).
ClientT = TypeVar("ClientT")


class BaseRedisSaver(BaseCheckpointSaver[str], Generic[ClientT]):
    """LangGraph checkpointer on plain Redis / Valkey (no modules). Abstract: use
    PlainRedisSaver (blocking code) or AsyncPlainRedisSaver (asyncio)."""

    def __init__(
        self,
        client: ClientT,
        *,
        key_prefix: str = DEFAULT_KEY_PREFIX,
        serde: SerializerProtocol | None = None,
        ttl: float | timedelta | None = None,
        refresh_on_read: bool = True,
        max_checkpoints: int | None = None,
        max_value_size: int | None = DEFAULT_MAX_VALUE_SIZE,
        wait_replicas: int = 0,
        wait_timeout: float | timedelta = 1.0,
        compose_values: bool = True,
        content_cache_bytes: int = DEFAULT_CONTENT_CACHE_BYTES,
        reference_counts: bool | None = None,
    ) -> None:
        """A saver storing LangGraph checkpoints through ``client``.

        Args:
            client: a client made with ``decode_responses=False`` (the default).
                PlainRedisSaver takes ``redis.Redis``, ``redis.cluster.RedisCluster``,
                ``valkey.Valkey`` or ``valkey.cluster.ValkeyCluster``;
                AsyncPlainRedisSaver their ``asyncio`` counterparts
                (``redis.asyncio.Redis`` ...). To connect by URL use
                ``from_conn_string(url, **options)``.
            key_prefix: first part of every key (default ``"lg"``), without ``{`` or
                ``}``. Savers with different prefixes share a server without seeing
                each other's threads.
            serde: the serializer; default ``SafeSerializer()`` (JsonPlusSerializer's
                bytes, and reading rebuilds only data types). Any SerializerProtocol,
                e.g. ``EncryptedSerializer``.
            ttl: seconds or a ``timedelta``; ``None`` (default) never expires. A thread
                neither written nor (with ``refresh_on_read``) read for that long
                expires, all of its keys at once. A changed ttl applies to a thread at
                its next write.
            refresh_on_read: ``True`` (default): reads restart the expiry a thread
                already has (they never give one to a thread written without a ttl);
                ``False``: only writes do.
            max_checkpoints: ``None`` (default) keeps every checkpoint; N >= 1 keeps
                the newest N of each namespace of a thread (plus the ancestors their
                DeltaChannels need); 1 is a latest-only saver. Continuing from a
                checkpoint it removed (``update_state`` or a replay from an old config)
                raises CheckpointRemovedError.
            max_value_size: bytes, default 8 MiB; ``None``: no limit. A larger
                serialized channel value, pending write or checkpoint record raises
                ValueTooLargeError naming it, and nothing is written (the server copies
                a value in one piece; a 100 MB one blocks every other client for a good
                part of a second).
            wait_replicas: 0 (default) or N: after every put, put_writes, delete_thread
                and copy_thread, ``WAIT N`` in the same round trip; fewer
                acknowledgements raise ReplicationError (the primary has the write).
            wait_timeout: seconds or a ``timedelta`` (default 1.0) that ``WAIT`` may take.
            compose_values: ``True`` (default): a list-like value (a message history)
                is stored as shared pieces, so each version costs only what it adds
                (storage schema 2). ``False`` stores every value whole, the schema-1
                layout that release 0.1 reads: for the time of a rolling upgrade.
            content_cache_bytes: bytes, default 32 MiB; 0 turns the cache off. The
                saver keeps the pieces of composed values it wrote or read, and a read
                names those of the thread's latest values: the server then neither
                reads nor sends them, and the saver rebuilds the value from its cache
                (content is named by its digest, so the cache is never stale). Reads
                of a thread this process wrote send a few KB instead of its history.
                Up to a quarter as much again keeps values already rebuilt (or
                composed by a put), so reading the same version again skips that;
                and another quarter the checkpoint each thread's last put wrote (or
                last full read of its newest checkpoint found): reading it back,
                the server only confirms it (the thread's write generation is the
                one this process's last write or read left) and sends its pending
                writes.
            reference_counts: ``False`` (the default with ``compose_values=True``):
                threads this saver creates keep no reference counts, which saves
                7-11 % of the server's instructions per chatbot turn; a checkpoint removed
                (``max_checkpoints``, ``prune``, ``delete_for_runs``) leaves its
                values until a collection, which the removal that brings a thread's
                removals to half its checkpoints (at least 32) runs, in a few more
                round trips. ``True`` (always with ``compose_values=False``): new
                threads count references, and removals free values at once (the
                least memory under a small ``max_checkpoints``). A thread keeps the
                layout it was created with, whichever saver writes it later.

        Raises:
            InvalidConfigError: the client is a URL string, of the wrong kind (an
                asyncio client for the blocking saver, or the other way round) or made
                with ``decode_responses=True``, or an option is out of range. Nothing
                is connected or written.
        """
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
        if self._LATEST_ONLY:
            if max_checkpoints not in (None, 1):
                raise InvalidConfigError(
                    f"{type(self).__name__} keeps only the latest checkpoint "
                    f"(max_checkpoints=1); for max_checkpoints={max_checkpoints!r} use "
                    f"{type(self).__mro__[1].__name__}"
                )
            max_checkpoints = 1
        self.options = SaverOptions(
            ttl=ttl,
            refresh_on_read=refresh_on_read,
            max_checkpoints=max_checkpoints,
            max_value_size=max_value_size,
            wait_replicas=wait_replicas,
            wait_timeout=wait_timeout,
            compose_values=compose_values,
            content_cache_bytes=content_cache_bytes,
            reference_counts=reference_counts,
        )
        self.client = client
        self.key_prefix = key_prefix
        self._core = self._make_core(Keyspace(key_prefix))
        self._attach(client)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.__doc__ = _documented(cls.__dict__.get("__doc__"))

    #: Whether the saver runs on an asyncio client (set by the concrete savers).
    _ASYNC_CLIENT = False
    #: Whether the saver keeps only the latest checkpoint (max_checkpoints=1).
    _LATEST_ONLY = False

    @property
    def ttl(self) -> float | timedelta | None:
        return self.options.ttl

    @property
    def refresh_on_read(self) -> bool:
        return self.options.refresh_on_read

    @property
    def max_checkpoints(self) -> int | None:
        return self.options.max_checkpoints

    @property
    def max_value_size(self) -> int | None:
        return self.options.max_value_size

    @property
    def wait_replicas(self) -> int:
        return self.options.wait_replicas

    @property
    def wait_timeout(self) -> float | timedelta:
        return self.options.wait_timeout

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
        return Core(keyspace, self.serde, self.options)

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
        """Load the scripts and record the storage schema version. Idempotent, optional
        (scripts are also sent on first use).

        Raises SchemaVersionError when the prefix holds data of a newer release, and
        CorruptDataError when its schema key holds something else."""
        self._run(self._plans.setup(), "setup")

    async def asetup(self) -> None:
        """Async :meth:`setup`."""
        await self._arun(self._plans.setup())

    # ---- reads

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """The checkpoint named by ``config`` (the newest of its namespace if it names
        none), with channel values and pending writes, or None; one round trip.

        Raises InvalidConfigError for a config without ``thread_id``, CorruptDataError
        (naming the key) when stored data is damaged, evicted in part or foreign, and
        DisallowedTypeError when it names a type the serializer does not rebuild."""
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
        keys by equality on the server; ``before`` is exclusive; ``limit`` counts matches.

        Raises InvalidConfigError for a bad filter or limit, and CorruptDataError naming
        the key for damaged data (with ``config=None``, after listing every other
        thread)."""
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
        """Writes and seed of each channel along the parent chain, in one round trip
        (LangGraph's DeltaChannel). Raises CorruptDataError naming the key for damaged
        data."""
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
        """Store a checkpoint and its new channel values atomically; one round trip.
        Returns the config naming it. Storing it again (a retry) is harmless.

        Raises (writing nothing) InvalidConfigError for a malformed config or
        checkpoint; CheckpointRemovedError when ``config`` names a parent checkpoint
        that max_checkpoints retention removed while newer ones remain (update_state or
        a replay from an old config); SerializationError or ValueTooLargeError for a
        value that cannot be stored. ReplicationError (with ``wait_replicas``) when too
        few replicas acknowledged the stored write."""
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
        """Store a task's pending writes atomically; one round trip. ``config`` must
        name the checkpoint (as put() returned it).

        Raises (writing nothing) InvalidConfigError, SerializationError or
        ValueTooLargeError; ReplicationError (with ``wait_replicas``) after storing."""
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
        """Delete every checkpoint, write and value of a thread; one round trip.
        Raises ReplicationError (with ``wait_replicas``) after deleting."""
        self._run(self._plans.delete_thread(thread_id), "delete_thread")

    async def adelete_thread(self, thread_id: str) -> None:
        """Async :meth:`delete_thread`."""
        await self._arun(self._plans.delete_thread(thread_id))

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Delete the checkpoints (and their writes) whose metadata run_id is listed, in
        every thread. Raises CorruptDataError, after cleaning every other thread, naming
        the damaged threads or foreign keys it skipped."""
        self._run(self._plans.delete_for_runs(run_ids), "delete_for_runs")

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Async :meth:`delete_for_runs`."""
        await self._arun(self._plans.delete_for_runs(run_ids))

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Copy every checkpoint, write and value of a thread into another thread, as the
        source was at one moment; what the target already holds wins. All or nothing:
        raises ConcurrentWriteError, copying nothing, when either thread keeps being
        written while it is read, and CorruptDataError naming the key when the source
        is damaged or evicted in part."""
        self._run(self._plans.copy_thread(source_thread_id, target_thread_id), "copy_thread")

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Async :meth:`copy_thread`."""
        await self._arun(self._plans.copy_thread(source_thread_id, target_thread_id))

    def check_thread(self, thread_id: str) -> None:
        """Raise :class:`~plain_redis_saver.errors.CorruptDataError` naming the missing
        key when some of the thread's keys are gone (evicted, or deleted by hand) while
        others remain; one round trip that reads no checkpoint and keeps the expiry.
        Returns None when the thread is whole (or absent)."""
        self._run(self._plans.check_thread(thread_id), "check_thread")

    async def acheck_thread(self, thread_id: str) -> None:
        """Async :meth:`check_thread`."""
        await self._arun(self._plans.check_thread(thread_id))

    def audit_thread(self, thread_id: str) -> ThreadAudit:
        """Check a thread's reference counts against what it stores: a count that is too
        low would let a removal free a value still in use, one too high keep a value for
        good. Also lists the values and content no checkpoint or pending write reaches
        (left by damage, or by a copy or large put interrupted before it completed) and
        referenced values that are missing. Reads the thread as stored at one moment, in
        HSCAN pages (no expiry refresh); raises ConcurrentWriteError when it keeps being
        written, and CorruptDataError naming the key when some of its keys are gone or a
        record cannot be parsed."""
        result: ThreadAudit = self._run(self._plans.audit_thread(thread_id), "audit_thread")
        return result

    async def aaudit_thread(self, thread_id: str) -> ThreadAudit:
        """Async :meth:`audit_thread`."""
        result: ThreadAudit = await self._arun(self._plans.audit_thread(thread_id))
        return result

    def repair_thread(self, thread_id: str) -> ThreadAudit:
        """Audit a thread (see :meth:`audit_thread`), then set every wrong count to the
        references it stands for and delete the values and content nothing reaches;
        returns the audit acted on. Applied only while the thread is not written
        between the audit and the repair (else it audits again; ConcurrentWriteError
        after five attempts). Values found missing cannot be restored: the returned
        audit still lists them. Refuses, with CorruptDataError naming the key, a thread
        that lost one of its keys, whose values would all look unreferenced."""
        result: ThreadAudit = self._run(self._plans.repair_thread(thread_id), "repair_thread")
        return result

    async def arepair_thread(self, thread_id: str) -> ThreadAudit:
        """Async :meth:`repair_thread`."""
        result: ThreadAudit = await self._arun(self._plans.repair_thread(thread_id))
        return result

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
        """``keep_latest`` keeps the newest checkpoint of each namespace (and the
        ancestors its DeltaChannels need); ``delete`` removes the threads. Raises
        InvalidConfigError for another strategy, and CorruptDataError (after pruning the
        others) naming damaged threads."""
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


#: The errors every saver raises on purpose, shown by help() on each saver class.
ERRORS_DOC = """Errors (plain_redis_saver.errors, all PlainRedisSaverError):
    InvalidConfigError: a malformed config, id, option or argument; nothing written.
    CheckpointRemovedError: put (update_state, a replay) continues from a checkpoint
        that max_checkpoints retention removed; nothing written.
    SerializationError, ValueTooLargeError: a value cannot be stored (the serde
        fails, or it is larger than max_value_size); nothing written.
    CorruptDataError: stored data is damaged, evicted in part or foreign; the message
        names the key. DisallowedTypeError, one kind of it: the data names a type the
        serializer does not rebuild (the message names the option that allows it).
    SchemaVersionError: setup() found data of a newer release.
    ReplicationError: fewer than wait_replicas replicas acknowledged a write in time.
    ConcurrentWriteError: copy_thread / thread_snapshot met a thread that kept
        changing; nothing copied.
    EventLoopError: AsyncPlainRedisSaver's blocking methods called inside its event
        loop, or its cluster client reused after that loop closed.
The client's own ConnectionError / TimeoutError (redis-py or valkey-py) are passed on:
see the README's "Timeouts and retries"."""


def _documented(intro: str | None) -> str:
    """A saver class's docstring: its own text, then the constructor's options and the
    errors, written once here, so that help() and IDEs show them on every saver."""
    options = inspect.getdoc(BaseRedisSaver.__init__) or ""
    parts = [inspect.cleandoc(intro or ""), "Constructor options:", options, ERRORS_DOC]
    return "\n\n".join(part for part in parts if part)


BaseRedisSaver.__doc__ = _documented(BaseRedisSaver.__doc__)


def _document_async_methods() -> None:
    """Each async method's docstring is its blocking twin's, so that help() shows the
    same arguments and errors on both."""
    for name, method in vars(BaseRedisSaver).items():
        sync = vars(BaseRedisSaver).get(name[1:]) if name.startswith("a") else None
        if callable(method) and callable(sync) and sync.__doc__:
            method.__doc__ = f"Async :meth:`{sync.__name__}`.\n\n{inspect.getdoc(sync)}"


_document_async_methods()
