"""The store's sans-I/O core: LangGraph store operations as plans (see core.py).

Formats shared with the scripts (lua/includes/store.lua describes the keys):
- NS, a namespace: its labels joined by NUL. LangGraph refuses NUL in labels, and byte
  order of these strings is LangGraph's tuple order (UTF-8 keeps code point order), so
  the server lists namespaces in the order InMemoryStore sorts them.
- a record: "~", then seq, created, updated (us since the epoch; "" when never
  updated), ttl (ms or ""), expiry (ms or ""), each followed by ","; then netstrings of
  the value type ("" for msgpack) and the filter document; then the value bytes.
  Records of the first layout (legacy) are netstrings of seq, created, updated, ttl,
  expiry, filter document, value type, value bytes; both are read.
- the filter document: what a script needs to evaluate a filter without a JSON parser
  (Lua in fakeredis has none): two netstrings per node of the value, its path and its
  token (``node_token``). Tokens are computed here, in Python, so that equality and
  ``float()`` behave exactly as in InMemoryStore (``1 == 1.0 == True``,
  ``float("2.5")``, the errors of ``float(None)``...). A legacy document has four
  netstrings per node (path, kind, legacy equality token, float token); filters carry
  both forms of their operands.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import re
import struct
from collections.abc import Callable, Generator, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, NamedTuple, TypeVar

from langgraph.checkpoint.serde.base import SerializerProtocol
from langgraph.store.base import (
    GetOp,
    Item,
    ListNamespacesOp,
    Op,
    PutOp,
    Result,
    SearchItem,
    SearchOp,
)

from .core import MAX_ARGS_PER_CALL
from .errors import CorruptDataError
from .ops import Batch, Emit, Eval, Plan
from .scripts import STORE_BATCH
from .store_keys import StoreKeys

#: Items a search script examines per call (each call stays well under 50 ms).
SEARCH_BUDGET = 1000
#: Items per call when their vectors come back too (bounds the transfer: 250 items of
#: 1,536 float32 dimensions are 1.5 MB).
QUERY_BUDGET = 250
#: Namespaces list_namespaces examines per call.
LIST_BUDGET = 1000
#: Expired items a call removes before its work.
SWEEP_BUDGET = 200
#: Writes per store_write call (7 arguments each, under MAX_ARGS_PER_CALL).
WRITES_PER_CALL = 300

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
#: The serializer's usual type name, stored as "" (a few bytes on every item).
DEFAULT_TYPE = "msgpack"


# ------------------------------------------------------------------ formats


def netstring(data: bytes) -> bytes:
    return b"%d:%s" % (len(data), data)


def split_netstrings(data: bytes, what: str) -> list[bytes]:
    out, pos = [], 0
    while pos < len(data):
        head, sep, _ = data[pos : pos + 21].partition(b":")
        if not sep or not head.isdigit() or pos + len(head) + 1 + int(head) > len(data):
            raise CorruptDataError(f"corrupt {what}: it is not what PlainRedisStore writes")
        start = pos + len(head) + 1
        out.append(data[start : start + int(head)])
        pos = start + int(head)
    return out


def ns_name(namespace: Sequence[str]) -> str:
    return "\0".join(namespace)


def item_id(namespace: Sequence[str], key: str) -> str:
    return f"{ns_name(namespace)}\0\0{key}"


def parse_ns(name: str) -> tuple[str, ...]:
    return tuple(name.split("\0")) if name else ()


def parse_id(raw: bytes) -> tuple[tuple[str, ...], str]:
    ns, _, key = raw.decode().partition("\0\0")
    return parse_ns(ns), key


def _key_step(key: Any) -> bytes:
    return netstring(b"k" + str(key).encode())


def _index_step(i: int) -> bytes:
    return netstring(b"i%d" % i)


def _number(value: float) -> bytes:
    if math.isnan(value):
        return b"N"
    if math.isinf(value):
        return b"#inf" if value > 0 else b"#-inf"
    return b"#%d" % int(value) if value.is_integer() else b"#" + repr(value).encode()


def _full_token(value: Any) -> bytes:
    if value is None:
        return b"n"
    if isinstance(value, bool | int):
        return b"#%d" % int(value)
    if isinstance(value, float):
        return _number(value)
    if isinstance(value, str):
        return b"s" + value.encode()
    if isinstance(value, list | tuple):
        return b"l" + b"".join(netstring(_full_token(v)) for v in value)
    if isinstance(value, dict):
        pairs = sorted((str(k), v) for k, v in value.items())
        return b"d" + b"".join(netstring(k.encode()) + netstring(_full_token(v)) for k, v in pairs)
    return b"o" + repr(value).encode()


def _digest(token: bytes) -> bytes:
    return hashlib.blake2b(token, digest_size=12).digest()


#: Strings longer than this are a digest in documents and filters (what keeps the text
#: of a value from being stored twice).
SHORT_STRING = 12


def equality_token(value: Any) -> bytes:
    """Equal for values that compare equal in Python (JSON-like values). Containers and
    long strings are digests, which keeps documents small; a container's token starts
    with its kind (``hd``, ``hl<length>,``), which the script reads."""
    token = _full_token(value)
    if isinstance(value, dict):
        return b"hd" + _digest(token)
    if isinstance(value, list | tuple):
        return b"hl%d," % len(value) + _digest(token)
    if isinstance(value, str) and len(token) > SHORT_STRING + 1:
        return b"S" + _digest(token)
    return token


def legacy_equality_token(value: Any) -> bytes:
    """equality_token as documents of the first layout hold it."""
    token = _full_token(value)
    if isinstance(value, list | tuple | dict):
        return b"h" + _digest(token)
    return token


def float_token(value: Any) -> bytes:
    """``float(value)`` as the script compares it: ``f<repr>``, ``N`` (NaN), or the
    error float() raises: ``T<type name>`` (TypeError), ``V<text>`` (ValueError of a
    string), ``O<message>`` (OverflowError), ``X<message>`` (any other ValueError).
    The client rebuilds Python's message from it (filter_error)."""
    try:
        number = float(value)
    except TypeError:
        return b"T" + type(value).__name__.encode()
    except ValueError as exc:
        if isinstance(value, str):
            return b"V" + value.encode()
        return b"X" + str(exc).encode()
    except OverflowError as exc:
        return b"O" + str(exc).encode()
    if math.isnan(number):
        return b"N"
    if math.isinf(number):
        return b"f1e999" if number > 0 else b"f-1e999"
    return b"f" + repr(number).encode()


