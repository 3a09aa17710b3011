"""The sans-I/O core: every saver operation as a plan.

A plan is a generator. It yields operations (:mod:`plain_redis_saver.ops`: ``Eval``,
``Call``, ``Batch``, ``Scan``, ``LoadScripts``) and is sent each one's reply; it yields
``Emit`` for every result it produces. The sync and async savers only run plans (see
:mod:`plain_redis_saver.drive`), so no piece of checkpoint logic exists twice. Every
validation happens before the first operation is yielded: bad input writes nothing.
"""

from __future__ import annotations

import contextlib
import functools
import heapq
import secrets
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    DeltaChannelHistory,
    PendingWrite,
    get_serializable_checkpoint_metadata,
    writes_sort_key,
)
from langgraph.checkpoint.serde.base import SerializerProtocol

from . import audit, chunks, codec, compose, replies
from .errors import (
    CheckpointRemovedError,
    ConcurrentWriteError,
    ContentMissingError,
    CorruptDataError,
    InvalidConfigError,
    PlainRedisSaverError,
    ReplicationError,
    SchemaVersionError,
    SerializationError,
    ValueTooLargeError,
)
from .keys import Keyspace, ThreadKeys
from .newest import HeldWrite, HeldWrites, Known, NewestWritten, Parts, Stored
from .ops import Arg, Batch, Call, Emit, Eval, LoadScripts, Op, Plan, Scan
from .options import SaverOptions
from .scripts import (
    CHECK_THREAD,
    COMMIT_COPY,
    DELETE_CHECKPOINTS,
    DELTA_HISTORY,
    GET_CHECKPOINT,
    IMPORT_THREAD,
    LIST_CHECKPOINTS,
    PUT_CHECKPOINT,
    PUT_CHECKPOINT_STAGED,
    PUT_WRITES,
    PUT_WRITES_STAGED,
    REPAIR_THREAD,
    LuaScript,
)

#: ElastiCache Serverless refuses requests with more than 3,999 arguments.
MAX_ARGS_PER_CALL = 3000
#: Checkpoints a list page returns, and checkpoints one list call may examine.
LIST_PAGE = 100
LIST_BUDGET = 1000
#: Threads per pipeline when an operation spans threads.
THREADS_PER_BATCH = 100
#: Checkpoints one delete_checkpoints call may examine or remove (bounds its run time).
DELETE_BATCH = 100
#: Fields per HSCAN page when a thread is read in full (copy_thread).
SCAN_PAGE = 1000
#: Expiry of the staging keys of a call that spans several requests, renewed by each
#: request: a client that dies midway leaves nothing behind for longer.
STAGING_TTL_MS = 60_000

#: A write generation starts from a number from 1 up to this (see
#: ``Core.write_expiry``): the replies carry 16 × the generation, under 2**53.
GENERATION_SEEDS = 2**40 - 1
#: Reads of a thread in several requests (copy_thread, thread_snapshot) start again
#: when the thread was written meanwhile, at most this many times in all.
READ_ATTEMPTS = 5

PRUNE_STRATEGIES = ("keep_latest", "delete")


# --------------------------------------------------------------------------- validation


