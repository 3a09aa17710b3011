"""``python -m plain_redis_saver.store_cli``: inspect and maintain a PlainRedisStore and
a PlainRedisCache (namespaces, items, search, delete, counts).

Kept apart from cli.py (the saver's command-line tool) so the two can be wired
together later as subcommands. Reads go through the store's public API with
``refresh_ttl=False``, so inspecting never extends an item's TTL; ``stats`` reads whole
keys only (``HLEN``, ``ZCARD``, ``MEMORY USAGE``). Output: one JSON document per line.

Exit codes: 0 success, 1 failure (connection, server or data error), 2 usage error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import IO, Any

from . import clients
from .errors import PlainRedisSaverError
from .keys import DEFAULT_KEY_PREFIX
from .store import PlainRedisStore
from .store_keys import CacheKeys, store_keys

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


def namespace(text: str) -> tuple[str, ...]:
    """A namespace given as a JSON array (``'["users", "ann"]'``) or with slashes
    (``users/ann``); "" is the whole store."""
    if text.startswith("["):
        labels = json.loads(text)
        if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
            raise argparse.ArgumentTypeError(f"{text!r} is not a JSON array of strings")
        return tuple(labels)
    return tuple(label for label in text.split("/") if label)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m plain_redis_saver.store_cli", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument("--key-prefix", default=DEFAULT_KEY_PREFIX)
    parser.add_argument("--cluster", action=argparse.BooleanOptionalAction, default=None)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    ns = sub.add_parser("namespaces", help="list namespaces holding items")
    ns.add_argument("--prefix", type=namespace, default=())
    ns.add_argument("--suffix", type=namespace, default=())
    ns.add_argument("--max-depth", type=int)
    ns.add_argument("--limit", type=int, default=100)
    ns.add_argument("--offset", type=int, default=0)
    items = sub.add_parser("items", help="the items of one namespace, in insertion order")
    items.add_argument("namespace", type=namespace)
    items.add_argument("--limit", type=int, default=100)
    items.add_argument("--offset", type=int, default=0)
    search = sub.add_parser("search", help="items under a namespace prefix matching a filter")
    search.add_argument("prefix", type=namespace)
    search.add_argument("--filter", type=json.loads, help='JSON, e.g. \'{"rank": {"$gte": 3}}\'')
    search.add_argument("--limit", type=int, default=10)
    search.add_argument("--offset", type=int, default=0)
    get = sub.add_parser("get", help="one item")
    get.add_argument("namespace", type=namespace)
    get.add_argument("key")
    delete = sub.add_parser("delete", help="delete one item")
    delete.add_argument("namespace", type=namespace)
    delete.add_argument("key")
    sub.add_parser("stats", help="counts of the store and the cache under the prefix")
    return parser


def _item(item: Any) -> str:
    return json.dumps(item.dict(), default=str, ensure_ascii=False)


def run(args: argparse.Namespace, client: Any, out: IO[str]) -> None:
    store = PlainRedisStore(client, key_prefix=args.key_prefix)
    if args.command == "namespaces":
        found = store.list_namespaces(
            prefix=args.prefix or None,
            suffix=args.suffix or None,
            max_depth=args.max_depth,
            limit=args.limit,
            offset=args.offset,
        )
        for labels in found:
            out.write(json.dumps(list(labels), ensure_ascii=False) + "\n")
    elif args.command == "items":
        # A search of the namespace also covers the namespaces under it: keep its own.
        wanted, skipped, page = args.limit, 0, 0
        while wanted > 0:
            batch = store.search(args.namespace, limit=100, offset=page * 100, refresh_ttl=False)
            for item in batch:
                if item.namespace != args.namespace or wanted <= 0:
                    continue
                if skipped < args.offset:
                    skipped += 1
                    continue
                out.write(_item(item) + "\n")
                wanted -= 1
            if len(batch) < 100:
                break
            page += 1
    elif args.command == "search":
        for item in store.search(
            args.prefix, filter=args.filter, limit=args.limit, offset=args.offset, refresh_ttl=False
        ):
            out.write(_item(item) + "\n")
    elif args.command == "get":
        one = store.get(args.namespace, args.key, refresh_ttl=False)
        if one is None:
            raise LookupError(f"no item {args.key!r} in namespace {list(args.namespace)}")
        out.write(_item(one) + "\n")
    elif args.command == "delete":
        store.delete(args.namespace, args.key)
        out.write(json.dumps({"deleted": [list(args.namespace), args.key]}) + "\n")
    else:
        out.write(json.dumps(stats(client, args.key_prefix)) + "\n")


def stats(client: Any, key_prefix: str) -> dict[str, Any]:
    keys = store_keys(key_prefix)
    pipe = client.pipeline(transaction=False)
    pipe.hlen(keys.items)
    pipe.zcard(keys.namespaces)
    pipe.zcard(keys.expiry)
    pipe.hlen(keys.vectors)
    pipe.hlen(CacheKeys(key_prefix).namespaces)
    items, namespaces, expiring, with_vectors, cache_namespaces = pipe.execute()
    memory: int | None = 0
    try:
        for key in keys:
            memory = (memory or 0) + (client.memory_usage(key) or 0)
    except Exception:  # MEMORY USAGE refused (ACL, fakeredis): counts only
        memory = None
    return {
        "store": {
            "items": items,
            "namespaces": namespaces,
            "items_with_ttl": expiring,
            "items_with_vectors": with_vectors,
            "memory_bytes": memory,
        },
        "cache": {"namespaces": cache_namespaces},
    }


def main(
    argv: Sequence[str] | None = None, *, client: Any = None, out: IO[str] | None = None
) -> int:
    out = out or sys.stdout
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:
        return EXIT_USAGE if exc.code else EXIT_OK
    own = client is None
    if own:
        client = clients.sync_client(args.url, args.cluster)
    try:
        run(args, client, out)
    except (PlainRedisSaverError, LookupError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except Exception as exc:  # server errors of redis-py and valkey-py
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    finally:
        if own:
            clients.release_sync(client)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
