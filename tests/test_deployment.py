"""What managed deployments need: TLS, rotating credentials (IAM tokens), valkey-py
clients, cluster detection and the documented ACL rule."""

from __future__ import annotations

import inspect
import re
import socket
import time
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.connection
import redis.retry
import valkey
import valkey.asyncio
from redis.backoff import NoBackoff
from redis.credentials import CredentialProvider
from redis.retry import Retry

from plain_redis_saver import AsyncPlainRedisSaver, PlainRedisSaver, ReplicationError, clients
from plain_redis_saver.acl import acl_rule
from plain_redis_saver.embedded import EmbeddedServer, _free_port

from .conftest import Backend
from .helpers import config, count_round_trips, put_chain

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_prints_the_acl_rule_the_saver_needs() -> None:
    assert f"ACL SETUSER lgsaver on >PASSWORD {acl_rule('lg')}" in README.read_text()


# ------------------------------------------------------------------ cluster detection


@pytest.mark.parametrize("cluster", [None, True, False])
def test_from_conn_string_picks_the_client_for_the_server(
    backend: Backend, cluster: bool | None
) -> None:
    if backend.url is None:
        pytest.skip("fakeredis has no URL")
    if cluster is False and backend.is_cluster:
        pytest.skip("a standalone client cannot follow a cluster's redirects")
    if cluster is True and not backend.is_cluster:
        pytest.skip("a cluster client needs a cluster")
    with PlainRedisSaver.from_conn_string(
        backend.url, key_prefix="lgtestdetect", cluster=cluster
    ) as saver:
        assert (type(saver.client).__name__ == "RedisCluster") == backend.is_cluster
        [stored] = put_chain(saver, "t", 1)
        assert saver.get_tuple(stored) is not None
        saver.delete_thread("t")


async def test_async_from_conn_string_detects_cluster_mode(backend: Backend) -> None:
    if backend.url is None:
        pytest.skip("fakeredis has no URL")
    async with AsyncPlainRedisSaver.from_conn_string(
        backend.url, key_prefix="lgtestdetect"
    ) as saver:
        assert (type(saver.client).__name__ == "RedisCluster") == backend.is_cluster
        await saver.adelete_thread("t")


# ------------------------------------------------------------------ TLS


def test_rediss_url_works_with_a_verified_certificate(tls_server: Any) -> None:
    url, cert = tls_server
    with PlainRedisSaver.from_conn_string(
        url, key_prefix="lgtesttls", ssl_ca_certs=str(cert), ssl_cert_reqs="required"
    ) as saver:
        [stored] = put_chain(saver, "t", 1)
        assert saver.get_tuple(stored) is not None


async def test_async_rediss_url_works(tls_server: Any) -> None:
    url, cert = tls_server
    async with AsyncPlainRedisSaver.from_conn_string(
        url, key_prefix="lgtesttls", ssl_ca_certs=str(cert), ssl_cert_reqs="required"
    ) as saver:
        assert await saver.aget_tuple(config("nobody")) is None


def test_rediss_refuses_an_unknown_certificate(tls_server: Any) -> None:
    url, _ = tls_server
    with (
        pytest.raises(redis.ConnectionError, match="certificate"),
        PlainRedisSaver.from_conn_string(
            url, key_prefix="lgtesttls", ssl_cert_reqs="required", cluster=False
        ) as saver,
    ):
        saver.get_tuple(config("t"))


# ------------------------------------------------------------------ rotating credentials


class RotatingToken(CredentialProvider):
    """Stands in for an ElastiCache / Memorystore IAM token provider."""

    def __init__(self, username: str, password: str) -> None:
        self.username, self.password = username, password
        self.calls = 0

    def get_credentials(self) -> tuple[str, str]:
        self.calls += 1
        return self.username, self.password


