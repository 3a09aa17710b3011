"""Export a thread to a file and import it back, with any saver: the versioned format.

    with open("thread.jsonl", "w", encoding="utf-8") as file:
        export_thread(saver, "thread-1", file)
    with open("thread.jsonl", encoding="utf-8") as file:
        import_thread(other_saver, file, thread_id="thread-1-copy")

``aexport_thread`` / ``aimport_thread`` do the same with an ``AsyncPlainRedisSaver``.
The format is read and written by pure functions; the only I/O is the saver's own public
calls (``thread_snapshot``, ``put``, ``put_writes``, ``delete_thread``, ``setup``), made
by a blocking and an async runner of one import plan, as the savers run the core's plans.

The file is JSON lines:

    {"type": "header", "format": "plain-redis-saver-thread", "version": 1, "thread_id": …,
     "checkpoints": N, "pending_writes": M, "key_prefix": …, "library_version": …,
     "exported_at": …}
    {"type": "checkpoint", "config": …, "parent_config": …|null,
     "checkpoint": TYPED, "metadata": TYPED,
     "channel_values": {channel: {"version": V, "type": …, "data": …}},
     "pending_writes": [{"task_id": …, "task_path": null, "channel": …, "type": …,
                         "data": …}]}                          one per checkpoint
    {"type": "end", "checkpoints": N, "pending_writes": M}

TYPED is ``{"type": …, "data": base64}`` = ``serde.dumps_typed(value)``; "checkpoint" is
the Checkpoint without channel_values. Checkpoints come oldest first (a parent before its
children), every namespace of the thread included. channel_values holds only the values
no earlier line carried: a value is stored once per (namespace, channel, version), so the
importer rebuilds each checkpoint's values from every line's. The end line lets the
importer refuse a truncated file.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime
import json
from collections.abc import AsyncIterator, Generator, Iterable, Mapping, Sequence
from typing import IO, Any, NamedTuple

import redis.exceptions
from langgraph.checkpoint.base import Checkpoint, CheckpointMetadata, CheckpointTuple
from langgraph.checkpoint.serde.base import SerializerProtocol

from . import __version__
from .base import BaseRedisSaver
from .drive import afirst, drive
from .errors import (
    ExportFormatError,
    IncompleteImportError,
    PlainRedisSaverError,
    ThreadExistsError,
    ThreadNotFoundError,
)
from .ops import Emit

__all__ = [
    "EXPORT_FORMAT",
    "EXPORT_VERSION",
    "ExportSummary",
    "ImportSummary",
    "aexport_thread",
    "aimport_thread",
    "export_records",
    "export_thread",
    "import_thread",
]

#: First line of every export: ``{"type": "header", "format": EXPORT_FORMAT, "version": …}``.
EXPORT_FORMAT = "plain-redis-saver-thread"
EXPORT_VERSION = 1

#: Imported writes whose task_path is unknown get one of these when "" would not keep
#: the exported order (see _task_paths).
IMPORTED_TASK_PATH = "~import:{:06d}"


class ExportSummary(NamedTuple):
    thread_id: str
    checkpoints: int
    pending_writes: int


class ImportSummary(NamedTuple):
    #: The thread written.
    thread_id: str
    #: The thread id the file was exported from.
    source_thread_id: str
    checkpoints: int
    pending_writes: int


# --------------------------------------------------------------------------- writing


def _typed(typed: tuple[str, bytes]) -> dict[str, str]:
    return {"type": typed[0], "data": base64.b64encode(typed[1]).decode("ascii")}


def _parents_first(items: Sequence[Any], key: Any, parent: Any) -> list[Any]:
    """``items`` ordered by key, each moved after its parent if that is among them."""
    by_key = {key(item): item for item in items}
    done: set[Any] = set()
    ordered: list[Any] = []
    for item in sorted(items, key=key):
        chain = []
        current: Any = item
        while current is not None and key(current) not in done:
            chain.append(current)
            done.add(key(current))
            up = parent(current)
            current = by_key.get(up) if up is not None else None
        ordered.extend(reversed(chain))
    return ordered


def _tuple_key(tup: CheckpointTuple) -> tuple[str, str]:
    conf = tup.config["configurable"]
    return conf["checkpoint_id"], conf["checkpoint_ns"]


def _tuple_parent(tup: CheckpointTuple) -> tuple[str, str] | None:
    if not tup.parent_config:
        return None
    conf = tup.parent_config["configurable"]
    return conf["checkpoint_id"], conf.get("checkpoint_ns", "")


def export_records(
    tuples: Sequence[CheckpointTuple],
    *,
    thread_id: str,
    serde: SerializerProtocol,
    key_prefix: str,
) -> list[dict[str, Any]]:
    """The lines of an export (header, checkpoints, end) as JSON-ready dicts, from a
    thread's checkpoints (any order; ``thread_snapshot`` gives them). No I/O."""
    ordered = _parents_first(tuples, _tuple_key, _tuple_parent)
    writes_total = sum(len(t.pending_writes or ()) for t in ordered)
    records: list[dict[str, Any]] = [
        {
            "type": "header",
            "format": EXPORT_FORMAT,
            "version": EXPORT_VERSION,
            "thread_id": thread_id,
            "checkpoints": len(ordered),
            "pending_writes": writes_total,
            "key_prefix": key_prefix,
            "library_version": __version__,
            "exported_at": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        }
    ]
    seen: set[tuple[str, str, Any]] = set()
    for tup in ordered:
        ns = tup.config["configurable"]["checkpoint_ns"]
        values = tup.checkpoint.get("channel_values") or {}
        new_values: dict[str, Any] = {}
        for channel, version in tup.checkpoint["channel_versions"].items():
            if channel in values and (ns, channel, version) not in seen:
                seen.add((ns, channel, version))
                new_values[channel] = {
                    "version": version,
                    **_typed(serde.dumps_typed(values[channel])),
                }
        bare = {k: v for k, v in tup.checkpoint.items() if k != "channel_values"}
        records.append(
            {
                "type": "checkpoint",
                "config": tup.config,
                "parent_config": tup.parent_config,
                "checkpoint": _typed(serde.dumps_typed(bare)),
                "metadata": _typed(serde.dumps_typed(tup.metadata)),
                "channel_values": new_values,
                "pending_writes": [
                    {
                        "task_id": task_id,
                        "task_path": None,  # not readable through the saver's API
                        "channel": channel,
                        **_typed(serde.dumps_typed(value)),
                    }
                    for task_id, channel, value in tup.pending_writes or ()
                ],
            }
        )
    records.append({"type": "end", "checkpoints": len(ordered), "pending_writes": writes_total})
    return records


