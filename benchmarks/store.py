"""Store and cache benchmarks: PlainRedisStore beside InMemoryStore and
langgraph-checkpoint-aws's ValkeyStore (on a server without valkey-search), and
PlainRedisCache beside langgraph's RedisCache.

    python -m benchmarks.store [--quick]

Runs on an embedded Valkey (or REDIS_URL, whose database it flushes: use a scratch
server). Prints Markdown tables and writes benchmarks/results/store.json
(results/quick/store.json with --quick).
Timings are medians of repeated calls on this machine, wall clock, client included;
round trips are counted on the wire (deterministic).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import struct
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis
from langgraph.cache.redis import RedisCache
from langgraph.store.base import PutOp
from langgraph.store.memory import InMemoryStore

from plain_redis_saver import PlainRedisCache, PlainRedisStore
from plain_redis_saver.embedded import EmbeddedServer

from .measure import count_wire

NS = ("bench", "items")
DIMS = 1536
RESULTS = Path(__file__).resolve().parent / "results"


def value(i: int) -> dict[str, Any]:
    return {"i": i, "group": i % 100, "text": f"fact number {i} about user {i % 37}"}


def vector(text: str) -> list[float]:
    """A deterministic float32-exact unit-ish vector per text."""
    rng = random.Random(text)
    return list(
        struct.unpack(
            f"<{DIMS}f", struct.pack(f"<{DIMS}f", *(rng.gauss(0, 1) for _ in range(DIMS)))
        )
    )


def embed(texts: list[str]) -> list[list[float]]:
    return [vector(t) for t in texts]


def timed(call: Callable[[], Any], reps: int) -> float:
    """Median milliseconds of ``call`` over ``reps`` calls (after one warm-up call);
    fewer calls for one that takes long (a peer scanning 100,000 keys)."""
    start = time.perf_counter_ns()
    call()
    first = time.perf_counter_ns() - start
    samples = []
    for _ in range(max(3, min(reps, int(2e9 // max(first, 1))))):
        start = time.perf_counter_ns()
        call()
        samples.append(time.perf_counter_ns() - start)
    return statistics.median(samples) / 1e6


def round_trips(call: Callable[[], Any]) -> int:
    call()
    with count_wire() as wire:
        call()
    return wire.round_trips


def fill(store: Any, n: int, *, with_namespaces: bool = True) -> None:
    for start in range(0, n, 1000):
        store.batch([PutOp(NS, f"k{i}", value(i)) for i in range(start, min(n, start + 1000))])
    if with_namespaces:
        store.batch([PutOp(("bench", f"user{u}", "facts"), "k", {"u": u}) for u in range(100)])


def memory(admin: Any, build: Callable[[], Any], n: int) -> float:
    admin.execute_command("FLUSHDB", "SYNC")
    before = admin.info("memory")["used_memory"]
    build()
    return (admin.info("memory")["used_memory"] - before) / n


def store_rows(name: str, store: Any, n: int, reps: int, counted: bool) -> dict[str, Any]:
    mid = f"k{n // 2}"
    ops: dict[str, Callable[[], Any]] = {
        "put": lambda: store.put(NS, mid, value(n // 2)),
        "get": lambda: store.get(NS, mid),
        "search(filter, limit=10)": lambda: store.search(NS, filter={"group": 7}, limit=10),
        "list_namespaces": lambda: store.list_namespaces(prefix=("bench",), limit=100),
    }
    row: dict[str, Any] = {"store": name, "items": n}
    for op, call in ops.items():
        try:
            row[op] = round(timed(call, reps), 3)
            row[f"{op} round trips"] = round_trips(call) if counted else 0
        except Exception as exc:  # a peer that cannot do it is reported, not fatal
            row[op] = f"error: {type(exc).__name__}"
    return row


def _query_search(store: Any) -> Callable[[], Any]:
    return lambda: store.search(NS, query="what do I know about user 3", limit=10)


def query_rows(admin: Any, url: str, sizes: tuple[int, ...], reps: int) -> list[dict[str, Any]]:
    rows = []
    for n in sizes:
        admin.flushdb()
        client = redis.Redis.from_url(url)
        index = {"dims": DIMS, "embed": embed, "fields": ["text"]}
        store = PlainRedisStore(client, key_prefix="bench", index=index)
        reference = InMemoryStore(index=index)
        for start in range(0, n, 250):
            ops = [PutOp(NS, f"k{i}", value(i)) for i in range(start, min(n, start + 250))]
            store.batch(ops)
            reference.batch(ops)
        row: dict[str, Any] = {"items": n}
        for name, candidate in (("PlainRedisStore", store), ("InMemoryStore", reference)):
            search = _query_search(candidate)
            row[f"{name} ms"] = round(timed(search, reps), 2)
            if name == "PlainRedisStore":
                row[f"{name} round trips"] = round_trips(search)
        rows.append(row)
        client.close()
    return rows


def cache_rows(url: str, reps: int) -> list[dict[str, Any]]:
    client = redis.Redis.from_url(url)
    keys = [(("node", "n"), f"k{i}") for i in range(10)]
    pairs = {k: ({"answer": i, "text": "x" * 200}, 600) for i, k in enumerate(keys)}
    rows = []
    for name, cache in (
        ("PlainRedisCache", PlainRedisCache(client, key_prefix="bench")),
        ("RedisCache (langgraph)", RedisCache(client, prefix="bench-lg:")),
    ):
        cache.set(pairs)
        rows.append(
            {
                "cache": name,
                "set 10 ms": round(timed(lambda c=cache: c.set(pairs), reps), 3),
                "get 10 ms": round(timed(lambda c=cache: c.get(keys), reps), 3),
                "set round trips": round_trips(lambda c=cache: c.set(pairs)),
                "get round trips": round_trips(lambda c=cache: c.get(keys)),
            }
        )
    client.close()
    return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    columns = list(dict.fromkeys(k for row in rows for k in row))
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(row.get(c, "")) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1,000 and 10,000 items")
    args = parser.parse_args()
    sizes = (1000, 10_000) if args.quick else (1000, 100_000)
    query_sizes = (1000, 2000) if args.quick else (1000, 2000, 5000, 10_000)
    reps = 15 if args.quick else 40
    server = None
    url = os.environ.get("REDIS_URL")
    if not url:
        server = EmbeddedServer("valkey").start()
        url = server.url
    admin = redis.Redis.from_url(url)
    try:
        from langgraph_checkpoint_aws.store.valkey import ValkeyStore
        from valkey import Valkey
    except ImportError:  # the bench-peers extra is not installed
        ValkeyStore = None  # noqa: N806
    results: dict[str, Any] = {"stores": [], "memory": [], "query": [], "cache": []}
    try:
        for n in sizes:
            admin.flushdb()
            candidates: list[tuple[str, Any, bool]] = [
                (
                    "PlainRedisStore",
                    PlainRedisStore(redis.Redis.from_url(url), key_prefix="bench"),
                    True,
                ),
                ("InMemoryStore", InMemoryStore(), False),
            ]
            if ValkeyStore is not None:
                candidates.append(
                    ("ValkeyStore (no valkey-search)", ValkeyStore(Valkey.from_url(url)), True)
                )
            for name, store, counted in candidates:
                fill(store, n)
                results["stores"].append(store_rows(name, store, n, reps, counted))
        n_mem = 10_000 if args.quick else 100_000
        results["memory"].append(
            {
                "store": "PlainRedisStore",
                "bytes per item": round(
                    memory(
                        admin,
                        lambda: fill(
                            PlainRedisStore(redis.Redis.from_url(url), key_prefix="m"),
                            n_mem,
                            with_namespaces=False,
                        ),
                        n_mem,
                    )
                ),
            }
        )
        if ValkeyStore is not None:
            results["memory"].append(
                {
                    "store": "ValkeyStore (no valkey-search)",
                    "bytes per item": round(
                        memory(
                            admin,
                            lambda: fill(
                                ValkeyStore(Valkey.from_url(url)), n_mem, with_namespaces=False
                            ),
                            n_mem,
                        )
                    ),
                }
            )
        n_vec = 1000
        index = {"dims": DIMS, "embed": embed, "fields": ["text"]}
        results["memory"].append(
            {
                "store": f"PlainRedisStore, one {DIMS}-dim vector per item",
                "bytes per item": round(
                    memory(
                        admin,
                        lambda: fill(
                            PlainRedisStore(redis.Redis.from_url(url), key_prefix="m", index=index),
                            n_vec,
                            with_namespaces=False,
                        ),
                        n_vec,
                    )
                ),
            }
        )
        results["query"] = query_rows(admin, url, query_sizes, max(5, reps // 3))
        admin.flushdb()
        results["cache"] = cache_rows(url, reps)
    finally:
        admin.flushdb()
        admin.close()
        if server is not None:
            server.stop()
    target = RESULTS / "quick" / "store.json" if args.quick else RESULTS / "store.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(results, indent=2))
    for title, rows in results.items():
        print(f"\n### {title}\n\n{markdown(rows)}")


if __name__ == "__main__":
    main()
