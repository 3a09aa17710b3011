"""Hostile or damaged stored data never hangs, crashes or misleads.

Part 1 feeds the codec's decoders arbitrary bytes (no server): each returns what the
bytes encode or raises CorruptDataError naming where they came from, and never loops.

Part 2 damages a real thread with the ``admin`` client (records, write indexes, writes,
channel values, counts and namespaces: mutated, truncated or replaced bytes, netstring
lengths that are negative, huge or not digits, msgpack headers with huge counts) and
runs every read on it. Each read returns or raises CorruptDataError naming the damaged
key, and the server answers PING right after. A decoder that loops is caught without a
clock deciding it: the client's socket times out on a real server (the script is then
killed), a Python loop is interrupted by an alarm, and a fakeredis script is stopped by
an instruction budget (see ``lua_instruction_budget``).

Part 3 puts foreign and undecodable keys beside healthy threads: operations over every
thread finish the healthy ones and then raise one CorruptDataError naming the others.
"""

from __future__ import annotations

import contextlib
import json
import signal
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis
import redis.cluster
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from plain_redis_saver import CorruptDataError, PlainRedisSaver
from plain_redis_saver.codec import (
    Record,
    netstring,
    pack,
    parse_write_sub,
    read_netstring,
    split_netstrings,
    unpack,
)
from plain_redis_saver.errors import SchemaVersionError
from plain_redis_saver.keys import Keyspace

from .conftest import Backend
from .helpers import checkpoint, config, metadata
from .test_bad_input import build

FUZZ = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)

#: Seconds after which a read is taken as hung. Only a decoder that loops ever reaches
#: it: a bounded read of these few bytes takes milliseconds, whatever the load.
HUNG_AFTER = 20


class Hung(Exception):
    pass


@contextlib.contextmanager
def interrupted_if_hung() -> Iterator[None]:
    """Raises Hung in a Python loop that runs for HUNG_AFTER seconds."""

    def alarm(_signum: int, _frame: Any) -> None:
        raise Hung(f"no answer within {HUNG_AFTER} s: a decoder loops")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, HUNG_AFTER)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# ====================================================== part 1: decoders, no server

#: Netstring-like pieces: valid ones and lengths that are negative, huge, past the
#: end, not digits, or without a colon.
pieces = st.one_of(
    st.binary(max_size=6).map(netstring),
    st.builds(
        lambda n, p: b"%d:%s" % (n, p), st.integers(-(10**12), 10**12), st.binary(max_size=6)
    ),
    st.sampled_from([b"-1:", b"-5:abc", b":", b"1", b"00:", b"+1:a", b" 1:a", b"1_0:", b"0x1:a"]),
    st.binary(max_size=6),
)
netstringish = st.lists(pieces, max_size=5).map(b"".join)


def _framed(data: bytes, payload: bytes) -> bytes:
    """``payload`` as a netstring, with its length written as in ``data`` where that
    has leading zeros (digits all the same, so they are accepted)."""
    digits = str(len(payload)).encode()
    while not data.startswith(digits + b":") and len(digits) < len(data):
        digits = b"0" + digits
    return digits + b":" + payload


@given(netstringish)
@FUZZ
def test_split_netstrings_of_any_bytes_returns_their_payloads_or_raises_corrupt_data(
    data: bytes,
) -> None:
    with interrupted_if_hung():
        try:
            payloads = split_netstrings(data, "field 'f' of 'key'")
        except CorruptDataError as exc:
            assert "'key'" in str(exc)
            return
    pos = 0
    for payload in payloads:
        framed = _framed(data[pos:], payload)
        assert data[pos:].startswith(framed)
        pos += len(framed)
    assert pos == len(data)


@given(netstringish, st.integers(0, 12))
@FUZZ
def test_read_netstring_of_any_bytes_advances_or_raises_corrupt_data(data: bytes, pos: int) -> None:
    with interrupted_if_hung():
        try:
            payload, after = read_netstring(data, pos, "field 'f' of 'key'")
        except CorruptDataError as exc:
            assert "'key'" in str(exc)
            return
    assert pos < after <= len(data)
    assert data[pos:after] == _framed(data[pos:], payload)