def test_credential_provider_with_a_rotating_password(backend: Backend, admin: Any) -> None:
    if backend.name not in ("valkey", "redis"):
        pytest.skip("password rotation is exercised on a standalone server")
    rule = ["resetkeys", "~lgtestrot:*", "resetchannels", "-@all", "+@all"]
    admin.execute_command("ACL", "SETUSER", "lgrot", "on", ">token-1", *rule)
    provider = RotatingToken("lgrot", "token-1")
    client = redis.Redis(
        host="127.0.0.1",
        port=admin.connection_pool.connection_kwargs["port"],
        credential_provider=provider,
    )
    saver = PlainRedisSaver(client, key_prefix="lgtestrot")
    put_chain(saver, "t", 1)
    # The token rotates: the server only accepts the new one, old connections are closed.
    admin.execute_command("ACL", "SETUSER", "lgrot", "resetpass", ">token-2")
    provider.password = "token-2"
    admin.execute_command("CLIENT", "KILL", "USER", "lgrot")
    put_chain(saver, "t", 1)
    assert (len(list(saver.list(config("t")))), provider.calls) == (2, 2)
    admin.execute_command("ACL", "DELUSER", "lgrot")


# ------------------------------------------------------------------ valkey-py


def test_valkey_py_client_works_like_redis_py(backend: Backend) -> None:
    if backend.name != "valkey":
        pytest.skip("valkey-py is exercised on the embedded Valkey")
    saver = PlainRedisSaver(valkey.Valkey.from_url(backend.url or ""), key_prefix="lgtestvk")
    stored = put_chain(saver, "t", 3)
    saver.put_writes(stored[-1], [("a", 1)], "task")
    assert [t.config for t in saver.list(config("t"), limit=2)] == stored[::-1][:2]
    assert saver.get_tuple(config("t")).pending_writes == [("task", "a", 1)]
    saver.delete_thread("t")


async def test_async_valkey_py_client_works_like_redis_py(backend: Backend) -> None:
    if backend.name != "valkey":
        pytest.skip("valkey-py is exercised on the embedded Valkey")
    client = valkey.asyncio.Valkey.from_url(backend.url or "")
    saver = AsyncPlainRedisSaver(client, key_prefix="lgtestvk")
    await saver.asetup()
    tup = await saver.aget_tuple(config("missing"))
    await client.aclose()
    assert tup is None


def test_valkey_py_recovers_from_a_script_cache_flush(backend: Backend, admin: Any) -> None:
    if backend.name != "valkey":
        pytest.skip("valkey-py is exercised on the embedded Valkey")
    saver = PlainRedisSaver(valkey.Valkey.from_url(backend.url or ""), key_prefix="lgtestvk")
    saver.setup()
    admin.script_flush()
    [stored] = put_chain(saver, "flushed", 1)
    assert saver.get_tuple(stored) is not None
    saver.delete_thread("flushed")


def test_acl_rule_names_only_non_admin_commands() -> None:
    assert not re.search(r"\+(config|module|keys|function|debug|flushall|flushdb)\b", acl_rule("x"))


# ------------------------------------------------------------------ slot migration


def _node_id(node: redis.Redis) -> str:
    return node.execute_command("CLUSTER", "MYID").decode()


def test_thread_survives_its_slot_moving_to_another_node(backend: Backend, saver: Any) -> None:
    if not backend.is_cluster:
        pytest.skip("slots move only on a cluster")
    from redis.cluster import key_slot

    stored = put_chain(saver, "moving", 3)
    slot = key_slot(saver._core.keys.thread("moving").checkpoints.encode())
    nodes = [redis.Redis(host="127.0.0.1", port=p) for p in backend.server.ports]  # type: ignore[union-attr]
    owner = next(n for n in nodes if n.execute_command("CLUSTER", "COUNTKEYSINSLOT", slot) > 0)
    target = next(n for n in nodes if n is not owner)
    owner_id, target_id = _node_id(owner), _node_id(target)
    target.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", owner_id)
    owner.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", target_id)
    keys = owner.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 100)
    target_port = target.connection_pool.connection_kwargs["port"]
    owner.execute_command("MIGRATE", "127.0.0.1", target_port, "", 0, 5000, "KEYS", *keys)
    for node in nodes:
        node.execute_command("CLUSTER", "SETSLOT", slot, "NODE", target_id)
    # The saver's client still has the old slot map: MOVED answers must be followed.
    saver.put_writes(stored[-1], [("a", 1)], "task")
    more = put_chain(saver, "moving", 1)
    assert [t.config for t in saver.list(config("moving"))][:1] == more
    assert saver.get_tuple(stored[-1]).pending_writes == [("task", "a", 1)]


# ------------------------------------------------------------------ wait_replicas


