"""Connecting to the server named by --url and the TLS options."""

from __future__ import annotations

import argparse
import os
from typing import Any

import redis.exceptions

from .. import clients
from .arguments import DEFAULT_URL
from .exits import EXIT_USAGE, CliError


def redact(url: str) -> str:
    """The URL without its password."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest.split("/", 1)[0]:
        return url
    userinfo, _, hostpart = rest.partition("@")
    user = userinfo.split(":", 1)[0]
    return f"{scheme}://{user + ':' if user else ':'}***@{hostpart}"


def connect(args: argparse.Namespace) -> Any:
    """A blocking client for the parsed options; CliError says what failed."""
    url: str = args.url or os.environ.get("REDIS_URL") or DEFAULT_URL
    scheme = url.split("://", 1)[0].lower()
    if scheme not in ("redis", "rediss", "unix"):
        raise CliError(
            f"--url must start with redis://, rediss:// or unix://, got {scheme!r}", EXIT_USAGE
        )
    kwargs: dict[str, Any] = {}
    if args.timeout is not None:
        if not args.timeout > 0:
            raise CliError("--timeout must be > 0", EXIT_USAGE)
        kwargs["socket_connect_timeout"] = args.timeout
        kwargs["socket_timeout"] = args.timeout
    tls = {"ssl_ca_certs": args.ca_cert, "ssl_certfile": args.client_cert}
    tls["ssl_keyfile"] = args.client_key
    given = {k: v for k, v in tls.items() if v}
    if given and scheme != "rediss":
        raise CliError("--ca-cert/--client-cert/--client-key need a rediss:// URL", EXIT_USAGE)
    for path in given.values():
        if not os.path.isfile(path):
            raise CliError(f"no such file: {path}", EXIT_USAGE)
    kwargs.update(given)
    try:
        return clients.sync_client(url, args.cluster, **kwargs)
    except redis.exceptions.AuthenticationError as exc:
        raise CliError(f"cannot log in to {redact(url)}: {exc}") from None
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError) as exc:
        raise CliError(f"cannot connect to {redact(url)}: {exc}") from None
    except redis.exceptions.RedisError as exc:
        raise CliError(f"cannot use {redact(url)}: {exc}") from None