def _stored_float_token(value: Any) -> bytes:
    """float_token, or b"" where the script derives it from the node's equality token
    (None, numbers, dicts, lists) or the client from the record (a string that is not
    a number: its error names it, see filter_error): documents stay small."""
    if value is None or isinstance(value, dict | list):
        return b""
    if isinstance(value, bool | float) or (isinstance(value, int) and abs(value) < 2**1023):
        return b""
    token = float_token(value)
    return b"" if isinstance(value, str) and token[:1] == b"V" else token


def node_token(value: Any) -> bytes:
    """A node's token in a document: its equality token, after ``F`` and a netstring
    of its float token when the script cannot derive that."""
    float_part = _stored_float_token(value)
    return (b"F" + netstring(float_part) if float_part else b"") + equality_token(value)


def filter_document(value: Mapping[str, Any]) -> bytes:
    parts: list[bytes] = []

    def walk(node: Any, path: bytes) -> None:
        parts.extend((netstring(path), netstring(node_token(node))))
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, path + _key_step(k))
        elif isinstance(node, list | tuple):
            for i, v in enumerate(node):
                walk(v, path + _index_step(i))

    for key, child in value.items():
        walk(child, _key_step(key))
    return b"".join(parts)


def _operand(value: Any) -> tuple[bytes, bytes]:
    return equality_token(value), legacy_equality_token(value)


_OPERATORS = {"$gt": b"gt", "$gte": b"ge", "$lt": b"lt", "$lte": b"le"}


