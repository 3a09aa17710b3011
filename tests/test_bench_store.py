"""The store phase of the benchmark suite (benchmarks/store.py), at a tiny scale on a
real server: every table filled, one round trip per operation of ours, and nothing left
behind or touched outside the run's own keys."""

from __future__ import annotations

import pytest
import redis

from benchmarks import run as bench_run
from benchmarks import store as bench_store

from .conftest import Backend

TINY = bench_store.StoreSizes(
    items=(30,), memory_items=40, vector_items=3, query_items=(5,), reps=1
)


@pytest.fixture
def server_url(backend: Backend) -> str:
    if backend.admin_url is None or backend.is_cluster:
        pytest.skip("the benchmark connects by URL to one standalone server, as it runs")
    return backend.admin_url


def test_the_store_phase_fills_every_table_and_leaves_only_what_was_there(
    server_url: str, prefix: str
) -> None:
    admin = redis.Redis.from_url(server_url)
    admin.set(f"{prefix}-bystander", "x")
    admin.set(f"langgraph:{prefix}-other/k", "x")
    try:
        results = bench_store.run(server_url, admin, bench_store.Root(f"{prefix}-run"), TINY)
        ours = [row for row in results["stores"] if row["store"] == "PlainRedisStore"]
        assert [ours[0][f"{op} round trips"] for op in ("put", "get", "list_namespaces")] == [1] * 3
        assert ours[0]["search(filter, limit=10) round trips"] == 1
        assert {row["store"] for row in results["memory"]} >= {"PlainRedisStore"}
        assert results["query"] and results["cache"]
        assert sorted(admin.scan_iter(match=f"*{prefix}*")) == sorted(
            [f"{prefix}-bystander".encode(), f"langgraph:{prefix}-other/k".encode()]
        )
    finally:
        admin.delete(f"{prefix}-bystander", f"langgraph:{prefix}-other/k")
        admin.close()


def test_the_suite_runs_the_store_phase_by_default_and_alone() -> None:
    assert "store" in bench_run._parse([]).only
    assert bench_run._parse(["--only", "store"]).only == ["store"]
