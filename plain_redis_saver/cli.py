"""``plain-redis-saver``: inspect and maintain the threads a saver stored.

Run ``plain-redis-saver --help`` (or ``python -m plain_redis_saver --help``). Every
command goes through the saver's public API (``get_tuple``, ``list``, ``put``,
``put_writes``, ``delete_thread``, ``prune``, ``copy_thread``) plus a few read-only
commands on whole keys (``SCAN``, ``PTTL``, ``MEMORY USAGE``, ``GET <prefix>:schema``):
it never decodes the stored records itself, so it keeps working when their layout
changes. Reads never extend a thread's TTL.

Exit codes: 0 success, 1 failure (connection, missing thread, wrong prefix, server or
data error), 2 usage error (bad arguments).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import contextlib
import dataclasses
import datetime
import enum
import importlib
import json
import math
import os
import sys
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import IO, Any

import redis.exceptions
from langgraph.checkpoint.base import Checkpoint, CheckpointMetadata, CheckpointTuple
from langgraph.checkpoint.serde.base import SerializerProtocol

from . import __version__, clients
from .errors import InvalidConfigError, PlainRedisSaverError
from .keys import DEFAULT_KEY_PREFIX, Keyspace, ThreadKeys
from .saver import PlainRedisSaver

__all__ = ["EXPORT_FORMAT", "EXPORT_VERSION", "CliError", "build_parser", "main"]

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2

#: First line of every export: ``{"type": "header", "format": EXPORT_FORMAT, "version": …}``.
EXPORT_FORMAT = "plain-redis-saver-thread"
EXPORT_VERSION = 1

DEFAULT_URL = "redis://127.0.0.1:6379/0"
#: Imported writes whose task_path is unknown get one of these when "" would not keep
#: the exported order (see _task_paths).
IMPORTED_TASK_PATH = "~import:{:06d}"


class CliError(Exception):
    """A failure reported as one line on stderr, without a traceback."""

    def __init__(self, message: str, code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.code = code


# --------------------------------------------------------------------------- arguments


def _add_common(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """Connection and output options. They are accepted before and after the command;
    on the sub-commands they default to SUPPRESS so they do not hide the top-level ones."""

    def default(value: Any) -> Any:
        return value if top else argparse.SUPPRESS

    group = parser.add_argument_group("connection")
    group.add_argument(
        "--url",
        default=default(None),
        help="redis://[user:password@]host:port/db, rediss:// for TLS, or unix://path "
        f"(default: $REDIS_URL, else {DEFAULT_URL})",
    )
    group.add_argument(
        "--key-prefix",
        default=default(DEFAULT_KEY_PREFIX),
        metavar="PREFIX",
        help=f"the saver's key_prefix (default: {DEFAULT_KEY_PREFIX!r})",
    )
    mode = group.add_mutually_exclusive_group()
    mode.add_argument(
        "--cluster",
        dest="cluster",
        action="store_const",
        const=True,
        default=default(None),
        help="force cluster mode (default: ask the server)",
    )
    mode.add_argument(
        "--no-cluster",
        dest="cluster",
        action="store_const",
        const=False,
        default=default(None),
        help="force a standalone client",
    )
    group.add_argument(
        "--ca-cert", default=default(None), metavar="FILE", help="CA bundle for rediss:// URLs"
    )
    group.add_argument(
        "--client-cert",
        default=default(None),
        metavar="FILE",
        help="client certificate for mutual TLS (rediss:// URLs)",
    )
    group.add_argument(
        "--client-key", default=default(None), metavar="FILE", help="key of --client-cert"
    )
    group.add_argument(
        "--timeout",
        type=float,
        default=default(10.0),
        metavar="SECONDS",
        help="connect and command timeout (default: 10)",
    )
    group.add_argument(
        "--serde",
        default=default(None),
        metavar="MODULE:NAME",
        help="serializer the saver uses, e.g. 'myapp.storage:serde' (an object with "
        "dumps_typed/loads_typed, or a function returning one); default JsonPlusSerializer",
    )
    output = parser.add_argument_group("output")
    output.add_argument(
        "--json",
        action="store_true",
        default=default(False),
        help="print JSON for scripts instead of tables",
    )


def _ttl_option(parser: argparse.ArgumentParser, default: str, what: str) -> None:
    parser.add_argument(
        "--ttl",
        default=default,
        metavar="SECONDS|keep|none",
        help=f"expiry of {what}: seconds, 'keep' (its current one) or 'none' "
        f"(default: {default!r})",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="plain-redis-saver",
        description="Inspect and maintain LangGraph threads stored by plain-redis-saver "
        "in Redis or Valkey.",
        epilog="Exit codes: 0 success, 1 failure (connection, missing thread, wrong "
        "prefix), 2 bad arguments. Reads never extend a thread's TTL.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _add_common(parser, top=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, help: str) -> argparse.ArgumentParser:
        cmd = sub.add_parser(name, help=help, description=help)
        _add_common(cmd, top=False)
        return cmd

    cmd = command("threads", "list threads (paged with SCAN cursors)")
    cmd.add_argument(
        "--cursor",
        default="0",
        help="cursor printed by the previous page ('0' starts; a returned '0' means done)",
    )
    cmd.add_argument(
        "--count",
        type=int,
        default=50,
        help="about this many threads per page (SCAN COUNT hint; default: 50)",
    )

    cmd = command("history", "a thread's checkpoints, newest first")
    cmd.add_argument("thread", metavar="THREAD")
    cmd.add_argument("--ns", default=None, help="only this namespace ('' = root graph)")
    cmd.add_argument("--limit", type=int, default=None, help="at most N checkpoints")

    cmd = command("show", "one checkpoint as JSON (default: the thread's latest)")
    cmd.add_argument("thread", metavar="THREAD")
    cmd.add_argument("checkpoint_id", metavar="CHECKPOINT_ID", nargs="?", default=None)
    cmd.add_argument("--ns", default="", help="namespace (default: '' = root graph)")

    command("stats", "totals over every thread under the prefix")

    cmd = command(
        "check",
        "read every checkpoint of the threads (default: all under the prefix) with its "
        "values and pending writes, and report the damaged ones (exit 1 if any)",
    )
    cmd.add_argument("threads", metavar="THREAD", nargs="*")

    cmd = command("delete", "delete a thread")
    cmd.add_argument("thread", metavar="THREAD")

    cmd = command("prune", "keep only the newest checkpoint of each namespace")
    cmd.add_argument("threads", metavar="THREAD", nargs="+")
    cmd.add_argument(
        "--keep-latest",
        action="store_true",
        required=True,
        help="keep the latest checkpoint of each namespace (and what it needs)",
    )
    _ttl_option(cmd, "keep", "each pruned thread")

    cmd = command("copy", "copy a thread into a new thread id")
    cmd.add_argument("source", metavar="SRC")
    cmd.add_argument("target", metavar="DST")
    cmd.add_argument("--replace", action="store_true", help="delete DST first if it exists")
    _ttl_option(cmd, "keep", "the copy")

    cmd = command("export", "write a thread as JSON lines (to stdout or -o FILE)")
    cmd.add_argument("thread", metavar="THREAD")
    cmd.add_argument("-o", "--output", default="-", metavar="FILE", help="default: stdout")

    cmd = command("import", "replay an export into a thread (from stdin or FILE)")
    cmd.add_argument("file", metavar="FILE", nargs="?", default="-", help="default: stdin")
    cmd.add_argument(
        "--thread", default=None, metavar="THREAD", help="target thread (default: the exported id)"
    )
    cmd.add_argument("--replace", action="store_true", help="delete the target first if it exists")
    _ttl_option(cmd, "none", "the imported thread")
    return parser


# --------------------------------------------------------------------------- connection


def _redact(url: str) -> str:
    """The URL without its password."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest.split("/", 1)[0]:
        return url
    userinfo, _, hostpart = rest.partition("@")
    user = userinfo.split(":", 1)[0]
    return f"{scheme}://{user + ':' if user else ':'}***@{hostpart}"


