"""``plain-redis-saver``: inspect and maintain the threads a saver stored.

Run ``plain-redis-saver --help`` (or ``python -m plain_redis_saver --help``). Every
command goes through the saver's public API (``get_tuple``, ``list``, ``put``,
``put_writes``, ``delete_thread``, ``prune``, ``copy_thread``, ``thread_snapshot``), the
export format of :mod:`plain_redis_saver.transfer`, and a few read-only commands on
whole keys (``SCAN``, ``PTTL``, ``MEMORY USAGE``, ``GET <prefix>:schema``, and
``HKEYS``/``HMGET`` of the per-namespace checkpoint counts): it never decodes the
stored records itself. Reads never extend a thread's TTL.

The package, one job per module: ``arguments`` (the parser, option values), ``connection``
(the client), ``store`` (finding and reading threads), ``render`` (tables and JSON),
``commands`` (one module per group of sub-commands), ``exits`` (exit codes, errors).

Exit codes: 0 success, 1 failure (connection, missing thread, wrong prefix, server or
data error), 2 usage error (bad arguments).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Sequence
from typing import Any

import redis.exceptions

from ..errors import InvalidConfigError, PlainRedisSaverError
from ..transfer import EXPORT_FORMAT, EXPORT_VERSION
from . import arguments
from .commands import COMMANDS
from .connection import connect
from .exits import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, CliError, describe
from .store import Store

__all__ = ["EXPORT_FORMAT", "EXPORT_VERSION", "CliError", "Store", "build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The parser of every command."""
    return arguments.build_parser(COMMANDS)


def main(argv: Sequence[str] | None = None, *, client: Any = None) -> int:
    """Run the command line; returns the exit code. ``client`` (optional) is an existing
    Redis client to use instead of connecting with ``--url`` (it is not closed)."""
    out, err = sys.stdout, sys.stderr
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error (already printed)
        return int(exc.code) if isinstance(exc.code, int) else EXIT_USAGE
    own_client = client is None
    try:
        serde = arguments.load_serde(args.serde)
        if client is None:
            client = connect(args)
        store = Store(client, args.key_prefix, serde)
        run = next(c.run for c in COMMANDS if c.name == args.command)
        run(args, store, out)
        out.flush()
        return EXIT_OK
    except CliError as exc:
        err.write(f"plain-redis-saver: error: {exc}\n")
        return exc.code
    except InvalidConfigError as exc:
        err.write(f"plain-redis-saver: error: {exc}\n")
        return EXIT_USAGE
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
        err.write(f"plain-redis-saver: error: lost the connection to the server: {describe(exc)}\n")
        return EXIT_FAILURE
    except (redis.exceptions.RedisError, PlainRedisSaverError) as exc:
        err.write(f"plain-redis-saver: error: {describe(exc)}\n")
        return EXIT_FAILURE
    except BrokenPipeError:
        # The reader went away (e.g. "| head"); say nothing more on a closed pipe.
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (replaces a closed stdout)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        err.write("plain-redis-saver: interrupted\n")
        return 130
    finally:
        if own_client and client is not None:
            with contextlib.suppress(Exception):
                client.close()
