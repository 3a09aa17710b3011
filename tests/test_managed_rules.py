"""The rules of managed services (ElastiCache Serverless, MemoryDB, Memorystore),
checked on what the saver really sends."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import redis
import redis.connection
from redis.cluster import key_slot

from benchmarks.bounded_work import HUGE, build_huge_thread, run
from plain_redis_saver.core import DELETE_BATCH
from plain_redis_saver.ops import Batch, Eval
from plain_redis_saver.scripts import ALL_SCRIPTS, DELETE_CHECKPOINTS

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
    # the store's and the cache's scripts
    "SET",
    "DEL",
    "ZRANGE",
    "ZREMRANGEBYSCORE",
    "ZRANGEBYSCORE",
    "ZSCORE",
    "ZLEXCOUNT",
    "ZCARD",
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
    # KEYS[6..10] are the staged keys of a commit (KEYS[5 + i] its loop over them); the
    # store's scripts declare its seven keys.
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
    # Scripts loaded first: every call is then an EVALSHA, whose numkeys the audit reads
    # (an EVAL's feed line spells out the script's source before it).
    saver.setup()
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


@pytest.fixture
def standalone(backend: Backend) -> None:
    if backend.name not in ("valkey", "redis"):
        pytest.skip("a 100,000-checkpoint thread is built on the standalone servers only")


class Recorder:
    """Runs a saver's operations and records each one with its reply."""

    def __init__(self, runner: Any) -> None:
        self.runner = runner
        self.calls: list[tuple[Any, Any]] = []

    def __call__(self, op: Any) -> Any:
        reply = self.runner(op)
        self.calls.append((op, reply))
        return reply


@pytest.mark.parametrize("operation", ["prune", "delete_for_runs", "delete_thread"])
def test_cleaning_a_thread_of_100000_checkpoints_works_in_bounded_slices(
    saver: Any, admin: Any, standalone: None, operation: str
) -> None:
    """Each script call removes at most a slice of checkpoints, and delete_thread is a
    single UNLINK (freed off the event loop). How long a slice blocks the server is
    measured in benchmarks/bounded_work.py, not asserted here: that depends on the load."""
    build_huge_thread(saver, admin, "huge")
    recorder = Recorder(saver._runner)
    saver._runner = recorder
    run(saver, "huge", operation)
    ops = [op for op, _ in recorder.calls]
    if operation == "delete_thread":
        assert [op.args[0] for op in ops] == ["UNLINK"]
    else:
        script_calls = [
            (item, reply)
            for op, replies in recorder.calls
            if isinstance(op, Batch)
            for item, reply in zip(op.ops, replies, strict=True)
            if isinstance(item, Eval) and item.script is DELETE_CHECKPOINTS
        ]
        removed = [int(reply[1]) for _, reply in script_calls]
        assert {int(item.args[1]) for item, _ in script_calls} == {DELETE_BATCH}
        assert sum(removed) == (HUGE - 1 if operation == "prune" else HUGE)
        # HSCAN's COUNT is a hint, so a "runs" slice may hold a few more than the budget.
        assert max(removed) <= 2 * DELETE_BATCH
    remaining = len(list(saver.list(config("huge"))))
    assert remaining == (1 if operation == "prune" else 0)