@given(netstringish)
@FUZZ
def test_parse_write_sub_of_any_bytes_returns_a_write_or_raises_corrupt_data(sub: bytes) -> None:
    try:
        task, idx = parse_write_sub(sub, "write index of 'key'")
    except CorruptDataError as exc:
        assert "'key'" in str(exc)
        return
    assert netstring(task) + str(idx).encode() == sub


def _record(refs: Any = b"", index: Any = (), record_format: int = 1) -> bytes:
    return pack([record_format, None, refs, 0, list(index), "msgpack", b"\x80", "msgpack", b"\x80"])


@given(
    st.one_of(
        st.binary(max_size=64),
        netstringish.map(lambda refs: _record(refs)),
        st.one_of(
            st.binary(max_size=24),
            st.lists(st.text(max_size=8), max_size=3).map(lambda refs: json.dumps(refs).encode()),
            st.integers(1, 3000).map(lambda depth: b"[" * depth + b"]" * depth),
        ).map(lambda refs: _record(refs, record_format=2)),
        st.tuples(st.binary(max_size=64), st.integers(0, 80), st.binary(max_size=4)).map(
            lambda t: (_record(netstring(b"1:a1")) + t[0])[: t[1]] + t[2]
        ),
    )
)
@FUZZ
def test_a_record_of_any_bytes_decodes_or_raises_corrupt_data_naming_its_key(data: bytes) -> None:
    with interrupted_if_hung():
        try:
            record = Record(data, "lg:{t}:c")
        except (CorruptDataError, SchemaVersionError) as exc:
            assert "lg:{t}:c" in str(exc)
            return
    assert all(isinstance(ref, bytes) for ref in record.refs)


# ================================================= part 2: damaged data, every read


@dataclass(frozen=True)
class Damage:
    """What to damage (``target``) and the new bytes, made from the stored ones."""

    target: str
    change: Callable[[bytes], bytes]
    label: str

    def __repr__(self) -> str:
        return f"Damage({self.target}, {self.label})"


#: msgpack headers whose counts or lengths promise far more than follows.
HUGE_HEADERS = [
    b"\xdd\xff\xff\xff\xf0", b"\xdc\xff\xff", b"\x9f", b"\xc6\xff\xff\xff\xff",
    b"\xdb\x7f\xff\xff\xff", b"\xda\xff\xff", b"\xc5\x00", b"\xd9", b"\xce\x01", b"\xbf",
]  # fmt: skip


def _mutations() -> st.SearchStrategy[tuple[Callable[[bytes], bytes], str]]:
    """Changes to any stored bytes: truncate, overwrite a byte, insert, replace."""
    truncate = st.integers(0, 200).map(lambda n: ((lambda b: b[:n]), f"truncated to {n}"))
    overwrite = st.tuples(st.integers(0, 200), st.integers(0, 255)).map(
        lambda t: (
            (lambda b: b[: t[0] % max(len(b), 1)] + bytes([t[1]]) + b[t[0] % max(len(b), 1) + 1 :]),
            f"byte {t[0]} := {t[1]}",
        )
    )
    insert = st.tuples(st.integers(0, 200), st.sampled_from(HUGE_HEADERS)).map(
        lambda t: ((lambda b: b[: t[0]] + t[1] + b[t[0] :]), f"insert {t[1]!r} at {t[0]}")
    )
    replace = st.one_of(st.binary(max_size=40), netstringish).map(
        lambda junk: ((lambda _b: junk), f"replaced by {junk!r}")
    )
    return st.one_of(truncate, overwrite, insert, replace)


def _header_item(position: int, raw: bytes) -> tuple[Callable[[bytes], bytes], str]:
    """A record whose item ``position`` is replaced by the raw bytes ``raw``."""

    def change(stored: bytes) -> bytes:
        items = unpack(stored)
        head = b"".join(pack(item) for item in items[:position])
        tail = b"".join(pack(item) for item in items[position + 1 :])
        return bytes([0x90 + len(items)]) + head + raw + tail

    return change, f"item {position} := {raw!r}"


def _record_refs(refs: bytes) -> tuple[Callable[[bytes], bytes], str]:
    return _header_item(2, pack(refs))[0], f"blob refs := {refs!r}"


