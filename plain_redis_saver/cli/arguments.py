"""The command line's arguments: the parser, and option values turned into objects
(``--ttl``, ``--serde``)."""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import math
import os
import sys
from collections.abc import Callable, Sequence
from typing import IO, TYPE_CHECKING, Any

from langgraph.checkpoint.serde.base import SerializerProtocol

from .. import __version__
from ..keys import DEFAULT_KEY_PREFIX
from .exits import EXIT_USAGE, CliError

if TYPE_CHECKING:
    from .store import Store

DEFAULT_URL = "redis://127.0.0.1:6379/0"


def _no_arguments(parser: argparse.ArgumentParser) -> None:
    """A command without arguments of its own."""


@dataclasses.dataclass(frozen=True)
class Command:
    """One sub-command: its name and help, the arguments it adds to its parser, and the
    function that runs it (printing to ``out``, raising CliError to fail)."""

    name: str
    help: str
    run: Callable[[argparse.Namespace, Store, IO[str]], None]
    arguments: Callable[[argparse.ArgumentParser], None] = _no_arguments


def _add_common(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """Connection and output options. They are accepted before and after the command;
    on the sub-commands they default to SUPPRESS so they do not hide the top-level ones."""

    def default(value: Any) -> Any:
        return value if top else argparse.SUPPRESS

    group = parser.add_argument_group("connection")
    group.add_argument(
        "--url",
        default=default(None),
        help="redis://[user:password@]host:port/db, rediss:// for TLS, or unix://path "
        f"(default: $REDIS_URL, else {DEFAULT_URL})",
    )
    group.add_argument(
        "--key-prefix",
        default=default(DEFAULT_KEY_PREFIX),
        metavar="PREFIX",
        help=f"the saver's key_prefix (default: {DEFAULT_KEY_PREFIX!r})",
    )
    mode = group.add_mutually_exclusive_group()
    mode.add_argument(
        "--cluster",
        dest="cluster",
        action="store_const",
        const=True,
        default=default(None),
        help="force cluster mode (default: ask the server)",
    )
    mode.add_argument(
        "--no-cluster",
        dest="cluster",
        action="store_const",
        const=False,
        default=default(None),
        help="force a standalone client",
    )
    group.add_argument(
        "--ca-cert", default=default(None), metavar="FILE", help="CA bundle for rediss:// URLs"
    )
    group.add_argument(
        "--client-cert",
        default=default(None),
        metavar="FILE",
        help="client certificate for mutual TLS (rediss:// URLs)",
    )
    group.add_argument(
        "--client-key", default=default(None), metavar="FILE", help="key of --client-cert"
    )
    group.add_argument(
        "--timeout",
        type=float,
        default=default(10.0),
        metavar="SECONDS",
        help="connect and command timeout (default: 10)",
    )
    group.add_argument(
        "--serde",
        default=default(None),
        metavar="MODULE:NAME",
        help="serializer the saver uses, e.g. 'myapp.storage:serde' (an object with "
        "dumps_typed/loads_typed, or a function returning one; the module is looked up in "
        "the current directory too); default SafeSerializer",
    )
    output = parser.add_argument_group("output")
    output.add_argument(
        "--json",
        action="store_true",
        default=default(False),
        help="print JSON for scripts instead of tables",
    )


def add_common_options(parser: argparse.ArgumentParser) -> None:
    """The connection and output options, on a command's own sub-command (a group's)."""
    _add_common(parser, top=False)


def ttl_option(parser: argparse.ArgumentParser, default: str, what: str) -> None:
    parser.add_argument(
        "--ttl",
        default=default,
        metavar="SECONDS|keep|none",
        help=f"expiry of {what}: seconds, 'keep' (its current one) or 'none' "
        f"(default: {default!r})",
    )


def build_parser(commands: Sequence[Command]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="plain-redis-saver",
        description="Inspect and maintain LangGraph threads stored by plain-redis-saver "
        "in Redis or Valkey.",
        epilog="Exit codes: 0 success, 1 failure (connection, missing thread, damaged "
        "data), 2 bad arguments. Reads never extend a thread's TTL.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _add_common(parser, top=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in commands:
        cmd = sub.add_parser(command.name, help=command.help, description=command.help)
        _add_common(cmd, top=False)
        command.arguments(cmd)
    return parser


def parse_ttl(text: str) -> float | None | str:
    """'keep', None (no expiry) or seconds."""
    lowered = text.strip().lower()
    if lowered in ("keep", "none"):
        return None if lowered == "none" else "keep"
    try:
        seconds = float(lowered)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise CliError(
            f"--ttl must be a number of seconds > 0, 'keep' or 'none', got {text!r}", EXIT_USAGE
        )
    return seconds


def load_object(spec: str, option: str, *, text_ok: bool = False) -> Any:
    """The object ``module:name`` names (the module looked up in the current directory
    first, as ``python -m plain_redis_saver`` does: an installed console script's
    sys.path does not hold it). With ``text_ok``, a spec whose module is not found is
    returned as it is (a "provider:model" string for LangGraph to resolve)."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise CliError(f"{option} must look like 'package.module:name', got {spec!r}", EXIT_USAGE)
    here = os.getcwd()
    added = here not in sys.path and "" not in sys.path
    if added:
        sys.path.insert(0, here)
    try:
        return getattr(importlib.import_module(module_name), attr)
    except ModuleNotFoundError as exc:
        if text_ok and exc.name == module_name.split(".")[0]:
            return spec
        raise CliError(
            f"{option} {spec!r}: {exc} (looked in the current directory and sys.path)", EXIT_USAGE
        ) from None
    except (ImportError, AttributeError) as exc:
        raise CliError(
            f"{option} {spec!r}: {exc} (looked in the current directory and sys.path)", EXIT_USAGE
        ) from None
    finally:
        if added:
            sys.path.remove(here)


def load_serde(spec: str | None) -> SerializerProtocol | None:
    """The serializer ``--serde module:name`` names (see load_object)."""
    if not spec:
        return None
    obj = load_object(spec, "--serde")
    if not hasattr(obj, "dumps_typed") and callable(obj):
        obj = obj()
    if not (hasattr(obj, "dumps_typed") and hasattr(obj, "loads_typed")):
        raise CliError(
            f"--serde {spec!r} is not a serializer (no dumps_typed/loads_typed)", EXIT_USAGE
        )
    return obj  # type: ignore[no-any-return]
