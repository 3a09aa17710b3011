"""Commands that change threads: delete, prune, copy. Their counts come from the
counters the saver keeps (no checkpoint is decoded), so they also serve threads whose
data no longer decodes, and cost the same for a thread of any length."""

from __future__ import annotations

import argparse
from typing import IO

from ...errors import CorruptDataError
from ...saver import PlainRedisSaver
from ..arguments import Command, parse_ttl, ttl_option
from ..exits import EXIT_USAGE, CliError, describe, plural
from ..render import json_out, table
from ..store import Store


def _counted(count: int | None) -> str:
    return "its checkpoints could not be counted" if count is None else plural(count, "checkpoint")


def _refused_damaged(what: str, exc: CorruptDataError) -> CliError:
    return CliError(
        f"{describe(exc)}; a thread that lost keys cannot be {what}, but 'delete THREAD' removes it"
    )


def _delete_arguments(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("thread", metavar="THREAD")


def run_delete(args: argparse.Namespace, store: Store, out: IO[str]) -> None:
    store.require_thread(args.thread)
    count = store.checkpoint_count(args.thread)
    store.saver.delete_thread(args.thread)
    if args.json:
        json_out(out, {"deleted": args.thread, "checkpoints": count})
    else:
        out.write(f"deleted thread {args.thread!r} ({_counted(count)})\n")


def _writer_for(store: Store, ttl: float | None | str, thread_id: str) -> PlainRedisSaver:
    if ttl == "keep":
        return store.writer(store.thread_ttl_seconds(thread_id))
    assert not isinstance(ttl, str)
    return store.writer(ttl)


def _prune_arguments(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("threads", metavar="THREAD", nargs="+")
    cmd.add_argument(
        "--keep-latest",
        action="store_true",
        required=True,
        help="keep the latest checkpoint of each namespace (and what it needs)",
    )
    ttl_option(cmd, "keep", "each pruned thread")


def run_prune(args: argparse.Namespace, store: Store, out: IO[str]) -> None:
    ttl = parse_ttl(args.ttl)
    threads = list(dict.fromkeys(args.threads))
    missing = [t for t in threads if not store.thread_exists(t)]
    if missing:
        if len(missing) == 1:
            raise store.missing_thread(missing[0])
        raise CliError(
            f"threads not found under key prefix {store.prefix!r}: "
            + ", ".join(repr(t) for t in missing)
            + "; nothing was pruned"
        )
    results = []
    for thread_id in threads:
        before = store.checkpoint_count(thread_id)
        try:
            _writer_for(store, ttl, thread_id).prune([thread_id], strategy="keep_latest")
        except CorruptDataError as exc:
            raise _refused_damaged("pruned", exc) from None
        after = store.checkpoint_count(thread_id)
        results.append({"thread_id": thread_id, "before": before, "after": after})
    if args.json:
        json_out(out, {"pruned": results})
        return
    table(
        out,
        ["THREAD", "CHECKPOINTS BEFORE", "AFTER"],
        ((r["thread_id"], r["before"], r["after"]) for r in results),
    )


def make_room(store: Store, thread_id: str, replace: bool, what: str) -> None:
    """Refuse an existing ``thread_id`` unless ``replace``, which deletes it."""
    if store.thread_exists(thread_id):
        if not replace:
            raise CliError(
                f"{what} thread {thread_id!r} already exists under key prefix "
                f"{store.prefix!r}; pass --replace to delete it first"
            )
        store.saver.delete_thread(thread_id)


def _copy_arguments(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("source", metavar="SRC")
    cmd.add_argument("target", metavar="DST")
    cmd.add_argument("--replace", action="store_true", help="delete DST first if it exists")
    ttl_option(cmd, "keep", "the copy")


def run_copy(args: argparse.Namespace, store: Store, out: IO[str]) -> None:
    ttl = parse_ttl(args.ttl)
    if args.source == args.target:
        raise CliError("SRC and DST are the same thread", EXIT_USAGE)
    store.require_thread(args.source)
    writer = _writer_for(store, ttl, args.source)
    make_room(store, args.target, args.replace, "target")
    try:
        writer.copy_thread(args.source, args.target)
    except CorruptDataError as exc:
        raise _refused_damaged("copied", exc) from None
    count = store.checkpoint_count(args.target)
    if args.json:
        json_out(out, {"source": args.source, "target": args.target, "checkpoints": count})
    else:
        out.write(f"copied thread {args.source!r} to {args.target!r} ({_counted(count)})\n")


COMMANDS = (
    Command("delete", "delete a thread (also a damaged one)", run_delete, _delete_arguments),
    Command(
        "prune", "keep only the newest checkpoint of each namespace", run_prune, _prune_arguments
    ),
    Command("copy", "copy a thread into a new thread id", run_copy, _copy_arguments),
)