def _format_1_refs(refs: bytes) -> tuple[Callable[[bytes], bytes], str]:
    """A record made format 1 (netstring refs, as whole-value savers write it) whose
    blob refs are ``refs``."""
    as_format_1 = _header_item(0, pack(1))[0]
    with_refs = _header_item(2, pack(refs))[0]
    return (lambda stored: with_refs(as_format_1(stored))), f"format 1, blob refs := {refs!r}"


#: JSON-like blob refs (record format 2): arrays of strings naming nothing stored, of
#: other types, objects, deep nesting, bytes that are not UTF-8, text that is not JSON.
jsonish = st.one_of(
    st.lists(st.text(max_size=12), max_size=4).map(lambda refs: json.dumps(refs).encode()),
    st.recursive(
        st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=6)),
        lambda inner: st.one_of(
            st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=4), inner, max_size=3)
        ),
        max_leaves=8,
    ).map(lambda value: json.dumps(value).encode()),
    st.integers(1, 3000).map(lambda depth: b"[" * depth + b"]" * depth),
    st.binary(max_size=24).map(lambda junk: b'["' + junk + b'"]'),
    st.binary(max_size=24),
)


DAMAGES = st.one_of(
    st.builds(lambda m: Damage("record", *m), _mutations()),
    st.builds(lambda refs: Damage("record", *_record_refs(refs)), jsonish),
    st.builds(lambda refs: Damage("record", *_format_1_refs(refs)), netstringish),
    st.builds(
        lambda pos, raw: Damage("record", *_header_item(pos, raw)),
        st.integers(0, 4),
        st.sampled_from(HUGE_HEADERS),
    ),
    st.builds(lambda m: Damage("index", *m), _mutations()),
    st.builds(lambda junk: Damage("index", lambda _b: junk, f"index := {junk!r}"), netstringish),
    st.builds(lambda m: Damage("write", *m), _mutations()),
    st.builds(lambda m: Damage("value", *m), _mutations()),
    st.builds(
        lambda junk: Damage("count", lambda _b: junk, f"count := {junk!r}"),
        st.sampled_from([b"x", b"", b"-", b"1e999", b"nan", b"\xff"]),
    ),
    st.builds(
        lambda junk: Damage("namespace", lambda _b: junk, f"namespace {junk!r}"), netstringish
    ),
)


@dataclass
class Thread:
    saver: PlainRedisSaver
    admin: Any
    c1: Any
    c2: Any

    @property
    def keys(self) -> Any:
        return self.saver._core.keys.thread("t")

    def fields(self) -> dict[str, tuple[str, bytes]]:
        """Where each damage target lives: (key, field)."""
        ns = netstring("ns")
        c1, c2 = (c["configurable"]["checkpoint_id"] for c in (self.c1, self.c2))
        base = ns + netstring(c1)
        keys = self.keys
        value = next(f for f in self.admin.hkeys(keys.blobs) if f.startswith(ns + netstring("b")))
        content = min(f for f in self.admin.hkeys(keys.blobs) if f.startswith(b"*"))
        return {
            "composed": (keys.writes, ns + netstring(c2) + netstring("task3") + b"0"),
            "content": (keys.blobs, content),
            "record": (keys.checkpoints, ns + c2.encode()),
            "index": (keys.writes, base),
            "write": (keys.writes, base + netstring("task") + b"0"),
            "value": (keys.blobs, value),
            "count": (keys.blobs, b"=" + ns),
            "namespace": (keys.namespaces, b""),
        }

    def damage(self, how: Damage) -> str:
        key, field = self.fields()[how.target]
        if how.target == "namespace":
            field = how.change(b"")
            self.admin.hset(key, field, 1)
        else:
            self.admin.hset(key, field, how.change(self.admin.hget(key, field)))
        return key


