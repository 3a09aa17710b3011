"""export and import: the command-line face of plain_redis_saver.transfer, which owns
the format."""

from __future__ import annotations

import argparse
import sys
from typing import IO, Any

from ... import transfer
from ...errors import IncompleteImportError, ThreadExistsError, ThreadNotFoundError
from ..arguments import Command, parse_ttl, ttl_option
from ..exits import EXIT_USAGE, CliError, describe, plural
from ..render import json_out
from ..store import Store


class _CreatedOnWrite:
    """A file opened at its first write, so that an export that fails before writing
    (a missing thread) leaves no empty file behind."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.handle: IO[str] | None = None

    def write(self, text: str) -> int:
        if self.handle is None:
            try:
                self.handle = open(self.path, "w", encoding="utf-8")  # noqa: SIM115
            except OSError as exc:
                raise CliError(f"cannot write {self.path}: {exc.strerror or exc}") from None
        return self.handle.write(text)

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()


def _export_arguments(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("thread", metavar="THREAD")
    cmd.add_argument("-o", "--output", default="-", metavar="FILE", help="default: stdout")


def run_export(args: argparse.Namespace, store: Store, out: IO[str]) -> None:
    target: Any = out if args.output == "-" else _CreatedOnWrite(args.output)
    try:
        summary = transfer.export_thread(store.saver, args.thread, target)
    except ThreadNotFoundError:
        raise store.missing_thread(args.thread) from None
    except OSError as exc:
        if target is out:  # a closed pipe ("| head"): main() ends quietly
            raise
        raise CliError(f"cannot write {args.output}: {exc.strerror or exc}") from None
    finally:
        if target is not out:
            target.close()
    if target is not out:
        sys.stderr.write(
            f"exported thread {args.thread!r} ({plural(summary.checkpoints, 'checkpoint')}) "
            f"to {args.output}\n"
        )


def _import_arguments(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("file", metavar="FILE", nargs="?", default="-", help="default: stdin")
    cmd.add_argument(
        "--thread", default=None, metavar="THREAD", help="target thread (default: the exported id)"
    )
    cmd.add_argument("--replace", action="store_true", help="delete the target first if it exists")
    ttl_option(cmd, "none", "the imported thread")


def _import(args: argparse.Namespace, store: Store, file: IO[str]) -> transfer.ImportSummary:
    ttl = parse_ttl(args.ttl)
    if ttl == "keep":
        raise CliError("import: --ttl keep has nothing to keep; give seconds or 'none'", EXIT_USAGE)
    assert not isinstance(ttl, str)
    try:
        return transfer.import_thread(
            store.writer(ttl), file, thread_id=args.thread, replace=args.replace
        )
    except ThreadExistsError as exc:
        raise CliError(
            f"target thread {exc.thread_id!r} already exists under key prefix {store.prefix!r}; "
            "pass --replace to delete it first"
        ) from None
    except IncompleteImportError as exc:
        raise CliError(
            f"import stopped after {exc.written} of {exc.total} checkpoints: "
            f"{describe(exc.__cause__ or exc)}; re-run it with --replace"
        ) from None


def run_import(args: argparse.Namespace, store: Store, out: IO[str]) -> None:
    if args.file == "-":
        summary = _import(args, store, sys.stdin)
    else:
        try:
            with open(args.file, encoding="utf-8") as handle:
                summary = _import(args, store, handle)
        except OSError as exc:
            raise CliError(f"cannot read {args.file}: {exc.strerror or exc}") from None
    result = {
        "thread_id": summary.thread_id,
        "source_thread_id": summary.source_thread_id,
        "checkpoints": summary.checkpoints,
        "pending_writes": summary.pending_writes,
        "key_prefix": store.prefix,
    }
    if args.json:
        json_out(out, result)
    else:
        out.write(
            f"imported thread {summary.source_thread_id!r} as {summary.thread_id!r} under key "
            f"prefix {store.prefix!r}: {plural(summary.checkpoints, 'checkpoint')}, "
            f"{plural(summary.pending_writes, 'pending write')}\n"
        )


COMMANDS = (
    Command(
        "export",
        "write a thread as JSON lines (to stdout or -o FILE)",
        run_export,
        _export_arguments,
    ),
    Command(
        "import",
        "replay an export into a thread (from stdin or FILE)",
        run_import,
        _import_arguments,
    ),
)
