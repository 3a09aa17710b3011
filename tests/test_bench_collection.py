"""The collection groundwork benchmark: which fields are counts, and what they weigh."""

from __future__ import annotations

from typing import Any

import fakeredis
import redis

from benchmarks import collection, workload
from plain_redis_saver import PlainRedisSaver
from plain_redis_saver.embedded import EmbeddedServer


def _thread(client: Any, puts: int) -> tuple[PlainRedisSaver, str]:
    saver = PlainRedisSaver(client, key_prefix="coll", reference_counts=True)
    saver.setup()
    log = workload.ThreadLog("t")
    for _ in range(puts):
        workload.put_next(saver, log)
    return saver, log.thread_id


def test_the_counts_are_exactly_the_fields_starting_with_a_hash_sign() -> None:
    values = {b"#0:1:a1": b"1", b"#*" + bytes(16): b"2", b"0:1:a1": b"v", b"*" + bytes(16): b"c"}
    assert sorted(collection.count_fields(values)) == [b"#*" + bytes(16), b"#0:1:a1"]


def test_every_stored_value_of_a_written_thread_has_its_count() -> None:
    client = fakeredis.FakeRedis()
    saver, thread_id = _thread(client, 3)
    values = client.hgetall(saver._core.keys.thread(thread_id).blobs)
    counts = set(collection.count_fields(values))
    counted = {f for f in values if not f.startswith((b"#", b"="))}
    assert counts == {b"#" + f for f in counted}


def test_a_thread_weighs_less_without_its_counts_and_the_copy_is_removed() -> None:
    with EmbeddedServer("valkey") as server:
        admin = redis.Redis.from_url(server.url)
        saver, thread_id = _thread(redis.Redis.from_url(server.url), 3)
        share = collection.count_share(admin, saver, thread_id, "t")
        assert share.counts > 0
        assert share.values_without_counts < share.values_bytes < share.thread_bytes
        assert not admin.keys(f"*{collection.SCRATCH}")
    assert "| t |" in collection.report([share])