def _require_str(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise InvalidConfigError(
            f"{what} must be a str, got {type(value).__name__} {value!r}; "
            f"convert it with str() before passing it to the checkpointer"
        )
    if not value.isascii():
        _require_utf8(value, what)
    return value


def _require_utf8(value: str, what: str) -> None:
    # Key names and fields are UTF-8; a lone surrogate (from a bad decode upstream,
    # e.g. errors="surrogateescape") has no UTF-8 form.
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidConfigError(
            f"{what} {value!r} is not valid Unicode text ({exc.reason} at position "
            f"{exc.start}); decode the id's bytes properly, or pass a str without "
            "lone surrogates"
        ) from None


def _configurable(config: Any) -> Mapping[str, Any]:
    if not isinstance(config, Mapping):
        raise InvalidConfigError(
            f"config must be a dict like {{'configurable': {{'thread_id': '1'}}}}, "
            f"got {type(config).__name__}"
        )
    conf = config.get("configurable")
    if not isinstance(conf, Mapping):
        raise InvalidConfigError(
            "config has no 'configurable' dict; pass {'configurable': {'thread_id': ...}}"
        )
    if "thread_id" not in conf or conf["thread_id"] is None:
        raise InvalidConfigError(
            "config['configurable'] has no 'thread_id'; every checkpoint belongs to a "
            "thread: pass {'configurable': {'thread_id': '<your thread id>'}}"
        )
    return conf


@dataclass(frozen=True)
class Target:
    thread_id: str
    checkpoint_ns: str
    checkpoint_id: str | None
    #: netstring(checkpoint_ns): the namespace as the thread's fields name it.
    ns: bytes


def parse_config(config: Any, *, need_id: bool = False) -> Target:
    conf = _configurable(config)
    thread_id = _require_str(conf["thread_id"], "config['configurable']['thread_id']")
    ns = conf.get("checkpoint_ns")
    ns = "" if ns is None else _require_str(ns, "config['configurable']['checkpoint_ns']")
    checkpoint_id = conf.get("checkpoint_id")
    if checkpoint_id is not None:
        _require_str(checkpoint_id, "config['configurable']['checkpoint_id']")
        if not checkpoint_id:
            checkpoint_id = None
    if need_id and checkpoint_id is None:
        raise InvalidConfigError(
            "config['configurable'] has no 'checkpoint_id'; writes belong to a checkpoint: "
            "pass the config returned by put()"
        )
    return Target(thread_id, ns, checkpoint_id, codec.netstring(ns))


def _before_id(before: Any) -> str:
    if before is None:
        return ""
    if not isinstance(before, Mapping) or not isinstance(before.get("configurable"), Mapping):
        raise InvalidConfigError(
            "before must be a config like {'configurable': {'checkpoint_id': ...}}"
        )
    checkpoint_id = before["configurable"].get("checkpoint_id")
    if checkpoint_id is None:
        return ""
    return _require_str(checkpoint_id, "before['configurable']['checkpoint_id']")


def _thread_ids(thread_ids: Any, what: str) -> list[str]:
    if isinstance(thread_ids, (str, bytes)) or not isinstance(thread_ids, Iterable):
        raise InvalidConfigError(f"{what} must be a list of str, got {thread_ids!r}")
    return [_require_str(t, f"each of {what}") for t in thread_ids]


def _chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _check_version(channel: Any, version: Any, what: str) -> None:
    _require_str(channel, f"channel name in {what}")
    if isinstance(version, bool) or not isinstance(version, (str, int, float)):
        raise InvalidConfigError(
            f"{what}[{channel!r}] must be a str, int or float version, got {version!r}"
        )


def _ref_pair(channel: str, version: str | int | float) -> tuple[bytes, bytes, bytes]:
    ref = codec.blob_ref(channel, version)
    return ref, codec.netstring(ref), codec.json_ref(ref)


# Unchanged channels keep their version from step to step, so most refs of a put were
# made by the one before. Only str channel/version pairs (LangGraph's own versions) are
# cached: they need no checking, while 1, 1.0 and True are one key but distinct versions.
_str_ref_pair = functools.lru_cache(maxsize=8192)(_ref_pair)


@functools.lru_cache(maxsize=8192)
def _count_field(ns: bytes, ref: bytes) -> bytes:
    """The count field of blob ref ``ref`` in namespace ``ns`` ("#"..NS..ref, see
    ``adjust`` in includes/common.lua) as a JSON string."""
    return codec.json_ref(codec.COUNT_FIELD + ns + ref)


def _refs(versions: Any, what: str) -> dict[str, tuple[bytes, bytes, bytes]]:
    """Checked channel -> version mapping as channel -> (blob ref, its netstring, its
    JSON string)."""
    if not isinstance(versions, Mapping):
        raise InvalidConfigError(f"{what} must be a dict of channel -> version, got {versions!r}")
    out: dict[str, tuple[bytes, bytes, bytes]] = {}
    for channel, version in versions.items():
        if type(version) is str and type(channel) is str:
            try:
                out[channel] = _str_ref_pair(channel, version)
            except UnicodeEncodeError:
                _require_utf8(channel, f"channel name in {what}")
                _require_utf8(version, f"{what}[{channel!r}]")
                raise
        else:
            _check_version(channel, version, what)
            out[channel] = _ref_pair(channel, version)
    return out


def _delta_depth(metadata: Mapping[str, Any]) -> int:
    """How many ancestors a checkpoint may need to rebuild its DeltaChannels: the most
    supersteps any of them has gone since its last snapshot (LangGraph's
    counters_since_delta_snapshot metadata, channel -> (updates, supersteps))."""
    counters = metadata.get("counters_since_delta_snapshot") or {}
    depth = 0
    for value in counters.values() if isinstance(counters, Mapping) else ():
        try:
            depth = max(depth, int(value[1]))
        except (TypeError, ValueError, IndexError):
            continue
    return depth


def _flat(pairs: Iterable[tuple[bytes, bytes]]) -> list[Arg]:
    return [item for pair in pairs for item in pair]


def _as_pairs(reply: Any) -> list[tuple[bytes, bytes]]:
    """HGETALL reply as (field, value) pairs, whatever the client's callbacks made of it."""
    if isinstance(reply, Mapping):
        return list(reply.items())
    return list(zip(reply[0::2], reply[1::2], strict=True))


_NOT_READ = object()


class _ThreadRows(NamedTuple):
    """The fields of a thread's hashes as of one moment, and its write generation."""

    generation: bytes | None
    records: list[tuple[bytes, bytes]]
    blobs: list[tuple[bytes, bytes]]
    writes: list[tuple[bytes, bytes]]


def _collect(plan: Plan) -> Generator[Op, Any, list[Any]]:
    """Run ``plan`` inside another, returning what it emits instead of emitting it."""
    emitted: list[Any] = []
    reply: Any = None
    while True:
        try:
            step = plan.send(reply)
        except StopIteration:
            return emitted
        reply = None
        if isinstance(step, Emit):
            emitted.append(step.value)
        else:
            reply = yield step


# --------------------------------------------------------------------------- the core


class Core:
    """Turns LangGraph checkpointer calls into plans and replies into results."""

    def __init__(
        self, keyspace: Keyspace, serde: SerializerProtocol, options: SaverOptions
    ) -> None:
        self.keys = keyspace
        self.serde = serde
        self.options = options
        self.composer = compose.Composer(max_cache_bytes=options.content_cache_bytes)
        self.newest = NewestWritten(options.content_cache_bytes // 4)
        ttl_ms = options.ttl_ms
        # Writes always state the expiry, so a changed ttl (or none) applies to a thread
        # at its next write; reads only refresh an expiry the thread already has ("~").
        # A saver whose new threads keep no reference counts (see UNCOUNTED in
        # lua/includes/common.lua) says so by a "u" before its writes' expiry.
        self.creates = "" if options.counts_new_threads else "u"
        self._ttl_arg = "0" if ttl_ms is None else str(ttl_ms)
        self.read_expiry = f"~{ttl_ms}" if ttl_ms is not None and options.refresh_on_read else ""
        # The retention argument of the write scripts: "" keeps every checkpoint.
        keep = options.max_checkpoints
        self.keep = "" if keep is None else str(keep)
        # Records whole-value savers write stay readable by release 0.1 (format 1).
        self.record_format = (
            codec.RECORD_FORMAT if options.compose_values else codec.NETSTRING_REFS_FORMAT
        )

    @property
    def write_expiry(self) -> str:
        """The expiry argument of a write: the layout mark, then, before a "/", the
        number a write generation the call creates starts from, and the expiry. The
        number is drawn afresh for every call, so a thread deleted (or copied over) and
        written again does not come back to the generations another process last saw
        it at, whoever writes it (see GENERATION in lua/includes/common.lua)."""
        return self._expiry(self._ttl_arg)

    def _expiry(self, ttl: str | int) -> str:
        return f"{self.creates}{secrets.randbelow(GENERATION_SEEDS) + 1}/{ttl}"

    def _write(self, op: Eval | Call) -> Generator[Op, Any, Any]:
        """Run a write; with ``wait_replicas`` the WAIT goes in the same round trip
        (a pipeline) and too few acknowledgements raise ReplicationError."""
        replicas, timeout_ms = self.options.wait_replicas, self.options.wait_timeout_ms
        if not replicas:
            return (yield op)
        route = op.keys[0] if isinstance(op, Eval) else str(op.args[1])
        wait = Call(("WAIT", replicas, timeout_ms), route=route)
        reply, acked = yield Batch((op, wait))
        if int(acked) < replicas:
            raise ReplicationError(
                f"the write was applied on the primary but only {acked} of "
                f"{replicas} replicas acknowledged it within {timeout_ms} ms (key {route!r})"
            )
        return reply

    # ---- serialization

    def _dumps(self, value: Any, what: str) -> tuple[str, bytes]:
        try:
            return self.serde.dumps_typed(value)
        except Exception as exc:
            raise SerializationError(
                f"cannot serialize {what} ({type(value).__name__}) with "
                f"{type(self.serde).__name__}: {exc}"
            ) from exc

    def _sized(self, data: bytes, what: str) -> bytes:
        limit = self.options.max_value_size
        if limit is not None and len(data) > limit:
            raise ValueTooLargeError(
                f"{what} is {len(data):,} bytes serialized, more than max_value_size="
                f"{limit:,}; store large data elsewhere (a blob store) and keep "
                "a reference in the state, or raise max_value_size"
            )
        return data

    def canonical(self, value: Any) -> bytes:
        return codec.canonical(value, lambda v: self._dumps(v, "metadata value"))

    # ---- decoding

    def _config(self, thread_id: str, ns: str, checkpoint_id: str) -> RunnableConfig:
        return {
            "configurable": {
                "thread_id": thread_id,
                "checkpoint_ns": ns,
                "checkpoint_id": checkpoint_id,
            }
        }

    def _built(
        self, value: bytes, content: Mapping[bytes, bytes], where: str, channel: str = ""
    ) -> bytes:
        """A stored value as a read returns it: its bytes, or a composed value, rebuilt
        (``where``, and ``channel`` when given, name it in an error)."""
        if value[:1] != compose.COMPOSED:
            return value
        if channel:
            where = f"channel {channel!r} of {where!r}"
        return self.composer.built(value, content, where)

    def _pending_writes(
        self,
        where: str,
        index: bytes,
        values: Sequence[bytes | None],
        content: Mapping[bytes, bytes],
    ) -> HeldWrites:
        """The writes a read found, in the order the write index lists them."""
        subs = codec.split_netstrings(index, f"write index of {where}")
        if len(subs) != len(values):
            raise CorruptDataError(f"write index of {where} does not match its writes")
        found = []
        for sub, value in zip(subs, values, strict=True):
            if value is None:
                raise CorruptDataError(f"pending write {sub!r} of {where} is missing")
            task_id, idx = codec.parse_write_sub(sub, f"write index of {where}")
            channel, typed, task_path = codec.decode_write(self._built(value, content, where))
            found.append(HeldWrite(task_id, idx, channel, typed, task_path))
        return tuple(found)

    def _decoded_writes(self, writes: HeldWrites) -> list[PendingWrite]:
        """``writes`` as a checkpoint tuple's pending writes: decoded, in LangGraph's
        order (by task path, task and index)."""
        ordered = sorted(writes, key=lambda w: writes_sort_key(w.task_path, w.task_id, w.idx))
        return [(w.task_id, w.channel, self.serde.loads_typed(w.typed)) for w in ordered]

    def decode_checkpoint(
        self,
        thread_id: str,
        ns: str,
        reply: Sequence[Any],
        content: Mapping[bytes, bytes],
        known: Known | None = None,
        hold: Callable[[Parts, dict[bytes, Stored], HeldWrites], None] | None = None,
    ) -> CheckpointTuple:
        """A checkpoint read by get_checkpoint or list_checkpoints: (cid, record, the
        read's channel values as :class:`PageValues`, write index, writes); ``content``
        rebuilds its composed values and writes (see :meth:`_read_content`). With
        ``known``, the checkpoint the server confirmed the client holds (record and
        values not sent): its parts come from there, and its pending writes too when the
        client knows them. ``hold``, if given, is called with the serialized parts,
        values (by field) and pending writes of a checkpoint read whole (see
        :meth:`NewestWritten.read`)."""
        cid_raw, record_raw, page, index, writes = reply
        keys = self.keys.thread(thread_id)
        cid: str = repr(cid_raw)
        # The value fields and values, for `hold` only (a list page holds nothing), handed
        # over once the whole checkpoint, pending writes included, has decoded.
        to_hold: Parts | None = None
        held: dict[bytes, Stored] = {}
        # The key being decoded, for the error: each part of a checkpoint has its own.
        at = keys.checkpoints
        try:
            cid = cid_raw.decode() if isinstance(cid_raw, bytes) else str(cid_raw)
            if known is not None:
                parent, checkpoint_typed, metadata_typed = (
                    known.parent,
                    known.checkpoint,
                    known.metadata,
                )
            else:
                record = codec.Record(record_raw, at)
                parent, checkpoint_typed, metadata_typed = (
                    record.parent_id,
                    record.checkpoint,
                    record.metadata,
                )
            checkpoint: Checkpoint = self.serde.loads_typed(checkpoint_typed)
            metadata: CheckpointMetadata = self.serde.loads_typed(metadata_typed)
            at = keys.blobs
            values: dict[str, Any] = {}
            if known is not None:
                for channel, typed in known.values:
                    values[channel] = self.serde.loads_typed(typed)
            else:
                at = keys.checkpoints  # the references are the record's
                channels = [codec.ref_channel(ref) for ref in record.refs]
                at = keys.blobs
                blobs = page.of(ns, record.refs)
                ns_field = codec.netstring(ns) if hold is not None else b""
                fields: list[tuple[str, bytes]] = []
                for channel, ref, blob in zip(channels, record.refs, blobs, strict=True):
                    typed = None
                    if blob:
                        data = self._built(blob, content, keys.blobs, channel)
                        typed = codec.decode_blob(data)
                        values[channel] = self.serde.loads_typed(typed)
                    if hold is not None:
                        field = ns_field + ref
                        fields.append((channel, field))
                        held[field] = Stored(blob, typed)
                if hold is not None:
                    to_hold = Parts(
                        cid, record_raw, parent, checkpoint_typed, metadata_typed, fields
                    )
            at = keys.checkpoints
            checkpoint = {**checkpoint, "channel_values": values}
            at = keys.writes
            if known is not None and known.writes is not None:
                held_writes = known.writes
            else:
                held_writes = self._pending_writes(
                    f"checkpoint {cid!r} of thread {thread_id!r} (key {at!r})",
                    index or b"",
                    writes,
                    content,
                )
            pending = self._decoded_writes(held_writes)
        except CorruptDataError as exc:
            if at in str(exc):
                raise
            raise self._undecodable(thread_id, cid, _where(keys, at, writes), exc) from exc
        except PlainRedisSaverError:
            raise
        except Exception as exc:
            raise self._undecodable(thread_id, cid, _where(keys, at, writes), exc) from exc
        if hold is not None and to_hold is not None:
            hold(to_hold, held, held_writes)
        return CheckpointTuple(
            config=self._config(thread_id, ns, cid),
            checkpoint=checkpoint,
            metadata=metadata,
            parent_config=self._config(thread_id, ns, parent) if parent else None,
            pending_writes=pending,
        )

    @staticmethod
    def _undecodable(thread_id: str, cid: str, where: str, exc: Exception) -> CorruptDataError:
        return _naming_the_key(
            f"cannot decode checkpoint {cid!r} of thread {thread_id!r} (key {where})", exc
        )

    @staticmethod
    def _undecodable_history(thread_id: str, where: str, exc: Exception) -> CorruptDataError:
        return _naming_the_key(
            f"cannot decode the history of thread {thread_id!r} (key {where})", exc
        )

    # ---- plans

    def setup(self) -> Plan:
        yield LoadScripts()
        schema = codec.SCHEMA_VERSION if self.options.compose_values else codec.WHOLE_VALUES_SCHEMA
        _, stored = yield Batch(
            (
                Call(("SET", self.keys.schema, schema, "NX")),
                Call(("GET", self.keys.schema)),
            )
        )
        try:
            version = int(stored)
        except (TypeError, ValueError):
            raise CorruptDataError(
                f"{self.keys.schema!r} holds {stored!r}, not a schema version; is the key "
                "prefix shared with another application?"
            ) from None
        if version > codec.SCHEMA_VERSION:
            raise SchemaVersionError(
                f"data under prefix {self.keys.prefix!r} uses storage schema {version}; this "
                f"release knows schema {codec.SCHEMA_VERSION}. Upgrade plain-redis-saver."
            )
        if version < schema:
            # Schema 1 is read as it is: marking the prefix 2 keeps 0.1 readers, which
            # cannot read composed values, from starting on it (they check at setup).
            yield Call(("SET", self.keys.schema, schema))

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> Plan:
        target = parse_config(config)
        if not isinstance(checkpoint, Mapping) or not checkpoint.get("id"):
            raise InvalidConfigError("checkpoint must be a Checkpoint dict with a non-empty 'id'")
        cid = _require_str(checkpoint["id"], "checkpoint['id']")
        stored = dict(checkpoint)
        values = checkpoint.get("channel_values") or {}
        if not isinstance(values, Mapping):
            raise InvalidConfigError("checkpoint['channel_values'] must be a dict")
        refs = _refs(checkpoint.get("channel_versions"), "checkpoint['channel_versions']")
        new_refs = _refs(new_versions, "new_versions")
        if not isinstance(metadata, Mapping):
            raise InvalidConfigError(f"metadata must be a dict, got {type(metadata).__name__}")
        stored.pop("channel_values", None)
        meta = get_serializable_checkpoint_metadata(config, metadata)
        meta_index: list[bytes | str] = []
        for key, value in meta.items():
            try:
                digest = self.canonical(value)
            except PlainRedisSaverError:
                raise
            except Exception as exc:
                raise SerializationError(
                    f"cannot index metadata[{key!r}] ({type(value).__name__}): {exc}"
                ) from exc
            meta_index += [_require_str(key, "metadata key"), digest]
        content: dict[bytes, bytes] = {}
        blobs: list[tuple[bytes, bytes]] = []  # (NS..ref, value): the script's rows
        stored_values: dict[bytes, Stored] = {}
        ns = target.ns
        for channel, (ref, _, _) in new_refs.items():
            if channel not in values:
                blobs.append((ns + ref, codec.EMPTY_BLOB))
                stored_values[ns + ref] = Stored(codec.EMPTY_BLOB, None)
                continue
            typed = self._dumps(values[channel], f"channel {channel!r}")
            encoded = self._sized(codec.encode_blob(typed), f"the value of channel {channel!r}")
            prefix = encoded[: len(encoded) - len(typed[1])]
            memo = (target.thread_id, target.checkpoint_ns, "put", channel)
            field_value = self._composed(memo, prefix, typed, b"", encoded, content)
            blobs.append((ns + ref, field_value))
            stored_values[ns + ref] = Stored(field_value, typed)
        # The record lists the refs as its format does; the script takes their count
        # fields, ready made, as JSON.
        if self.record_format == codec.NETSTRING_REFS_FORMAT:
            in_record = b"".join([framed for _, framed, _ in refs.values()])
        else:
            in_record = codec.json_refs([as_json for _, _, as_json in refs.values()])
        counted = codec.json_refs([_count_field(ns, ref) for ref, _, _ in refs.values()])
        checkpoint_typed = self._dumps(stored, "checkpoint")
        metadata_typed = self._dumps(meta, "metadata")
        record = self._sized(
            codec.encode_record(
                parent_id=target.checkpoint_id,
                delta_depth=_delta_depth(meta),
                refs=in_record,
                record_format=self.record_format,
                meta_index=meta_index,
                checkpoint=checkpoint_typed,
                metadata=metadata_typed,
            ),
            f"checkpoint {cid!r} without its channel values (metadata and versions)",
        )
        try:
            reply = yield from self._write_composed(
                target.thread_id,
                (PUT_CHECKPOINT, PUT_CHECKPOINT_STAGED),
                (ns, cid, record, self.keep, counted, target.checkpoint_id or ""),
                blobs,
                content,
            )
        except CheckpointRemovedError:
            raise self._parent_removed(target) from None
        self.newest.wrote(
            target.thread_id,
            ns,
            Parts(
                cid,
                record,
                target.checkpoint_id,
                checkpoint_typed,
                metadata_typed,
                [(channel, ns + ref) for channel, (ref, _, _) in refs.items()],
            ),
            new=stored_values,
            generations=(reply // 16 - 1, reply // 16),
            fresh=reply & 1 == 1,
            unwritten=reply & 2 == 2,
        )
        self._proved(target.thread_id, reply // 16, reply & 8 == 8, content)
        if reply & 4:
            yield from self._collect(target.thread_id)
        yield Emit(self._config(target.thread_id, target.checkpoint_ns, cid))

    def _parent_removed(self, target: Target) -> CheckpointRemovedError:
        limit = (
            f"this saver's max_checkpoints={self.options.max_checkpoints} keeps only the newest "
            f"{self.options.max_checkpoints} of a namespace"
            if self.options.max_checkpoints is not None
            else "max_checkpoints retention (of a saver that set it), prune or "
            "delete_for_runs removed it"
        )
        return CheckpointRemovedError(
            f"checkpoint {target.checkpoint_id!r} (namespace {target.checkpoint_ns!r} of "
            f"thread {target.thread_id!r}) is no longer stored: {limit}. Continuing from it "
            "(update_state, a replay or fork from an old config) would start the thread "
            "over, so nothing was written. Continue from a checkpoint that is kept (see "
            "graph.get_state_history(config)), or raise max_checkpoints to keep more history"
        )

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> Plan:
        target = parse_config(config, need_id=True)
        _require_str(task_id, "task_id")
        _require_str(task_path, "task_path")
        if isinstance(writes, (str, bytes, Mapping)) or not isinstance(writes, Iterable):
            raise InvalidConfigError(
                f"writes must be a list of (channel, value) pairs, got {writes!r}"
            )
        # One row per stored field: writes to one special channel share a field, and the
        # last of them is the one stored.
        rows: dict[bytes, bytes] = {}
        stored: dict[int, HeldWrite] = {}  # what the rows store, for the reads that follow
        content: dict[bytes, bytes] = {}
        suffix = codec.pack(task_path)
        for idx, write in enumerate(writes):
            if not isinstance(write, (tuple, list)) or len(write) != 2:
                raise InvalidConfigError(
                    f"writes[{idx}] must be a (channel, value) pair, got {write!r}"
                )
            channel, value = write
            _require_str(channel, "write channel")
            typed = self._dumps(value, f"write to {channel!r}")
            encoded = self._sized(
                codec.encode_write(channel, typed, task_path),
                f"write {idx} to channel {channel!r} of task {task_id!r}",
            )
            prefix = encoded[: len(encoded) - len(suffix) - len(typed[1])]
            memo = (target.thread_id, target.checkpoint_ns, "write", channel)
            field = WRITES_IDX_MAP.get(channel, idx)
            rows[str(field).encode()] = self._composed(
                memo, prefix, typed, suffix, encoded, content
            )
            stored[field] = HeldWrite(task_id, field, channel, typed, task_path)
        assert target.checkpoint_id is not None
        base = target.ns + codec.netstring(target.checkpoint_id)
        reply = yield from self._write_composed(
            target.thread_id,
            (PUT_WRITES, PUT_WRITES_STAGED),
            (base, codec.netstring(task_id), self.keep),
            list(rows.items()),
            content,
        )
        # The reply (see put_writes.lua): twice the generation the call moved the thread
        # to (0 if it changed nothing), plus 1 if the claim failed.
        after = reply // 2
        self.newest.wrote_writes(
            target.thread_id,
            target.ns,
            target.checkpoint_id,
            (after - 1, after) if after else None,
            tuple(stored.values()),
        )
        self._proved(target.thread_id, after, reply & 1 == 1, content)

    def _proved(
        self, thread_id: str, after: int, refused: bool, content: dict[bytes, bytes]
    ) -> None:
        """Records a write to ``thread_id`` that moved its write generation to ``after``
        (0: it changed nothing) and left all of ``content`` (what its composed values
        reference) stored; ``refused``, whether the claim it made failed."""
        if self.options.compose_values:
            self.composer.proved(thread_id, after, refused, content)

    def _write_rows(
        self,
        thread_id: str,
        scripts: tuple[LuaScript, LuaScript],
        head: tuple[Arg, ...],
        rows: Sequence[tuple[bytes, bytes]],
    ) -> Generator[Op, Any, Any]:
        """Run a write script (``scripts``: its one-request form and its staged commit)
        with arguments ``head`` followed by field/value ``rows`` (distinct fields).

        Rows that do not fit one request go ahead into a staging hash in the thread's
        hash tag; the commit stores them with the last slice in one atomic script, so
        nothing of the call is visible before it, and a call that fails midway (out of
        memory, a lost connection) leaves nothing but a staging hash that expires."""
        script, commit = scripts
        keys = self.keys.thread(thread_id)
        per_call = (MAX_ARGS_PER_CALL - len(head) - 1) // 2
        if len(rows) <= per_call:
            return (
                yield from self._write(Eval(script, keys, (*head, *_flat(rows)), self.write_expiry))
            )
        staging = self.keys.staging(thread_id, secrets.token_hex(8))
        slices = list(_chunks(rows, per_call))
        try:
            for part in slices[:-1]:
                yield Batch(
                    (
                        Call(("HSET", staging, *_flat(part))),
                        Call(("PEXPIRE", staging, STAGING_TTL_MS)),
                    )
                )
            staged = len(rows) - len(slices[-1])
            return (
                yield from self._write(
                    Eval(
                        commit,
                        (*keys, staging),
                        (staged, *head, *_flat(slices[-1])),
                        self.write_expiry,
                    )
                )
            )
        except Exception:
            yield from self._discard((staging,))
            raise

    def _composed(
        self,
        key: tuple[str, str, str, str],
        prefix: bytes,
        typed: tuple[str, bytes],
        suffix: bytes,
        encoded: bytes,
        content: dict[bytes, bytes],
    ) -> bytes:
        """What the field of ``encoded`` (``prefix + typed[1] + suffix``) stores: its
        composed form, whose content is added to ``content``, or ``encoded`` itself."""
        if not self.options.compose_values:
            return encoded
        composed = self.composer.compose(key, prefix, typed, suffix)
        if composed is None:
            return encoded
        content.update(composed.content)
        self.composer.remember_built(composed.value, encoded)
        return composed.value

    def _write_composed(
        self,
        thread_id: str,
        scripts: tuple[LuaScript, LuaScript],
        head: tuple[Arg, ...],
        rows: Sequence[tuple[bytes, bytes]],
        content: dict[bytes, bytes],
    ) -> Generator[Op, Any, Any]:
        """``_write_rows`` with the content the composed values among ``rows`` need,
        less what the server is known to hold, and after ``head`` the claim (see
        :meth:`Composer.unsent`). A server that lacks some (deleted or collected since,
        or written by another process) refuses the call without writing anything, and it
        is sent again with all of it: a second round trip, never a dangling reference.
        With a claim that holds, the script does not look: the thread's write generation
        is still the one at which this client saw all that it does not send stored.
        A run of pieces the server is known to hold goes as a recipe the script builds
        it from (:meth:`Composer.recipes`); a piece it lacks refuses the call the same
        way."""
        if not content:
            return (yield from self._write_rows(thread_id, scripts, (*head, ""), rows))
        unsent, claim = self.composer.unsent(thread_id, content)
        recipes = self.composer.recipes(thread_id, unsent)
        try:
            reply = yield from self._write_rows(
                thread_id,
                scripts,
                (*head, claim),
                [*rows, *_content_rows(unsent), *_recipe_rows(recipes)],
            )
        except ContentMissingError:
            if not recipes and len(unsent) == len(content):
                raise
            self.composer.forget(thread_id)
            reply = yield from self._write_rows(
                thread_id, scripts, (*head, "*"), [*rows, *_content_rows(content)]
            )
        self.composer.held(thread_id, content)
        self.composer.learn(thread_id, content)
        return reply

    def _discard(self, keys: Sequence[str]) -> Generator[Op, Any, None]:
        """Unlink the staging keys of a failed call, if the server still answers (they
        expire anyway)."""
        with contextlib.suppress(Exception):
            yield Call(("UNLINK", *keys))

    def get_tuple(self, config: RunnableConfig) -> Plan:
        target = parse_config(config)
        keys = self.keys.thread(target.thread_id)
        known = self.newest.known(target.thread_id, target.ns)
        if known is not None and target.checkpoint_id not in (None, known.cid):
            known = None
        # A read the server is expected to confirm whole (the client holds the pending
        # writes too) names what the client holds unchecked: its content is gathered
        # only if the server sends the checkpoint after all.
        whole = known is not None and known.writes is not None
        if whole:
            held = compose.Held(self.composer.unchecked(target.thread_id), {})
        else:
            held = self.composer.cached(target.thread_id)

        def read(names: bytes, named: Known | None) -> Eval:
            """The read naming ``names`` held, and ``named`` as the client's copy."""
            args = (target.ns, target.checkpoint_id or "", names)
            return Eval(
                GET_CHECKPOINT,
                keys,
                (*args, *(named.read_args() if named else ())),
                self.read_expiry,
            )

        reply = yield read(held.names, known)
        if not reply:
            yield Emit(None)
            return
        found = replies.checkpoint_reply(reply)
        if whole and not (found.confirmed and not found.content and not found.writes):
            gathered = self.composer.content_of(held.names)
            if gathered is None:
                # The cache lost some of what the read named: read again, naming nothing.
                held = compose.Held(b"", {})
                reply = yield read(b"", None)
                if not reply:
                    yield Emit(None)
                    return
                found = replies.checkpoint_reply(reply)
                known = None
            else:
                held = compose.Held(held.names, gathered)
        if known is not None and not found.confirmed:
            known = None  # the server holds something else: it sent the record
        # A read by id may be of an old checkpoint: its content does not replace the
        # thread's newest as what later reads name held.
        content = self._read_content(
            target.thread_id,
            found.content,
            held.content,
            newest=not target.checkpoint_id or known is not None,
        )
        cid, record, index, writes = found.cid, found.record, found.write_index, found.writes
        values = PageValues(found.blobs, keys.blobs)
        ns = target.checkpoint_ns
        # A full read of the newest checkpoint, with the generation it was read at: held
        # from then on, as if this process had written it.
        generation = found.generation if known is None else None
        hold = None
        if isinstance(generation, int):

            def hold(parts: Parts, held: dict[bytes, Stored], writes: HeldWrites) -> None:
                self.newest.read(
                    target.thread_id,
                    target.ns,
                    parts,
                    values=held,
                    generation=generation,
                    writes=writes,
                )

        yield Emit(
            self.decode_checkpoint(
                target.thread_id, ns, (cid, record, values, index, writes), content, known, hold
            )
        )

    def _list_page(
        self,
        thread_id: str,
        ns: bytes,
        before: str,
        before_ns: bytes,
        page: int,
        filter_args: Sequence[Arg],
    ) -> tuple[Eval, Mapping[bytes, bytes]]:
        """The LIST_CHECKPOINTS call for one page of ``thread_id``, and the content it
        names as held, which decoding its reply needs (see :meth:`_page_state`)."""
        held = self.composer.cached(thread_id)
        budget = LIST_BUDGET if filter_args else page
        args = (ns, before, before_ns, page, budget, held.names, *filter_args)
        return (
            Eval(LIST_CHECKPOINTS, self.keys.thread(thread_id), args, self.read_expiry),
            held.content,
        )

    def _read_content(
        self,
        thread_id: str,
        flat: Sequence[bytes],
        held: Mapping[bytes, bytes],
        *,
        newest: bool = True,
    ) -> Mapping[bytes, bytes]:
        """The content a read's composed values are rebuilt from: what the reply carries
        (``flat``: digest, bytes, ...), each piece checked against its digest before the
        cache keeps it, and what the read named as ``held``."""
        if not flat:
            return held
        where = self.keys.thread(thread_id).blobs
        if not isinstance(flat, list) or len(flat) % 2:
            raise CorruptDataError(f"content read from {where!r} is malformed")
        got = dict(held)
        fresh: dict[bytes, bytes] = {}
        for i in range(0, len(flat), 2):
            name, data = flat[i], flat[i + 1]
            if not isinstance(data, bytes) or chunks.digest(data) != name:
                raise CorruptDataError(
                    f"content {bytes(name).hex()} of {where!r} does not match its digest "
                    "(changed by hand)"
                )
            fresh[name] = data
        got.update(fresh)
        self.composer.learn(thread_id, fresh, newest=newest)
        return got

    def _decode_page(
        self, thread_id: str, page: replies.PageReply, held: Mapping[bytes, bytes]
    ) -> list[CheckpointTuple]:
        content = self._read_content(thread_id, page.content, held)
        values = PageValues(page.blobs, self.keys.thread(thread_id).blobs)
        out = []
        for item in page.checkpoints:
            where = f"namespace {item.ns!r} of {self.keys.thread(thread_id).namespaces!r}"
            try:
                ns = codec.read_netstring(item.ns, 0, where)[0].decode()
            except UnicodeDecodeError as exc:
                raise CorruptDataError(f"{where} is not UTF-8") from exc
            parts = (item.cid, item.record, values, item.write_index, item.writes)
            out.append(self.decode_checkpoint(thread_id, ns, parts, content))
        return out

    def _page_state(
        self, thread_id: str, reply: Any, held: Mapping[bytes, bytes]
    ) -> tuple[list[CheckpointTuple], bool, str, bytes]:
        """A list page as (checkpoints, done, cursor id, cursor namespace)."""
        page = replies.page_reply(reply)
        return self._decode_page(thread_id, page, held), page.done, page.cursor, page.cursor_ns

    def list_checkpoints(
        self,
        config: RunnableConfig | None,
        *,
        filter: Mapping[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Plan:
        if limit is not None and (
            not isinstance(limit, int) or isinstance(limit, bool) or limit < 0
        ):
            raise InvalidConfigError(f"limit must be None or an int >= 0, got {limit!r}")
        if filter is not None and not isinstance(filter, Mapping):
            raise InvalidConfigError(f"filter must be a dict of metadata values, got {filter!r}")
        filter_args: list[Arg] = []
        for key, value in (filter or {}).items():
            _require_str(key, "filter key")
            try:
                digest = self.canonical(value)
            except PlainRedisSaverError:
                raise
            except Exception as exc:
                raise InvalidConfigError(
                    f"filter[{key!r}] ({type(value).__name__}) cannot be compared with "
                    f"stored metadata: {exc}"
                ) from exc
            filter_args += [key, digest]
        before_id = _before_id(before)
        if limit == 0:
            return
        if config is None:
            yield from self._list_all_threads(filter_args, before_id, limit)
            return
        target = parse_config(config)
        one_ns = config["configurable"].get("checkpoint_ns") is not None
        only_id = target.checkpoint_id
        cursor_id = before_id
        if only_id is not None:
            # A config naming a checkpoint lists at most that checkpoint (in every namespace
            # when none is given). Ids sort as strings, so the first id below
            # only_id + NUL is only_id itself.
            if before_id and before_id <= only_id:
                return
            cursor_id = only_id + "\x00"
        ns = target.ns if one_ns else b""
        cursor_ns = b""
        remaining = limit
        while True:
            page = min(remaining, LIST_PAGE) if remaining is not None else LIST_PAGE
            call, held = self._list_page(
                target.thread_id, ns, cursor_id, cursor_ns, page, filter_args
            )
            reply = yield call
            tuples, done, cursor_id, cursor_ns = self._page_state(target.thread_id, reply, held)
            for tup in tuples:
                if only_id is not None and tup.config["configurable"]["checkpoint_id"] != only_id:
                    return
                yield Emit(tup)
                if remaining is not None:
                    remaining -= 1
                    if remaining == 0:
                        return
            if done or (only_id is not None and cursor_id < only_id):
                return

    def _stored_threads(self) -> Generator[Op, Any, tuple[list[str], dict[str, str]]]:
        """The stored threads, and the keys found that name none (see _Damage)."""
        keys = yield Scan(self.keys.thread_keys_scan_pattern())
        threads: set[str] = set()
        foreign: dict[str, str] = {}
        for key in keys:
            thread_id = self.keys.thread_id_of(key)
            if thread_id is None:
                foreign[f"key {key!r}"] = (
                    "not a key this saver writes (a foreign or undecodable key under the "
                    "prefix); remove or rename it"
                )
            else:
                threads.add(thread_id)
        return sorted(threads), foreign

    def _damage_report(self, damaged: Mapping[str, str], done: str) -> CorruptDataError:
        """One error for every damaged thread or foreign key an operation over many
        threads met, raised after it has finished with the others."""
        found = "; ".join(f"{what}: {why}" for what, why in damaged.items())
        return CorruptDataError(
            f"{len(damaged)} thread(s) or key(s) under prefix {self.keys.prefix!r} are "
            f"damaged or foreign and were skipped (every other thread was {done}): {found}"
        )

    def _thread_reply(self, damaged: dict[str, str], tid: str, reply: Any) -> bool:
        """Whether a thread's reply in a batch that keeps errors is usable; a report of
        damaged data is filed under the thread, any other error raised."""
        if isinstance(reply, CorruptDataError):
            damaged[f"thread {tid!r}"] = str(reply)
            return False
        if isinstance(reply, Exception):
            raise reply
        return True

    def _list_all_threads(
        self, filter_args: Sequence[Arg], before_id: str, limit: int | None
    ) -> Plan:
        """Every thread, newest checkpoint first (ties: thread id, then namespace)."""
        thread_ids, damaged = yield from self._stored_threads()
        page = min(limit, LIST_PAGE) if limit is not None else LIST_PAGE
        state: dict[str, tuple[list[CheckpointTuple], bool, str, bytes]] = {}

        def keep_page(tid: str, reply: Any, held: Mapping[bytes, bytes]) -> None:
            # A damaged thread is left out and reported once the others are listed.
            state.pop(tid, None)
            if self._thread_reply(damaged, tid, reply):
                try:
                    state[tid] = self._page_state(tid, reply, held)
                except CorruptDataError as exc:
                    damaged[f"thread {tid!r}"] = str(exc)

        for chunk in _chunks(thread_ids, THREADS_PER_BATCH):
            calls = [self._list_page(tid, b"", before_id, b"", page, filter_args) for tid in chunk]
            replies = yield Batch(tuple(call for call, _ in calls), keep_errors=True)
            for tid, reply, (_, held) in zip(chunk, replies, calls, strict=True):
                keep_page(tid, reply, held)

        heap: list[tuple[_Desc, _Desc, _Desc, str]] = []

        def push(tid: str) -> None:
            items = state[tid][0] if tid in state else None
            if items:
                conf = items[0].config["configurable"]
                key = (_Desc(conf["checkpoint_id"]), _Desc(tid), _Desc(conf["checkpoint_ns"]))
                heapq.heappush(heap, (*key, tid))

        for tid in thread_ids:
            push(tid)
        remaining = limit
        while heap and remaining != 0:
            *_, tid = heapq.heappop(heap)
            items, done, cursor_id, cursor_ns = state[tid]
            yield Emit(items.pop(0))
            if remaining is not None:
                remaining -= 1
            if not items and not done and remaining != 0:
                call, held = self._list_page(tid, b"", cursor_id, cursor_ns, page, filter_args)
                (reply,) = yield Batch((call,), keep_errors=True)
                keep_page(tid, reply, held)
            push(tid)
        if damaged:
            raise self._damage_report(damaged, "listed")

    def delete_thread(self, thread_id: str) -> Plan:
        keys = self.keys.thread(_require_str(thread_id, "thread_id"))
        # UNLINK frees big values off the main thread: O(1) for the server's event loop.
        self.composer.forget(thread_id)
        yield from self._write(Call(("UNLINK", *keys)))

    def _sliced(self, threads: Sequence[str], args: Any) -> Generator[Op, Any, dict[str, str]]:
        """Run DELETE_CHECKPOINTS on each thread, a bounded slice per call, until every
        thread reports done; a pipeline per round and batch of threads. A thread whose
        data is damaged stops there and is returned with the report, the others go on."""
        damaged: dict[str, str] = {}
        due: dict[str, None] = {}
        for chunk in _chunks(list(threads), THREADS_PER_BATCH):
            cursors: dict[str, bytes | str] = {tid: "0" for tid in chunk}
            while cursors:
                order = list(cursors)
                replies = yield Batch(
                    tuple(
                        # Maintenance is not activity: the thread keeps its expiry.
                        Eval(DELETE_CHECKPOINTS, self.keys.thread(t), args(cursors[t]), "")
                        for t in order
                    ),
                    keep_errors=True,
                )
                cursors = {}
                for tid, reply in zip(order, replies, strict=True):
                    if not self._thread_reply(damaged, tid, reply):
                        continue
                    # Kept as bytes: a "runs" cursor is an order member, sent back as is.
                    cursor = reply[0]
                    if cursor not in (b"0", "0"):
                        cursors[tid] = cursor
                    if int(reply[2]):
                        due[tid] = None
        for tid in due:
            yield from self._collect(tid)
        return damaged

    def delete_for_runs(self, run_ids: Sequence[str]) -> Plan:
        runs = _thread_ids(run_ids, "run_ids")
        if not runs:
            return
        digests = [self.canonical(r) for r in dict.fromkeys(runs)]
        threads, damaged = yield from self._stored_threads()
        for group in _chunks(digests, MAX_ARGS_PER_CALL):
            damaged |= yield from self._sliced(
                [t for t in threads if f"thread {t!r}" not in damaged],
                lambda cursor, g=group: ("runs", DELETE_BATCH, cursor, *g),
            )
        if damaged:
            raise self._damage_report(damaged, "cleaned")

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> Plan:
        threads = _thread_ids(thread_ids, "thread_ids")
        if strategy not in PRUNE_STRATEGIES:
            raise InvalidConfigError(
                f"unknown prune strategy {strategy!r}; use one of {', '.join(PRUNE_STRATEGIES)}"
            )
        if strategy == "delete":
            for chunk in _chunks(threads, THREADS_PER_BATCH):
                yield Batch(tuple(Call(("UNLINK", *self.keys.thread(t))) for t in chunk))
            return
        damaged = yield from self._sliced(threads, lambda _cursor: ("keep", DELETE_BATCH, 1))
        if damaged:
            raise self._damage_report(damaged, "pruned")

    def _read_thread(self, keys: ThreadKeys) -> Generator[Op, Any, _ThreadRows | None]:
        """Every field of the thread's records, values and writes, read with HSCAN pages
        (never one huge HGETALL) as stored at one moment: the write generation is read
        before the first page and after every page, and the read gives up (None) as soon
        as it moved. HSCAN pages alone are no snapshot: a write between two pages makes
        them show parts of two states."""
        hashes = (keys.checkpoints, keys.blobs, keys.writes)
        generation = Call(("HGET", keys.blobs, codec.GENERATION))
        rows: list[list[tuple[bytes, bytes]]] = [[] for _ in hashes]
        cursors = dict.fromkeys(range(len(hashes)), "0")
        start: Any = _NOT_READ
        while cursors:
            order = list(cursors)
            before, *pages, after = yield Batch(
                (
                    generation,
                    *(Call(("HSCAN", hashes[i], cursors[i], "COUNT", SCAN_PAGE)) for i in order),
                    generation,
                )
            )
            if start is _NOT_READ:
                start = before
            if after != start:
                return None
            cursors = {}
            for i, (cursor, page) in zip(order, pages, strict=True):
                rows[i] += _as_pairs(page)
                cursor = cursor.decode() if isinstance(cursor, bytes) else str(cursor)
                if cursor != "0":
                    cursors[i] = cursor
        return _ThreadRows(start, *rows)

    def _check_copyable(self, src: ThreadKeys, rows: _ThreadRows) -> None:
        """Raise CorruptDataError, naming the source key, for a damaged record or an
        evicted value: nothing is copied then."""
        blob_fields = {field for field, _ in rows.blobs}
        if not rows.records and any(f[:1] == b"=" and f[1:2].isdigit() for f in blob_fields):
            raise CorruptDataError(
                f"checkpoint records {src.checkpoints!r} are missing although "
                f"{src.blobs!r} counts checkpoints (evicted, or deleted by hand); the "
                "thread was not copied"
            )
        if codec.WRITES_MARK in blob_fields and not rows.writes:
            raise CorruptDataError(
                f"pending writes {src.writes!r} are missing although {src.blobs!r} records "
                "that writes were stored (evicted, or deleted by hand); the thread was not "
                "copied"
            )
        self._check_composed(src, rows)
        for field, value in rows.records:
            refs = codec.Record(value, src.checkpoints).refs
            ns = field[
                : codec.read_netstring(field, 0, f"field {field!r} of {src.checkpoints!r}")[1]
            ]
            for ref in refs:
                if ns + ref not in blob_fields and b"#" + ns + ref not in blob_fields:
                    raise CorruptDataError(
                        f"channel value {ns + ref!r} of {src.blobs!r}, referenced by "
                        f"checkpoint {field!r} of {src.checkpoints!r}, is missing (evicted, "
                        "deleted by hand, or the record is damaged); the thread was not copied"
                    )

    @staticmethod
    def _check_composed(src: ThreadKeys, rows: _ThreadRows) -> None:
        """Raise CorruptDataError, naming the source key, for a composed value or stored
        node that is malformed or references content the source does not hold."""
        held = {field[1:]: value for field, value in rows.blobs if field[:1] == codec.CONTENT_FIELD}
        for key, section in ((src.blobs, rows.blobs), (src.writes, rows.writes)):
            for field, value in section:
                is_content = key == src.blobs and field[:1] == codec.CONTENT_FIELD
                for name in audit.held_references(field, value, key, is_content):
                    if name not in held:
                        where = f"field {field!r} of {key!r}"
                        raise CorruptDataError(
                            f"content {name.hex()} of {src.blobs!r}, referenced by {where}, "
                            "is missing (evicted, deleted by hand, or the reference is "
                            "damaged); the thread was not copied"
                        )

    @staticmethod
    def _sections(
        rows: _ThreadRows, keys: ThreadKeys
    ) -> list[tuple[str, Sequence[tuple[bytes, bytes]]]]:
        """A thread's rows (its keys ``keys``) as IMPORT_THREAD sections, each write index
        whole (segments joined). Counts ("#" and "=" fields) are rebuilt by the target as
        records arrive; values and content nothing reaches (an uncounted thread's garbage
        awaiting collection, or leftovers) are not copied."""
        key = keys.writes
        dead = set(audit.audit_rows(keys, rows.records, rows.blobs, rows.writes).unreferenced)
        write_rows: list[tuple[bytes, bytes]] = []
        index_rows: list[tuple[bytes, bytes]] = []
        stored_writes = dict(rows.writes)
        for field, value in rows.writes:
            where = f"field {field!r} of {key!r}"
            _, pos = codec.read_netstring(field, 0, where)
            _, pos = codec.read_netstring(field, pos, where)
            if pos == len(field):
                whole = codec.whole_index(field, value, stored_writes, key)
                codec.split_netstrings(whole, f"write index {where}")
                index_rows.append((field, whole))
            elif field[pos : pos + 1] != codec.INDEX_SEGMENT_MARK:  # segments go in `whole`
                codec.parse_write_sub(field[pos:], where)
                write_rows.append((field, value))
        return [
            (
                "b",
                [(f, v) for f, v in rows.blobs if not f.startswith((b"#", b"=")) and f not in dead],
            ),
            ("w", write_rows),
            ("i", index_rows),
            ("c", rows.records),
        ]

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> Plan:
        src = self.keys.thread(_require_str(source_thread_id, "source_thread_id"))
        dst = self.keys.thread(_require_str(target_thread_id, "target_thread_id"))
        if src == dst:
            return
        # An evicted key is reported against the source before anything is read or written.
        yield from self._check_thread(src)
        for _ in range(READ_ATTEMPTS):
            source = yield from self._read_thread(src)
            if source is None:
                continue
            self._check_copyable(src, source)
            if not (source.records or source.blobs or source.writes):
                return
            target = yield from self._read_thread(dst)
            if target is None:
                continue
            # The copy is built under staging names in the target's hash tag, the
            # target's own data first (it wins, as documented), and becomes the target in
            # one O(1) step: a copy that fails leaves no target keys and no half thread.
            staged = self.keys.staged_thread(target_thread_id, secrets.token_hex(8))
            try:
                sections = [
                    *self._sections(target, dst),
                    *self._sections(source, src),
                ]
                yield from self._import(staged, sections)
                committed = yield from self._write(
                    Eval(
                        COMMIT_COPY, (*dst, *staged), (target.generation or b"",), self.write_expiry
                    )
                )
            except Exception:
                yield from self._discard(staged)
                raise
            if int(committed):
                self.composer.forget(target_thread_id)
                return
            yield from self._discard(staged)
        raise ConcurrentWriteError(
            f"thread {source_thread_id!r} or {target_thread_id!r} was written while "
            f"copy_thread read it, {READ_ATTEMPTS} times in a row; nothing was copied. "
            "Copy it again when its writes pause."
        )

    def _check_thread(self, keys: ThreadKeys) -> Generator[Op, Any, bool]:
        """Raises CorruptDataError naming a missing key when some of the thread's keys
        are gone; returns whether it has checkpoints. Reads only (no expiry refresh)."""
        return bool((yield Eval(CHECK_THREAD, keys, (), "")))

    def check_thread(self, thread_id: str) -> Plan:
        yield from self._check_thread(self.keys.thread(_require_str(thread_id, "thread_id")))

    def _import(
        self, keys: ThreadKeys, sections: Sequence[tuple[str, Sequence[tuple[bytes, bytes]]]]
    ) -> Plan:
        """IMPORT_THREAD calls carrying ``sections`` in order into staging ``keys``
        (which carry the staging expiry), each below the argument limit; a section
        larger than one call spans several."""
        calls: list[tuple[Arg, ...]] = []
        args: list[Arg] = []
        per_call = (MAX_ARGS_PER_CALL - 3) // 2
        for tag, rows in sections:
            for part in _chunks(rows, per_call):
                if len(args) + 3 + 2 * len(part) > MAX_ARGS_PER_CALL:
                    calls.append(tuple(args))
                    args = []
                args += [tag, len(part), *_flat(part)]
        if args:
            calls.append(tuple(args))
        for call in calls:  # noqa: UP028 (replies are sent in; a list iterator has no send)
            yield Eval(IMPORT_THREAD, keys, call, self._expiry(STAGING_TTL_MS))

    def thread_snapshot(self, thread_id: str) -> Plan:
        """Emits every checkpoint of a thread (every namespace, newest first) as stored
        at one moment: the list pages are read between two reads of the thread's write
        generation, again when it moved."""
        keys = self.keys.thread(_require_str(thread_id, "thread_id"))
        generation = Call(("HGET", keys.blobs, codec.GENERATION))
        for _ in range(READ_ATTEMPTS):
            before = yield generation
            found = yield from _collect(
                self.list_checkpoints({"configurable": {"thread_id": thread_id}})
            )
            if (yield generation) == before:
                yield Emit(found)
                return
        raise ConcurrentWriteError(
            f"thread {thread_id!r} was written while it was read, {READ_ATTEMPTS} times in "
            "a row. Read it again when its writes pause."
        )

    def audit_thread(self, thread_id: str) -> Plan:
        """Emits the :class:`~plain_redis_saver.audit.ThreadAudit` of a thread as stored at
        one moment (see :meth:`_read_thread`); reads only, in HSCAN pages."""
        keys = self.keys.thread(_require_str(thread_id, "thread_id"))
        yield from self._check_thread(keys)
        for _ in range(READ_ATTEMPTS):
            rows = yield from self._read_thread(keys)
            if rows is not None:
                yield Emit(audit.audit_rows(keys, rows.records, rows.blobs, rows.writes))
                return
        raise ConcurrentWriteError(
            f"thread {thread_id!r} was written while audit_thread read it, {READ_ATTEMPTS} "
            "times in a row. Audit it again when its writes pause."
        )

    def repair_thread(self, thread_id: str) -> Plan:
        """Audits a thread (see :meth:`audit_thread`), then sets every wrong count to the
        references it stands for and deletes the values and content nothing reaches, in
        REPAIR_THREAD calls that apply only while the thread's write generation is the
        one the audit read (else it audits again). Emits the audit acted on."""
        keys = self.keys.thread(_require_str(thread_id, "thread_id"))
        yield from self._check_thread(keys)
        for _ in range(READ_ATTEMPTS):
            rows = yield from self._read_thread(keys)
            if rows is None:
                continue
            found = audit.audit_rows(keys, rows.records, rows.blobs, rows.writes)
            counts = [(name, want) for name, _, want in found.wrong_counts if want]
            dead = [name for name, _, want in found.wrong_counts if not want]
            dead += found.unreferenced
            if found.uncounted:
                dead.append(codec.GARBAGE)  # collected
            if (yield from self._repair(thread_id, rows.generation or b"", counts, dead)):
                yield Emit(found)
                return
        raise ConcurrentWriteError(
            f"thread {thread_id!r} was written while repair_thread read it, {READ_ATTEMPTS} "
            "times in a row; what was repaired before it moved stays repaired. Repair it "
            "again when its writes pause."
        )

    def _collect(self, thread_id: str) -> Generator[Op, Any, None]:
        """Collect an uncounted thread whose removals asked for it (see UNCOUNTED in
        lua/includes/common.lua): delete the values and content nothing reaches, as
        :meth:`repair_thread` does, in one attempt. A thread written meanwhile is left
        as it is (its next removal asks again), and so is a damaged one (its reads
        report the damage); the call that removed checkpoints has succeeded either way,
        so neither raises here."""
        keys = self.keys.thread(thread_id)
        rows = yield from self._read_thread(keys)
        if rows is None:
            return
        try:
            found = audit.audit_rows(keys, rows.records, rows.blobs, rows.writes)
        except CorruptDataError:
            return
        if not found.uncounted:
            return
        dead = [*found.unreferenced, codec.GARBAGE]
        with contextlib.suppress(CorruptDataError):
            yield from self._repair(thread_id, rows.generation or b"", (), dead)

    def _repair(
        self,
        thread_id: str,
        generation: bytes,
        counts: Sequence[tuple[bytes, int]],
        dead: Sequence[bytes],
    ) -> Generator[Op, Any, bool]:
        """REPAIR_THREAD calls carrying ``counts`` and ``dead``, each below the argument
        limit; False as soon as one finds the thread written since ``generation``. Each
        call applied leaves the thread right as of the audit, so one that stops early
        leaves nothing half done; the content each deleted is forgotten as held. A call
        that deletes content moves the generation (see repair_thread.lua), and the next
        call expects the one it replied."""
        keys = self.keys.thread(thread_id)
        per_call = MAX_ARGS_PER_CALL - 2  # even: count pairs are never split
        count_args: list[Arg] = [x for pair in counts for x in pair]
        rest = list(dead)
        while count_args or rest:
            head, count_args = count_args[:per_call], count_args[per_call:]
            tail, rest = rest[: per_call - len(head)], rest[per_call - len(head) :]
            args = (generation, len(head) // 2, *head, *tail)
            reply = int((yield Eval(REPAIR_THREAD, keys, args, "")))
            if not reply:
                return False
            self.composer.forget(thread_id, _content_names(tail))
            if reply > 0 and generation and reply != int(generation):
                # Deleting content moved the generation by one: a step of this client's,
                # which changes nothing a read returns.
                self.newest.stepped(thread_id, (int(generation), reply))
                generation = str(reply).encode()
        return True

    def get_delta_channel_history(self, config: RunnableConfig, channels: Sequence[str]) -> Plan:
        target = parse_config(config)
        if isinstance(channels, (str, bytes)) or not isinstance(channels, Iterable):
            raise InvalidConfigError(f"channels must be a list of channel names, got {channels!r}")
        wanted = [_require_str(c, "channel name") for c in channels]
        if not wanted:
            yield Emit({})
            return
        keys = self.keys.thread(target.thread_id)
        steps = yield Eval(
            DELTA_HISTORY, keys, (target.ns, target.checkpoint_id or "", *wanted), self.read_expiry
        )
        collected: dict[str, list[PendingWrite]] = {c: [] for c in wanted}
        seeds: dict[str, Any] = {}
        at = keys.writes
        try:
            for subs, writes, found in reversed(steps):
                at = keys.writes
                rows = []
                for sub, value in zip(subs, writes, strict=True):
                    task_id, idx = codec.parse_write_sub(sub, f"write index in {at!r}")
                    channel, typed, task_path = codec.decode_write(_joined(value))
                    rows.append((writes_sort_key(task_path, task_id, idx), task_id, channel, typed))
                rows.sort(key=lambda row: row[0])
                for _, task_id, channel, typed in rows:
                    collected[channel].append((task_id, channel, self.serde.loads_typed(typed)))
                at = keys.blobs
                for i in range(0, len(found), 2):
                    channel = found[i].decode()
                    seeds[channel] = self.serde.loads_typed(
                        codec.decode_blob(_joined(found[i + 1]))
                    )
        except CorruptDataError as exc:
            if at in str(exc):
                raise
            where = _where(keys, at, [w for step in steps for w in step[1]])
            raise self._undecodable_history(target.thread_id, where, exc) from exc
        except PlainRedisSaverError:
            raise
        except Exception as exc:
            where = _where(keys, at, [w for step in steps for w in step[1]])
            raise self._undecodable_history(target.thread_id, where, exc) from exc
        result: dict[str, DeltaChannelHistory] = {}
        for channel in wanted:
            entry: DeltaChannelHistory = {"writes": collected[channel]}
            if channel in seeds:
                entry["seed"] = seeds[channel]
            result[channel] = entry
        yield Emit(result)


def _where(keys: ThreadKeys, key: str, writes: Sequence[Any]) -> str:
    """``key`` for an error message about a value read from it; a pending write that was
    composed (as stored, or as the list of parts the history script returns) keeps its
    content in the values hash, which is then named too (a damaged piece there shows
    only as a write that does not decode)."""
    composed = any(
        isinstance(value, list) or (isinstance(value, bytes) and value[:1] == compose.COMPOSED)
        for value in writes
    )
    if key == keys.writes and composed:
        return f"{key!r}, with its composed writes' content in {keys.blobs!r}"
    return repr(key)


def _joined(value: bytes | list[bytes]) -> bytes:
    """A stored value as a script returns it: its bytes, or (a composed value) the list
    of its parts in order."""
    return b"".join(value) if isinstance(value, list) else value


class PageValues:
    """The channel values of a read (a list page, or the one checkpoint of a get): the
    script sends each once, in the order the read first references it (checkpoint by
    checkpoint, each record's references in order, per namespace), and :meth:`of`
    hands them out again in that order, so the checkpoints must be decoded in the order
    they came."""

    def __init__(self, values: Any, where: str) -> None:
        if not isinstance(values, list):
            raise CorruptDataError(f"the channel values read from {where!r} are malformed")
        self._values = values
        self._where = where
        self._slots: dict[tuple[str, bytes], int] = {}

    def of(self, ns: str, refs: Sequence[bytes]) -> list[Any]:
        """The values of a checkpoint of namespace ``ns`` whose record references
        ``refs``."""
        slots = self._slots
        out = []
        for ref in refs:
            slot = slots.setdefault((ns, ref), len(slots))
            if slot >= len(self._values):
                raise CorruptDataError(
                    f"the channel values read from {self._where!r} are fewer than the "
                    "page references"
                )
            out.append(self._values[slot])
        return out


def _content_names(fields: Iterable[bytes]) -> list[bytes]:
    """The digests of the content fields (CONTENT_FIELD..digest) among ``fields``."""
    return [f[1:] for f in fields if f[:1] == codec.CONTENT_FIELD]


def _content_rows(content: Mapping[bytes, bytes]) -> list[tuple[bytes, bytes]]:
    return [(codec.CONTENT_FIELD + name, data) for name, data in content.items()]


def _recipe_rows(recipes: Mapping[bytes, bytes]) -> list[tuple[bytes, bytes]]:
    return [(codec.RECIPE_FIELD + name, items) for name, items in recipes.items()]


def _naming_the_key(where: str, exc: Exception) -> CorruptDataError:
    """``exc`` as a CorruptDataError that says where the data was read; the library's own
    kinds (DisallowedTypeError, for one) keep their class, so callers can still tell them."""
    if isinstance(exc, CorruptDataError):
        return type(exc)(f"{where}: {exc}")
    return CorruptDataError(f"{where}: {exc!r}")


class _Desc:
    """Orders strings descending inside heapq's min-heap."""

    __slots__ = ("value",)

    def __init__(self, value: str) -> None:
        self.value = value

    def __lt__(self, other: _Desc) -> bool:
        return self.value > other.value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Desc) and self.value == other.value