READS: dict[str, Callable[[Thread], Any]] = {
    "get_tuple-latest": lambda t: t.saver.get_tuple(config("t", "ns")),
    "get_tuple-c1": lambda t: t.saver.get_tuple(t.c1),
    "get_tuple-c2": lambda t: t.saver.get_tuple(t.c2),
    "list-thread": lambda t: list(t.saver.list(config("t", None))),
    "list-filter": lambda t: list(t.saver.list(config("t", None), filter={"step": 1})),
    "list-all-threads": lambda t: list(t.saver.list(None)),
    "delta-history": lambda t: t.saver.get_delta_channel_history(config=t.c2, channels=["a", "b"]),
    "copy_thread": lambda t: t.saver.copy_thread("t", f"copy{uuid.uuid4().hex[:6]}"),
    "delete_for_runs-other": lambda t: t.saver.delete_for_runs(["no such run"]),
    "audit_thread": lambda t: t.saver.audit_thread("t"),
    # The destructive ones last: they change what the reads above see.
    "repair_thread": lambda t: t.saver.repair_thread("t"),
    "delete_for_runs": lambda t: t.saver.delete_for_runs(["r"]),
    "prune-keep_latest": lambda t: t.saver.prune(["t"], strategy="keep_latest"),
}


def _timed_client(backend: Backend) -> Any:
    """The saver's client with a socket timeout: a script that loops fails the read
    with TimeoutError instead of blocking the test."""
    if backend.fake_server is not None:
        return backend.client()
    if backend.is_cluster:
        return redis.cluster.RedisCluster.from_url(backend.url or "", socket_timeout=HUNG_AFTER)
    return redis.Redis.from_url(backend.url or "", socket_timeout=HUNG_AFTER)


def arm_lua_budget(backend: Backend) -> None:
    """fakeredis runs scripts in this process, where no socket can time out: a Lua
    count hook stops the next script after 10**9 instructions (a bounded read of this
    data takes well under 10**6), so a loop fails the read instead of hanging it.
    Setting the hook again restarts its count."""
    if backend.fake_server is None:
        return
    runtime = getattr(backend.fake_server, "_lua_runtime", None)
    if runtime is not None:
        runtime.execute(f"debug.sethook(function() error('{LOOPS}') end, '', 1e9)")


LOOPS = "instruction budget exceeded: a decoder loops"


def _kill_runaway_script(admin: Any) -> None:
    with contextlib.suppress(redis.RedisError):
        admin.script_kill()


def _set_to(target: str, junk: bytes) -> Damage:
    return Damage(target, lambda _b: junk, f"{target} := {junk!r}")


#: The damage of the report (issue 11), tried first on every backend.
KNOWN = [
    _set_to("index", b"-3:abc"),  # negative length: the write index loop never ended
    _set_to("index", b"99999999999:a"),
    _set_to("index", b"1a:b"),
    _set_to("index", b"12"),  # no colon
    Damage("record", *_format_1_refs(b"-1:")),
    Damage("record", *_format_1_refs(b"4:1:a1-7:")),
    # Record format 2: blob refs that are not a JSON array of strings.
    Damage("record", *_record_refs(b"not json")),
    Damage("record", *_record_refs(b'{"1": "1:a1"}')),
    Damage("record", *_record_refs(b'["1:a1", 7]')),
    Damage("record", *_record_refs(b'["1:a1", null]')),
    Damage("record", *_record_refs(b'["1:a1", true]')),
    Damage("record", *_record_refs(b'["1:a1", ["1:a1"]]')),
    Damage("record", *_record_refs(b'["1:a1", NaN]')),  # cjson reads NaN; no table key
    Damage("record", *_record_refs(b"[" * 5000 + b"]" * 5000)),
    Damage("record", *_record_refs(b'["1:a\xff"]')),
    Damage("record", *_record_refs(b'["1:a9"]')),  # a value never stored
    Damage("record", *_header_item(4, b"\xdd\xff\xff\xff\xf0")),  # a huge array count
    Damage("record", lambda b: b[:6], "truncated msgpack header"),
    _set_to("write", b"\x94\xdb\x7f\xff\xff\xff"),
    _set_to("count", b"not a count"),
]

