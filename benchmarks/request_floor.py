"""What one request costs the server before a script does any work, and what the
leanest scripts cost.

``python -m benchmarks.request_floor [--requests 1500]`` (about 30 s): on an embedded
Valkey, the server CPU per request (``INFO cpu``, main thread, before and after a batch)
of a ``PING``, a ``SET`` and a ``GET`` of 8.9 KB (the AWS saver's put and read of the
benchmark's checkpoint); of requests carrying the keys and arguments of one of this
saver's puts: ``EVALSHA`` of ``return 1``, ``FCALL`` of a function returning 1,
``MULTI``/``HSET``/``HSET``/``ZADD``/``EXEC`` of the same bytes, and the lean put of
:mod:`.lean_bounds` (only the essential checks and writes) and the put of the uncounted
design (COLLECTION.md: those and every check it keeps, no count); of the lean list script on
the arguments of this saver's ``list(limit=10)``; of this saver's own ``put``,
``get_tuple`` and ``list(limit=10)`` on a thread of 100 checkpoints; and, when
installed, of the AWS saver's ``put`` and ``list(limit=10)`` on a thread of its own.
It shows the floor any atomic one-request put pays, and how close a minimal script
comes to the AWS saver's plain commands; the numbers are not comparable across
machines, the ratios are.

Every call is followed by the same client pause (``--pause-ms``, 3 ms; an idle interval
as long as the pauses is measured after the batch and subtracted). A server left idle
between calls serves the next from colder caches, so a call costs it more CPU the longer
its client takes: this saver's list script sent back to back cost 290 µs in one trial,
430-490 µs with a 3 ms pause, about what a client takes to decode a page. The savers'
own calls carry their client's time; scripts sent raw do not. Without the pause (as this
benchmark ran before), the lean scripts were measured back to back against savers that
were not, which flattered them: the lean list came to 0.57-0.74x the AWS saver's list
that way, and to 1.7-1.8x at equal pacing.
"""

from __future__ import annotations

import argparse
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import redis

from plain_redis_saver import PlainRedisSaver, scripts
from plain_redis_saver.embedded import EmbeddedServer

from . import lean_bounds, workload
from .cost import put_arguments, script_arguments
from .measure import OpRecord
from .savers import AwsValkeyAdapter

AWS_PUT_BYTES = 8_900


def _cpu_us(admin: Any) -> float:
    info = admin.info("cpu")
    return (
        float(info["used_cpu_sys_main_thread"]) + float(info["used_cpu_user_main_thread"])
    ) * 1e6


def _per_request(admin: Any, call: Callable[[int], Any], n: int, pause: float = 0.0) -> float:
    """Server CPU per call of ``call`` over ``n`` calls, each followed by ``pause``
    seconds; with a pause, less the CPU of an idle interval as long as the pauses."""
    call(0)
    before = _cpu_us(admin)
    for i in range(n):
        call(i + 1)
        if pause:
            time.sleep(pause)
    spent = _cpu_us(admin) - before
    if pause:
        before = _cpu_us(admin)
        time.sleep(pause * n)
        spent -= _cpu_us(admin) - before
    return spent / n


