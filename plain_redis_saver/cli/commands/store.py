"""``store``: the long-term memory a PlainRedisStore keeps under the same prefix
(namespaces, items, get, search, delete). Everything goes through the store's public
API with ``refresh_ttl=False``, so inspecting never extends an item's TTL."""

from __future__ import annotations

import argparse
import json
from typing import IO, Any

from langgraph.store.base import Item, SearchItem

from ..arguments import Command, add_common_options, load_object
from ..exits import EXIT_USAGE, CliError
from ..render import json_out, render, short_time, table
from ..store import Store

#: Items a search of one namespace reads per call while listing it.
_PAGE = 100
#: Characters of a value a table shows (--json shows it whole).
_VALUE_WIDTH = 60


def namespace(text: str) -> tuple[str, ...]:
    """A namespace given with slashes (``users/ann``) or as a JSON array (``'["a/b",
    "c"]'``) when a label holds a slash; "" is the whole store."""
    if text.startswith("["):
        try:
            labels = json.loads(text)
        except json.JSONDecodeError:
            labels = None
        if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
            raise argparse.ArgumentTypeError(f"{text!r} is not a JSON array of strings")
        return tuple(labels)
    return tuple(label for label in text.split("/") if label)


def _filter(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("a filter is a JSON object")
    return value


def _shown(labels: tuple[str, ...]) -> str:
    return "/".join(labels) if all("/" not in label for label in labels) else json.dumps(labels)


def _document(item: Item, store: Store) -> dict[str, Any]:
    doc = {
        "namespace": list(item.namespace),
        "key": item.key,
        "value": render(item.value, store.serde or store.saver.serde),
        "created_at": item.created_at.isoformat(),
        "updated_at": item.updated_at.isoformat(),
    }
    if isinstance(item, SearchItem) and item.score is not None:
        doc["score"] = item.score
    return doc


def _print_items(args: argparse.Namespace, store: Store, items: list[Item], out: IO[str]) -> None:
    docs = [_document(item, store) for item in items]
    if args.json:
        json_out(out, {"items": docs})
        return
    scored = any("score" in doc for doc in docs)
    headers = ["NAMESPACE", "KEY", "UPDATED", *(["SCORE"] if scored else []), "VALUE"]

    def row(doc: dict[str, Any]) -> list[Any]:
        value = json.dumps(doc["value"], ensure_ascii=False)
        if len(value) > _VALUE_WIDTH:
            value = value[: _VALUE_WIDTH - 3] + "..."
        score = [round(doc["score"], 4) if "score" in doc else None] if scored else []
        labels = tuple(doc["namespace"])
        return [_shown(labels), doc["key"], short_time(doc["updated_at"]), *score, value]

    if docs:
        table(out, headers, (row(doc) for doc in docs))


def _window(cmd: argparse.ArgumentParser, limit: int) -> None:
    cmd.add_argument("--limit", type=int, default=limit, help=f"at most N (default: {limit})")
    cmd.add_argument("--offset", type=int, default=0, help="skip the first N (default: 0)")


def _checked_window(args: argparse.Namespace) -> None:
    if args.limit < 1 or args.offset < 0:
        raise CliError("--limit must be >= 1 and --offset >= 0", EXIT_USAGE)


# --------------------------------------------------------------------------- commands


def run_namespaces(args: argparse.Namespace, store: Store, out: IO[str]) -> None:
    _checked_window(args)
    found = store.memory().list_namespaces(
        prefix=args.prefix or None,
        suffix=args.suffix or None,
        max_depth=args.max_depth,
        limit=args.limit,
        offset=args.offset,
    )
    if args.json:
        json_out(out, {"namespaces": [list(labels) for labels in found]})
    elif found:
        table(out, ["NAMESPACE"], ([_shown(labels)] for labels in found))


def run_items(args: argparse.Namespace, store: Store, out: IO[str]) -> None:
    """A search of a namespace also returns the namespaces under it: only its own are
    kept, page by page."""
    _checked_window(args)
    memory, skipped, page = store.memory(), 0, 0
    kept: list[Item] = []
    while len(kept) < args.limit:
        batch = memory.search(args.namespace, limit=_PAGE, offset=page * _PAGE, refresh_ttl=False)
        for item in batch:
            if item.namespace != args.namespace or len(kept) >= args.limit:
                continue
            if skipped < args.offset:
                skipped += 1
            else:
                kept.append(item)
        if len(batch) < _PAGE:
            break
        page += 1
    _print_items(args, store, kept, out)


def run_get(args: argparse.Namespace, store: Store, out: IO[str]) -> None:
    item = store.memory().get(args.namespace, args.key, refresh_ttl=False)
    if item is None:
        raise _missing(args, store)
    json_out(out, _document(item, store))


def run_search(args: argparse.Namespace, store: Store, out: IO[str]) -> None:
    _checked_window(args)
    if args.query is not None and (args.embed is None or args.dims is None):
        raise CliError("--query needs --embed and --dims (the store's index)", EXIT_USAGE)
    index: Any = None
    if args.embed is not None:
        if args.dims is None or args.dims < 1:
            raise CliError("--embed needs --dims N (N >= 1)", EXIT_USAGE)
        index = {"dims": args.dims, "embed": load_object(args.embed, "--embed", text_ok=True)}
    try:
        memory = store.memory(index)
    except ValueError as exc:  # LangGraph could not resolve a "provider:model" string
        raise CliError(f"--embed {args.embed!r}: {exc}", EXIT_USAGE) from None
    found = memory.search(
        args.prefix,
        query=args.query,
        filter=args.filter,
        limit=args.limit,
        offset=args.offset,
        refresh_ttl=False,
    )
    _print_items(args, store, list(found), out)


def run_delete(args: argparse.Namespace, store: Store, out: IO[str]) -> None:
    memory = store.memory()
    if memory.get(args.namespace, args.key, refresh_ttl=False) is None:
        raise _missing(args, store)
    memory.delete(args.namespace, args.key)
    if args.json:
        json_out(out, {"deleted": {"namespace": list(args.namespace), "key": args.key}})
    else:
        out.write(f"deleted item {args.key!r} of namespace {_shown(args.namespace)}\n")


def _missing(args: argparse.Namespace, store: Store) -> CliError:
    return CliError(
        f"no item {args.key!r} in namespace {_shown(args.namespace)} under key prefix "
        f"{store.prefix!r} (see 'store items {_shown(args.namespace)}')"
    )


# --------------------------------------------------------------------------- parser


def _arguments(cmd: argparse.ArgumentParser) -> None:
    sub = cmd.add_subparsers(dest="store_command", metavar="STORE_COMMAND", required=True)

    def add(name: str, help: str) -> argparse.ArgumentParser:
        parser = sub.add_parser(name, help=help, description=help)
        add_common_options(parser)
        return parser

    ns = add("namespaces", "namespaces holding items, in order")
    ns.add_argument("--prefix", type=namespace, default=(), help="e.g. users/* ('*': any label)")
    ns.add_argument("--suffix", type=namespace, default=())
    ns.add_argument("--max-depth", type=int, help="cut namespaces to N labels")
    _window(ns, 100)
    items = add("items", "the items of one namespace, in insertion order")
    items.add_argument("namespace", type=namespace, metavar="NAMESPACE")
    _window(items, 100)
    get = add("get", "one item as JSON")
    get.add_argument("namespace", type=namespace, metavar="NAMESPACE")
    get.add_argument("key", metavar="KEY")
    search = add("search", "items under a namespace prefix matching a filter or a query")
    search.add_argument("prefix", type=namespace, metavar="PREFIX", help="'' for the whole store")
    search.add_argument("--filter", type=_filter, help='JSON, e.g. \'{"rank": {"$gte": 3}}\'')
    search.add_argument("--query", help="rank by similarity to this text (needs --embed)")
    search.add_argument(
        "--embed",
        metavar="MODULE:NAME|PROVIDER:MODEL",
        help="the store's embeddings: an Embeddings object or function in a module (looked "
        "up in the current directory too), or a LangChain 'provider:model'",
    )
    search.add_argument("--dims", type=int, help="dimensions of --embed's vectors")
    _window(search, 10)
    delete = add("delete", "delete one item")
    delete.add_argument("namespace", type=namespace, metavar="NAMESPACE")
    delete.add_argument("key", metavar="KEY")


_RUN = {
    "namespaces": run_namespaces,
    "items": run_items,
    "get": run_get,
    "search": run_search,
    "delete": run_delete,
}


def run_store(args: argparse.Namespace, store: Store, out: IO[str]) -> None:
    _RUN[args.store_command](args, store, out)


COMMANDS = (
    Command(
        "store",
        "the long-term memory store under the prefix: namespaces, items, get, search, delete",
        run_store,
        _arguments,
    ),
)