def _write_export(
    saver: BaseRedisSaver[Any], thread_id: str, tuples: Sequence[CheckpointTuple], file: IO[str]
) -> ExportSummary:
    if not tuples:
        raise ThreadNotFoundError(
            f"thread {thread_id!r} has no checkpoint under key prefix {saver.key_prefix!r}; "
            "nothing was exported"
        )
    records = export_records(
        tuples, thread_id=thread_id, serde=saver.serde, key_prefix=saver.key_prefix
    )
    for record in records:
        file.write(json.dumps(record, separators=(",", ":")) + "\n")
    header = records[0]
    return ExportSummary(thread_id, header["checkpoints"], header["pending_writes"])


def export_thread(saver: BaseRedisSaver[Any], thread_id: str, file: IO[str]) -> ExportSummary:
    """Write every checkpoint of ``thread_id`` (every namespace, with its channel values
    and pending writes) to the text file ``file``, as the thread was at one moment
    (``thread_snapshot``), values encoded by the saver's serializer.

    Raises ThreadNotFoundError (writing nothing) when the thread has no checkpoint,
    ConcurrentWriteError when it keeps being written, and CorruptDataError (or
    DisallowedTypeError) when stored data cannot be read."""
    return _write_export(saver, thread_id, saver.thread_snapshot(thread_id), file)


async def aexport_thread(
    saver: BaseRedisSaver[Any], thread_id: str, file: IO[str]
) -> ExportSummary:
    """Async :func:`export_thread` (for ``AsyncPlainRedisSaver``); ``file`` is written
    with plain blocking ``write`` calls."""
    return _write_export(saver, thread_id, await saver.athread_snapshot(thread_id), file)


# --------------------------------------------------------------------------- reading