def _connect(args: argparse.Namespace) -> Any:
    url: str = args.url or os.environ.get("REDIS_URL") or DEFAULT_URL
    scheme = url.split("://", 1)[0].lower()
    if scheme not in ("redis", "rediss", "unix"):
        raise CliError(f"--url must start with redis://, rediss:// or unix://, got {scheme!r}", 2)
    kwargs: dict[str, Any] = {}
    if args.timeout is not None:
        if not args.timeout > 0:
            raise CliError("--timeout must be > 0", EXIT_USAGE)
        kwargs["socket_connect_timeout"] = args.timeout
        kwargs["socket_timeout"] = args.timeout
    tls = {"ssl_ca_certs": args.ca_cert, "ssl_certfile": args.client_cert}
    tls["ssl_keyfile"] = args.client_key
    given = {k: v for k, v in tls.items() if v}
    if given and scheme != "rediss":
        raise CliError("--ca-cert/--client-cert/--client-key need a rediss:// URL", EXIT_USAGE)
    for path in given.values():
        if not os.path.isfile(path):
            raise CliError(f"no such file: {path}", EXIT_USAGE)
    kwargs.update(given)
    try:
        return clients.sync_client(url, args.cluster, **kwargs)
    except redis.exceptions.AuthenticationError as exc:
        raise CliError(f"cannot log in to {_redact(url)}: {exc}") from None
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError) as exc:
        raise CliError(f"cannot connect to {_redact(url)}: {exc}") from None
    except redis.exceptions.RedisError as exc:
        raise CliError(f"cannot use {_redact(url)}: {exc}") from None


def _load_serde(spec: str | None) -> SerializerProtocol | None:
    if not spec:
        return None
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise CliError(f"--serde must look like 'package.module:name', got {spec!r}", EXIT_USAGE)
    try:
        obj: Any = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise CliError(f"--serde {spec!r}: {exc}", EXIT_USAGE) from None
    if not hasattr(obj, "dumps_typed") and callable(obj):
        obj = obj()
    if not (hasattr(obj, "dumps_typed") and hasattr(obj, "loads_typed")):
        raise CliError(f"--serde {spec!r} is not a serializer (no dumps_typed/loads_typed)", 2)
    return obj  # type: ignore[no-any-return]


def _parse_ttl(text: str) -> float | None | str:
    """'keep', None (no expiry) or seconds."""
    lowered = text.strip().lower()
    if lowered in ("keep", "none"):
        return None if lowered == "none" else "keep"
    try:
        seconds = float(lowered)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise CliError(f"--ttl must be a number of seconds > 0, 'keep' or 'none', got {text!r}", 2)
    return seconds


# --------------------------------------------------------------------------- the store


@dataclasses.dataclass
class ThreadSummary:
    thread_id: str
    checkpoints: int
    namespaces: list[str]
    pending_writes: int
    last_update: str | None
    bytes: int | None
    keys: int
    keys_without_ttl: int
    ttl_ms: int | None
    #: Why the thread is damaged (its counts are then what was read before), or None.
    problem: str | None = None

    def as_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["ttl_seconds"] = None if self.ttl_ms is None else self.ttl_ms / 1000
        del data["ttl_ms"]
        return data


@dataclasses.dataclass
class ThreadReading:
    """What reading a thread found: counts, and the damage that stopped it, if any."""

    checkpoints: int = 0
    pending_writes: int = 0
    namespaces: set[str] = dataclasses.field(default_factory=set)
    last_update: str | None = None
    problem: str | None = None

    def add(self, tup: CheckpointTuple) -> None:
        self.checkpoints += 1
        self.pending_writes += len(tup.pending_writes or ())
        self.namespaces.add(tup.config["configurable"]["checkpoint_ns"])
        ts = tup.checkpoint.get("ts")
        if isinstance(ts, str) and (self.last_update is None or ts > self.last_update):
            self.last_update = ts