def compile_filter(filter: Mapping[str, Any] | None) -> list[bytes]:
    """The filter as the script's conditions (4 arguments each: kind, path, operand,
    the operand as legacy documents hold it), in the order InMemoryStore evaluates it,
    so that the first failing condition (or the first ``float()`` error) is the same."""
    out: list[bytes] = []

    def condition(kind: bytes, path: bytes, operand: bytes, legacy: bytes = b"") -> None:
        out.extend((kind, path, operand, legacy))

    def compare(path: bytes, wanted: Any) -> None:
        if isinstance(wanted, dict):
            if any(str(k).startswith("$") for k in wanted):
                for op, operand in wanted.items():
                    if op in ("$eq", "$ne"):
                        kind = b"eq" if op == "$eq" else b"ne"
                        condition(kind, path, *_operand(operand))
                    elif op in _OPERATORS:
                        condition(_OPERATORS[op], path, float_token(operand))
                    else:
                        condition(b"err", path, b"X" + f"Unsupported operator: {op}".encode())
                return
            condition(b"dict", path, b"")
            for k, v in wanted.items():
                compare(path + _key_step(k), v)
        elif isinstance(wanted, list | tuple):
            condition(b"list", path, b"l%d" % len(wanted))
            for i, v in enumerate(wanted):
                compare(path + _index_step(i), v)
        else:
            condition(b"eq", path, *_operand(wanted))

    for key, wanted in (filter or {}).items():
        compare(_key_step(key), wanted)
    return out


def filter_error(exc: Exception, serde: SerializerProtocol) -> Exception | None:
    """The error InMemoryStore raises for a filter (float() of a value that is not a
    number, an unknown operator), from the script's, with Python's message. For a
    string the script sends the node's path and the item's record (``W<path
    hex>:<record hex>``): float() of the value there raises the very error."""
    text = str(exc)
    mark = "plain_redis_saver: filter "
    if mark not in text:
        return None
    detail = text[text.index(mark) + len(mark) :]
    # Servers append where the script raised: " script: on @user_script:27."
    detail = re.sub(r" script: .*$", "", detail.split("\n", 1)[0])
    kind, rest = detail[:1], detail[1:]
    if kind == "T":
        return TypeError(f"float() argument must be a string or a real number, not '{rest}'")
    if kind == "V":
        return ValueError(f"could not convert string to float: {rest!r}")
    if kind == "O":
        return OverflowError(rest)
    if kind == "W":
        path, _, raw = rest.partition(":")
        try:
            node: Any = _value(b"", bytes.fromhex(raw), serde)
            for step in split_netstrings(bytes.fromhex(path), "filter path"):
                if step[:1] == b"k":
                    node = next(v for k, v in node.items() if str(k) == step[1:].decode())
                else:
                    node = node[int(step[1:])]
            float(node)
        except Exception as error:
            return error
    return ValueError(rest)


def pack_vectors(vectors: Sequence[Sequence[float]]) -> bytes:
    return b"".join(struct.pack(f"<{len(v)}f", *v) for v in vectors)


def unpack_vectors(data: bytes, dims: int) -> list[list[float]]:
    if not data or dims <= 0:
        return []
    flat = struct.unpack(f"<{len(data) // 4}f", data)
    return [list(flat[i : i + dims]) for i in range(0, len(flat), dims)]


def _time(us: bytes) -> datetime:
    return EPOCH + timedelta(microseconds=int(us))


class Record(NamedTuple):
    item: Item
    ttl: bytes


_RECORD = re.compile(rb"~([0-9a-z]+),([0-9a-z]+),([0-9a-z]*),(\d*),(\d*),")


def record_fields(raw_id: bytes, raw: bytes) -> list[bytes]:
    """seq, created, updated (decimal), ttl, expiry, filter document, value type, value
    bytes of a record in either form (store.lua)."""
    head = _RECORD.match(raw)
    if head is None:
        fields = split_netstrings(raw, f"store record {raw_id!r}")
        if len(fields) != 8:
            raise CorruptDataError(f"corrupt store record {raw_id!r}: {len(fields)} fields, not 8")
        return fields
    rest = raw[head.end() :]
    type_name, rest = _leading_netstring(rest, raw_id)
    document, value = _leading_netstring(rest, raw_id)
    seq, created, updated, ttl, expiry = head.groups()
    times = [b"%d" % int(t, 36) if t else b"" for t in (created, updated)]
    return [seq, *times, ttl, expiry, document, type_name, value]


def _leading_netstring(data: bytes, raw_id: bytes) -> tuple[bytes, bytes]:
    head, sep, rest = data[:21].partition(b":")
    if not sep or not head.isdigit() or len(head) + 1 + int(head) > len(data):
        raise CorruptDataError(
            f"corrupt store record {raw_id!r}: it is not what PlainRedisStore writes"
        )
    start = len(head) + 1
    return data[start : start + int(head)], data[start + int(head) :]


