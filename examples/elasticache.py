"""Connecting to ElastiCache (cluster mode, TLS, IAM authentication).

The same code serves MemoryDB and ElastiCache Serverless (always cluster mode, always
TLS) and, with Google's token instead of AWS's, Memorystore for Valkey.

* **Cluster mode**: ``redis.cluster.RedisCluster`` on the configuration endpoint; every
  key of a thread shares one hash tag, so each saver call touches one slot.
* **TLS**: ``ssl=True``; the service's certificates chain to public CAs, so the system
  trust store verifies them (``ELASTICACHE_CA_CERT`` for a private CA).
* **IAM**: the password is a short-lived token (valid 15 minutes). A redis-py
  ``CredentialProvider`` is asked for credentials on every new connection, so new
  connections always log in with a fresh token; ElastiCache closes IAM connections
  after 12 hours and the client reconnects by itself.

Environment: ELASTICACHE_HOST (configuration endpoint), ELASTICACHE_PORT (6379),
ELASTICACHE_USER (an IAM-enabled user; its user id and name must be equal),
ELASTICACHE_CACHE_NAME (replication group or serverless cache name), AWS_REGION,
ELASTICACHE_TLS (default 1), ELASTICACHE_CA_CERT (optional), KEY_PREFIX (default lg).

``mint_iam_token`` below is a stand-in: replace its body with the SigV4 signing call
described in its docstring before pointing this at AWS. Without ELASTICACHE_HOST the
example runs the same code against a local three-node Valkey cluster (no TLS).
Run: python examples/elasticache.py
"""

from __future__ import annotations

import operator
import os
import threading
import time
from collections.abc import Callable
from typing import Annotated, Any, TypedDict

from langgraph.graph import START, StateGraph
from redis.backoff import ExponentialBackoff
from redis.cluster import RedisCluster
from redis.credentials import CredentialProvider
from redis.retry import Retry

from plain_redis_saver import PlainRedisSaver

#: IAM tokens are valid 15 minutes; mint a new one well before that.
TOKEN_LIFETIME_SECONDS = 10 * 60


def mint_iam_token(user: str, cache_name: str, region: str) -> str:
    """A stand-in that returns a fake token.

    The real token is a SigV4 *presigned* request, signed with the caller's AWS
    credentials for service ``elasticache`` in ``region``::

        GET https://<cache_name>/?Action=connect&User=<user>[&ResourceType=ServerlessCache]
        X-Amz-Expires: 900

    and the token is that signed URL without its ``https://`` scheme. With botocore:
    build an ``AWSRequest`` for the URL above, sign it with ``SigV4QueryAuth``
    (credentials from ``botocore.session.get_session().get_credentials()``, service
    ``"elasticache"``, expires 900) and return ``request.url`` minus ``"https://"``.
    The ElastiCache documentation's "IAM authentication" page shows the same steps.
    """
    return f"fake-iam-token:{cache_name}:{region}:{user}:{int(time.time())}"


class IamTokenCredentials(CredentialProvider):
    """Gives redis-py (user, token) for each new connection, minting a new token when
    the cached one is older than ``lifetime`` seconds. Thread-safe: the cluster client
    opens connections to several nodes from several threads."""

    def __init__(
        self,
        user: str,
        mint: Callable[[str], str],
        *,
        lifetime: float = TOKEN_LIFETIME_SECONDS,
    ) -> None:
        self.user = user
        self.mint = mint
        self.lifetime = lifetime
        self._token: str | None = None
        self._minted_at = 0.0
        self._lock = threading.Lock()

    def get_credentials(self) -> tuple[str, str]:
        with self._lock:
            now = time.monotonic()
            if self._token is None or now - self._minted_at >= self.lifetime:
                self._token = self.mint(self.user)
                self._minted_at = now
            return self.user, self._token


def cluster_options(
    host: str,
    port: int,
    credentials: CredentialProvider,
    *,
    tls: bool,
    ca_cert: str | None = None,
) -> dict[str, Any]:
    """Keyword arguments of ``RedisCluster`` for a managed, cluster-mode endpoint."""
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "credential_provider": credentials,
        "socket_connect_timeout": 5,
        "socket_timeout": 5,
        # Failovers and slot moves: retry a few times with backoff.
        "retry": Retry(ExponentialBackoff(cap=2.0, base=0.1), retries=3),
    }
    if tls:
        options.update(ssl=True, ssl_cert_reqs="required")
        if ca_cert:
            options["ssl_ca_certs"] = ca_cert
    return options


def make_saver(
    host: str,
    port: int,
    user: str,
    *,
    tls: bool,
    token_provider: Callable[[str], str],
    key_prefix: str = "lg",
    ca_cert: str | None = None,
) -> PlainRedisSaver:
    """A saver on a cluster-mode endpoint; ``token_provider(user)`` mints a password."""
    credentials = IamTokenCredentials(user, token_provider)
    client = RedisCluster(**cluster_options(host, port, credentials, tls=tls, ca_cert=ca_cert))
    return PlainRedisSaver(client, key_prefix=key_prefix)


class State(TypedDict):
    steps: Annotated[list[str], operator.add]


def smoke_test(saver: PlainRedisSaver) -> None:
    """Write and read one checkpoint through a tiny graph, then remove it."""
    builder = StateGraph(State)
    builder.add_node("work", lambda state: {"steps": ["worked"]})
    builder.add_edge(START, "work")
    graph = builder.compile(checkpointer=saver)
    config: Any = {"configurable": {"thread_id": "elasticache-smoke-test"}}
    try:
        graph.invoke({"steps": ["start"]}, config)
        print("state:", graph.get_state(config).values)
    finally:
        saver.delete_thread("elasticache-smoke-test")


def run_locally() -> None:
    """Without ELASTICACHE_HOST: the same code against a local three-node Valkey
    cluster (no TLS), whose ACL user accepts a fixed stand-in token."""
    import redis

    from plain_redis_saver.acl import acl_setuser_args
    from plain_redis_saver.embedded import EmbeddedCluster

    token = "local-stand-in-token"
    with EmbeddedCluster(3) as cluster:
        for port in cluster.ports:
            with redis.Redis(host="127.0.0.1", port=port) as admin:
                admin.execute_command(*acl_setuser_args("lgsaver", token, "lg"))
        print(f"Server: local Valkey cluster on 127.0.0.1 ports {cluster.ports} (no TLS)")
        saver = make_saver(
            "127.0.0.1", cluster.ports[0], "lgsaver", tls=False, token_provider=lambda _: token
        )
        try:
            saver.setup()
            smoke_test(saver)
        finally:
            saver.client.close()


def main() -> None:
    host = os.environ.get("ELASTICACHE_HOST")
    if not host:
        run_locally()
        return
    user = os.environ.get("ELASTICACHE_USER", "lgsaver")
    cache_name = os.environ.get("ELASTICACHE_CACHE_NAME", host.split(".", 1)[0])
    region = os.environ.get("AWS_REGION", "us-east-1")
    print(f"Server: {host} (cache {cache_name!r}, region {region})")
    saver = make_saver(
        host,
        int(os.environ.get("ELASTICACHE_PORT", "6379")),
        user,
        tls=os.environ.get("ELASTICACHE_TLS", "1") not in ("0", "false", "no"),
        token_provider=lambda name: mint_iam_token(name, cache_name, region),
        key_prefix=os.environ.get("KEY_PREFIX", "lg"),
        ca_cert=os.environ.get("ELASTICACHE_CA_CERT") or None,
    )
    try:
        saver.setup()
        smoke_test(saver)
    finally:
        saver.client.close()


if __name__ == "__main__":
    main()
