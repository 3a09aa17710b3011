"""Concurrency: processes and async tasks writing one thread at once, and many graph
runs sharing one async saver and a small connection pool.

Runs on the ``valkey`` and ``cluster`` backends: the processes need a server they can
reach by URL (fakeredis lives inside one process), and ``redis`` runs the very same
scripts as ``valkey``.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import operator
import time
import traceback
from typing import Annotated, Any, TypedDict

import pytest
import redis.asyncio.cluster
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, StateGraph

from plain_redis_saver import AsyncPlainRedisSaver

from .conftest import Backend
from .helpers import checkpoint, config, metadata, new_id

CONCURRENCY_BACKENDS = ("valkey", "cluster")
TASKS_PER_WRITER = 40
PROCESSES = 2
JOIN_TIMEOUT = 120


def skip_unless_concurrency_backend(backend: Backend) -> None:
    if backend.name not in CONCURRENCY_BACKENDS:
        pytest.skip(
            f"concurrency tests run on {' and '.join(CONCURRENCY_BACKENDS)}: fakeredis "
            "cannot be shared between processes, and 'redis' runs the same scripts as valkey"
        )


async def _write_all(url: str, prefix: str, writer: str, base: Any, shared: Any) -> list[str]:
    """TASKS_PER_WRITER concurrent tasks, each: put its own child of ``base``, put the
    ``shared`` checkpoint (the same id everywhere), write against ``base`` and
    ``shared`` under its own task id, and write the same (task, idx) as every other
    task. Returns the ids of the checkpoints it put."""
    async with AsyncPlainRedisSaver.from_conn_string(
        url, key_prefix=prefix, max_connections=8
    ) as saver:

        async def task(n: int) -> str:
            name = f"{writer}-{n}"
            cp = checkpoint({"by": name}, versions={"by": saver.get_next_version(None, None)})
            await saver.aput(base, cp, metadata(step=1, run_id=writer), cp["channel_versions"])
            await saver.aput(config("shared"), shared, metadata(run_id="shared"), {"s": 1})
            await saver.aput_writes(base, [("from", name)], name)
            await saver.aput_writes(base, [("same", "everyone")], "same-task")
            shared_cfg = config("shared", checkpoint_id=shared["id"])
            await saver.aput_writes(shared_cfg, [("from", name)], name)
            return str(cp["id"])

        return list(await asyncio.gather(*(task(n) for n in range(TASKS_PER_WRITER))))


def _process_writer(
    url: str, prefix: str, writer: str, base: Any, shared: Any, start: Any, out: Any
) -> None:
    """Entry point of a writer process (spawned: importable, arguments picklable)."""
    try:
        start.wait(timeout=JOIN_TIMEOUT)
        out.put((writer, asyncio.run(_write_all(url, prefix, writer, base, shared))))
    except BaseException:  # reported to the test, which fails with it
        out.put((writer, traceback.format_exc()))


def test_processes_and_tasks_writing_one_thread_lose_and_duplicate_nothing(
    backend: Backend, admin: Any, prefix: str
) -> None:
    skip_unless_concurrency_backend(backend)
    url = backend.url
    assert url is not None

    async def prepare() -> Any:
        async with AsyncPlainRedisSaver.from_conn_string(url, key_prefix=prefix) as saver:
            cp = checkpoint({"s": "base"}, versions={"s": 1})
            return await saver.aput(config("shared"), cp, metadata(run_id="base"), {"s": 1})

    base = asyncio.run(prepare())
    shared = checkpoint({"s": "base"}, versions={"s": 1}, checkpoint_id=new_id())
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(PROCESSES + 1)
    out = ctx.Queue()
    procs = [
        ctx.Process(
            target=_process_writer,
            args=(url, prefix, f"proc{i}", base, shared, start, out),
        )
        for i in range(PROCESSES)
    ]
    for proc in procs:
        proc.start()
    try:
        start.wait(timeout=JOIN_TIMEOUT)  # every writer is ready: go
        mine = asyncio.run(_write_all(url, prefix, "main", base, shared))
        results = dict(out.get(timeout=JOIN_TIMEOUT) for _ in procs)
    finally:
        for proc in procs:
            proc.join(timeout=JOIN_TIMEOUT)
            if proc.is_alive():
                proc.kill()
    results["main"] = mine
    for writer, found in results.items():
        assert isinstance(found, list), f"{writer} failed: {found}"
    written = [cid for found in results.values() for cid in found]
    assert len(set(written)) == len(written) == (PROCESSES + 1) * TASKS_PER_WRITER

    async def check() -> None:
        async with AsyncPlainRedisSaver.from_conn_string(url, key_prefix=prefix) as saver:
            listed = [t async for t in saver.alist(config("shared"))]
            found = [t.checkpoint["id"] for t in listed]
            expected = {*written, base["configurable"]["checkpoint_id"], shared["id"]}
            assert sorted(found, reverse=True) == found  # newest first
            assert len(found) == len(set(found)) == len(expected)  # no duplicate
            assert set(found) == expected  # nothing lost
            latest = await saver.aget_tuple(config("shared"))
            assert latest is not None and latest.checkpoint["id"] == max(expected)
            for tup in listed:  # every value readable, and the one that checkpoint put
                values = tup.checkpoint["channel_values"]
                run = tup.metadata["run_id"]
                assert (
                    values == {"s": "base"}
                    if run in ("base", "shared")
                    else (values["by"].startswith(f"{run}-"))
                )

            on_base = (await saver.aget_tuple(base)).pending_writes
            names = [f"{w}-{n}" for w in results for n in range(TASKS_PER_WRITER)]
            assert sorted(on_base) == sorted(
                [(name, "from", name) for name in names] + [("same-task", "same", "everyone")]
            )
            shared_cfg = config("shared", checkpoint_id=shared["id"])
            on_shared = (await saver.aget_tuple(shared_cfg)).pending_writes
            assert sorted(on_shared) == sorted((name, "from", name) for name in names)
            # Reference counts survived the races: deleting every run leaves no key.
            await saver.adelete_for_runs([*results, "base", "shared"])

    asyncio.run(check())
    assert list(admin.scan_iter(match=f"{prefix}:*")) == []


# ------------------------------------------------------------------ many graph runs


class Chat(TypedDict, total=False):
    log: Annotated[list[str], operator.add]
    turns: int


def _chat_graph(checkpointer: Any) -> Any:
    def listen(state: Chat) -> Chat:
        return {"log": [f"heard{state.get('turns', 0)}"]}

    def reply(state: Chat) -> Chat:
        turns = state.get("turns", 0) + 1
        return {"log": [f"reply{turns}"], "turns": turns}

    builder = StateGraph(Chat)
    builder.add_node("listen", listen)
    builder.add_node("reply", reply)
    builder.add_edge(START, "listen")
    builder.add_edge("listen", "reply")
    return builder.compile(checkpointer=checkpointer)


THREADS = 200
TURNS = 3


async def test_200_concurrent_graph_threads_share_one_saver_and_20_connections(
    backend: Backend, prefix: str
) -> None:
    skip_unless_concurrency_backend(backend)
    assert backend.url is not None
    started = time.monotonic()
    async with AsyncPlainRedisSaver.from_conn_string(
        backend.url, key_prefix=prefix, max_connections=20
    ) as saver:
        graph = _chat_graph(saver)

        async def conversation(n: int) -> Any:
            cfg = {"configurable": {"thread_id": f"user-{n}"}}
            for turn in range(TURNS):
                await graph.ainvoke({"log": [f"msg{turn}"]}, cfg)
            return (await graph.aget_state(cfg)).values

        finals = await asyncio.gather(*(conversation(n) for n in range(THREADS)))
        history = [s async for s in graph.aget_state_history(config("user-7", ns=None))]
    oracle = _chat_graph(InMemorySaver())
    cfg = {"configurable": {"thread_id": "oracle"}}
    for turn in range(TURNS):
        await oracle.ainvoke({"log": [f"msg{turn}"]}, cfg)
    expected = (await oracle.aget_state(cfg)).values
    expected_history = [s async for s in oracle.aget_state_history(cfg)]
    assert expected["turns"] == TURNS
    assert finals == [expected] * THREADS
    assert [s.values for s in history] == [s.values for s in expected_history]
    assert time.monotonic() - started < 120


async def test_cold_cluster_saver_sends_a_burst_of_first_calls_to_the_right_nodes(
    backend: Backend, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fresh asyncio cluster client routes commands sent before it knows the slot map
    to an arbitrary node, and after a few MOVED replies closes every connection under
    the calls in flight. The saver makes each call wait for the map
    (drive.AsyncRunner), so three fresh savers, each hit by 200 concurrent first calls
    on 200 threads, get no MOVED reply at all."""
    if backend.name != "cluster":
        pytest.skip("the cold start of redis-py's asyncio cluster client")
    assert backend.url is not None
    moved: list[Any] = []
    move_slot = redis.asyncio.cluster.NodesManager.move_slot

    async def counting_move_slot(self: Any, error: Any) -> Any:
        moved.append(error)
        return await move_slot(self, error)

    monkeypatch.setattr(redis.asyncio.cluster.NodesManager, "move_slot", counting_move_slot)
    for attempt in range(3):
        async with AsyncPlainRedisSaver.from_conn_string(
            backend.url, key_prefix=prefix, max_connections=20
        ) as saver:
            configs = await asyncio.gather(
                *(
                    saver.aput(config(f"t{attempt}-{n}"), checkpoint(), metadata(), {})
                    for n in range(THREADS)
                )
            )
        assert len({c["configurable"]["thread_id"] for c in configs}) == THREADS
    assert moved == []