def _value(raw_id: bytes, raw: bytes, serde: SerializerProtocol) -> Any:
    fields = record_fields(raw_id, raw)
    return serde.loads_typed((fields[6].decode() or DEFAULT_TYPE, fields[7]))


def decode_item(raw_id: bytes, raw: bytes, serde: SerializerProtocol) -> Record:
    fields = record_fields(raw_id, raw)
    namespace, key = parse_id(raw_id)
    value = serde.loads_typed((fields[6].decode() or DEFAULT_TYPE, fields[7]))
    item = Item(
        value=value,
        key=key,
        namespace=namespace,
        created_at=_time(fields[1]),
        updated_at=_time(fields[2] or fields[1]),
    )
    return Record(item, fields[3])


def _search_item(item: Item, score: float | None = None) -> SearchItem:
    return SearchItem(
        namespace=item.namespace,
        key=item.key,
        value=item.value,
        created_at=item.created_at,
        updated_at=item.updated_at,
        score=score,
    )


# ------------------------------------------------------------------ ranking


def cosine_similarity(query: Sequence[float], packed: bytes, dims: int) -> list[float]:
    """Cosine of ``query`` with each vector of ``packed`` (float32, little-endian), in
    float64 as InMemoryStore computes it: 0 for a zero vector, NaN for a zero query.
    numpy (an optional extra) does it without making Python floats of the vectors."""
    if not packed:
        return []
    try:
        import numpy as np
    except ImportError:
        qnorm = math.sqrt(sum(a * a for a in query))
        out = []
        for v in unpack_vectors(packed, dims):
            vnorm = math.sqrt(sum(a * a for a in v))
            dot = sum(a * b for a, b in zip(query, v, strict=False))
            out.append(dot / (qnorm * vnorm) if qnorm > 0 and vnorm > 0 else 0.0)
        return out
    q = np.asarray(query, dtype=float)
    m = np.frombuffer(packed, dtype="<f4").reshape(-1, dims).astype(float)
    norms = np.linalg.norm(m, axis=1)
    scores = np.zeros_like(norms)
    mask = norms != 0
    with np.errstate(divide="ignore", invalid="ignore"):  # a zero query scores NaN
        scores[mask] = np.dot(m[mask], q) / (norms[mask] * np.linalg.norm(q))
    return [float(s) for s in scores]


Ranked = TypeVar("Ranked")


