"""Malformed input and damaged data.

Part 1 calls every public method, blocking and async, with malformed arguments and
checks the library's own exception class (InvalidConfigError, SerializationError) with a
message naming the problem, or the server's error for a value over its
``proto-max-bulk-len`` -- and that nothing under the key prefix changed. It runs on a
private valkey-server whose ``proto-max-bulk-len`` is lowered to 1 MB, so a 2 MB value
is enough.

Part 2 damages stored data by hand (truncated and random records, a record whose
fields are wrong, netstring lengths that are negative, past the end or not digits, a
parent chain that loops, each thread key holding the wrong Redis type, each thread key
evicted on its own, a write index naming a missing write) and checks that every read
either raises CorruptDataError naming the damaged key or still gives exactly the answer
it gave before: never a wrong answer, never a silent None, never a raw server error.

Cases that test_saver.py already covers exactly are left out.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis
import redis.asyncio
from redis.exceptions import RedisError

from plain_redis_saver import (
    AsyncPlainRedisSaver,
    CorruptDataError,
    InvalidConfigError,
    PlainRedisSaver,
    SerializationError,
    ValueTooLargeError,
)
from plain_redis_saver.codec import netstring, pack, unpack, write_sub
from plain_redis_saver.embedded import EmbeddedServer

from .conftest import Backend
from .helpers import add_saver_user, as_saver_user, checkpoint, config, metadata

MAX_BULK = 1024 * 1024
HUGE = "x" * (2 * MAX_BULK)


# =============================================================== part 1: bad input


@pytest.fixture(scope="module")
def small_server() -> Iterator[EmbeddedServer]:
    """A private server accepting at most 1 MB per argument."""
    with EmbeddedServer("valkey") as srv:
        with redis.Redis(host="127.0.0.1", port=srv.port) as admin:
            admin.config_set("proto-max-bulk-len", MAX_BULK)
            add_saver_user(admin)
        yield srv


def _user_url(srv: EmbeddedServer) -> str:
    return as_saver_user(srv.url)


@pytest.fixture
def small_admin(small_server: EmbeddedServer) -> Iterator[redis.Redis]:
    with redis.Redis.from_url(small_server.url) as admin:
        yield admin


def dump(admin: Any, prefix: str) -> dict[bytes, Any]:
    """Everything stored under the prefix, comparable with ==."""
    out: dict[bytes, Any] = {}
    for key in admin.scan_iter(match=f"{prefix}:*", count=1000):
        kind = admin.type(key)
        if kind == b"hash":
            out[key] = admin.hgetall(key)
        elif kind == b"zset":
            out[key] = admin.zrange(key, 0, -1, withscores=True)
        elif kind == b"string":
            out[key] = admin.get(key)
        else:
            out[key] = kind
    return out


class Stored:
    """Placeholder for the config of the stored checkpoint, filled in at run time."""


STORED = Stored()


@dataclass(frozen=True)
class Case:
    method: str
    args: tuple[Any, ...]
    kwargs: tuple[tuple[str, Any], ...]
    error: type[BaseException]
    match: str


def case(method: str, *args: Any, error: type[BaseException], match: str, **kwargs: Any) -> Case:
    return Case(method, args, tuple(kwargs.items()), error, match)


def _fill(value: Any, stored: Any) -> Any:
    return stored if value is STORED else value


async def _call_async(saver: AsyncPlainRedisSaver, c: Case, stored: Any) -> Any:
    args = [_fill(a, stored) for a in c.args]
    kwargs = {k: _fill(v, stored) for k, v in c.kwargs}
    if c.method == "list":
        return [t async for t in saver.alist(*args, **kwargs)]
    return await getattr(saver, "a" + c.method)(*args, **kwargs)


def _call_sync(saver: PlainRedisSaver, c: Case, stored: Any) -> Any:
    args = [_fill(a, stored) for a in c.args]
    kwargs = {k: _fill(v, stored) for k, v in c.kwargs}
    result = getattr(saver, c.method)(*args, **kwargs)
    return list(result) if c.method == "list" else result


@contextlib.contextmanager
def reported_briefly() -> Iterator[None]:
    """Report a failure by its message alone: pytest would otherwise spend ~0.4 s
    formatting each deep traceback of this large table."""
    try:
        yield
    except Exception as exc:
        pytest.fail(f"{type(exc).__name__}: {exc}", pytrace=False)


def _cfg(**conf: Any) -> Any:
    return {"configurable": conf}


#: config shapes every method taking a config must refuse, with the word naming what
#: is wrong. (The first seven are test_saver.py's BAD_CONFIGS.)
BAD_CONFIG_SHAPES: list[tuple[str, Any, str]] = [
    ("None", None, "config"),
    ("empty", {}, "configurable"),
    ("no-thread", _cfg(), "thread_id"),
    ("int-thread", _cfg(thread_id=1), "thread_id"),
    ("int-ns", _cfg(thread_id="t", checkpoint_ns=3), "checkpoint_ns"),
    ("int-id", _cfg(thread_id="t", checkpoint_id=5), "checkpoint_id"),
    ("str", "t", "config"),
    ("None-thread", _cfg(thread_id=None), "thread_id"),
    ("bytes-thread", _cfg(thread_id=b"t"), "thread_id"),
    ("list-thread", _cfg(thread_id=["t"]), "thread_id"),
    ("bytes-ns", _cfg(thread_id="t", checkpoint_ns=b""), "checkpoint_ns"),
    ("list-config", [("configurable", {"thread_id": "t"})], "config"),
    ("configurable-None", {"configurable": None}, "configurable"),
    ("configurable-str", {"configurable": "t"}, "configurable"),
    # A lone surrogate has no UTF-8 form (it comes from a bad decode upstream).
    ("surrogate-thread", _cfg(thread_id="t\ud800"), "thread_id.*Unicode"),
    ("surrogate-ns", _cfg(thread_id="t", checkpoint_ns="\udfff"), "checkpoint_ns.*Unicode"),
    ("surrogate-id", _cfg(thread_id="t", checkpoint_id="1\ud800"), "checkpoint_id.*Unicode"),
]
COVERED_BY_TEST_SAVER = {"None", "empty", "no-thread", "int-thread", "int-ns", "int-id", "str"}


def _config_cases() -> Iterator[Any]:
    cp = checkpoint({"a": 1})
    for name, bad, word in BAD_CONFIG_SHAPES:
        calls = {
            "put": case("put", bad, cp, metadata(), {"a": 1}, error=InvalidConfigError, match=word),
            "put_writes": case(
                "put_writes", bad, [("a", 1)], "task", error=InvalidConfigError, match=word
            ),
            "get_tuple": case("get_tuple", bad, error=InvalidConfigError, match=word),
            "list": case("list", bad, error=InvalidConfigError, match=word),
            "delta": case(
                "get_delta_channel_history",
                config=bad,
                channels=["a"],
                error=InvalidConfigError,
                match=word,
            ),
        }
        for method, c in calls.items():
            if method == "list" and bad is None:
                continue  # list(None) lists every thread
            for flavour in ("sync", "async"):
                if (
                    flavour == "sync"
                    and method in ("put", "get_tuple")
                    and name in COVERED_BY_TEST_SAVER
                ):
                    continue
                yield pytest.param(flavour, c, id=f"{flavour}-{method}-config-{name}")


def _bad_checkpoints() -> list[tuple[str, Any, Any, Any, str, Any]]:
    """(id, checkpoint, metadata, new_versions, word, marks)"""
    good = checkpoint({"a": 1})
    no_versions = {k: v for k, v in good.items() if k != "channel_versions"}
    return [
        ("checkpoint-None", None, metadata(), {}, "checkpoint", ()),
        ("checkpoint-str", "cp", metadata(), {}, "checkpoint", ()),
        ("checkpoint-without-id", {**good, "id": ""}, metadata(), {}, "id", ()),
        ("checkpoint-int-id", {**good, "id": 7}, metadata(), {}, "id", ()),
        (
            "checkpoint-without-channel_versions",
            no_versions,
            metadata(),
            {},
            "channel_versions",
            (),
        ),
        (
            "version-of-a-bad-type",
            checkpoint({"a": 1}, versions={"a": [1]}),
            metadata(),
            {"a": [1]},
            "version",
            (),
        ),
        (
            "channel-name-not-a-str",
            checkpoint({1: 1}, versions={1: 1}),
            metadata(),
            {1: 1},
            "channel",
            (),
        ),
        (
            "new_versions-not-a-dict",
            good,
            metadata(),
            [("a", 1)],
            "new_versions",
            (),
        ),
        (
            "metadata-None",
            good,
            None,
            {"a": 1},
            "metadata",
            (),
        ),
    ]


def _put_cases() -> Iterator[Any]:
    for name, cp, md, versions, word, marks in _bad_checkpoints():
        c = case("put", config("t"), cp, md, versions, error=InvalidConfigError, match=word)
        for flavour in ("sync", "async"):
            yield pytest.param(flavour, c, id=f"{flavour}-put-{name}", marks=marks)
    serial = [
        # (id, checkpoint, metadata, word, marks)
        ("metadata-value", checkpoint(), metadata(lock=threading.Lock()), "metadata", ()),
        (
            "metadata-int-over-64-bits",
            checkpoint(),
            metadata(big=2**70),
            "metadata",
            (),
        ),
    ]
    for name, cp, md, word, marks in serial:
        c = case("put", config("t"), cp, md, {}, error=SerializationError, match=word)
        for flavour in ("sync", "async"):
            yield pytest.param(flavour, c, id=f"{flavour}-put-unserializable-{name}", marks=marks)
    c = case(
        "put",
        config("t"),
        checkpoint({"a": threading.Lock()}),
        metadata(),
        {"a": 1},
        error=SerializationError,
        match="'a'",
    )
    yield pytest.param("async", c, id="async-put-unserializable-channel-value")


def _writes_cases() -> Iterator[Any]:
    rows: list[tuple[str, tuple[Any, ...], type[BaseException], str, Any]] = [
        ("channel-not-a-str", ([(1, 1)], "task"), InvalidConfigError, "channel", ()),
        ("task_id-None", ([("a", 1)], None), InvalidConfigError, "task_id", ()),
        ("task_id-int", ([("a", 1)], 3), InvalidConfigError, "task_id", ()),
        ("task_path-int", ([("a", 1)], "task", 3), InvalidConfigError, "task_path", ()),
        (
            "unserializable-value",
            ([("ok", 1), ("bad", threading.Lock())], "task"),
            SerializationError,
            "'bad'",
            (),
        ),
        (
            "writes-None",
            (None, "task"),
            InvalidConfigError,
            "writes",
            (),
        ),
        (
            "write-not-a-pair",
            ([("a",)], "task"),
            InvalidConfigError,
            "write",
            (),
        ),
    ]
    for name, args, error, word, marks in rows:
        c = case("put_writes", STORED, *args, error=error, match=word)
        for flavour in ("sync", "async"):
            yield pytest.param(flavour, c, id=f"{flavour}-put_writes-{name}", marks=marks)
    c = case("put_writes", config("t"), [("a", 1)], "task", error=InvalidConfigError, match="id")
    yield pytest.param("async", c, id="async-put_writes-without-checkpoint_id")


def _list_cases() -> Iterator[Any]:
    rows: list[tuple[str, dict[str, Any], type[BaseException], str, bool]] = [
        # (id, kwargs, error, word, covered by test_saver for the sync saver)
        ("filter-list", {"filter": [("step", 1)]}, InvalidConfigError, "filter", False),
        ("filter-key-int", {"filter": {1: 1}}, InvalidConfigError, "filter key", False),
        (
            "filter-value-unserializable",
            {"filter": {"k": threading.Lock()}},
            SerializationError,
            "metadata value",
            False,
        ),
        ("before-str", {"before": "x"}, InvalidConfigError, "before", False),
        (
            "before-configurable-None",
            {"before": {"configurable": None}},
            InvalidConfigError,
            "before",
            False,
        ),
        ("before-int-id", {"before": _cfg(checkpoint_id=3)}, InvalidConfigError, "before", False),
        ("limit-bool", {"limit": True}, InvalidConfigError, "limit", False),
        ("limit-very-negative", {"limit": -5}, InvalidConfigError, "limit", False),
        ("limit-negative", {"limit": -1}, InvalidConfigError, "limit", True),
        ("limit-str", {"limit": "3"}, InvalidConfigError, "limit", True),
        ("limit-float", {"limit": 1.5}, InvalidConfigError, "limit", True),
    ]
    for name, kwargs, error, word, covered in rows:
        for target_name, target in (("thread", config("t")), ("all", None)):
            c = case("list", target, error=error, match=word, **kwargs)
            for flavour in ("sync", "async"):
                if covered and flavour == "sync" and target_name == "thread":
                    continue
                yield pytest.param(flavour, c, id=f"{flavour}-list-{target_name}-{name}")


def _maintenance_cases() -> Iterator[Any]:
    rows: list[tuple[str, Case, bool, Any]] = [
        # (id, case, covered by test_saver for the sync saver, marks)
        *(
            (
                f"delete_thread-{n}",
                case("delete_thread", v, error=InvalidConfigError, match="thread_id"),
                False,
                (),
            )
            for n, v in (("int", 1), ("None", None), ("bytes", b"t"), ("list", ["t"]))
        ),
        *(
            (
                f"{method}-surrogate",
                case(method, *args, error=InvalidConfigError, match="Unicode"),
                False,
                (),
            )
            for method, args in (
                ("delete_thread", ("t\ud800",)),
                ("delete_for_runs", (["r\ud800"],)),
                ("copy_thread", ("t", "x\udc80")),
                ("prune", (["t\ud800"],)),
            )
        ),
        *(
            (
                f"delete_for_runs-{n}",
                case("delete_for_runs", v, error=InvalidConfigError, match="run_ids"),
                False,
                (),
            )
            for n, v in (("str", "r"), ("bytes", b"r"), ("None", None), ("int", 3))
        ),
        *(
            (
                f"delete_for_runs-element-{n}",
                case("delete_for_runs", [v], error=InvalidConfigError, match="run_ids"),
                False,
                (),
            )
            for n, v in (("int", 1), ("None", None), ("bytes", b"r"))
        ),
        *(
            (
                f"copy_thread-{n}",
                case("copy_thread", *args, error=InvalidConfigError, match=word),
                False,
                (),
            )
            for n, args, word in (
                ("source-int", (1, "x"), "source_thread_id"),
                ("source-bytes", (b"t", "x"), "source_thread_id"),
                ("target-None", ("t", None), "target_thread_id"),
                ("target-list", ("t", ["x"]), "target_thread_id"),
            )
        ),
        ("prune-str", case("prune", "t", error=InvalidConfigError, match="list"), True, ()),
        (
            "prune-None",
            case("prune", None, error=InvalidConfigError, match="thread_ids"),
            False,
            (),
        ),
        (
            "prune-element-int",
            case("prune", [1], error=InvalidConfigError, match="thread_ids"),
            False,
            (),
        ),
        *(
            (
                f"prune-strategy-{n}",
                case("prune", ["t"], strategy=v, error=InvalidConfigError, match="strategy"),
                n == "keep_last",
                (),
            )
            for n, v in (
                ("keep_last", "keep_last"),
                ("None", None),
                ("list", ["delete"]),
                ("upper-case", "DELETE"),
            )
        ),
        (
            "delta-channel-int",
            case(
                "get_delta_channel_history",
                config=config("t"),
                channels=[1],
                error=InvalidConfigError,
                match="channel",
            ),
            False,
            (),
        ),
        (
            "delta-channels-None",
            case(
                "get_delta_channel_history",
                config=config("t"),
                channels=None,
                error=InvalidConfigError,
                match="channels",
            ),
            False,
            (),
        ),
        (
            "delta-channels-str",
            case(
                "get_delta_channel_history",
                config=config("t"),
                channels="ab",
                error=InvalidConfigError,
                match="channels",
            ),
            False,
            (),
        ),
    ]
    for name, c, covered, marks in rows:
        for flavour in ("sync", "async"):
            if covered and flavour == "sync":
                continue
            yield pytest.param(flavour, c, id=f"{flavour}-{name}", marks=marks)


#: The server answers a too long argument with "Protocol error: invalid bulk length" and
#: closes the connection; a client still sending the rest of the value may see the
#: reset instead (ConnectionError). Either way nothing is stored.
TOO_LONG = r"bulk length|Connection|connection|reset|Broken pipe"


def _huge_cases() -> Iterator[Any]:
    rows = [
        ("put-channel-value", ("put", config("t"), checkpoint({"a": HUGE}), metadata(), {"a": 1})),
        ("put-metadata-value", ("put", config("t"), checkpoint(), metadata(note=HUGE), {})),
        ("put_writes-value", ("put_writes", STORED, [("a", 1), ("b", HUGE)], "task")),
    ]
    for name, (method, *args) in rows:
        c = case(method, *args, error=RedisError, match=TOO_LONG)
        for flavour in ("sync", "async"):
            yield pytest.param(flavour, c, id=f"{flavour}-over-proto-max-bulk-len-{name}")


#: Over the saver's default max_value_size (8 MiB): refused before anything is sent.
OVER_MAX_VALUE = b"x" * (8 * 2**20 + 1)


def _too_large_cases() -> Iterator[Any]:
    rows = [
        (
            "put-channel-value",
            case(
                "put", config("t"), checkpoint({"big": OVER_MAX_VALUE}), metadata(), {"big": 2},
                error=ValueTooLargeError, match="channel 'big'.*max_value_size",
            ),
        ),
        (
            "put-metadata",
            case(
                "put", config("t"), checkpoint(), metadata(note=OVER_MAX_VALUE), {},
                error=ValueTooLargeError, match="metadata.*max_value_size",
            ),
        ),
        (
            "put_writes-value",
            case(
                "put_writes", STORED, [("a", 1), ("b", OVER_MAX_VALUE)], "task",
                error=ValueTooLargeError, match="write 1 to channel 'b'.*max_value_size",
            ),
        ),
    ]  # fmt: skip
    for name, c in rows:
        for flavour in ("sync", "async"):
            yield pytest.param(flavour, c, id=f"{flavour}-over-max_value_size-{name}")


ALL_CASES = [
    *_too_large_cases(),
    *_config_cases(),
    *_put_cases(),
    *_writes_cases(),
    *_list_cases(),
    *_maintenance_cases(),
    *_huge_cases(),
]


@pytest.mark.parametrize(("flavour", "bad"), ALL_CASES)
def test_bad_input_raises_a_named_error_and_changes_nothing(
    small_server: EmbeddedServer, small_admin: redis.Redis, flavour: str, bad: Case
) -> None:
    prefix = f"lgtestb{uuid.uuid4().hex[:10]}"
    url = _user_url(small_server)
    with redis.Redis.from_url(url) as client:
        baseline = PlainRedisSaver(client, key_prefix=prefix)
        first = checkpoint({"a": 1})
        stored = baseline.put(config("t"), first, metadata(run_id="r"), first["channel_versions"])
        baseline.put_writes(stored, [("w", 1)], "task")
        before = dump(small_admin, prefix)
        if flavour == "sync":
            with reported_briefly(), pytest.raises(bad.error, match=bad.match):
                _call_sync(baseline, bad, stored)
        else:

            async def run() -> None:
                aclient = redis.asyncio.Redis.from_url(url)
                try:
                    saver = AsyncPlainRedisSaver(aclient, key_prefix=prefix)
                    with pytest.raises(bad.error, match=bad.match):
                        await _call_async(saver, bad, stored)
                finally:
                    await aclient.aclose()

            with reported_briefly():
                asyncio.run(run())
    assert dump(small_admin, prefix) == before


# ------------------------------------------------------------------ constructor


CONSTRUCTOR_CASES = [
    pytest.param({"key_prefix": None}, "key_prefix", id="key_prefix-None"),
    pytest.param({"key_prefix": ""}, "key_prefix", id="key_prefix-empty"),
    pytest.param({"key_prefix": b"lg"}, "key_prefix", id="key_prefix-bytes"),
    pytest.param({"key_prefix": 7}, "key_prefix", id="key_prefix-int"),
    pytest.param({"refresh_on_read": "yes"}, "refresh_on_read", id="refresh_on_read-str"),
    pytest.param({"refresh_on_read": None}, "refresh_on_read", id="refresh_on_read-None"),
    pytest.param({"ttl": "1h"}, "ttl", id="ttl-str"),
    pytest.param(
        {"ttl": float("inf")},
        "ttl",
        id="ttl-infinite",
    ),
    pytest.param({"max_checkpoints": "3"}, "max_checkpoints", id="max_checkpoints-str"),
    pytest.param({"max_value_size": 0}, "max_value_size", id="max_value_size-zero"),
    pytest.param({"max_value_size": "8MB"}, "max_value_size", id="max_value_size-str"),
    pytest.param({"wait_replicas": -1}, "wait_replicas", id="wait_replicas-negative"),
    pytest.param({"wait_replicas": True}, "wait_replicas", id="wait_replicas-bool"),
    pytest.param({"wait_replicas": "1"}, "wait_replicas", id="wait_replicas-str"),
    pytest.param({"wait_timeout": 0}, "wait_timeout", id="wait_timeout-zero"),
    pytest.param({"wait_timeout": "1"}, "wait_timeout", id="wait_timeout-str"),
    pytest.param(
        {"wait_timeout": float("inf")},
        "wait_timeout",
        id="wait_timeout-infinite",
    ),
    pytest.param({"compose_values": 1}, "compose_values", id="compose_values-int"),
    pytest.param(
        {"content_cache_bytes": -1}, "content_cache_bytes", id="content_cache_bytes-negative"
    ),
    pytest.param(
        {"content_cache_bytes": "32MB"}, "content_cache_bytes", id="content_cache_bytes-str"
    ),
    pytest.param(
        {"content_cache_bytes": False}, "content_cache_bytes", id="content_cache_bytes-bool"
    ),
    pytest.param({"reference_counts": 0}, "reference_counts", id="reference_counts-int"),
    pytest.param(
        {"reference_counts": False, "compose_values": False},
        "needs compose_values=True",
        id="reference_counts-off-with-whole-values",
    ),
]


@pytest.mark.parametrize("saver_class", [PlainRedisSaver, AsyncPlainRedisSaver])
@pytest.mark.parametrize(("options", "word"), CONSTRUCTOR_CASES)
def test_bad_constructor_option_is_refused(
    small_server: EmbeddedServer, saver_class: Any, options: dict[str, Any], word: str
) -> None:
    # Each saver gets its own kind of client (no connection is made here).
    make = redis.asyncio.Redis if saver_class is AsyncPlainRedisSaver else redis.Redis
    with pytest.raises(InvalidConfigError, match=word):
        saver_class(make.from_url(_user_url(small_server)), **options)


@pytest.mark.parametrize("saver_class", [PlainRedisSaver, AsyncPlainRedisSaver])
def test_a_url_instead_of_a_client_is_refused(saver_class: Any) -> None:
    with pytest.raises(InvalidConfigError, match="client"):
        saver_class("redis://127.0.0.1:6379/0")


def test_a_ttl_the_server_cannot_set_is_refused_before_anything_is_written(
    small_server: EmbeddedServer, small_admin: redis.Redis
) -> None:
    prefix = f"lgtestb{uuid.uuid4().hex[:10]}"
    with redis.Redis.from_url(_user_url(small_server)) as client:
        try:
            with pytest.raises(InvalidConfigError, match="ttl"):
                saver = PlainRedisSaver(client, key_prefix=prefix, ttl=1e16)
                saver.put(config("t"), checkpoint({"a": 1}), metadata(), {"a": 1})
        finally:
            written = dump(small_admin, prefix)
    assert written == {}


# =============================================================== part 2: damaged data

#: The two Lua engines; 'redis' and 'cluster' run the same scripts as 'valkey'.
CORRUPTION_BACKENDS = ("valkey", "fakeredis")


@dataclass
class Damaged:
    saver: PlainRedisSaver
    admin: Any
    c1: Any
    c2: Any
    other: Any
    #: the thread the last copy_thread-then-read copied into
    copy: str | None = None

    @property
    def keys(self) -> Any:
        return self.saver._core.keys.thread("t")

    def record_field(self, cfg: Any) -> bytes:
        return netstring("ns") + cfg["configurable"]["checkpoint_id"].encode()


def build(saver: PlainRedisSaver) -> tuple[Any, Any, Any]:
    """Thread 't': c1 <- c2 in namespace 'ns' (values, metadata, writes on both) and
    one checkpoint in the root namespace."""
    va, vb = saver.get_next_version(None, None), saver.get_next_version(None, None)
    cp1 = checkpoint({"a": "A", "b": "B"}, versions={"a": va, "b": vb})
    c1 = saver.put(config("t", "ns"), cp1, metadata(step=0, run_id="r"), {"a": va, "b": vb})
    saver.put_writes(c1, [("a", "w1"), ("b", 2)], "task")
    vb2 = saver.get_next_version(vb, None)
    cp2 = checkpoint({"a": "A", "b": "B2"}, versions={"a": va, "b": vb2})
    c2 = saver.put(c1, cp2, metadata(step=1, run_id="r"), {"b": vb2})
    saver.put_writes(c2, [("a", "w2")], "task2", "~0")
    other = saver.put(config("t"), checkpoint({"a": 0}), metadata(step=5), {"a": 1})
    return c1, c2, other


def view(tup: Any) -> Any:
    """A tuple without the thread it is filed under (copies compare with originals)."""
    if tup is None:
        return None
    conf = dict(tup.config["configurable"])
    conf.pop("thread_id")
    parent = tup.parent_config and tup.parent_config["configurable"]["checkpoint_id"]
    return (conf, tup.checkpoint, tup.metadata, parent, tup.pending_writes)


_copies = iter(range(10**9))

READS: dict[str, Callable[[Damaged], Any]] = {
    "get_tuple-latest": lambda d: view(d.saver.get_tuple(config("t", "ns"))),
    "get_tuple-c1": lambda d: view(d.saver.get_tuple(d.c1)),
    "list-thread": lambda d: [view(t) for t in d.saver.list(config("t", None))],
    "list-all-threads": lambda d: [view(t) for t in d.saver.list(None)],
    "list-filter": lambda d: [view(t) for t in d.saver.list(config("t", None), filter={"step": 1})],
    "delta-history": lambda d: d.saver.get_delta_channel_history(config=d.c2, channels=["a", "b"]),
    "copy_thread-then-read": lambda d: _copy_and_read(d),
}


def _copy_and_read(d: Damaged) -> Any:
    target = f"copy{next(_copies)}"
    try:
        d.saver.copy_thread("t", target)
    except CorruptDataError as exc:
        exc.during_copy = True  # type: ignore[attr-defined]
        raise
    d.copy = target
    c2 = config(target, "ns", d.c2["configurable"]["checkpoint_id"])
    return (
        [view(t) for t in d.saver.list(config(target, None))],
        d.saver.get_delta_channel_history(config=c2, channels=["a", "b"]),
    )


def _rewrite_record(d: Damaged, change: Callable[[list[Any]], None]) -> str:
    field = d.record_field(d.c2)
    items = unpack(d.admin.hget(d.keys.checkpoints, field))
    change(items)
    d.admin.hset(d.keys.checkpoints, field, pack(items))
    return d.keys.checkpoints


def _set_item(index: int, value: Any) -> Callable[[Damaged], str]:
    def damage(d: Damaged) -> str:
        def change(items: list[Any]) -> None:
            items[index] = value

        return _rewrite_record(d, change)

    return damage


def _truncate(cut: Callable[[int], int]) -> Callable[[Damaged], str]:
    def damage(d: Damaged) -> str:
        field = d.record_field(d.c2)
        raw = d.admin.hget(d.keys.checkpoints, field)
        d.admin.hset(d.keys.checkpoints, field, raw[: cut(len(raw))])
        return d.keys.checkpoints

    return damage


def _random_record(seed: int) -> Callable[[Damaged], str]:
    def damage(d: Damaged) -> str:
        rng = random.Random(seed)
        junk = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 120)))
        d.admin.hset(d.keys.checkpoints, d.record_field(d.c2), junk)
        return d.keys.checkpoints

    return damage


def _wrong_type(index: int) -> Callable[[Damaged], str]:
    def damage(d: Damaged) -> str:
        key = d.keys[index]
        d.admin.unlink(key)
        d.admin.set(key, b"not what the saver wrote")
        return str(key)

    return damage


def _evict_values(d: Damaged) -> str:
    d.admin.unlink(d.keys.blobs)  # volatile-lru evicts whole keys
    return d.keys.blobs


def _evict(index: int) -> Callable[[Damaged], str]:
    def damage(d: Damaged) -> str:
        key = d.keys[index]
        d.admin.unlink(key)  # volatile-lru evicts whole keys, one at a time
        return str(key)

    return damage


def _set_index(junk: bytes) -> Callable[[Damaged], str]:
    def damage(d: Damaged) -> str:
        base = netstring("ns") + netstring(d.c1["configurable"]["checkpoint_id"])
        d.admin.hset(d.keys.writes, base, junk)
        return d.keys.writes

    return damage


def _add_namespace(junk: bytes) -> Callable[[Damaged], str]:
    def damage(d: Damaged) -> str:
        d.admin.hset(d.keys.namespaces, junk, 1)
        return d.keys.namespaces

    return damage


def _drop_a_write(d: Damaged) -> str:
    base = netstring("ns") + netstring(d.c1["configurable"]["checkpoint_id"])
    field = base + write_sub("task", 0)
    assert d.admin.hdel(d.keys.writes, field) == 1  # the index still names it
    return d.keys.writes


DAMAGES: dict[str, Callable[[Damaged], str]] = {
    "record-truncated-to-3-bytes": _truncate(lambda n: 3),
    "record-truncated-to-10-bytes": _truncate(lambda n: 10),
    "record-truncated-to-half": _truncate(lambda n: n // 2),
    "record-missing-its-last-byte": _truncate(lambda n: n - 1),
    **{f"record-random-bytes-{seed}": _random_record(seed) for seed in range(4)},
    "record-format-str": _set_item(0, "1"),
    "record-parent-int": _set_item(1, 5),
    "record-refs-not-netstrings": _set_item(2, b"garbage"),
    "record-depth-str": _set_item(3, "deep"),
    "record-metadata-index-not-a-list": _set_item(4, "x"),
    "record-checkpoint-bytes-random": _set_item(6, b"\x01\x02garbage"),
    "record-checkpoint-type-unknown": _set_item(5, "nonsense"),
    "record-metadata-bytes-random": _set_item(8, b"\xc1"),
    **{f"wrong-type-{s}": _wrong_type(i) for i, s in enumerate("cobwn")},
    "channel-values-evicted": _evict_values,
    "records-evicted": _evict(0),
    "order-evicted": _evict(1),
    "writes-evicted": _evict(3),
    "namespaces-evicted": _evict(4),
    "write-index-names-a-missing-write": _drop_a_write,
    "record-refs-negative-length": _set_item(2, b"-4:"),
    "record-refs-length-past-the-end": _set_item(2, b"900:a"),
    "record-refs-no-colon": _set_item(2, b"12"),
    "write-index-negative-length": _set_index(b"-3:abc"),
    "write-index-non-digit-length": _set_index(b"1a:b"),
    "write-index-length-past-the-end": _set_index(b"99999999999:a"),
    "namespace-empty": _add_namespace(b""),
    "namespace-not-a-netstring": _add_namespace(b"-1:"),
}


def _corruption_params() -> Iterator[Any]:
    for damage in DAMAGES:
        for read in READS:
            yield pytest.param(damage, read, id=f"{damage}-{read}")


@pytest.mark.parametrize("backend", CORRUPTION_BACKENDS, indirect=True)
@pytest.mark.parametrize(("damage", "read"), list(_corruption_params()))
def test_damaged_data_raises_an_error_naming_the_key_or_reads_as_before(
    backend: Backend, prefix: str, damage: str, read: str
) -> None:
    with (
        contextlib.closing(backend.client()) as client,
        contextlib.closing(backend.admin_client()) as admin,
        reported_briefly(),
    ):
        check_damage(backend, client, admin, prefix, damage, read)


def check_damage(
    backend: Backend, client: Any, admin: Any, prefix: str, damage: str, read: str
) -> None:
    saver = PlainRedisSaver(client, key_prefix=prefix)
    c1, c2, other = build(saver)
    d = Damaged(saver, admin, c1, c2, other)
    before = READS[read](d)
    key = DAMAGES[damage](d)
    try:
        after = READS[read](d)
    except CorruptDataError as exc:
        # Reading a copy of damaged data may name the copy's key; copy_thread itself
        # must name the key it read.
        named = {key}
        if d.copy is not None and not getattr(exc, "during_copy", False):
            named.add(key.replace("{t}", "{" + d.copy + "}"))
        assert any(k in str(exc) for k in named), f"error does not name {named}: {exc}"
        return
    assert after == before, f"{read} answered differently after {damage}, without an error"
