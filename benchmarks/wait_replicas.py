"""Cost of ``wait_replicas=1``: put with and without WAIT, interleaved, on a local
primary and replica (``python -m benchmarks.wait_replicas``)."""

from __future__ import annotations

import statistics
import time

import redis
from langgraph.checkpoint.base.id import uuid6

from benchmarks import workload
from plain_redis_saver import PlainRedisSaver
from plain_redis_saver.embedded import EmbeddedServer

SAMPLES = 600


def main() -> None:
    with (
        EmbeddedServer("valkey", extra_args=["--repl-diskless-sync-delay", "0"]) as primary,
        EmbeddedServer(
            "valkey", extra_args=["--replicaof", "127.0.0.1", str(primary.port)]
        ) as replica,
    ):
        probe = redis.Redis.from_url(replica.url)
        deadline = time.monotonic() + 10
        while probe.info("replication").get("master_link_status") != "up":
            if time.monotonic() > deadline:
                raise SystemExit("the replica did not connect within 10 s")
            time.sleep(0.01)
        client = redis.Redis.from_url(primary.url)
        savers = {
            "wait_replicas=0": PlainRedisSaver(client, key_prefix="bench-wait-0"),
            "wait_replicas=1": PlainRedisSaver(client, key_prefix="bench-wait-1", wait_replicas=1),
        }
        timings: dict[str, list[int]] = {name: [] for name in savers}
        config = {"configurable": {"thread_id": "t", "checkpoint_ns": ""}}
        for saver in savers.values():
            saver.setup()
        for step in range(1, SAMPLES + 1):
            for name, saver in savers.items():  # interleaved, so both see the same noise
                checkpoint = workload.checkpoint(step, str(uuid6(clock_seq=step)))
                started = time.perf_counter_ns()
                saver.put(config, checkpoint, workload.metadata(step), workload.new_versions(step))
                timings[name].append(time.perf_counter_ns() - started)
        for name, samples in timings.items():
            print(f"put with {name}: median {statistics.median(samples) / 1000:.0f} µs")


if __name__ == "__main__":
    main()
