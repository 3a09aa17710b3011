"""The rules of managed services (ElastiCache Serverless, MemoryDB, Memorystore),
checked on what the saver really sends."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
import redis.connection
from redis.cluster import key_slot

from plain_redis_saver import codec
from plain_redis_saver.scripts import ALL_SCRIPTS

from .conftest import Backend
from .helpers import checkpoint, config, metadata, put_chain

FORBIDDEN = {
    "KEYS",
    "CONFIG",
    "MODULE",
    "FUNCTION",
    "DEBUG",
    "TIME",
    "RANDOMKEY",
    "FLUSHALL",
    "FLUSHDB",
    "SRANDMEMBER",
    "SPOP",
    "SHUTDOWN",
    "MONITOR",
    "SAVE",
    "BGSAVE",
}
SCRIPT_COMMANDS = {
    "HSET",
    "HSETNX",
    "HGET",
    "HMGET",
    "HDEL",
    "HKEYS",
    "HEXISTS",
    "HINCRBY",
    "HGETALL",
    "HSCAN",
    "ZADD",
    "ZREM",
    "ZRANGEBYLEX",
    "ZREVRANGEBYLEX",
    "PEXPIRE",
    "PERSIST",
    "PTTL",
    "UNLINK",
    "RENAME",
}


# ------------------------------------------------------------------ the scripts as written


@pytest.mark.parametrize("script", ALL_SCRIPTS, ids=lambda s: s.name)
def test_script_calls_only_allowed_commands(script: Any) -> None:
    called = set(re.findall(r"rcall\('([A-Z]+)'", script.source))
    assert called <= SCRIPT_COMMANDS and not called & FORBIDDEN


@pytest.mark.parametrize("script", ALL_SCRIPTS, ids=lambda s: s.name)
def test_script_touches_only_keys_passed_in_keys(script: Any) -> None:
    key_args = re.findall(r"rcall\('[A-Z]+', ([^,)]+)", script.source)
    # KEYS[i] is touch()'s loop over KEYS[1..5]; `key` is the helpers' parameter;
    # KEYS[6..10] are the staged keys of a commit (KEYS[5 + i] its loop over them).
    own = {f"KEYS[{i}]" for i in range(1, 11)}
    assert set(key_args) <= own | {"KEYS[i]", "KEYS[5 + i]", "key"}


@pytest.mark.parametrize("script", ALL_SCRIPTS, ids=lambda s: s.name)
def test_script_has_no_randomness_or_clock(script: Any) -> None:
    assert not re.search(r"math\.random|os\.time|os\.clock|'TIME'", script.source)


# ------------------------------------------------------------------ what goes on the wire


class Wire:
    """Every request the client sends, as argument tuples."""

    def __init__(self) -> None:
        self.requests: list[tuple[Any, ...]] = []


@pytest.fixture
def wire() -> Iterator[Wire]:
    seen = Wire()
    serializers = (redis.connection.PythonRespSerializer, redis.connection.HiredisRespSerializer)
    originals = [cls.pack for cls in serializers]

    def recording(original: Any) -> Any:
        def pack(self: Any, *args: Any) -> Any:
            seen.requests.append(args)
            return original(self, *args)

        return pack

    for cls, original in zip(serializers, originals, strict=True):
        cls.pack = recording(original)  # type: ignore[method-assign]
    try:
        yield seen
    finally:
        for cls, original in zip(serializers, originals, strict=True):
            cls.pack = original  # type: ignore[method-assign]


def _name(arg: Any) -> str:
    return (arg.decode() if isinstance(arg, bytes) else str(arg)).upper()


def big_workload(saver: Any) -> None:
    wide = checkpoint({f"c{i}": i for i in range(2500)})
    stored = saver.put(config("wide"), wide, metadata(), wide["channel_versions"])
    saver.put_writes(stored, [(f"w{i}", i) for i in range(2500)], "task")
    saver.copy_thread("wide", "copy")
    saver.delete_for_runs([f"run-{i}" for i in range(5000)])
    assert len(saver.get_tuple(config("copy")).checkpoint["channel_values"]) == 2500


def test_no_request_carries_more_than_3999_arguments(saver: Any, wire: Wire) -> None:
    big_workload(saver)
    assert 0 < max(len(args) for args in wire.requests) <= 3999


def test_no_forbidden_command_is_sent(saver: Any, wire: Wire) -> None:
    saver.setup()
    big_workload(saver)
    stored = put_chain(saver, "t", 3, run_id="r")
    list(saver.list(None, filter={"run_id": "r"}))
    saver.get_delta_channel_history(config=stored[-1], channels=["n"])
    saver.prune(["t"])
    saver.delete_thread("t")
    sent = {_name(args[0]) for args in wire.requests}
    assert "EVALSHA" in sent and sent & FORBIDDEN == set()


# ------------------------------------------------------------------ key audit


class Monitor:
    """Records the server's MONITOR feed: top-level commands and those run by scripts."""

    def __init__(self, url: str) -> None:
        self.lines: list[dict[str, Any]] = []
        self._client = redis.Redis.from_url(url)
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._ready.wait(5)

    def _run(self) -> None:
        with self._client.monitor() as mon:
            self._ready.set()
            try:
                for line in mon.listen():
                    self.lines.append(line)
                    if line["command"].startswith("ECHO monitor-end"):
                        return
            except redis.ConnectionError:
                return

    def stop(self, client: Any) -> list[dict[str, Any]]:
        client.echo("monitor-end")
        self._thread.join(5)
        return self.lines


