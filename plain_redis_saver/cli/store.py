"""Reading the store: the saver for one connection and prefix, and the few key-level
look-ups the saver's API does not offer (finding threads, expiries, sizes, counts);
also the long-term memory store under the same prefix (``memory``)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from typing import Any

import redis.exceptions
from langgraph.checkpoint.base import CheckpointTuple
from langgraph.checkpoint.serde.base import SerializerProtocol

from .. import clients, codec
from ..audit import ThreadAudit
from ..errors import InvalidConfigError, PlainRedisSaverError
from ..keys import Keyspace, ThreadKeys
from ..saver import PlainRedisSaver
from ..store import PlainRedisStore
from ..store_keys import store_keys
from .exits import EXIT_USAGE, CliError, cannot_decode, describe

#: The prefix the examples and the quick start write under, named by the hint for an
#: empty prefix.
EXAMPLES_PREFIX = "demo"

OK, DAMAGED, UNDECODABLE, NOT_FOUND = "ok", "damaged", "cannot decode", "not found"


@dataclasses.dataclass
class ThreadReading:
    """What reading a thread found: counts, and the failure that stopped it, if any."""

    checkpoints: int = 0
    pending_writes: int = 0
    namespaces: set[str] = dataclasses.field(default_factory=set)
    last_update: str | None = None
    problem: str | None = None
    #: OK, DAMAGED, or UNDECODABLE (written with another serializer: pass --serde).
    status: str = OK

    def add(self, tup: CheckpointTuple) -> None:
        self.checkpoints += 1
        self.pending_writes += len(tup.pending_writes or ())
        self.namespaces.add(tup.config["configurable"]["checkpoint_ns"])
        ts = tup.checkpoint.get("ts")
        if isinstance(ts, str) and (self.last_update is None or ts > self.last_update):
            self.last_update = ts

    def failed(self, exc: BaseException) -> None:
        if cannot_decode(exc):
            self.status = UNDECODABLE
            self.problem = f"cannot decode: pass --serde module:name ({describe(exc)})"
        else:
            self.status = DAMAGED
            self.problem = describe(exc)


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
    #: Why the thread could not be read (its counts are then what was read before), or None.
    problem: str | None = None
    status: str = OK

    def as_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["ttl_seconds"] = None if self.ttl_ms is None else self.ttl_ms / 1000
        del data["ttl_ms"]
        return data


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

    def checkpoint_count(self, thread_id: str) -> int | None:
        """The thread's checkpoints, from the counts the saver keeps per namespace (two
        round trips, whatever the thread's length; no checkpoint is read or decoded).
        None when those counts are damaged or gone while the thread has checkpoints."""
        keys = self.keys.thread(thread_id)
        pipe = self._pipeline()
        pipe.hkeys(keys.namespaces)
        pipe.execute_command("PTTL", keys.order)
        try:
            namespaces, order_ttl = pipe.execute()
            if not namespaces:
                return 0 if order_ttl == -2 else None
            fields = [codec.checkpoint_count_field(ns) for ns in namespaces]
            counts = self.client.hmget(keys.blobs, fields)
        except redis.exceptions.ResponseError:  # WRONGTYPE: a foreign key
            return None
        if any(c is None or not bytes(c).isdigit() for c in counts):
            return None
        return sum(int(c) for c in counts)

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
        node, position = parse_cursor(cursor, len(nodes))
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

    def memory(self, index: Any = None) -> PlainRedisStore:
        """The long-term memory store under the prefix (the ``store`` commands)."""
        return PlainRedisStore(self.client, key_prefix=self.prefix, serde=self.serde, index=index)

    def store_counts(self) -> tuple[int, int]:
        """Namespaces and items of the store under the prefix, from its indexes (one
        round trip; expired items not yet removed are counted)."""
        keys = store_keys(self.prefix)
        pipe = self._pipeline()
        pipe.zcard(keys.namespaces)
        pipe.zcard(keys.order)
        namespaces, items = pipe.execute()
        return int(namespaces), int(items)

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

    def read_thread(self, thread_id: str) -> ThreadReading:
        """Checks that the thread's keys are all there, then reads every checkpoint with
        its values and pending writes; a failure ends the reading with ``problem`` set."""
        reading = ThreadReading()
        try:
            self.saver.check_thread(thread_id)
            for tup in self.saver.list({"configurable": {"thread_id": thread_id}}):
                reading.add(tup)
        # A ResponseError here is e.g. WRONGTYPE: a foreign key under the prefix.
        except (PlainRedisSaverError, redis.exceptions.ResponseError) as exc:
            reading.failed(exc)
        return reading

    def audit(self, thread_id: str, reading: ThreadReading) -> ThreadAudit | None:
        """Audits the reference counts of a thread that read back whole (see
        :meth:`~plain_redis_saver.PlainRedisSaver.audit_thread`); a problem found marks
        ``reading`` damaged. None when the reading had failed, or the audit did."""
        if reading.status != OK:
            return None
        try:
            found = self.saver.audit_thread(thread_id)
        except (PlainRedisSaverError, redis.exceptions.ResponseError) as exc:
            reading.failed(exc)
            return None
        problem = found.problem()
        if problem:
            reading.status, reading.problem = DAMAGED, problem
        return found

    def repair(self, thread_id: str, reading: ThreadReading) -> ThreadAudit | None:
        """Repairs the counts and frees the unreferenced values of a thread that read
        back whole (see :meth:`~plain_redis_saver.PlainRedisSaver.repair_thread`); the
        reading is ok again unless values are missing. None when the repair failed
        (``reading`` then says why)."""
        try:
            found = self.saver.repair_thread(thread_id)
        except (PlainRedisSaverError, redis.exceptions.ResponseError) as exc:
            reading.failed(exc)
            return None
        reading.status, reading.problem = OK, None
        if found.missing:
            reading.status = DAMAGED
            reading.problem = f"repaired, but {found.problem()}"
        return found

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
            status=reading.status,
        )

    # ---- messages

    def nothing_stored_hint(self) -> str:
        """Said on stderr when a listing finds nothing under the prefix."""
        hint = (
            f"nothing is stored under key prefix {self.prefix!r} (no thread keys, no "
            f"{self.keys.schema!r}): is --key-prefix right?"
        )
        if self.prefix != EXAMPLES_PREFIX:
            hint += f" (the examples write under --key-prefix {EXAMPLES_PREFIX})"
        return hint

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


def parse_cursor(cursor: str, nodes: int) -> tuple[int, int]:
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