class Store:
    """The saver and key-level look-ups for one connection and prefix."""

    def __init__(self, client: Any, prefix: str, serde: SerializerProtocol | None) -> None:
        try:
            self.keys = Keyspace(prefix)
        except InvalidConfigError as exc:
            raise CliError(f"--key-prefix: {exc}", EXIT_USAGE) from None
        self.client = client
        self.prefix = prefix
        self.serde = serde
        # ttl=None with refresh_on_read=False: reads leave every expiry alone.
        self.saver = PlainRedisSaver(client, key_prefix=prefix, serde=serde, refresh_on_read=False)

    def writer(self, ttl_seconds: float | None) -> PlainRedisSaver:
        """A saver for writes: ``ttl_seconds`` None removes a thread's expiry (the
        saver's documented behaviour for ttl=None), seconds set it."""
        return PlainRedisSaver(
            self.client,
            key_prefix=self.prefix,
            serde=self.serde,
            ttl=ttl_seconds,
            refresh_on_read=False,
        )

    # ---- keys

    def _pipeline(self) -> Any:
        if clients.is_cluster(self.client):
            return self.client.pipeline()
        return self.client.pipeline(transaction=False)

    def key_facts(self, thread_id: str) -> tuple[ThreadKeys, list[int], list[int | None]]:
        """PTTL and MEMORY USAGE of each of the thread's keys (one round trip).
        MEMORY USAGE is None where the server refuses it (e.g. a least-privilege user)."""
        keys = self.keys.thread(thread_id)
        pipe = self._pipeline()
        for key in keys:
            pipe.execute_command("PTTL", key)
        for key in keys:
            pipe.execute_command("MEMORY", "USAGE", key)
        replies = pipe.execute(raise_on_error=False)
        pttls = replies[: len(keys)]
        for reply in pttls:
            if isinstance(reply, Exception):
                raise reply
        sizes = [
            int(r) if isinstance(r, int) and not isinstance(r, bool) else None
            for r in replies[len(keys) :]
        ]
        return keys, [int(p) for p in pttls], sizes

    def thread_exists(self, thread_id: str) -> bool:
        """Whether any key of the thread exists (checkpoints or writes alone)."""
        _, pttls, _ = self.key_facts(thread_id)
        return any(p != -2 for p in pttls)

    def thread_ttl_seconds(self, thread_id: str) -> float | None:
        _, pttls, _ = self.key_facts(thread_id)
        remaining = max(pttls)
        return remaining / 1000 if remaining > 0 else None

    def schema_version(self) -> str | None:
        value = self.client.get(self.keys.schema)
        if value is None:
            return None
        return value.decode(errors="replace") if isinstance(value, bytes) else str(value)

    def _scan_nodes(self) -> list[Any]:
        if clients.is_cluster(self.client):
            nodes = sorted(self.client.get_primaries(), key=lambda node: node.name)
            return [node.redis_connection for node in nodes]
        return [self.client]

    def scan_threads(self, cursor: str, count: int) -> tuple[list[str], str]:
        """One page of thread ids and the next cursor ("0" when the scan is complete).
        A cluster's cursor is "<node>:<cursor>" over its primaries sorted by address.
        A thread is found by any of its keys, so one that lost some (evicted) is still
        listed; each page names it only with its first remaining key, so the pages of
        one scan list every thread once."""
        nodes = self._scan_nodes()
        node, position = _parse_cursor(cursor, len(nodes))
        pattern = self.keys.thread_keys_scan_pattern()
        found: dict[str, None] = {}
        while True:
            position, keys = nodes[node].scan(cursor=position, match=pattern, count=count)
            position = int(position)
            found.update(dict.fromkeys(self._first_keys_of_threads(keys)))
            if position == 0:
                node += 1
                if node == len(nodes):
                    return sorted(found), "0"
            if len(found) >= count:
                break
        if len(nodes) == 1:
            return sorted(found), str(position)
        return sorted(found), f"{node}:{position}"

    def _first_keys_of_threads(self, keys: Iterable[bytes | str]) -> list[str]:
        """Threads for which one of ``keys`` is the first key (in ThreadKeys order) that
        exists; one pipeline of PTTLs asks about the earlier keys."""
        earliest: dict[str, int] = {}
        for key in keys:
            thread_id = self.keys.thread_id_of(key)
            if thread_id is None:  # a foreign key names no thread of ours
                continue
            index = self.keys.suffix_index(key)
            earliest[thread_id] = min(index, earliest.get(thread_id, index))
        asked = [(tid, i) for tid, i in earliest.items() if i > 0]
        pipe = self._pipeline()
        for tid, index in asked:
            for key in self.keys.thread(tid)[:index]:
                pipe.execute_command("PTTL", key)
        replies = iter(pipe.execute() if asked else [])
        owned = [tid for tid, index in earliest.items() if index == 0]
        for tid, index in asked:
            # Read every reply of the thread: all() would stop early and misalign the rest.
            earlier = [int(next(replies)) for _ in range(index)]
            if all(ttl == -2 for ttl in earlier):
                owned.append(tid)
        return owned

    def all_threads(self) -> Iterator[str]:
        cursor = "0"
        while True:
            page, cursor = self.scan_threads(cursor, 1000)
            yield from page
            if cursor == "0":
                return

    def has_any_data(self) -> bool:
        if self.schema_version() is not None:
            return True
        cursor = "0"
        while True:
            page, cursor = self.scan_threads(cursor, 1000)
            if page:
                return True
            if cursor == "0":
                return False

    # ---- checkpoints

    def checkpoints(self, thread_id: str, ns: str | None = None) -> Iterator[CheckpointTuple]:
        conf: dict[str, Any] = {"thread_id": thread_id}
        if ns is not None:
            conf["checkpoint_ns"] = ns
        return self.saver.list({"configurable": conf})

    def read_thread(self, thread_id: str) -> ThreadReading:
        """Checks that the thread's keys are all there, then reads every checkpoint with
        its values and pending writes; damage ends the reading with ``problem`` set."""
        reading = ThreadReading()
        try:
            self.saver.check_thread(thread_id)
            for tup in self.checkpoints(thread_id):
                reading.add(tup)
        # A ResponseError here is e.g. WRONGTYPE: a foreign key under the prefix.
        except (PlainRedisSaverError, redis.exceptions.ResponseError) as exc:
            reading.problem = _describe(exc)
        return reading

    def summary(self, thread_id: str) -> ThreadSummary:
        reading = self.read_thread(thread_id)
        _, pttls, sizes = self.key_facts(thread_id)
        present = [i for i, p in enumerate(pttls) if p != -2]
        known = [sizes[i] for i in present]
        size = None if any(s is None for s in known) else sum(s or 0 for s in known)
        expiring = [pttls[i] for i in present if pttls[i] >= 0]
        return ThreadSummary(
            thread_id=thread_id,
            checkpoints=reading.checkpoints,
            namespaces=sorted(reading.namespaces),
            pending_writes=reading.pending_writes,
            last_update=reading.last_update,
            bytes=size,
            keys=len(present),
            keys_without_ttl=sum(1 for i in present if pttls[i] == -1),
            ttl_ms=min(expiring) if expiring else None,
            problem=reading.problem,
        )

    def nothing_stored(self) -> CliError:
        return CliError(
            f"nothing is stored under key prefix {self.prefix!r} (no thread keys, no "
            f"{self.keys.schema!r}): is --key-prefix right?"
        )

    def missing_thread(self, thread_id: str) -> CliError:
        message = f"thread {thread_id!r} not found under key prefix {self.prefix!r}"
        if not self.has_any_data():
            message += (
                f"; nothing at all is stored under this prefix (no {self.keys.schema!r}, "
                "no thread keys): is --key-prefix right?"
            )
        return CliError(message)

    def require_thread(self, thread_id: str) -> None:
        if not self.thread_exists(thread_id):
            raise self.missing_thread(thread_id)