def test_wait_replicas_raises_when_too_few_replicas_acknowledge(
    backend: Backend, client: Any
) -> None:
    if backend.fake_server is not None:
        pytest.skip("fakeredis has no replication")
    saver = PlainRedisSaver(client, key_prefix="lgtestwait", wait_replicas=1, wait_timeout=0.01)
    with pytest.raises(ReplicationError, match="0 of 1 replicas"):
        put_chain(saver, "t", 1)


@pytest.fixture(scope="module")
def primary_and_replica() -> Any:
    # No 5 s wait for more replicas before the first full sync.
    primary = EmbeddedServer("valkey", extra_args=["--repl-diskless-sync-delay", "0"]).start()
    replica = EmbeddedServer(
        "valkey", extra_args=["--replicaof", "127.0.0.1", str(primary.port)]
    ).start()
    probe = redis.Redis(host="127.0.0.1", port=replica.port)
    for _ in range(200):  # bounded: the link comes up in milliseconds
        if probe.info("replication").get("master_link_status") == "up":
            break
        time.sleep(0.01)
    yield primary, replica
    replica.stop()
    primary.stop()


def test_wait_replicas_makes_writes_readable_on_the_replica_at_once(
    primary_and_replica: Any,
) -> None:
    primary, replica = primary_and_replica
    saver = PlainRedisSaver(
        redis.Redis.from_url(primary.url), key_prefix="lgtestwait", wait_replicas=1
    )
    saver.setup()  # scripts loaded, connection open
    with count_round_trips() as rt:
        [stored] = put_chain(saver, "t", 1)
    on_replica = PlainRedisSaver(redis.Redis.from_url(replica.url), key_prefix="lgtestwait")
    assert (rt.count, on_replica.get_tuple(stored).config) == (1, stored)


# ------------------------------------------------------------------ unreachable servers
# What the README says an unreachable server costs, checked by counting connect attempts
# (a timeout is simulated: no address outside 127.0.0.1 is contacted).


def _count_connects(monkeypatch: pytest.MonkeyPatch, fail: Exception | None) -> list[Any]:
    attempts: list[Any] = []
    connect = socket.socket.connect

    def counted(sock: socket.socket, address: Any) -> None:
        attempts.append(address)
        if fail is not None:
            raise fail
        connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", counted)
    monkeypatch.setattr(redis.retry, "sleep", lambda _seconds: None)  # the backoff
    return attempts


def test_a_refused_connection_fails_at_the_first_attempt(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    attempts = _count_connects(monkeypatch, None)
    with (
        pytest.raises(redis.ConnectionError, match="refused"),
        PlainRedisSaver.from_conn_string(f"redis://127.0.0.1:{_free_port()}/0"),
    ):
        pass
    assert len(attempts) == 1


def test_a_connect_that_times_out_is_tried_as_often_as_the_readme_says(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    attempts = _count_connects(monkeypatch, TimeoutError("timed out"))
    with (
        pytest.raises(redis.TimeoutError, match="Timeout connecting"),
        PlainRedisSaver.from_conn_string("redis://127.0.0.1:6379/0"),
    ):
        pass
    assert f"{len(attempts)} attempts in all" in README.read_text()


def test_readme_states_redis_pys_timeout_and_retry_defaults() -> None:
    text = " ".join(README.read_text().split())
    connection = inspect.signature(redis.connection.AbstractConnection.__init__).parameters
    timeouts = (connection["socket_connect_timeout"].default, connection["socket_timeout"].default)
    assert f"`socket_connect_timeout={timeouts[0]}`, `socket_timeout={timeouts[1]}` seconds" in text
    retry = inspect.signature(redis.Redis.__init__).parameters["retry"].default
    backoff = retry._backoff
    assert (
        f"`retry=Retry({type(backoff).__name__}(base={backoff._base}, cap={backoff._cap}), "
        f"{retry.get_retries()})`" in text
    )


def test_from_conn_string_hands_timeouts_and_retry_to_the_client(backend: Backend) -> None:
    if backend.url is None:
        pytest.skip("fakeredis has no URL")
    retry = Retry(NoBackoff(), 2)
    with PlainRedisSaver.from_conn_string(
        backend.url, socket_connect_timeout=2, socket_timeout=3, retry=retry
    ) as saver:
        kwargs = clients.connection_kwargs(saver.client)
        assert (kwargs["socket_connect_timeout"], kwargs["socket_timeout"]) == (2, 3)
        client_retry = saver.client.retry if backend.is_cluster else saver.client.get_retry()
        assert client_retry.get_retries() == 2