def rank(
    candidates: Sequence[tuple[Ranked, bytes]],
    query: Sequence[float],
    dims: int,
    offset: int,
    limit: int,
) -> list[tuple[Ranked, float | None]]:
    """InMemoryStore's ranking of (item, packed vectors) in store order: each item
    scored by its best vector, best first (ties in store order), sliced by offset and
    limit; items without vectors fill what is left of ``limit`` (from the first of
    them, whatever the offset). Items are opaque here: the caller decodes only those
    kept."""
    width = 4 * dims or 1
    owners = [n for n, (_, packed) in enumerate(candidates) for _ in range(len(packed) // width)]
    scoreless = [item for item, packed in candidates if not packed]
    scores = cosine_similarity(query, b"".join(p for _, p in candidates), dims)
    ordered = sorted(zip(scores, owners, strict=True), key=lambda p: p[0], reverse=True)
    seen: set[int] = set()
    kept: list[tuple[Ranked, float | None]] = []
    for score, owner in ordered:
        if owner in seen:
            continue
        position = len(seen)
        seen.add(owner)
        if position >= offset + limit:
            break
        if position >= offset:
            kept.append((candidates[owner][0], float(score)))
    if scoreless and len(kept) < limit:
        kept.extend((item, None) for item in scoreless[: limit - len(kept)])
    return kept


# ------------------------------------------------------------------ plans


class Sub(NamedTuple):
    """One operation of store_batch.lua: its name and arguments."""

    name: str
    args: tuple[str | bytes | int, ...]


class Write(NamedTuple):
    op: PutOp
    ttl_ms: str  # "" none, "-" delete
    vectors: bytes


def ttl_ms(minutes: float | None) -> str:
    return "" if minutes is None else str(max(1, round(minutes * 60_000)))


class StorePlans:
    """Store operations as plans run by drive.py's runners."""

    def __init__(
        self,
        keys: StoreKeys,
        serde: SerializerProtocol,
        clock: Callable[[], float],
        dims: int,
    ) -> None:
        self.keys = keys
        self.serde = serde
        self.clock = clock
        self.dims = dims

    def _send(self, subs: Sequence[Sub], now: int) -> Generator[Any, Any, list[Any]]:
        """Run operations of store_batch.lua: one script call, or one per slice of
        MAX_ARGS_PER_CALL arguments (pipelined); returns their replies in order."""
        calls: list[Eval] = []
        current: list[str | bytes | int] = []
        for name, args in subs:
            if current and len(current) + 2 + len(args) > MAX_ARGS_PER_CALL:
                calls.append(Eval(STORE_BATCH, tuple(self.keys), (now, *current), ""))
                current = []
            current += [name, len(args), *args]
        if current:
            calls.append(Eval(STORE_BATCH, tuple(self.keys), (now, *current), ""))
        if not calls:
            return []
        replies = [(yield calls[0])] if len(calls) == 1 else (yield Batch(tuple(calls)))
        return [r for reply in replies for r in reply]

    def _get(self, op: GetOp) -> Sub:
        return Sub("get", (ns_name(op.namespace), op.key, int(op.refresh_ttl)))

    def _search(
        self,
        op: SearchOp,
        cursor: tuple[bytes, bytes],
        skip: int,
        wanted: int,
        vectors: bool,
    ) -> Sub:
        budget = QUERY_BUDGET if vectors else SEARCH_BUDGET
        refresh = op.refresh_ttl and not vectors
        args: tuple[str | bytes | int, ...] = (
            int(refresh), SWEEP_BUDGET, ns_name(op.namespace_prefix), cursor[0], cursor[1],
            skip, wanted, budget, int(vectors), *compile_filter(op.filter),
        )  # fmt: skip
        return Sub("search", args)

    def _list(self, op: ListNamespacesOp, start: bytes, skip: int, wanted: int, last: bytes) -> Sub:
        conditions: list[str | bytes | int] = []
        fixed: list[str] | None = None
        for condition in op.match_conditions or ():
            if condition.match_type not in ("prefix", "suffix"):
                raise ValueError(f"Unsupported match type: {condition.match_type}")
            conditions += [condition.match_type, len(condition.path), *condition.path]
            if condition.match_type == "prefix" and fixed is None:
                fixed = list(itertools.takewhile(lambda label: label != "*", condition.path))
        lo, hi = b"-", b"+"
        if fixed:
            base = ns_name(fixed).encode()
            lo, hi = b"[" + base, b"(" + base + b"\x01"
        if start:
            lo = start
        depth = "" if op.max_depth is None else op.max_depth
        args = (SWEEP_BUDGET, lo, hi, depth, skip, wanted, LIST_BUDGET, last, *conditions)
        return Sub("list", args)

    def _writes(self, writes: Sequence[Write], touched: Sequence[str]) -> list[Sub]:
        subs = []
        for start in range(0, len(writes), WRITES_PER_CALL):
            chunk = writes[start : start + WRITES_PER_CALL]
            names = list(dict.fromkeys([*touched, *(ns_name(w.op.namespace) for w in chunk)]))
            names = names[: MAX_ARGS_PER_CALL - 7 * len(chunk) - 10]
            args: list[str | bytes | int] = [SWEEP_BUDGET, len(names), *names]
            for w in chunk:
                value = w.op.value
                if value is None:
                    args += [ns_name(w.op.namespace), w.op.key, "-", b"", b"", b"", b""]
                    continue
                type_name, data = self.serde.dumps_typed(dict(value))
                type_name = "" if type_name == DEFAULT_TYPE else type_name
                args += [
                    ns_name(w.op.namespace), w.op.key, w.ttl_ms,
                    filter_document(value), type_name, data, w.vectors,
                ]  # fmt: skip
            subs.append(Sub("write", tuple(args)))
            touched = ()
        return subs

    def batch(
        self,
        ops: Sequence[Op],
        writes: Sequence[Write],
        queries: Mapping[str, Sequence[float]],
    ) -> Plan:
        """Run ``ops``: reads see the store as it was before the batch, and the batch's
        puts (deduplicated, the last per item wins) are applied after them, as in
        InMemoryStore. ``writes`` are the deduplicated puts with their vectors;
        ``queries`` the embedded search queries (empty without an index). One script
        call when every read completes in its first slice."""
        now = int(self.clock() * 1_000_000)
        results: list[Result] = [None] * len(ops)
        reads = [(i, op) for i, op in enumerate(ops) if not isinstance(op, PutOp)]
        touched = list(
            dict.fromkeys(ns_name(op.namespace) for _, op in reads if isinstance(op, GetOp))
        )
        first: list[Sub] = []
        for _, op in reads:
            if isinstance(op, GetOp):
                first.append(self._get(op))
            elif isinstance(op, SearchOp):
                ranked = bool(op.query) and op.query in queries
                skip, wanted = self._window(op, ranked)
                first.append(self._search(op, (b"", b""), skip, wanted, ranked))
            elif isinstance(op, ListNamespacesOp):
                skip, wanted = self._list_window(op)
                first.append(self._list(op, b"", skip, wanted, b""))
            else:
                raise ValueError(f"Unknown operation type: {type(op)}")
        write_subs = self._writes(writes, touched)
        # A search or listing may need more slices, which must not see the batch's puts.
        together = all(isinstance(op, GetOp) for _, op in reads)
        replies = yield from self._send(first + (write_subs if together else []), now)
        for (i, op), reply in zip(reads, replies, strict=False):
            if isinstance(op, GetOp):
                raw_id = item_id(op.namespace, op.key).encode()
                results[i] = decode_item(raw_id, reply, self.serde).item if reply else None
            elif isinstance(op, SearchOp):
                results[i] = yield from self._finish_search(op, reply, now, queries)
            elif isinstance(op, ListNamespacesOp):
                results[i] = yield from self._finish_list(op, reply, now)
        if write_subs and not together:
            yield from self._send(write_subs, now)
        yield Emit(results)

    @staticmethod
    def _window(op: SearchOp, ranked: bool) -> tuple[int, int]:
        """(matches to skip, matches wanted, -1 for all) of the script's first call."""
        if ranked or op.offset < 0 or op.limit < 0:
            return 0, -1
        return op.offset, op.limit

    def _finish_search(
        self, op: SearchOp, reply: Any, now: int, queries: Mapping[str, Sequence[float]]
    ) -> Generator[Any, Any, list[SearchItem]]:
        ranked = bool(op.query) and op.query in queries
        skip, wanted = self._window(op, ranked)
        found: list[tuple[bytes, bytes, bytes]] = []  # id, record, vectors
        while True:
            page, skip, pos, member = reply
            found.extend((page[j], page[j + 1], page[j + 2]) for j in range(0, len(page), 3))
            if not pos or (wanted >= 0 and len(found) >= wanted):
                break
            remaining = -1 if wanted < 0 else wanted - len(found)
            sub = self._search(op, (pos, member), int(skip), remaining, ranked)
            [reply] = yield from self._send([sub], now)
        if not ranked:
            items = [_search_item(decode_item(i, raw, self.serde).item) for i, raw, _ in found]
            if op.offset < 0 or op.limit < 0:
                return items[op.offset : op.offset + op.limit]
            return items
        assert op.query is not None
        candidates = [((i, raw), vec) for i, raw, vec in found]
        kept = rank(candidates, queries[op.query], self.dims, op.offset, op.limit)
        records = [(decode_item(i, raw, self.serde), score) for (i, raw), score in kept]
        if op.refresh_ttl:
            refresh = [
                Sub("get", (ns_name(r.item.namespace), r.item.key, 1)) for r, _ in records if r.ttl
            ]
            yield from self._send(refresh, now)
        return [_search_item(r.item, score) for r, score in records]

    @staticmethod
    def _list_window(op: ListNamespacesOp) -> tuple[int, int]:
        if op.offset < 0 or op.limit < 0:
            return 0, 2**62
        return op.offset, op.limit

    def _finish_list(
        self, op: ListNamespacesOp, reply: Any, now: int
    ) -> Generator[Any, Any, list[tuple[str, ...]]]:
        skip, wanted = self._list_window(op)
        start, last = b"", b""
        names: list[bytes] = []
        while True:
            if reply == b"again":  # expired items left to remove first
                sub = self._list(op, start, skip, wanted - len(names), last)
            else:
                page, skip, last, start = reply
                names.extend(page)
                if not start or len(names) >= wanted:
                    break
                sub = self._list(op, start, int(skip), wanted - len(names), last)
            [reply] = yield from self._send([sub], now)
        listed = [parse_ns(n.decode()) for n in names]
        if op.offset < 0 or op.limit < 0:
            return listed[op.offset : op.offset + op.limit]
        return listed