def _parse_cursor(cursor: str, nodes: int) -> tuple[int, int]:
    """(node index, SCAN cursor) of a --cursor: "0", "<cursor>" or "<node>:<cursor>"."""
    node_text, sep, position_text = cursor.partition(":")
    if not sep:
        node_text, position_text = "0", cursor
    valid = node_text.isdigit() and position_text.isdigit()
    node, position = (int(node_text), int(position_text)) if valid else (-1, -1)
    if not 0 <= node < nodes or (nodes > 1 and not sep and position != 0):
        raise CliError(
            f"invalid --cursor {cursor!r}: pass '0' or the cursor a previous page printed",
            EXIT_USAGE,
        )
    return node, position


# --------------------------------------------------------------------------- rendering


def _type_name(value: Any) -> str:
    cls = type(value)
    return (
        cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
    )


def render(value: Any, serde: SerializerProtocol, depth: int = 0) -> Any:
    """A JSON-compatible view of a stored value, for reading (not for round trips):
    JSON types as they are, pydantic models (LangChain messages) by ``model_dump()``,
    dataclasses, named tuples, enums, dates and UUIDs by their parts, and anything
    else by type and serialized size."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if depth > 50:
        return {"__type__": _type_name(value), "note": "nested too deeply"}
    if isinstance(value, (bytes, bytearray)):
        return {"__type__": _type_name(value), "size": len(value)}
    if isinstance(value, Mapping):
        return {str(k): render(v, serde, depth + 1) for k, v in value.items()}
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return {"__type__": _type_name(value)} | {
            f: render(getattr(value, f), serde, depth + 1) for f in value._fields
        }
    if isinstance(value, (list, tuple)):
        return [render(v, serde, depth + 1) for v in value]
    if isinstance(value, (set, frozenset)):
        items = [render(v, serde, depth + 1) for v in value]
        return sorted(items, key=lambda item: json.dumps(item, sort_keys=True))
    if isinstance(value, enum.Enum):
        return render(value.value, serde, depth + 1)
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, uuid.UUID):
        return str(value)
    dump = getattr(value, "model_dump", None) or getattr(value, "dict", None)
    if callable(dump) and not isinstance(value, type):
        try:
            dumped = dump()
        except Exception:
            dumped = None
        if isinstance(dumped, Mapping):
            return render(dumped, serde, depth + 1)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {"__type__": _type_name(value)} | {
            f.name: render(getattr(value, f.name), serde, depth + 1)
            for f in dataclasses.fields(value)
        }
    try:
        size: int | None = len(serde.dumps_typed(value)[1])
    except Exception:
        size = None
    return {"__type__": _type_name(value), "size": size}


def _short_time(ts: str | None) -> str:
    if not ts:
        return "-"
    try:
        moment = datetime.datetime.fromisoformat(ts)
    except ValueError:
        return ts
    if moment.tzinfo is not None:
        moment = moment.astimezone(datetime.timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M:%S") + ("Z" if moment.tzinfo else "")


def _human_bytes(size: int | None) -> str:
    if size is None:
        return "?"
    amount = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if amount < 1024 or unit == "GiB":
            return f"{size} B" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{size} B"  # pragma: no cover


def _human_ttl(ms: int | None) -> str:
    if ms is None:
        return "-"
    seconds = ms // 1000
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{days}d{hours}h"
    if hours:
        return f"{hours}h{minutes}m"
    return f"{minutes}m{seconds}s" if minutes else f"{seconds}s"


def _table(out: IO[str], headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    text_rows = [[str(c) for c in headers], *[[_cell(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in text_rows) for i in range(len(headers))]
    for row in text_rows:
        out.write("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() + "\n")


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        # Control characters would break the table; ids may contain anything.
        return value.encode("unicode_escape").decode("ascii") if not value.isprintable() else value
    return str(value)


def _json_out(out: IO[str], data: Any) -> None:
    out.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


# --------------------------------------------------------------------------- commands


def _damaged_error(damaged: Sequence[str], total: int, what: str, hint: str = "") -> CliError:
    """Exit 1 after the report, naming the first damaged threads."""
    names = ", ".join(repr(t) for t in damaged[:5])
    more = f" and {len(damaged) - 5} more" if len(damaged) > 5 else ""
    return CliError(f"{len(damaged)} of {total} {what} damaged: {names}{more}{hint}")


#: How the reports that only count damaged threads point to the one that explains them.
_SEE_CHECK = " ('check THREAD...' shows what is missing)"


def cmd_threads(args: argparse.Namespace, store: Store, out: IO[str]) -> None:
    if args.count < 1:
        raise CliError("--count must be >= 1", EXIT_USAGE)
    thread_ids, cursor = store.scan_threads(args.cursor, args.count)
    if not thread_ids and cursor == "0" and args.cursor == "0" and not store.has_any_data():
        raise store.nothing_stored()
    summaries = [store.summary(t) for t in thread_ids]
    if args.json:
        _json_out(out, {"threads": [s.as_json() for s in summaries], "cursor": cursor})
    else:
        _table(
            out,
            [
                "THREAD",
                "CHECKPOINTS",
                "NAMESPACES",
                "WRITES",
                "LAST UPDATE",
                "BYTES",
                "TTL",
                "STATUS",
            ],
            (
                (
                    s.thread_id,
                    s.checkpoints,
                    ", ".join(repr(n) for n in s.namespaces) or "-",
                    s.pending_writes,
                    _short_time(s.last_update),
                    _human_bytes(s.bytes),
                    _human_ttl(s.ttl_ms),
                    "damaged" if s.problem else "ok",
                )
                for s in summaries
            ),
        )
        if cursor != "0":
            out.write(f"next page: --cursor {cursor}\n")
    damaged = [s.thread_id for s in summaries if s.problem]
    if damaged:
        raise _damaged_error(damaged, len(summaries), "threads on this page are", _SEE_CHECK)


def cmd_history(args: argparse.Namespace, store: Store, out: IO[str]) -> None:
    if args.limit is not None and args.limit < 1:
        raise CliError("--limit must be >= 1", EXIT_USAGE)
    conf: dict[str, Any] = {"thread_id": args.thread}
    if args.ns is not None:
        conf["checkpoint_ns"] = args.ns
    rows = []
    for tup in store.saver.list({"configurable": conf}, limit=args.limit):
        meta: Mapping[str, Any] = tup.metadata or {}
        parent = (tup.parent_config or {}).get("configurable", {}).get("checkpoint_id")
        rows.append(
            {
                "checkpoint_id": tup.config["configurable"]["checkpoint_id"],
                "checkpoint_ns": tup.config["configurable"]["checkpoint_ns"],
                "step": meta.get("step"),
                "source": meta.get("source"),
                "run_id": render(meta.get("run_id"), store.saver.serde),
                "pending_writes": len(tup.pending_writes or ()),
                "parent_checkpoint_id": parent,
                "ts": tup.checkpoint.get("ts"),
            }
        )
    if not rows:
        if args.ns is not None and store.thread_exists(args.thread):
            raise CliError(f"thread {args.thread!r} has no checkpoint in namespace {args.ns!r}")
        raise store.missing_thread(args.thread)
    if args.json:
        _json_out(out, {"thread_id": args.thread, "checkpoints": rows})
        return
    _table(
        out,
        ["CHECKPOINT", "NS", "STEP", "SOURCE", "RUN_ID", "WRITES", "PARENT", "CREATED"],
        (
            (
                r["checkpoint_id"],
                repr(r["checkpoint_ns"]),
                r["step"],
                r["source"],
                r["run_id"],
                r["pending_writes"],
                r["parent_checkpoint_id"],
                _short_time(r["ts"]),
            )
            for r in rows
        ),
    )


def show_document(tup: CheckpointTuple, serde: SerializerProtocol) -> dict[str, Any]:
    """The JSON view of a checkpoint printed by ``show``."""
    conf = tup.config["configurable"]
    checkpoint = {k: v for k, v in tup.checkpoint.items() if k != "channel_values"}
    parent = (tup.parent_config or {}).get("configurable", {}).get("checkpoint_id")
    return {
        "thread_id": conf["thread_id"],
        "checkpoint_ns": conf["checkpoint_ns"],
        "checkpoint_id": conf["checkpoint_id"],
        "parent_checkpoint_id": parent,
        "checkpoint": render(checkpoint, serde),
        "metadata": render(tup.metadata, serde),
        "channel_values": render(tup.checkpoint.get("channel_values", {}), serde),
        "pending_writes": [
            {"task_id": task_id, "channel": channel, "value": render(value, serde)}
            for task_id, channel, value in tup.pending_writes or ()
        ],
    }


def cmd_show(args: argparse.Namespace, store: Store, out: IO[str]) -> None:
    conf: dict[str, Any] = {"thread_id": args.thread, "checkpoint_ns": args.ns}
    if args.checkpoint_id:
        conf["checkpoint_id"] = args.checkpoint_id
    tup = store.saver.get_tuple({"configurable": conf})
    if tup is None:
        if not store.thread_exists(args.thread):
            raise store.missing_thread(args.thread)
        if args.checkpoint_id:
            raise CliError(
                f"checkpoint {args.checkpoint_id!r} not found in thread {args.thread!r} "
                f"(namespace {args.ns!r}); see 'history {args.thread}'"
            )
        raise CliError(f"thread {args.thread!r} has no checkpoint in namespace {args.ns!r}")
    _json_out(out, show_document(tup, store.saver.serde))


def cmd_stats(args: argparse.Namespace, store: Store, out: IO[str]) -> None:
    schema = store.schema_version()
    totals: dict[str, Any] = {
        "key_prefix": store.prefix,
        "schema_version": schema,
        "threads": 0,
        "checkpoints": 0,
        "namespaces": 0,
        "pending_writes": 0,
        "bytes": 0,
        "keys": 0,
        "keys_without_ttl": 0,
        "damaged_threads": 0,
    }
    damaged = []
    for thread_id in store.all_threads():
        s = store.summary(thread_id)
        if s.problem:
            damaged.append(thread_id)
        totals["threads"] += 1
        totals["checkpoints"] += s.checkpoints
        totals["namespaces"] += len(s.namespaces)
        totals["pending_writes"] += s.pending_writes
        totals["keys"] += s.keys
        totals["keys_without_ttl"] += s.keys_without_ttl
        totals["bytes"] = (
            None if s.bytes is None or totals["bytes"] is None else totals["bytes"] + s.bytes
        )
    if schema is None and totals["threads"] == 0:
        raise store.nothing_stored()
    totals["damaged_threads"] = len(damaged)
    if args.json:
        _json_out(out, totals)
    else:
        _stats_table(out, totals)
    if damaged:
        raise _damaged_error(damaged, totals["threads"], "threads are", _SEE_CHECK)


def _stats_table(out: IO[str], totals: Mapping[str, Any]) -> None:
    labels = {
        "key_prefix": "key prefix",
        "schema_version": "schema version",
        "threads": "threads",
        "checkpoints": "checkpoints",
        "namespaces": "namespaces",
        "pending_writes": "pending writes",
        "bytes": "memory",
        "keys": "keys",
        "keys_without_ttl": "keys without TTL",
        "damaged_threads": "damaged threads (see check)",
    }
    shown = dict(totals)
    shown["bytes"] = _human_bytes(totals["bytes"])
    if totals["bytes"] is None:
        shown["bytes"] = "? (MEMORY USAGE not permitted or not supported)"
    if totals["schema_version"] is None:
        shown["schema_version"] = "not recorded (setup() never ran)"
    _table(out, ["", ""], ((labels[k], shown[k]) for k in labels))


def cmd_check(args: argparse.Namespace, store: Store, out: IO[str]) -> None:
    if args.threads:
        for thread_id in args.threads:
            store.require_thread(thread_id)
        threads = list(dict.fromkeys(args.threads))
    else:
        threads = sorted(store.all_threads())
        if not threads and store.schema_version() is None:
            raise store.nothing_stored()
    rows = []
    for thread_id in threads:
        reading = store.read_thread(thread_id)
        rows.append(
            {
                "thread_id": thread_id,
                "checkpoints_read": reading.checkpoints,
                "problem": reading.problem,
            }
        )
    damaged = [r["thread_id"] for r in rows if r["problem"] is not None]
    if args.json:
        _json_out(out, {"threads": len(rows), "damaged": len(damaged), "results": rows})
    else:
        _table(
            out,
            ["THREAD", "CHECKPOINTS", "STATUS"],
            ((r["thread_id"], r["checkpoints_read"], r["problem"] or "ok") for r in rows),
        )
    if damaged:
        raise _damaged_error(damaged, len(rows), "threads are")


def cmd_delete(args: argparse.Namespace, store: Store, out: IO[str]) -> None:
    store.require_thread(args.thread)
    count = sum(1 for _ in store.checkpoints(args.thread))
    store.saver.delete_thread(args.thread)
    if args.json:
        _json_out(out, {"deleted": args.thread, "checkpoints": count})
    else:
        out.write(f"deleted thread {args.thread!r} ({count} checkpoints)\n")


def _writer_for(store: Store, ttl: float | None | str, thread_id: str) -> PlainRedisSaver:
    if ttl == "keep":
        return store.writer(store.thread_ttl_seconds(thread_id))
    assert not isinstance(ttl, str)
    return store.writer(ttl)


def cmd_prune(args: argparse.Namespace, store: Store, out: IO[str]) -> None:
    ttl = _parse_ttl(args.ttl)
    threads = list(dict.fromkeys(args.threads))
    missing = [t for t in threads if not store.thread_exists(t)]
    if missing:
        if len(missing) == 1:
            raise store.missing_thread(missing[0])
        raise CliError(
            f"threads not found under key prefix {store.prefix!r}: "
            + ", ".join(repr(t) for t in missing)
            + "; nothing was pruned"
        )
    results = []
    for thread_id in threads:
        before = sum(1 for _ in store.checkpoints(thread_id))
        _writer_for(store, ttl, thread_id).prune([thread_id], strategy="keep_latest")
        after = sum(1 for _ in store.checkpoints(thread_id))
        results.append({"thread_id": thread_id, "before": before, "after": after})
    if args.json:
        _json_out(out, {"pruned": results})
        return
    _table(
        out,
        ["THREAD", "CHECKPOINTS BEFORE", "AFTER"],
        ((r["thread_id"], r["before"], r["after"]) for r in results),
    )


def _make_room(store: Store, thread_id: str, replace: bool, what: str) -> None:
    if store.thread_exists(thread_id):
        if not replace:
            raise CliError(
                f"{what} thread {thread_id!r} already exists under key prefix "
                f"{store.prefix!r}; pass --replace to delete it first"
            )
        store.saver.delete_thread(thread_id)


def cmd_copy(args: argparse.Namespace, store: Store, out: IO[str]) -> None:
    ttl = _parse_ttl(args.ttl)
    if args.source == args.target:
        raise CliError("SRC and DST are the same thread", EXIT_USAGE)
    store.require_thread(args.source)
    writer = _writer_for(store, ttl, args.source)
    _make_room(store, args.target, args.replace, "target")
    writer.copy_thread(args.source, args.target)
    count = sum(1 for _ in store.checkpoints(args.target))
    if args.json:
        _json_out(out, {"source": args.source, "target": args.target, "checkpoints": count})
    else:
        out.write(f"copied thread {args.source!r} to {args.target!r} ({count} checkpoints)\n")


# --------------------------------------------------------------------------- export / import
#
# The file is JSON lines:
#   {"type": "header", "format": "plain-redis-saver-thread", "version": 1, "thread_id": …,
#    "checkpoints": N, "pending_writes": M, "key_prefix": …, "library_version": …,
#    "exported_at": …}
#   {"type": "checkpoint", "config": …, "parent_config": …|null,
#    "checkpoint": TYPED, "metadata": TYPED,
#    "channel_values": {channel: {"version": V, "type": …, "data": …}},
#    "pending_writes": [{"task_id": …, "task_path": null, "channel": …, "type": …,
#                        "data": …}]}                          one per checkpoint
#   {"type": "end", "checkpoints": N, "pending_writes": M}
# TYPED is {"type": …, "data": base64} = serde.dumps_typed(value); "checkpoint" is the
# Checkpoint without channel_values. Checkpoints come oldest first (a parent before its
# children), every namespace of the thread included. channel_values holds only the values
# no earlier line carried: a value is stored once per (namespace, channel, version), so
# the importer rebuilds each checkpoint's values from every line's. The end line lets
# the importer refuse a truncated file.


def _typed(typed: tuple[str, bytes]) -> dict[str, str]:
    return {"type": typed[0], "data": base64.b64encode(typed[1]).decode("ascii")}


def _untyped(data: Any, where: str) -> tuple[str, bytes]:
    if not isinstance(data, Mapping) or not isinstance(data.get("type"), str):
        raise CliError(f"{where}: expected {{'type': str, 'data': base64}}")
    try:
        payload = base64.b64decode(str(data.get("data", "")), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise CliError(f"{where}: bad base64 ({exc})") from None
    return data["type"], payload


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


def export_lines(store: Store, thread_id: str) -> Iterator[dict[str, Any]]:
    """The export of a thread as JSON-ready dicts (header, checkpoints, end)."""
    serde = store.saver.serde
    # One snapshot: list() pages read apart would mix two states of a thread being written.
    tuples = _parents_first(store.saver.thread_snapshot(thread_id), _tuple_key, _tuple_parent)
    if not tuples:
        raise store.missing_thread(thread_id)
    writes_total = sum(len(t.pending_writes or ()) for t in tuples)
    yield {
        "type": "header",
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "thread_id": thread_id,
        "checkpoints": len(tuples),
        "pending_writes": writes_total,
        "key_prefix": store.prefix,
        "library_version": __version__,
        "exported_at": datetime.datetime.now(datetime.timezone.utc).isoformat(),
    }
    seen: set[tuple[str, str, Any]] = set()
    for tup in tuples:
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
        yield {
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
    yield {"type": "end", "checkpoints": len(tuples), "pending_writes": writes_total}


def cmd_export(args: argparse.Namespace, store: Store, out: IO[str]) -> None:
    lines = export_lines(store, args.thread)
    first = next(lines)  # raises before a file is created for a missing thread
    if args.output == "-":
        _write_lines(out, first, lines)
        return
    try:
        with open(args.output, "w", encoding="utf-8") as handle:
            _write_lines(handle, first, lines)
    except OSError as exc:
        raise CliError(f"cannot write {args.output}: {exc.strerror or exc}") from None
    sys.stderr.write(
        f"exported thread {args.thread!r} ({first['checkpoints']} checkpoints) to {args.output}\n"
    )


def _write_lines(handle: IO[str], first: dict[str, Any], rest: Iterable[dict[str, Any]]) -> None:
    for line in (first, *rest):
        handle.write(json.dumps(line, separators=(",", ":")) + "\n")


@dataclasses.dataclass
class _ImportedCheckpoint:
    ns: str
    checkpoint_id: str
    parent_id: str | None
    checkpoint: tuple[str, bytes]
    metadata: tuple[str, bytes]
    writes: list[tuple[str, str | None, str, tuple[str, bytes]]]  # task id, path, channel, value


def _str_field(data: Mapping[str, Any], key: str, where: str, *, optional: bool = False) -> Any:
    value = data.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise CliError(f"{where}: {key!r} must be a string")
    return value


_Values = dict[tuple[str, str, Any], tuple[str, bytes]]


def read_export(
    lines: Iterable[str], source: str
) -> tuple[dict[str, Any], list[_ImportedCheckpoint], _Values]:
    """Parse and check a whole export before anything is written: the header, every
    checkpoint line and the end line with its counts."""
    header: dict[str, Any] | None = None
    end: dict[str, Any] | None = None
    checkpoints: list[_ImportedCheckpoint] = []
    values: _Values = {}
    for number, text in enumerate(lines, 1):
        where = f"{source} line {number}"
        if not text.strip():
            continue
        try:
            line = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CliError(f"{where}: not JSON ({exc.msg})") from None
        kind = line.get("type") if isinstance(line, dict) else None
        if header is None:
            header = _read_header(line, kind, where)
        elif end is not None:
            raise CliError(f"{where}: data after the end line")
        elif kind == "end":
            end = line
        elif kind == "checkpoint":
            try:
                checkpoints.append(_read_checkpoint(line, where, values))
            except (AttributeError, TypeError, KeyError) as exc:
                raise CliError(f"{where}: malformed checkpoint line ({exc})") from None
        else:
            raise CliError(f"{where}: unknown line type {kind!r}")
    if header is None:
        raise CliError(f"{source}: empty input, expected an export")
    if end is None:
        raise CliError(f"{source}: no end line; the export is truncated")
    if end.get("checkpoints") != len(checkpoints):
        raise CliError(
            f"{source}: the end line counts {end.get('checkpoints')!r} checkpoints, the file "
            f"holds {len(checkpoints)}"
        )
    return header, checkpoints, values


def _read_header(line: Any, kind: Any, where: str) -> dict[str, Any]:
    if kind != "header" or line.get("format") != EXPORT_FORMAT:
        raise CliError(f"{where}: not a plain-redis-saver export (no {EXPORT_FORMAT!r} header)")
    if line.get("version") != EXPORT_VERSION:
        raise CliError(
            f"{where}: export format version {line.get('version')!r}; this release "
            f"reads version {EXPORT_VERSION}"
        )
    _str_field(line, "thread_id", where)
    return dict(line)


def _read_checkpoint(line: Mapping[str, Any], where: str, values: _Values) -> _ImportedCheckpoint:
    conf = (line.get("config") or {}).get("configurable")
    if not isinstance(conf, Mapping):
        raise CliError(f"{where}: no config.configurable")
    ns = _str_field(conf, "checkpoint_ns", where)
    cid = _str_field(conf, "checkpoint_id", where)
    parent_conf = (line.get("parent_config") or {}).get("configurable") or {}
    parent = _str_field(parent_conf, "checkpoint_id", where, optional=True)
    channel_values = line.get("channel_values") or {}
    if not isinstance(channel_values, Mapping):
        raise CliError(f"{where}: channel_values must be an object")
    for channel, entry in channel_values.items():
        version = entry.get("version") if isinstance(entry, Mapping) else None
        if isinstance(version, bool) or not isinstance(version, (str, int, float)):
            raise CliError(f"{where}: channel {channel!r} has no valid version")
        values[(ns, channel, version)] = _untyped(entry, f"{where} channel {channel!r}")
    writes = []
    for i, write in enumerate(line.get("pending_writes") or []):
        w_where = f"{where} write {i}"
        if not isinstance(write, Mapping):
            raise CliError(f"{w_where}: must be an object")
        writes.append(
            (
                _str_field(write, "task_id", w_where),
                _str_field(write, "task_path", w_where, optional=True),
                _str_field(write, "channel", w_where),
                _untyped(write, w_where),
            )
        )
    return _ImportedCheckpoint(
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
        raise CliError(f"cannot decode {what} with {type(serde).__name__}: {exc!r}") from None


def decode_export(
    serde: SerializerProtocol,
    checkpoints: Sequence[_ImportedCheckpoint],
    values: _Values,
) -> list[_Replay]:
    """Every checkpoint of an export decoded, parents first (so a damaged value stops
    the import before anything is written)."""
    ordered = _parents_first(
        list(checkpoints),
        lambda c: (c.checkpoint_id, c.ns),
        lambda c: (c.parent_id, c.ns) if c.parent_id else None,
    )
    replays = []
    for item in ordered:
        what = f"checkpoint {item.checkpoint_id!r} (namespace {item.ns!r})"
        checkpoint: Checkpoint = _decode(serde, item.checkpoint, what)
        if not isinstance(checkpoint, dict) or checkpoint.get("id") != item.checkpoint_id:
            raise CliError(f"{what}: the serialized checkpoint does not carry this id")
        metadata = _decode(serde, item.metadata, f"the metadata of {what}")
        versions = checkpoint.get("channel_versions") or {}
        checkpoint["channel_values"] = {
            channel: _decode(serde, values[(item.ns, channel, version)], f"{channel!r} of {what}")
            for channel, version in versions.items()
            if (item.ns, channel, version) in values
        }
        writes: dict[str, list[tuple[str, Any]]] = {}
        for task_id, _path, channel, typed in item.writes:
            value = _decode(serde, typed, f"a write of task {task_id!r} to {channel!r} of {what}")
            writes.setdefault(task_id, []).append((channel, value))
        replays.append(
            _Replay(item.ns, item.parent_id, checkpoint, metadata, writes, _task_paths(item.writes))
        )
    return replays


def import_export(writer: PlainRedisSaver, thread_id: str, replays: Sequence[_Replay]) -> int:
    """Replay checkpoints with ``put`` (parents first, every channel version passed as
    new, so every value is stored) and their writes with ``put_writes`` (one call per
    task); returns the number of writes."""
    writes_count = 0
    for done, item in enumerate(replays):
        parent: dict[str, Any] = {"thread_id": thread_id, "checkpoint_ns": item.ns}
        if item.parent_id:
            parent["checkpoint_id"] = item.parent_id
        try:
            versions = dict(item.checkpoint["channel_versions"])
            config = writer.put({"configurable": parent}, item.checkpoint, item.metadata, versions)
            for task_id, rows in item.writes.items():
                writer.put_writes(config, rows, task_id, item.paths[task_id])
                writes_count += len(rows)
        except (redis.exceptions.RedisError, PlainRedisSaverError) as exc:
            raise CliError(
                f"import stopped after {done} of {len(replays)} checkpoints: "
                f"{_describe(exc)}; re-run it with --replace"
            ) from None
    return writes_count


def cmd_import(args: argparse.Namespace, store: Store, out: IO[str], stdin: IO[str]) -> None:
    ttl = _parse_ttl(args.ttl)
    if ttl == "keep":
        raise CliError("import: --ttl keep has nothing to keep; give seconds or 'none'", 2)
    assert not isinstance(ttl, str)
    if args.file == "-":
        header, checkpoints, values = read_export(stdin, "<stdin>")
    else:
        try:
            with open(args.file, encoding="utf-8") as handle:
                header, checkpoints, values = read_export(handle, args.file)
        except OSError as exc:
            raise CliError(f"cannot read {args.file}: {exc.strerror or exc}") from None
        except UnicodeDecodeError as exc:
            raise CliError(f"{args.file} is not UTF-8 text: {exc}") from None
    thread_id = args.thread if args.thread is not None else header["thread_id"]
    writer = store.writer(ttl)
    replays = decode_export(writer.serde, checkpoints, values)
    _make_room(store, thread_id, args.replace, "target")
    writer.setup()
    writes = import_export(writer, thread_id, replays)
    result = {
        "thread_id": thread_id,
        "source_thread_id": header["thread_id"],
        "checkpoints": len(checkpoints),
        "pending_writes": writes,
        "key_prefix": store.prefix,
    }
    if args.json:
        _json_out(out, result)
    else:
        out.write(
            f"imported thread {header['thread_id']!r} as {thread_id!r} under key prefix "
            f"{store.prefix!r}: {len(checkpoints)} checkpoints, {writes} pending writes\n"
        )


# --------------------------------------------------------------------------- entry point


def _describe(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    if "WRONGTYPE" in text:
        text += (
            " (keys under this prefix were not written by plain-redis-saver: "
            "is --key-prefix right?)"
        )
    if "Unknown serialization type" in text:
        text += " (written with another serializer: name it with --serde module:name)"
    if text.startswith("NOPERM") or "has no permissions" in text:
        text += " (the user lacks this permission: see plain_redis_saver.acl)"
    return text


def main(argv: Sequence[str] | None = None, *, client: Any = None) -> int:
    """Run the command line; returns the exit code. ``client`` (optional) is an existing
    Redis client to use instead of connecting with ``--url`` (it is not closed)."""
    out, err = sys.stdout, sys.stderr
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error (already printed)
        return int(exc.code) if isinstance(exc.code, int) else EXIT_USAGE
    own_client = client is None
    try:
        serde = _load_serde(args.serde)
        if client is None:
            client = _connect(args)
        store = Store(client, args.key_prefix, serde)
        handlers = {
            "threads": cmd_threads,
            "history": cmd_history,
            "show": cmd_show,
            "stats": cmd_stats,
            "check": cmd_check,
            "delete": cmd_delete,
            "prune": cmd_prune,
            "copy": cmd_copy,
            "export": cmd_export,
        }
        if args.command == "import":
            cmd_import(args, store, out, sys.stdin)
        else:
            handlers[args.command](args, store, out)
        out.flush()
        return EXIT_OK
    except CliError as exc:
        err.write(f"plain-redis-saver: error: {exc}\n")
        return exc.code
    except InvalidConfigError as exc:
        err.write(f"plain-redis-saver: error: {exc}\n")
        return EXIT_USAGE
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
        err.write(
            f"plain-redis-saver: error: lost the connection to the server: {_describe(exc)}\n"
        )
        return EXIT_FAILURE
    except (redis.exceptions.RedisError, PlainRedisSaverError) as exc:
        err.write(f"plain-redis-saver: error: {_describe(exc)}\n")
        return EXIT_FAILURE
    except BrokenPipeError:
        # The reader went away (e.g. "| head"); say nothing more on a closed pipe.
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (replaces a closed stdout)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        err.write("plain-redis-saver: interrupted\n")
        return 130
    finally:
        if own_client and client is not None:
            with contextlib.suppress(Exception):
                client.close()
