"""Every sub-command, in the order ``--help`` lists them.

A new command is a :class:`~plain_redis_saver.cli.arguments.Command` (name, help, its
arguments, the function that runs it) in a module of this package, added to COMMANDS
below; nothing else changes."""

from __future__ import annotations

from ..arguments import Command
from . import maintain, read, store, transfer

COMMANDS: tuple[Command, ...] = (
    *read.COMMANDS,
    *maintain.COMMANDS,
    *transfer.COMMANDS,
    *store.COMMANDS,
)
