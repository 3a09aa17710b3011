"""How long the server's put and get scripts run for one channel value of growing size
(``python -m benchmarks.value_size``): the measurement behind the saver's default
``max_value_size``. Times are SLOWLOG durations (server time inside the command, no
network), five puts and five reads per size on a fresh embedded Valkey."""

from __future__ import annotations

import os

import redis
from langgraph.checkpoint.base import empty_checkpoint

from plain_redis_saver import PlainRedisSaver
from plain_redis_saver.embedded import EmbeddedServer

SIZES_MIB = (1, 4, 8, 16, 32, 64)
REPEATS = 5


def _longest_call(client: redis.Redis) -> float:
    return max(entry["duration"] for entry in client.slowlog_get(100)) / 1000


def main() -> None:
    with EmbeddedServer("valkey") as server:
        client = redis.Redis.from_url(server.url)
        client.config_set("slowlog-log-slower-than", 0)
        saver = PlainRedisSaver(client, key_prefix="bench-value-size", max_value_size=None)
        print("value    put: server ms (sorted)              get: server ms (sorted)")
        for mib in SIZES_MIB:
            puts, gets = [], []
            for repeat in range(REPEATS):
                checkpoint = empty_checkpoint()
                checkpoint["channel_values"] = {"big": os.urandom(mib * 2**20)}
                checkpoint["channel_versions"] = {"big": saver.get_next_version(None, None)}
                config = {"configurable": {"thread_id": f"{mib}-{repeat}", "checkpoint_ns": ""}}
                client.slowlog_reset()
                stored = saver.put(config, checkpoint, {}, checkpoint["channel_versions"])
                puts.append(_longest_call(client))
                client.slowlog_reset()
                saver.get_tuple(stored)
                gets.append(_longest_call(client))
            print(
                f"{mib:3} MiB  {' '.join(f'{t:6.1f}' for t in sorted(puts))}"
                f"    {' '.join(f'{t:6.1f}' for t in sorted(gets))}"
            )


if __name__ == "__main__":
    main()