def _untyped(data: Any, where: str) -> tuple[str, bytes]:
    if not isinstance(data, Mapping) or not isinstance(data.get("type"), str):
        raise ExportFormatError(f"{where}: expected {{'type': str, 'data': base64}}")
    try:
        payload = base64.b64decode(str(data.get("data", "")), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ExportFormatError(f"{where}: bad base64 ({exc})") from None
    return data["type"], payload


def _str_field(data: Mapping[str, Any], key: str, where: str, *, optional: bool = False) -> Any:
    value = data.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise ExportFormatError(f"{where}: {key!r} must be a string")
    return value


@dataclasses.dataclass
class _StoredCheckpoint:
    """One checkpoint line of an export, still serialized."""

    ns: str
    checkpoint_id: str
    parent_id: str | None
    checkpoint: tuple[str, bytes]
    metadata: tuple[str, bytes]
    writes: list[tuple[str, str | None, str, tuple[str, bytes]]]  # task id, path, channel, value


_Values = dict[tuple[str, str, Any], tuple[str, bytes]]


@dataclasses.dataclass
class _Export:
    header: dict[str, Any]
    checkpoints: list[_StoredCheckpoint]
    values: _Values


def _read_export(lines: Iterable[str | bytes], source: str) -> _Export:
    """Parse and check a whole export before anything is written: the header, every
    checkpoint line and the end line with its counts."""
    header: dict[str, Any] | None = None
    end: dict[str, Any] | None = None
    checkpoints: list[_StoredCheckpoint] = []
    values: _Values = {}
    number = 0
    try:
        for number, text in enumerate(lines, 1):
            where = f"{source} line {number}"
            if not text.strip():
                continue
            try:
                line = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ExportFormatError(f"{where}: not JSON ({exc.msg})") from None
            kind = line.get("type") if isinstance(line, dict) else None
            if header is None:
                header = _read_header(line, kind, where)
            elif end is not None:
                raise ExportFormatError(f"{where}: data after the end line")
            elif kind == "end":
                end = line
            elif kind == "checkpoint":
                try:
                    checkpoints.append(_read_checkpoint(line, where, values))
                except (AttributeError, TypeError, KeyError) as exc:
                    raise ExportFormatError(f"{where}: malformed checkpoint line ({exc})") from None
            else:
                raise ExportFormatError(f"{where}: unknown line type {kind!r}")
    except UnicodeDecodeError as exc:
        raise ExportFormatError(f"{source} line {number + 1} is not UTF-8 text: {exc}") from None
    if header is None:
        raise ExportFormatError(f"{source}: empty input, expected an export")
    if end is None:
        raise ExportFormatError(f"{source}: no end line; the export is truncated")
    if end.get("checkpoints") != len(checkpoints):
        raise ExportFormatError(
            f"{source}: the end line counts {end.get('checkpoints')!r} checkpoints, the file "
            f"holds {len(checkpoints)}"
        )
    return _Export(header, checkpoints, values)


def _read_header(line: Any, kind: Any, where: str) -> dict[str, Any]:
    if kind != "header" or line.get("format") != EXPORT_FORMAT:
        raise ExportFormatError(
            f"{where}: not a plain-redis-saver export (no {EXPORT_FORMAT!r} header)"
        )
    if line.get("version") != EXPORT_VERSION:
        raise ExportFormatError(
            f"{where}: export format version {line.get('version')!r}; this release "
            f"reads version {EXPORT_VERSION}"
        )
    _str_field(line, "thread_id", where)
    return dict(line)


def _read_checkpoint(line: Mapping[str, Any], where: str, values: _Values) -> _StoredCheckpoint:
    conf = (line.get("config") or {}).get("configurable")
    if not isinstance(conf, Mapping):
        raise ExportFormatError(f"{where}: no config.configurable")
    ns = _str_field(conf, "checkpoint_ns", where)
    cid = _str_field(conf, "checkpoint_id", where)
    parent_conf = (line.get("parent_config") or {}).get("configurable") or {}
    parent = _str_field(parent_conf, "checkpoint_id", where, optional=True)
    channel_values = line.get("channel_values") or {}
    if not isinstance(channel_values, Mapping):
        raise ExportFormatError(f"{where}: channel_values must be an object")
    for channel, entry in channel_values.items():
        version = entry.get("version") if isinstance(entry, Mapping) else None
        if isinstance(version, bool) or not isinstance(version, (str, int, float)):
            raise ExportFormatError(f"{where}: channel {channel!r} has no valid version")
        values[(ns, channel, version)] = _untyped(entry, f"{where} channel {channel!r}")
    writes = []
    for i, write in enumerate(line.get("pending_writes") or []):
        w_where = f"{where} write {i}"
        if not isinstance(write, Mapping):
            raise ExportFormatError(f"{w_where}: must be an object")
        writes.append(
            (
                _str_field(write, "task_id", w_where),
                _str_field(write, "task_path", w_where, optional=True),
                _str_field(write, "channel", w_where),
                _untyped(write, w_where),
            )
        )
    return _StoredCheckpoint(
        ns=ns,
        checkpoint_id=cid,
        parent_id=parent,
        checkpoint=_untyped(line.get("checkpoint"), f"{where} checkpoint"),
        metadata=_untyped(line.get("metadata"), f"{where} metadata"),
        writes=writes,
    )


def _task_paths(writes: Sequence[tuple[str, str | None, str, Any]]) -> dict[str, str]:
    """A task_path per task id. The saver orders pending writes by (task_path, task_id,
    idx) and its API does not return task_path, so an export keeps the order but not the
    paths. Paths the file carries are used; otherwise every task gets "" if that keeps
    the order, and else "~import:000001", … in file order, which does."""
    tasks = list(dict.fromkeys(task_id for task_id, *_ in writes))
    given = {task_id: path for task_id, path, *_ in writes if path is not None}
    if len(given) == len(tasks):
        return given
    if tasks == sorted(tasks) and not given:
        return dict.fromkeys(tasks, "")
    return {task_id: IMPORTED_TASK_PATH.format(i) for i, task_id in enumerate(tasks, 1)}


@dataclasses.dataclass
class _Replay:
    """One decoded checkpoint of an import, ready for put and put_writes."""

    ns: str
    parent_id: str | None
    checkpoint: Checkpoint
    metadata: CheckpointMetadata
    writes: dict[str, list[tuple[str, Any]]]  # task id -> (channel, value), in order
    paths: dict[str, str]  # task id -> task_path


def _decode(serde: SerializerProtocol, typed: tuple[str, bytes], what: str) -> Any:
    try:
        return serde.loads_typed(typed)
    except Exception as exc:
        hint = ""
        if "Unknown serialization type" in str(exc):
            hint = "; the file was exported with another serializer: give the saver that serde"
        raise ExportFormatError(
            f"cannot decode {what} with {type(serde).__name__}: {exc!r}{hint}"
        ) from None


def _decode_export(serde: SerializerProtocol, export: _Export) -> list[_Replay]:
    """Every checkpoint of an export decoded, parents first (so a damaged value stops
    the import before anything is written)."""
    ordered = _parents_first(
        export.checkpoints,
        lambda c: (c.checkpoint_id, c.ns),
        lambda c: (c.parent_id, c.ns) if c.parent_id else None,
    )
    replays = []
    for item in ordered:
        what = f"checkpoint {item.checkpoint_id!r} (namespace {item.ns!r})"
        checkpoint: Checkpoint = _decode(serde, item.checkpoint, what)
        if not isinstance(checkpoint, dict) or checkpoint.get("id") != item.checkpoint_id:
            raise ExportFormatError(f"{what}: the serialized checkpoint does not carry this id")
        metadata = _decode(serde, item.metadata, f"the metadata of {what}")
        versions = checkpoint.get("channel_versions") or {}
        checkpoint["channel_values"] = {
            channel: _decode(
                serde, export.values[(item.ns, channel, version)], f"{channel!r} of {what}"
            )
            for channel, version in versions.items()
            if (item.ns, channel, version) in export.values
        }
        writes: dict[str, list[tuple[str, Any]]] = {}
        for task_id, _path, channel, typed in item.writes:
            value = _decode(serde, typed, f"a write of task {task_id!r} to {channel!r} of {what}")
            writes.setdefault(task_id, []).append((channel, value))
        replays.append(
            _Replay(item.ns, item.parent_id, checkpoint, metadata, writes, _task_paths(item.writes))
        )
    return replays


# --------------------------------------------------------------------------- the import plan


class SaverCall(NamedTuple):
    """``saver.<method>(*args)``, or ``await saver.a<method>(*args)`` on the async side."""

    method: str
    args: tuple[Any, ...]


class HasCheckpoints(NamedTuple):
    """Whether ``thread_id`` holds any checkpoint (one ``list(limit=1)``)."""

    thread_id: str


_Step = SaverCall | HasCheckpoints
#: Run by drive.drive / drive.afirst, like the core's plans; it emits its summary.
_ImportPlan = Generator[_Step | Emit, Any, None]


def _import_plan(
    serde: SerializerProtocol,
    key_prefix: str,
    file: Iterable[str | bytes],
    thread_id: str | None,
    replace: bool,
) -> _ImportPlan:
    """The whole import as steps for a runner: the file is read, checked and decoded
    first (nothing is written for a bad file), then the target is made room for, then
    each checkpoint is replayed with ``put`` (parents first, every channel version
    passed as new, so every value is stored) and its writes with ``put_writes`` (one
    call per task). A runner sends each step's result back, or throws its error in."""
    export = _read_export(file, str(getattr(file, "name", "<export>")))
    source_thread = export.header["thread_id"]
    target = source_thread if thread_id is None else thread_id
    replays = _decode_export(serde, export)
    if replace:
        yield SaverCall("delete_thread", (target,))
    elif (yield HasCheckpoints(target)):
        raise ThreadExistsError(
            f"thread {target!r} already holds checkpoints under key prefix {key_prefix!r}; "
            "nothing was imported (pass replace=True to delete it first)",
            thread_id=target,
        )
    yield SaverCall("setup", ())
    writes = 0
    for done, item in enumerate(replays):
        parent: dict[str, Any] = {"thread_id": target, "checkpoint_ns": item.ns}
        if item.parent_id:
            parent["checkpoint_id"] = item.parent_id
        versions = dict(item.checkpoint["channel_versions"])
        try:
            config = yield SaverCall(
                "put", ({"configurable": parent}, item.checkpoint, item.metadata, versions)
            )
            for task_id, rows in item.writes.items():
                yield SaverCall("put_writes", (config, rows, task_id, item.paths[task_id]))
                writes += len(rows)
        except (redis.exceptions.RedisError, PlainRedisSaverError) as exc:
            raise IncompleteImportError(
                f"the import into thread {target!r} stopped after {done} of {len(replays)} "
                f"checkpoints: {exc}; import again with replace=True",
                thread_id=target,
                written=done,
                total=len(replays),
            ) from exc
    yield Emit(ImportSummary(target, source_thread, len(replays), writes))


def _thread_config(thread_id: str) -> Any:
    return {"configurable": {"thread_id": thread_id}}


def import_thread(
    saver: BaseRedisSaver[Any],
    file: Iterable[str | bytes],
    *,
    thread_id: str | None = None,
    replace: bool = False,
) -> ImportSummary:
    """Replay an export (a file opened for reading, or any iterable of its lines) into
    ``thread_id`` (default: the exported thread's id) with the saver's ``put`` and
    ``put_writes``, so the saver's ``ttl`` and ``max_checkpoints`` apply as to any write.

    The whole file is read and decoded with the saver's serializer first: a malformed,
    truncated or unreadable file raises ExportFormatError naming the line, and nothing
    is written. A target that already holds checkpoints raises ThreadExistsError unless
    ``replace=True`` deletes it first. A failure part-way raises IncompleteImportError
    (the target keeps what was written: import again with ``replace=True``)."""

    def execute(step: _Step) -> Any:
        if isinstance(step, HasCheckpoints):
            return any(True for _ in saver.list(_thread_config(step.thread_id), limit=1))
        return getattr(saver, step.method)(*step.args)

    plan = _import_plan(saver.serde, saver.key_prefix, file, thread_id, replace)
    summary: ImportSummary = next(drive(plan, execute))
    return summary


async def aimport_thread(
    saver: BaseRedisSaver[Any],
    file: Iterable[str | bytes],
    *,
    thread_id: str | None = None,
    replace: bool = False,
) -> ImportSummary:
    """Async :func:`import_thread` (for ``AsyncPlainRedisSaver``); ``file`` is read with
    plain blocking iteration before the first write."""

    async def execute(step: _Step) -> Any:
        if isinstance(step, HasCheckpoints):
            found: AsyncIterator[Any] = saver.alist(_thread_config(step.thread_id), limit=1)
            return any([True async for _ in found])
        return await getattr(saver, "a" + step.method)(*step.args)

    plan = _import_plan(saver.serde, saver.key_prefix, file, thread_id, replace)
    summary: ImportSummary = await afirst(plan, execute)
    return summary
