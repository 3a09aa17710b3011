"""Commands that read: threads, history, show, stats, check. None extends a TTL."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from typing import IO, Any

from ..arguments import Command
from ..exits import EXIT_USAGE, CliError
from ..render import human_bytes, human_ttl, json_out, render, short_time, show_document, table
from ..store import DAMAGED, NOT_FOUND, OK, UNDECODABLE, Store

#: How the reports that only count damaged threads point to the one that explains them.
_SEE_CHECK = " ('check THREAD...' shows what is missing)"


def _names(thread_ids: Sequence[str]) -> str:
    more = f" and {len(thread_ids) - 5} more" if len(thread_ids) > 5 else ""
    return ", ".join(repr(t) for t in thread_ids[:5]) + more


def problems_error(
    store: Store, statuses: Sequence[tuple[str, str]], what: str, hint: str = ""
) -> CliError | None:
    """Exit 1 after a report that found threads damaged, undecodable or missing: one
    line naming the first of each, or None when every thread was read."""
    by_status: dict[str, list[str]] = {}
    for thread_id, status in statuses:
        by_status.setdefault(status, []).append(thread_id)
    total, parts = len(statuses), []
    if damaged := by_status.get(DAMAGED):
        parts.append(f"{len(damaged)} of {total} {what} damaged: {_names(damaged)}{hint}")
    if undecodable := by_status.get(UNDECODABLE):
        serde = "the --serde given" if store.serde is not None else "the default serializer"
        parts.append(
            f"{len(undecodable)} of {total} {what} written with another serializer than "
            f"{serde}: {_names(undecodable)}; pass --serde module:name to read them"
        )
    if missing := by_status.get(NOT_FOUND):
        parts.append(f"{_names(missing)} not found under key prefix {store.prefix!r}")
    return CliError("; ".join(parts)) if parts else None


def _nothing_stored(store: Store) -> None:
    sys.stderr.write(f"plain-redis-saver: {store.nothing_stored_hint()}\n")


# --------------------------------------------------------------------------- threads


def _threads_arguments(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument(
        "--cursor",
        default="0",
        help="cursor printed by the previous page ('0' starts; a returned '0' means done)",
    )
    cmd.add_argument(
        "--count",
        type=int,
        default=50,
        help="about this many threads per page (SCAN COUNT hint; default: 50)",
    )


def run_threads(args: argparse.Namespace, store: Store, out: IO[str]) -> None:
    if args.count < 1:
        raise CliError("--count must be >= 1", EXIT_USAGE)
    thread_ids, cursor = store.scan_threads(args.cursor, args.count)
    summaries = [store.summary(t) for t in thread_ids]
    if args.json:
        json_out(out, {"threads": [s.as_json() for s in summaries], "cursor": cursor})
    elif summaries:
        table(
            out,
            [
                "THREAD",
                "CHECKPOINTS",
                "NAMESPACES",
                "WRITES",
                "LAST UPDATE",
                "BYTES",
                "TTL",
                "STATUS",
            ],
            (
                (
                    s.thread_id,
                    s.checkpoints,
                    ", ".join(repr(n) for n in s.namespaces) or "-",
                    s.pending_writes,
                    short_time(s.last_update),
                    human_bytes(s.bytes),
                    human_ttl(s.ttl_ms),
                    s.status,
                )
                for s in summaries
            ),
        )
    if not args.json and cursor != "0":
        out.write(f"next page: --cursor {cursor}\n")
    if not thread_ids and cursor == "0" and args.cursor == "0" and not store.has_any_data():
        _nothing_stored(store)
    error = problems_error(
        store, [(s.thread_id, s.status) for s in summaries], "threads on this page are", _SEE_CHECK
    )
    if error:
        raise error


# --------------------------------------------------------------------------- history / show


def _history_arguments(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("thread", metavar="THREAD")
    cmd.add_argument("--ns", default=None, help="only this namespace ('' = root graph)")
    cmd.add_argument("--limit", type=int, default=None, help="at most N checkpoints")


def run_history(args: argparse.Namespace, store: Store, out: IO[str]) -> None:
    if args.limit is not None and args.limit < 1:
        raise CliError("--limit must be >= 1", EXIT_USAGE)
    conf: dict[str, Any] = {"thread_id": args.thread}
    if args.ns is not None:
        conf["checkpoint_ns"] = args.ns
    rows = []
    for tup in store.saver.list({"configurable": conf}, limit=args.limit):
        meta: Mapping[str, Any] = tup.metadata or {}
        parent = (tup.parent_config or {}).get("configurable", {}).get("checkpoint_id")
        rows.append(
            {
                "checkpoint_id": tup.config["configurable"]["checkpoint_id"],
                "checkpoint_ns": tup.config["configurable"]["checkpoint_ns"],
                "step": meta.get("step"),
                "source": meta.get("source"),
                "run_id": render(meta.get("run_id"), store.saver.serde),
                "pending_writes": len(tup.pending_writes or ()),
                "parent_checkpoint_id": parent,
                "ts": tup.checkpoint.get("ts"),
            }
        )
    if not rows:
        if args.ns is not None and store.thread_exists(args.thread):
            raise CliError(f"thread {args.thread!r} has no checkpoint in namespace {args.ns!r}")
        raise store.missing_thread(args.thread)
    if args.json:
        json_out(out, {"thread_id": args.thread, "checkpoints": rows})
        return
    table(
        out,
        ["CHECKPOINT", "NS", "STEP", "SOURCE", "RUN_ID", "WRITES", "PARENT", "CREATED"],
        (
            (
                r["checkpoint_id"],
                repr(r["checkpoint_ns"]),
                r["step"],
                r["source"],
                r["run_id"],
                r["pending_writes"],
                r["parent_checkpoint_id"],
                short_time(r["ts"]),
            )
            for r in rows
        ),
    )


def _show_arguments(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("thread", metavar="THREAD")
    cmd.add_argument("checkpoint_id", metavar="CHECKPOINT_ID", nargs="?", default=None)
    cmd.add_argument("--ns", default="", help="namespace (default: '' = root graph)")


def run_show(args: argparse.Namespace, store: Store, out: IO[str]) -> None:
    conf: dict[str, Any] = {"thread_id": args.thread, "checkpoint_ns": args.ns}
    if args.checkpoint_id:
        conf["checkpoint_id"] = args.checkpoint_id
    tup = store.saver.get_tuple({"configurable": conf})
    if tup is None:
        if not store.thread_exists(args.thread):
            raise store.missing_thread(args.thread)
        if args.checkpoint_id:
            raise CliError(
                f"checkpoint {args.checkpoint_id!r} not found in thread {args.thread!r} "
                f"(namespace {args.ns!r}); see 'history {args.thread}'"
            )
        raise CliError(f"thread {args.thread!r} has no checkpoint in namespace {args.ns!r}")
    json_out(out, show_document(tup, store.saver.serde))


# --------------------------------------------------------------------------- stats


def run_stats(args: argparse.Namespace, store: Store, out: IO[str]) -> None:
    schema = store.schema_version()
    totals: dict[str, Any] = {
        "key_prefix": store.prefix,
        "schema_version": schema,
        "threads": 0,
        "checkpoints": 0,
        "namespaces": 0,
        "pending_writes": 0,
        "bytes": 0,
        "keys": 0,
        "keys_without_ttl": 0,
        "damaged_threads": 0,
        "undecodable_threads": 0,
    }
    totals["store_namespaces"], totals["store_items"] = store.store_counts()
    statuses = []
    for thread_id in store.all_threads():
        s = store.summary(thread_id)
        statuses.append((thread_id, s.status))
        totals["threads"] += 1
        totals["checkpoints"] += s.checkpoints
        totals["namespaces"] += len(s.namespaces)
        totals["pending_writes"] += s.pending_writes
        totals["keys"] += s.keys
        totals["keys_without_ttl"] += s.keys_without_ttl
        totals["bytes"] = (
            None if s.bytes is None or totals["bytes"] is None else totals["bytes"] + s.bytes
        )
    totals["damaged_threads"] = sum(1 for _, status in statuses if status == DAMAGED)
    totals["undecodable_threads"] = sum(1 for _, status in statuses if status == UNDECODABLE)
    if args.json:
        json_out(out, totals)
    else:
        _stats_table(out, totals)
    if schema is None and totals["threads"] == 0 and totals["store_items"] == 0:
        _nothing_stored(store)
    error = problems_error(store, statuses, "threads are", _SEE_CHECK)
    if error:
        raise error


def _stats_table(out: IO[str], totals: Mapping[str, Any]) -> None:
    labels = {
        "key_prefix": "key prefix",
        "schema_version": "schema version",
        "threads": "threads",
        "checkpoints": "checkpoints",
        "namespaces": "namespaces",
        "pending_writes": "pending writes",
        "bytes": "memory",
        "keys": "keys",
        "keys_without_ttl": "keys without TTL",
        "damaged_threads": "damaged threads (see check)",
        "undecodable_threads": "threads needing --serde",
        "store_namespaces": "store namespaces",
        "store_items": "store items",
    }
    shown = dict(totals)
    shown["bytes"] = human_bytes(totals["bytes"])
    if totals["bytes"] is None:
        shown["bytes"] = "? (MEMORY USAGE not permitted or not supported)"
    if totals["schema_version"] is None:
        shown["schema_version"] = "not recorded (setup() never ran)"
    table(out, ["", ""], ((labels[k], shown[k]) for k in labels))


# --------------------------------------------------------------------------- check


def _check_arguments(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("threads", metavar="THREAD", nargs="*")
    cmd.add_argument(
        "--repair",
        action="store_true",
        help="set wrong reference counts right and delete the values nothing references "
        "(a thread that lost a key is left as it is)",
    )


def _check_status(row: Mapping[str, Any]) -> str:
    if row["problem"]:
        return str(row["problem"])
    if repaired := row.get("repaired"):
        return (
            f"{OK}: repaired {repaired['counts']} count(s), deleted {repaired['deleted']} "
            f"unreferenced value(s) or piece(s) of content ({human_bytes(repaired['bytes'])})"
        )
    if row.get("unreferenced"):
        why = (
            "removed, awaiting the thread's collection"
            if row.get("uncounted")
            else "no checkpoint or write references"
        )
        return (
            f"{OK}; {row['unreferenced']} stored value(s) or piece(s) of content "
            f"({human_bytes(row['unreferenced_bytes'])}) {why}"
        )
    return OK


def run_check(args: argparse.Namespace, store: Store, out: IO[str]) -> None:
    threads = list(dict.fromkeys(args.threads)) or sorted(store.all_threads())
    rows = []
    for thread_id in threads:
        if args.threads and not store.thread_exists(thread_id):
            row = {"thread_id": thread_id, "checkpoints_read": 0, "status": NOT_FOUND}
            row["problem"] = f"not found under key prefix {store.prefix!r}"
        else:
            reading = store.read_thread(thread_id)
            audit = store.audit(thread_id, reading)
            repaired = None
            if args.repair and audit and (audit.wrong_counts or audit.unreferenced):
                audit = repaired = store.repair(thread_id, reading)
            row = {
                "thread_id": thread_id,
                "checkpoints_read": reading.checkpoints,
                "status": reading.status,
                "problem": reading.problem,
                "unreferenced": len(audit.unreferenced) if audit else None,
                "unreferenced_bytes": audit.unreferenced_bytes if audit else None,
                # Whether the thread keeps no reference counts (its unreferenced values
                # are garbage its next collection deletes).
                "uncounted": audit.uncounted if audit else None,
            }
            if repaired:
                row["unreferenced"] = row["unreferenced_bytes"] = 0  # deleted just now
                row["repaired"] = {
                    "counts": len(repaired.wrong_counts),
                    "deleted": len(repaired.unreferenced),
                    "bytes": repaired.unreferenced_bytes,
                }
        rows.append(row)
    statuses = [(r["thread_id"], r["status"]) for r in rows]
    if args.json:
        damaged = sum(1 for _, status in statuses if status != OK)
        json_out(out, {"threads": len(rows), "damaged": damaged, "results": rows})
    elif rows:
        table(
            out,
            ["THREAD", "CHECKPOINTS", "STATUS"],
            ((r["thread_id"], r["checkpoints_read"], _check_status(r)) for r in rows),
        )
    if not rows and store.schema_version() is None:
        _nothing_stored(store)
    error = problems_error(store, statuses, "threads are")
    if error:
        raise error


COMMANDS = (
    Command("threads", "list threads (paged with SCAN cursors)", run_threads, _threads_arguments),
    Command("history", "a thread's checkpoints, newest first", run_history, _history_arguments),
    Command(
        "show", "one checkpoint as JSON (default: the thread's latest)", run_show, _show_arguments
    ),
    Command(
        "stats",
        "totals over every thread under the prefix, and the store's namespaces and items",
        run_stats,
    ),
    Command(
        "check",
        "read every checkpoint of the threads (default: all under the prefix) with its "
        "values and pending writes, check their reference counts against what they store, "
        "and report each one's state (exit 1 if any is damaged, missing or needs --serde)",
        run_check,
        _check_arguments,
    ),
)
