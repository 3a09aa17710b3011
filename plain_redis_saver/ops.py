"""The operations a plan yields, and nothing else: the vocabulary shared by the planner
(:mod:`plain_redis_saver.core`) and the runners (:mod:`plain_redis_saver.drive`), so
that a runner needs no part of the planner.

A plan is a generator that yields operations and is sent each one's reply; it yields
:class:`Emit` for every result it produces.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

from .scripts import LuaScript

Arg = str | bytes | int


@dataclass(frozen=True)
class Eval:
    """Run a script (EVALSHA, falling back to EVAL on NOSCRIPT).

    ``expiry`` is sent before ``args``: "" leaves the thread's TTL alone, "0" removes it,
    digits set it in milliseconds, "~" and digits set it only where one is set already
    (see lua/includes/common.lua).
    """

    script: LuaScript
    keys: tuple[str, ...]
    args: tuple[Arg, ...]
    expiry: str


@dataclass(frozen=True)
class Call:
    """Run one command; the reply is what the client returns for it.

    ``route`` names a key whose node must run a keyless command (WAIT) on a cluster.
    """

    args: tuple[Arg, ...]
    route: str | None = None


@dataclass(frozen=True)
class Batch:
    """Run several operations in one pipeline (one round trip); reply is their replies.

    The first failed operation raises, unless ``keep_errors``: then each failure is its
    reply, as an exception (damaged data as CorruptDataError), for plans that go on
    with the other threads."""

    ops: tuple[Eval | Call, ...]
    keep_errors: bool = False


@dataclass(frozen=True)
class Scan:
    """SCAN every node for keys matching ``pattern``; reply is the list of keys."""

    pattern: str


@dataclass(frozen=True)
class LoadScripts:
    """SCRIPT LOAD every script on every node."""


@dataclass(frozen=True)
class Emit:
    """A result of the plan (not sent to the server)."""

    value: Any


Op = Eval | Call | Batch | Scan | LoadScripts
Plan = Generator[Op | Emit, Any, None]


__all__ = ["Arg", "Batch", "Call", "Emit", "Eval", "LoadScripts", "Op", "Plan", "Scan"]