def measure(n: int, pause: float = 0.003) -> dict[str, float]:
    out: dict[str, float] = {}
    with EmbeddedServer() as server:
        admin = redis.Redis.from_url(server.url)
        client = redis.Redis.from_url(server.url)
        saver = PlainRedisSaver(redis.Redis.from_url(server.url), key_prefix="floor")
        saver.setup()
        log = workload.ThreadLog(f"floor-{uuid.uuid4().hex[:6]}")
        with lean_bounds.refs_beside(saver.client):
            for _ in range(100):
                workload.put_next(saver, log)
        found = put_arguments(saver, log, defaultdict(OpRecord))
        assert found is not None
        numkeys, args = found
        # Every record keeps its value references beside it (the lean list reads them),
        # the put whose arguments were captured included.
        lean_bounds.keep_refs_beside(client, numkeys, args)
        size = sum(len(a) if isinstance(a, (bytes, str)) else 8 for a in args)
        value = b"x" * AWS_PUT_BYTES
        noop = client.script_load("return 1")
        client.function_load(
            "#!lua name=prs_floor\n"
            "redis.register_function('prs_floor', function(keys, args) return 1 end)",
            replace=True,
        )

        lean_put = client.script_load(lean_bounds.LEAN_PUT)
        keys, rest = list(args[:numkeys]), list(args[numkeys:])
        rest.append(lean_bounds.unsent_references("put_checkpoint", rest))

        uncounted_put = client.script_load(lean_bounds.UNCOUNTED_PUT)

        def lean(i: int, sha: str = lean_put) -> None:
            # a new checkpoint id each time, so each call adds a record and an order entry
            cid = f"{rest[2]!s}-{i}"
            client.evalsha(sha, numkeys, *keys, *rest[:2], cid, *rest[3:])

        def transaction(i: int) -> None:
            pipe = client.pipeline(transaction=True)
            rest = args[numkeys:]
            pipe.hset("floor:b", mapping={f"f{i}": rest[2]})
            pipe.hset("floor:c", mapping={f"c{i}": rest[2][:200]})
            pipe.zadd("floor:o", {f"c{i}": 0})
            pipe.execute()

        what = f"{numkeys} keys and {len(args) - numkeys} arguments, {size:,} B"
        cases: list[tuple[str, Callable[[int], Any], int]] = [
            ("PING", lambda i: client.ping(), n),
            (f"SET of {AWS_PUT_BYTES:,} B", lambda i: client.set(f"floor:{i % 50}", value), n),
            (f"GET of {AWS_PUT_BYTES:,} B", lambda i: client.get(f"floor:{i % 50}"), n),
            (
                f"EVALSHA of 'return 1', a put's {what}",
                lambda i: client.evalsha(noop, numkeys, *args),
                n,
            ),
            (
                f"FCALL of a function returning 1, a put's {what}",
                lambda i: client.fcall("prs_floor", numkeys, *args),
                n,
            ),
            ("MULTI, HSET, HSET, ZADD, EXEC of the same bytes", transaction, n),
            ("the lean put script of benchmarks.lean_bounds, same arguments", lean, n),
            (
                "the uncounted put script of benchmarks.lean_bounds, same arguments",
                lambda i: lean(i, uncounted_put),
                n,
            ),
            (
                "this saver's put (thread of 100+ checkpoints)",
                lambda i: workload.put_next(saver, log),
                n // 3,
            ),
        ]
        lean_list = client.script_load(lean_bounds.LEAN_LIST)
        listed = script_arguments(
            saver, lambda: list(saver.list(workload.config(log.thread_id), limit=10))
        )
        assert listed is not None
        list_numkeys, list_args = listed
        own_list = client.script_load(scripts.LIST_CHECKPOINTS.source)
        # The reads run first, on the thread as it was written (the puts below add
        # checkpoints whose references no field beside them holds, and whose content the
        # captured arguments do not name as held).
        reads: list[tuple[str, Callable[[int], Any], int]] = [
            (
                "this saver's get_tuple (latest)",
                lambda i: saver.get_tuple(workload.config(log.thread_id)),
                n // 3,
            ),
            (
                "this saver's list(limit=10)",
                lambda i: list(saver.list(workload.config(log.thread_id), limit=10)),
                n // 10,
            ),
            (
                "this saver's list script, the same arguments",
                lambda i: client.evalsha(own_list, list_numkeys, *list_args),
                n // 10,
            ),
            (
                "the lean list script of benchmarks.lean_bounds (limit=10)",
                lambda i: client.evalsha(lean_list, list_numkeys, *list_args),
                n // 10,
            ),
        ]
        cases[6:6] = reads
        if AwsValkeyAdapter.missing() is None:
            aws = AwsValkeyAdapter(server.url, "floor").sync()
            aws_log = workload.ThreadLog(f"floor-aws-{uuid.uuid4().hex[:6]}")
            for _ in range(100):
                workload.put_next(aws, aws_log)
            cases.append(
                (
                    "the AWS saver's put (thread of 100+ checkpoints)",
                    lambda i: workload.put_next(aws, aws_log),
                    n // 3,
                )
            )
            cases.append(
                (
                    "the AWS saver's list(limit=10)",
                    lambda i: list(aws.list(workload.config(aws_log.thread_id), limit=10)),
                    n // 10,
                )
            )
        for label, call, count in cases:
            out[label] = _per_request(admin, call, count, pause)
        client.function_delete("prs_floor")
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.request_floor")
    parser.add_argument("--requests", type=int, default=1500)
    parser.add_argument(
        "--pause-ms",
        type=float,
        default=3.0,
        help="client pause after every call (0: back to back); see the module's text",
    )
    args = parser.parse_args(argv)
    print("| request | server CPU per call |\n|---|---|")
    for label, cpu in measure(args.requests, args.pause_ms / 1000).items():
        print(f"| {label} | {cpu:.1f} µs |")


if __name__ == "__main__":
    main()
