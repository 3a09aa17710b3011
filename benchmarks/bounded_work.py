"""How long the server is blocked while a thread of 100,000 checkpoints is cleaned
(``python -m benchmarks.bounded_work``).

The test suite asserts the deterministic side of this (each script call removes a
bounded slice, delete_thread is one UNLINK); the wall-clock side belongs here, where a
loaded machine changes a number instead of failing a build. Each operation runs on a
fresh copy of the thread; SLOWLOG records the calls that took over 1 ms.
"""

from __future__ import annotations

from typing import Any

import redis

from plain_redis_saver import PlainRedisSaver, codec
from plain_redis_saver.embedded import EmbeddedServer

HUGE = 100_000
OPERATIONS = ("prune", "delete_for_runs", "delete_thread")


def build_huge_thread(saver: Any, client: Any, thread_id: str, size: int = HUGE) -> None:
    """A thread of ``size`` checkpoints of run "run-1", written straight into its keys
    (far faster than ``size`` puts)."""
    keys = saver._core.keys.thread(thread_id)
    ns = codec.netstring("")
    ref = codec.blob_ref("state", "1")
    digest = saver._core.canonical("run-1")
    pipe = client.pipeline(transaction=False)
    ids = [f"{i:08d}" for i in range(size)]
    for start in range(0, size, 2000):
        records = {}
        for cid in ids[start : start + 2000]:
            records[ns + cid.encode()] = codec.encode_record(
                parent_id=None,
                refs=codec.json_refs([codec.json_ref(ref)]),
                meta_index=["run_id", digest],
                checkpoint=saver.serde.dumps_typed({"id": cid}),
                metadata=saver.serde.dumps_typed({"run_id": "run-1"}),
            )
        pipe.hset(keys.checkpoints, mapping=records)
        pipe.zadd(keys.order, dict.fromkeys(records, 0))
    pipe.hset(
        keys.blobs,
        mapping={
            ns + ref: codec.encode_blob(saver.serde.dumps_typed("v")),
            b"#" + ns + ref: size,  # references to the value
            b"=" + ns: size,  # checkpoints in the namespace
        },
    )
    pipe.hset(keys.namespaces, ns, 1)
    pipe.execute()


def run(saver: PlainRedisSaver, thread_id: str, operation: str) -> None:
    if operation == "prune":
        saver.prune([thread_id])
    elif operation == "delete_for_runs":
        saver.delete_for_runs(["run-1"])
    else:
        saver.delete_thread(thread_id)


def _calls(client: Any) -> int:
    stats = client.info("commandstats")
    return sum(stats.get(f"cmdstat_{name}", {}).get("calls", 0) for name in ("evalsha", "unlink"))


def main() -> None:
    with EmbeddedServer("valkey") as server:
        client = redis.Redis.from_url(server.url)
        # Scripts' own commands are logged too; only calls over 1 ms are of interest.
        client.config_set("slowlog-log-slower-than", 1000)
        client.config_set("slowlog-max-len", 10_000)
        for operation in OPERATIONS:
            saver = PlainRedisSaver(client, key_prefix=f"bench-bounded-{operation}")
            build_huge_thread(saver, client, "huge")
            client.slowlog_reset()
            before = _calls(client)
            run(saver, "huge", operation)
            calls = _calls(client) - before
            slow = sorted(
                entry["duration"]
                for entry in client.slowlog_get(10_000)
                if entry["command"].split(b" ", 1)[0].upper() in (b"EVALSHA", b"UNLINK")
            )
            longest = f"{slow[-1] / 1000:.1f} ms" if slow else "under 1 ms"
            print(f"{operation:16} {calls:5} calls, {len(slow):4} over 1 ms, longest {longest}")


if __name__ == "__main__":
    main()