#: Damage to a composed write and to the content it references (storage schema 2).
COMPOSED_DAMAGES = st.one_of(
    st.builds(lambda m: Damage("composed", *m), _mutations()),
    st.builds(lambda m: Damage("content", *m), _mutations()),
)
KNOWN_COMPOSED = [
    _set_to("composed", b"\xc1\x01" + b"\x00" * 16),  # a reference to nothing stored
    _set_to("composed", b"\xc1\x00\xff\xff\xff\xff"),  # a literal longer than the value
    _set_to("content", b"\x01" + b"\x07" * 3),  # a node whose reference is cut short
]


def _known_examples(known: list[Damage]) -> Callable[[Callable[..., None]], Callable[..., None]]:
    def add(test: Callable[..., None]) -> Callable[..., None]:
        for how in reversed(known):
            test = example(how=how)(test)
        return test

    return add


@given(DAMAGES)
@FUZZ
@_known_examples(KNOWN)
def test_every_read_of_damaged_data_returns_or_raises_corrupt_data_naming_the_key(
    backend: Backend, admin: Any, how: Damage
) -> None:
    _every_read_returns_or_raises_corrupt_data_naming_the_key(backend, admin, how)


@given(COMPOSED_DAMAGES)
@FUZZ
@_known_examples(KNOWN_COMPOSED)
def test_every_read_of_damaged_composed_data_returns_or_raises_corrupt_data_naming_the_key(
    backend: Backend, admin: Any, how: Damage
) -> None:
    _every_read_returns_or_raises_corrupt_data_naming_the_key(backend, admin, how)


def _every_read_returns_or_raises_corrupt_data_naming_the_key(
    backend: Backend, admin: Any, how: Damage
) -> None:
    prefix = f"lgtest{uuid.uuid4().hex[:10]}"
    with contextlib.closing(_timed_client(backend)) as client:
        saver = PlainRedisSaver(client, key_prefix=prefix)
        c1, c2, _other = build(saver)
        # A write stored composed (storage schema 2): a tree of shared content.
        saver.put_writes(c2, [("h", [f"{i:03d} " + "h" * 90 for i in range(60)])], "task3")
        thread = Thread(saver, admin, c1, c2)
        key = thread.damage(how)
        for name, read in READS.items():
            arm_lua_budget(backend)
            try:
                with interrupted_if_hung():
                    read(thread)
            except CorruptDataError as exc:
                assert key in str(exc), f"{name} after {how}: error does not name {key}: {exc}"
            except Exception as exc:
                _kill_runaway_script(admin)
                pytest.fail(f"{name} after {how}: {type(exc).__name__}: {exc}", pytrace=False)
            assert client.ping(), f"the server does not answer after {name}"


# ============================================ part 3: foreign keys beside healthy ones


def _healthy(saver: PlainRedisSaver, *threads: str) -> list[Any]:
    return [
        saver.put(config(t), checkpoint({"a": t}), metadata(step=1, run_id="r"), {"a": 1})
        for t in threads
    ]


FOREIGN = {
    "non-utf8-key": lambda admin, p: admin.hset(f"{p}:{{".encode() + b"\xff}:c", "f", "v"),
    "foreign-hash": lambda admin, p: admin.hset(f"{p}:{{zz}}:c", "f", "v"),
    "string-at-records-key": lambda admin, p: admin.set(f"{p}:{{zz}}:c", "v"),
    "tag-never-written": lambda admin, p: admin.hset(f"{p}:{{a%41}}:c", "f", "v"),
    "key-with-trailing-text": lambda admin, p: admin.hset(f"{p}:{{a}}x}}:c", "f", "v"),
}


def _named_in(exc: CorruptDataError, kind: str, prefix: str) -> bool:
    text = str(exc)
    return {
        "non-utf8-key": "\\xff",
        "foreign-hash": f"{prefix}:{{zz}}:c",
        "string-at-records-key": f"{prefix}:{{zz}}:c",
        "tag-never-written": "a%41",
        "key-with-trailing-text": "a}x}",
    }[kind] in text


@pytest.mark.parametrize("kind", list(FOREIGN))
def test_list_of_all_threads_yields_every_healthy_checkpoint_then_names_a_foreign_key(
    saver: PlainRedisSaver, admin: Any, prefix: str, kind: str
) -> None:
    stored = _healthy(saver, "a", "b", "c")
    expected = [t.config for t in saver.list(None)]
    FOREIGN[kind](admin, prefix)
    seen = []
    with pytest.raises(CorruptDataError) as caught:
        for tup in saver.list(None):
            seen.append(tup.config)
    assert seen == expected and len(seen) == len(stored)
    assert _named_in(caught.value, kind, prefix), caught.value


