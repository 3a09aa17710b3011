"""Timing, wire counting, server statistics and the machine description."""

from __future__ import annotations

import contextlib
import gc
import os
import platform
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from importlib import metadata as importlib_metadata
from typing import Any

now_ns = time.perf_counter_ns

# --------------------------------------------------------------------------- statistics


def percentile(ordered: list[int], q: float) -> float:
    """Nearest-rank percentile of an ordered list (q in 0..100)."""
    if not ordered:
        return float("nan")
    rank = max(1, -(-len(ordered) * q // 100))  # ceil
    return float(ordered[int(rank) - 1])


def median(ordered: list[int]) -> float:
    n = len(ordered)
    if not n:
        return float("nan")
    mid = n // 2
    return float(ordered[mid]) if n % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def summarize(samples_ns: list[int]) -> dict[str, Any]:
    """n, median, p99, mean and min of samples in nanoseconds, reported in microseconds."""
    ordered = sorted(samples_ns)
    n = len(ordered)
    return {
        "n": n,
        "median_us": round(median(ordered) / 1000, 2) if n else None,
        "p99_us": round(percentile(ordered, 99) / 1000, 2) if n else None,
        "mean_us": round(sum(ordered) / n / 1000, 2) if n else None,
        "min_us": round(ordered[0] / 1000, 2) if n else None,
    }


@dataclass
class OpRecord:
    """Samples, errors and wrong answers of one operation of one saver."""

    samples: list[int] = field(default_factory=list)
    errors: int = 0
    wrong: int = 0
    error_examples: list[str] = field(default_factory=list)
    wrong_examples: list[str] = field(default_factory=list)

    def error(self, exc: BaseException) -> None:
        self.errors += 1
        if len(self.error_examples) < 3:
            self.error_examples.append(f"{type(exc).__name__}: {exc}"[:300])

    def mismatch(self, problem: str) -> None:
        self.wrong += 1
        if len(self.wrong_examples) < 3:
            self.wrong_examples.append(problem[:300])

    def summary(self) -> dict[str, Any]:
        out = summarize(self.samples)
        out.update(errors=self.errors, wrong=self.wrong)
        if self.error_examples:
            out["error_examples"] = self.error_examples
        if self.wrong_examples:
            out["wrong_examples"] = self.wrong_examples
        return out


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No garbage collection inside a timed batch. The young generations are collected
    before it; long-lived data (the histories) is frozen out of collections by
    :func:`gc_freeze`, so that a full collection does not run between every batch."""
    gc.collect(1)
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def gc_freeze() -> None:
    """Move every object alive now out of the collector's sight (see ``gc.freeze``)."""
    gc.collect()
    gc.freeze()


# --------------------------------------------------------------------------- wire counting


def _as_bytes(chunk: Any) -> bytes:
    if isinstance(chunk, str):
        return chunk.encode()
    return bytes(chunk)


def _packed_size(packed: Any) -> int:
    if isinstance(packed, str):
        return len(packed.encode())
    if isinstance(packed, memoryview):
        return packed.nbytes
    if isinstance(packed, (bytes, bytearray)):
        return len(packed)
    return sum(_packed_size(chunk) for chunk in packed)


_SUBCOMMANDS = {b"CLIENT", b"CONFIG", b"SCRIPT", b"MEMORY", b"FUNCTION", b"OBJECT"}


def resp_command_names(packed: Any) -> list[str]:
    """Names of the top-level commands in a packed RESP payload (what one send carries)."""
    if isinstance(packed, (bytes, bytearray, memoryview, str)):
        data = _as_bytes(packed)
    else:
        data = b"".join(_as_bytes(c) for c in packed)
    names: list[str] = []
    pos = 0
    size = len(data)
    while pos < size:
        if data[pos : pos + 1] != b"*":
            names.append("?")
            break
        end = data.index(b"\r\n", pos)
        count = int(data[pos + 1 : end])
        pos = end + 2
        words: list[bytes] = []
        for j in range(count):
            end = data.index(b"\r\n", pos)
            length = int(data[pos + 1 : end])
            start = end + 2
            if j < 2:
                words.append(data[start : start + length])
            pos = start + length + 2
        name = words[0].upper() if words else b"?"
        if name in _SUBCOMMANDS and len(words) > 1:
            name = name + b"|" + words[1].upper()
        names.append(name.decode(errors="replace").lower())
    return names


#: What a client sends when it opens a connection: not counted as the operation's.
HANDSHAKE = {
    "hello",
    "auth",
    "select",
    "readonly",
    "client|setinfo",
    "client|setname",
    "client|maint_notifications",
}


class WireCounter:
    """Round trips (``send_packed_command`` calls; a pipeline sends once) and the
    top-level commands they carried, for redis-py and valkey-py, sync and asyncio.
    Sends made of connection set-up commands only are counted apart, as ``handshakes``."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.round_trips = 0
        self.handshakes = 0
        self.commands: Counter[str] = Counter()
        #: Bytes of the RESP requests counted (handshakes left out).
        self.bytes_sent = 0

    def _note(self, packed: Any) -> None:
        try:
            names = resp_command_names(packed)
        except (ValueError, IndexError):
            names = ["?"]
        if names and all(name in HANDSHAKE for name in names):
            self.handshakes += 1
            return
        self.round_trips += 1
        self.commands.update(names)
        self.bytes_sent += _packed_size(packed)


def _connection_classes() -> tuple[list[type], list[type]]:
    import redis.asyncio.connection
    import redis.connection

    sync_classes: list[type] = [redis.connection.AbstractConnection]
    async_classes: list[type] = [redis.asyncio.connection.AbstractConnection]
    try:
        import valkey.asyncio.connection
        import valkey.connection

        sync_classes.append(valkey.connection.AbstractConnection)
        async_classes.append(valkey.asyncio.connection.AbstractConnection)
    except ImportError:
        pass
    return sync_classes, async_classes


@contextlib.contextmanager
def count_wire() -> Iterator[WireCounter]:
    """Count what the clients send while the block runs."""
    counter = WireCounter()
    sync_classes, async_classes = _connection_classes()
    originals: list[tuple[type, Any]] = []

    def wrap_sync(original: Any) -> Any:
        def counted(self: Any, command: Any, *args: Any, **kwargs: Any) -> Any:
            counter._note(command)
            return original(self, command, *args, **kwargs)

        return counted

    def wrap_async(original: Any) -> Any:
        async def counted(self: Any, command: Any, *args: Any, **kwargs: Any) -> Any:
            counter._note(command)
            return await original(self, command, *args, **kwargs)

        return counted

    for cls in sync_classes:
        originals.append((cls, cls.__dict__["send_packed_command"]))
        cls.send_packed_command = wrap_sync(cls.__dict__["send_packed_command"])  # type: ignore[attr-defined]
    for cls in async_classes:
        originals.append((cls, cls.__dict__["send_packed_command"]))
        cls.send_packed_command = wrap_async(cls.__dict__["send_packed_command"])  # type: ignore[attr-defined]
    try:
        yield counter
    finally:
        for cls, original in originals:
            cls.send_packed_command = original  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- the server

#: Commands of the measuring client itself, left out of command-stat deltas.
_OWN_COMMANDS = {"info"} | HANDSHAKE


def commandstats(admin: Any) -> dict[str, int] | None:
    """``calls`` per command from ``INFO commandstats`` (None if the server refuses)."""
    try:
        stats = admin.info("commandstats")
    except Exception:
        return None
    out: dict[str, int] = {}
    for key, fields in stats.items():
        name = key[len("cmdstat_") :] if key.startswith("cmdstat_") else key
        if isinstance(fields, dict):
            out[name] = int(fields.get("calls", 0))
    return out


def stats_delta(before: dict[str, int] | None, after: dict[str, int] | None) -> dict[str, int]:
    if before is None or after is None:
        return {}
    delta = {}
    for name, calls in after.items():
        diff = calls - before.get(name, 0)
        if diff and name not in _OWN_COMMANDS:
            delta[name] = diff
    return delta


@dataclass(frozen=True)
class ServerCounters:
    """The server's cumulative work counters at one moment, or a difference of two."""

    #: used_cpu_sys + used_cpu_user: the whole process (main, I/O and background threads).
    cpu_us: float
    #: used_cpu_sys_main_thread + used_cpu_user_main_thread (None where not reported).
    main_cpu_us: float | None
    #: ``usec`` summed over INFO commandstats: time inside commands, scripts included.
    command_us: float
    #: total_net_input_bytes / total_net_output_bytes: what clients sent and received.
    net_in: int
    net_out: int

    def __sub__(self, other: ServerCounters) -> ServerCounters:
        main = (
            None
            if self.main_cpu_us is None or other.main_cpu_us is None
            else self.main_cpu_us - other.main_cpu_us
        )
        return ServerCounters(
            cpu_us=self.cpu_us - other.cpu_us,
            main_cpu_us=main,
            command_us=self.command_us - other.command_us,
            net_in=self.net_in - other.net_in,
            net_out=self.net_out - other.net_out,
        )


def server_counters(admin: Any) -> ServerCounters | None:
    """One ``INFO cpu stats commandstats`` read (None if the server refuses)."""
    try:
        info = admin.info("cpu", "stats", "commandstats")
    except Exception:
        return None
    try:
        main: float | None = (
            float(info["used_cpu_sys_main_thread"]) + float(info["used_cpu_user_main_thread"])
        ) * 1e6
    except KeyError:
        main = None
    command_us = 0.0
    for key, fields in info.items():
        own = key[len("cmdstat_") :] in _OWN_COMMANDS
        if key.startswith("cmdstat_") and isinstance(fields, dict) and not own:
            command_us += float(fields.get("usec", 0))
    try:
        return ServerCounters(
            cpu_us=(float(info["used_cpu_sys"]) + float(info["used_cpu_user"])) * 1e6,
            main_cpu_us=main,
            command_us=command_us,
            net_in=int(info["total_net_input_bytes"]),
            net_out=int(info["total_net_output_bytes"]),
        )
    except KeyError:
        return None


class ServerWindow:
    """The server's work on a block of calls: its counters after the block minus before,
    minus the same difference over an idle interval of equal wall time taken right
    after it (the server's own background work, and the two INFO reads, cancel out).

    ``work`` is None when the server does not report the counters (or ``admin`` is
    None: a saver that keeps nothing in a server); ``wall_ns`` is always set."""

    def __init__(self, admin: Any | None) -> None:
        self.admin = admin
        self.work: ServerCounters | None = None
        self.wall_ns = 0
        self._before: ServerCounters | None = None
        self._t0 = 0

    def __enter__(self) -> ServerWindow:
        self._before = server_counters(self.admin) if self.admin is not None else None
        self._t0 = now_ns()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall_ns = now_ns() - self._t0
        if self.admin is None or self._before is None:
            return
        after = server_counters(self.admin)
        if after is None:
            return
        idle_before = server_counters(self.admin)
        time.sleep(self.wall_ns / 1e9)
        idle_after = server_counters(self.admin)
        if idle_before is None or idle_after is None:
            return
        self.work = (after - self._before) - (idle_after - idle_before)


def scan_keys(admin: Any, patterns: Iterable[str]) -> list[bytes]:
    keys: set[bytes] = set()
    for pattern in patterns:
        keys.update(admin.scan_iter(match=pattern, count=2000))
    return sorted(keys)


def memory_usage(admin: Any, keys: list[bytes]) -> int | None:
    """Sum of ``MEMORY USAGE key SAMPLES 0`` (None if the server refuses)."""
    total = 0
    try:
        for start in range(0, len(keys), 500):
            pipe = admin.pipeline(transaction=False)
            for key in keys[start : start + 500]:
                pipe.execute_command("MEMORY", "USAGE", key, "SAMPLES", "0")
            total += sum(int(v or 0) for v in pipe.execute())
    except Exception:
        return None
    return total


def delete_keys(admin: Any, patterns: Iterable[str]) -> int:
    """Delete the keys matching ``patterns`` (each pattern names only our own keys)."""
    deleted = 0
    for pattern in patterns:
        batch: list[bytes] = []
        for key in admin.scan_iter(match=pattern, count=2000):
            batch.append(key)
            if len(batch) >= 1000:
                deleted += admin.unlink(*batch)
                batch = []
        if batch:
            deleted += admin.unlink(*batch)
    return deleted


def glob_escape(text: str) -> str:
    return "".join("\\" + ch if ch in "*?[]\\" else ch for ch in text)


# --------------------------------------------------------------------------- the machine


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _dist_version(name: str) -> str | None:
    try:
        return importlib_metadata.version(name)
    except importlib_metadata.PackageNotFoundError:
        return None


def _source_commit() -> str | None:
    """Commit of the plain_redis_saver being measured (+ "dirty" if its files differ)."""
    import subprocess

    here = os.path.dirname(os.path.abspath(__file__))
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "../plain_redis_saver"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{commit}{' (plain_redis_saver/ modified)' if dirty else ''}" if commit else None


def environment(admin: Any | None, server_kind: str) -> dict[str, Any]:
    """Machine, versions and server of this run (no paths, no addresses)."""
    server: dict[str, Any] = {"kind": server_kind}
    if admin is not None:
        try:
            info = admin.info("server")
            server["valkey_version"] = info.get("valkey_version")
            server["redis_version"] = info.get("redis_version")
            server["server_name"] = info.get("server_name", "redis")
        except Exception as exc:  # pragma: no cover - depends on the server
            server["error"] = str(exc)
    try:
        import redis.utils

        hiredis = bool(redis.utils.HIREDIS_AVAILABLE)
    except ImportError:  # pragma: no cover
        hiredis = False
    try:
        import valkey.utils

        libvalkey: bool | None = bool(getattr(valkey.utils, "LIBVALKEY_AVAILABLE", False))
    except ImportError:
        libvalkey = None
    dists = [
        "plain-redis-saver",
        "langgraph-checkpoint-plainredis",
        "langgraph-checkpoint-aws",
        "langgraph",
        "langgraph-checkpoint",
        "langchain-core",
        "redis",
        "hiredis",
        "valkey",
        "libvalkey",
        "msgpack",
        "ormsgpack",
    ]
    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "machine": {
            "cpu_model": _cpu_model(),
            "cores": os.cpu_count(),
            "system": f"{platform.system()} {platform.release()}",
            "arch": platform.machine(),
        },
        "python": f"{platform.python_implementation()} {sys.version.split()[0]}",
        "packages": {name: _dist_version(name) for name in dists},
        "source_commit": _source_commit(),
        "redis_py_parser": "hiredis" if hiredis else "python",
        "valkey_py_parser": None if libvalkey is None else ("libvalkey" if libvalkey else "python"),
        "server": server,
    }