def audit_thread_ids() -> list[str]:
    return ["alpha", "beta", "gamma"]


def test_every_key_a_script_touches_is_declared_and_in_one_slot(
    backend: Backend, saver: Any, admin: Any, prefix: str
) -> None:
    if backend.name not in ("valkey", "redis"):
        pytest.skip("MONITOR audit runs on a standalone server")
    monitor = Monitor(backend.admin_url or "")
    for tid in audit_thread_ids():
        stored = put_chain(saver, tid, 4, ns="sub", run_id=f"run-{tid}")
        saver.put_writes(stored[-1], [("a", 1), ("__interrupt__", 2)], "task", "~0")
        saver.get_tuple(config(tid, "sub"))
        list(saver.list(config(tid, None), filter={"step": 1}, limit=2))
        saver.get_delta_channel_history(config=stored[-1], channels=["n"])
    saver.copy_thread("alpha", "delta")
    list(saver.list(None, limit=3))
    saver.delete_for_runs(["run-beta"])
    saver.prune(["gamma"])
    saver.prune(["delta"], strategy="delete")
    saver.delete_thread("alpha")
    lines = monitor.stop(admin)

    declared: list[str] = []
    violations = []
    script_calls = 0
    for line in lines:
        words = line["command"].split(" ")
        name = words[0].upper()
        if line["client_type"] == "lua":
            key = words[1] if len(words) > 1 else ""
            if name not in SCRIPT_COMMANDS or key not in declared:
                violations.append(line["command"][:120])
        elif name in ("EVALSHA", "EVAL"):
            script_calls += 1
            declared = words[3 : 3 + int(words[2])]
            if not declared or len({key_slot(k.encode()) for k in declared}) != 1:
                violations.append(line["command"][:120])
        elif name in ("UNLINK", "DEL") and len({key_slot(k.encode()) for k in words[1:]}) != 1:
            violations.append(line["command"][:120])
    assert script_calls > 20 and violations == []


# ------------------------------------------------------------------ bounded work


HUGE = 100_000


def build_huge_thread(saver: Any, client: Any, thread_id: str) -> None:
    """A thread of HUGE checkpoints written straight into its keys (fast to build)."""
    keys = saver._core.keys.thread(thread_id)
    ns = codec.netstring("")
    ref = codec.blob_ref("state", "1")
    digest = saver._core.canonical("run-1")
    pipe = client.pipeline(transaction=False)
    ids = [f"{i:08d}" for i in range(HUGE)]
    for start in range(0, HUGE, 2000):
        part = ids[start : start + 2000]
        records = {}
        for cid in part:
            records[ns + cid.encode()] = codec.encode_record(
                parent_id=None,
                framed_refs=codec.netstring(ref),
                meta_index=["run_id", digest],
                checkpoint=saver.serde.dumps_typed({"id": cid}),
                metadata=saver.serde.dumps_typed({"run_id": "run-1"}),
            )
        pipe.hset(keys.checkpoints, mapping=records)
        pipe.zadd(keys.order, dict.fromkeys(records, 0))
    pipe.hset(
        keys.blobs,
        mapping={
            ns + ref: codec.encode_blob(saver.serde.dumps_typed("v")),
            b"#" + ns + ref: HUGE,  # references to the value
            b"=" + ns: HUGE,  # checkpoints in the namespace
        },
    )
    pipe.hset(keys.namespaces, ns, 1)
    pipe.execute()


@pytest.fixture
def slowlog(backend: Backend, admin: Any) -> Iterator[Any]:
    if backend.name not in ("valkey", "redis"):
        pytest.skip("SLOWLOG is read on a standalone server")
    old = admin.config_get("slowlog-log-slower-than")["slowlog-log-slower-than"]
    admin.config_set("slowlog-log-slower-than", 50_000)  # microseconds
    yield admin
    admin.config_set("slowlog-log-slower-than", old)


def slow_calls(client: Any) -> list[Any]:
    return [(e["duration"], e["command"][:60]) for e in client.slowlog_get(128)]


@pytest.mark.parametrize("operation", ["prune", "delete_for_runs", "delete_thread"])
def test_cleaning_a_thread_of_100000_checkpoints_never_blocks_for_50ms(
    saver: Any, slowlog: Any, operation: str
) -> None:
    build_huge_thread(saver, slowlog, "huge")
    slowlog.slowlog_reset()
    started = time.perf_counter()
    if operation == "prune":
        saver.prune(["huge"])
    elif operation == "delete_for_runs":
        saver.delete_for_runs(["run-1"])
    else:
        saver.delete_thread("huge")
    assert slow_calls(slowlog) == [], f"took {time.perf_counter() - started:.1f}s in all"
    remaining = len(list(saver.list(config("huge"))))
    assert remaining == (1 if operation == "prune" else 0)