@pytest.mark.parametrize("kind", list(FOREIGN))
def test_delete_for_runs_cleans_every_healthy_thread_then_names_a_foreign_key(
    saver: PlainRedisSaver, admin: Any, prefix: str, kind: str
) -> None:
    _healthy(saver, "a", "b", "c")
    FOREIGN[kind](admin, prefix)
    with pytest.raises(CorruptDataError) as caught:
        saver.delete_for_runs(["r"])
    assert _named_in(caught.value, kind, prefix), caught.value
    assert [saver.get_tuple(config(t)) for t in "abc"] == [None, None, None]


def test_one_report_names_every_damaged_thread_and_foreign_key(
    saver: PlainRedisSaver, admin: Any, prefix: str
) -> None:
    _healthy(saver, "a", "b")
    for kind in ("non-utf8-key", "string-at-records-key"):
        FOREIGN[kind](admin, prefix)
    with pytest.raises(CorruptDataError) as caught:
        list(saver.list(None))
    assert all(
        _named_in(caught.value, k, prefix) for k in ("non-utf8-key", "string-at-records-key")
    )


def test_prune_keeps_latest_of_healthy_threads_and_names_the_damaged_one(
    saver: PlainRedisSaver, admin: Any, prefix: str
) -> None:
    for _ in range(2):
        _healthy(saver, "a", "b")
    bad = saver._core.keys.thread("b")
    admin.hset(bad.blobs, b"=" + netstring(""), "not a count")
    with pytest.raises(CorruptDataError) as caught:
        saver.prune(["a", "b"], strategy="keep_latest")
    assert bad.blobs in str(caught.value)
    assert len(list(saver.list(config("a")))) == 1


def test_delta_history_of_a_parent_chain_that_loops_raises_corrupt_data(
    saver: PlainRedisSaver, admin: Any
) -> None:
    c1, c2, _other = build(saver)
    keys = saver._core.keys.thread("t")
    field = netstring("ns") + c1["configurable"]["checkpoint_id"].encode()
    items = unpack(admin.hget(keys.checkpoints, field))
    items[1] = c2["configurable"]["checkpoint_id"]  # c1 <- c2 <- c1 <- ...
    admin.hset(keys.checkpoints, field, pack(items))
    with interrupted_if_hung(), pytest.raises(CorruptDataError, match="loops") as caught:
        saver.get_delta_channel_history(config=c2, channels=["no such channel"])
    assert keys.checkpoints in str(caught.value)


async def test_async_list_of_all_threads_yields_the_healthy_threads_then_names_a_foreign_key(
    asaver: Any, admin: Any, prefix: str
) -> None:
    for t in ("a", "b"):
        await asaver.aput(config(t), checkpoint({"a": t}), metadata(step=1), {"a": 1})
    FOREIGN["non-utf8-key"](admin, prefix)
    seen = []
    with pytest.raises(CorruptDataError, match=r"\\xff"):
        async for tup in asaver.alist(None):
            seen.append(tup.config["configurable"]["thread_id"])
    assert sorted(seen) == ["a", "b"]


@pytest.mark.parametrize(
    "key",
    [b"lg:{\xff}:c", b"lg:{a%41}:c", b"lg:{a}x}:c", b"lg:{a{b}:o", b"lg:{}:c", b"lg:{a}:c:x"],
)
def test_thread_id_of_a_key_the_saver_never_names_is_none(key: bytes) -> None:
    assert Keyspace("lg").thread_id_of(key) is None


@pytest.mark.parametrize("thread_id", ["", "a", "%", "%7B", "{x}", "a}b", "é", "%25%7D"])
def test_thread_id_of_every_key_of_a_thread_is_its_id(thread_id: str) -> None:
    keyspace = Keyspace("lg")
    for key in keyspace.thread(thread_id):
        assert keyspace.thread_id_of(key.encode()) == thread_id
