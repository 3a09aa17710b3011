"""Shared test helpers: ids and configs, checkpoint builders, the saver's ACL user and
a round-trip counter."""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import redis.asyncio.connection
import redis.connection
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from langgraph.checkpoint.base import Checkpoint, CheckpointMetadata
from langgraph.checkpoint.base.id import uuid6
from langgraph.checkpoint.conformance.test_utils import generate_checkpoint

from plain_redis_saver import PlainRedisSaver
from plain_redis_saver.acl import REQUIRED_COMMANDS

#: The saver connects to real servers as a least-privilege ACL user: only its own
#: commands (plain_redis_saver.acl) on the key prefixes the tests, README and demo use.
SAVER_USER, SAVER_PASSWORD = "lgsaver", "lgsaver-secret"
TEST_KEY_PATTERNS = ["~lgtest*", "~lg:*", "~demo:*"]


def add_saver_user(admin: Any) -> None:
    """Create (or reset) the suite's least-privilege user on the server of ``admin``
    (ACLs live in memory: again after a restart)."""
    admin.execute_command(
        "ACL", "SETUSER", SAVER_USER, "reset", "on", f">{SAVER_PASSWORD}", "resetkeys",
        *TEST_KEY_PATTERNS, "resetchannels", "-@all", *(f"+{c}" for c in REQUIRED_COMMANDS),
    )  # fmt: skip


def as_saver_user(url: str) -> str:
    """``url`` (redis://host:port/db) logged in as the saver's user."""
    return url.replace("redis://", f"redis://{SAVER_USER}:{SAVER_PASSWORD}@", 1)


def new_id() -> str:
    """A new checkpoint id, as LangGraph makes them (time ordered)."""
    return str(uuid6(clock_seq=-1))


def ids(tuples: Any) -> list[str]:
    """The checkpoint ids of CheckpointTuples."""
    return [t.config["configurable"]["checkpoint_id"] for t in tuples]


def ids_of(configs: Any) -> list[str]:
    """The checkpoint ids of configs (as put() returns them)."""
    return [c["configurable"]["checkpoint_id"] for c in configs]


def config(thread_id: str = "t", ns: str | None = "", checkpoint_id: str | None = None) -> Any:
    conf: dict[str, Any] = {"thread_id": thread_id}
    if ns is not None:
        conf["checkpoint_ns"] = ns
    if checkpoint_id is not None:
        conf["checkpoint_id"] = checkpoint_id
    return {"configurable": conf}


def checkpoint(
    values: dict[str, Any] | None = None,
    *,
    versions: dict[str, Any] | None = None,
    checkpoint_id: str | None = None,
) -> Checkpoint:
    values = values or {}
    cp = generate_checkpoint(
        checkpoint_id=checkpoint_id or new_id(),
        channel_values=dict(values),
        channel_versions=dict(versions) if versions is not None else {k: 1 for k in values},
    )
    return cp


def metadata(step: int = 0, source: str = "loop", **extra: Any) -> CheckpointMetadata:
    md: dict[str, Any] = {"source": source, "step": step, "parents": {}}
    md.update(extra)
    return md  # type: ignore[return-value]


def put_chain(saver: Any, thread_id: str, n: int, *, ns: str = "", **md: Any) -> list[Any]:
    """n checkpoints, each the child of the previous; returns their configs."""
    parent = config(thread_id, ns)
    out = []
    for i in range(n):
        cp = checkpoint({"n": i}, versions={"n": saver.get_next_version(None, None)})
        parent = saver.put(parent, cp, metadata(step=i, **md), cp["channel_versions"])
        out.append(parent)
    return out


def node_items(node: bytes, start: int) -> Iterator[tuple[bool, bytes]]:
    """The items of a composed value or node (compose.py's encoding) from ``start``:
    (True, digest) for a reference, (False, bytes) for a literal."""
    pos = start
    while pos < len(node):
        if node[pos] == 0:
            size = int.from_bytes(node[pos + 1 : pos + 5], "big")
            yield False, node[pos + 5 : pos + 5 + size]
            pos += 5 + size
        else:
            assert node[pos] == 1, f"item tag {node[pos]} at byte {pos}"
            yield True, node[pos + 1 : pos + 17]
            pos += 17


class RoundTrips:
    count = 0
    #: bytes of the commands sent
    sent = 0


def _size(command: Any) -> int:
    if isinstance(command, (bytes, bytearray, memoryview, str)):
        return len(command)
    return sum(len(part) for part in command)


@contextlib.contextmanager
def count_round_trips() -> Iterator[RoundTrips]:
    """Counts what the client sends: one packed send is one round trip (a pipeline
    sends once). Works for redis-py's sync and asyncio connections and fakeredis'."""
    counter = RoundTrips()
    sync_send = redis.connection.AbstractConnection.send_packed_command
    async_send = redis.asyncio.connection.AbstractConnection.send_packed_command

    def counted_sync(self: Any, *args: Any, **kwargs: Any) -> Any:
        counter.count += 1
        counter.sent += _size(args[0])
        return sync_send(self, *args, **kwargs)

    async def counted_async(self: Any, *args: Any, **kwargs: Any) -> Any:
        counter.count += 1
        counter.sent += _size(args[0])
        return await async_send(self, *args, **kwargs)

    redis.connection.AbstractConnection.send_packed_command = counted_sync  # type: ignore[method-assign]
    redis.asyncio.connection.AbstractConnection.send_packed_command = counted_async  # type: ignore[method-assign]
    try:
        yield counter
    finally:
        redis.connection.AbstractConnection.send_packed_command = sync_send  # type: ignore[method-assign]
        redis.asyncio.connection.AbstractConnection.send_packed_command = async_send  # type: ignore[method-assign]


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key, written into folder."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "server.crt", folder / "server.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def cold(saver: Any) -> PlainRedisSaver:
    """Another saver on the same data, holding no content yet (another process)."""
    return PlainRedisSaver(saver.client, key_prefix=saver.key_prefix)
