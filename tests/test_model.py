"""Model-based test: random call sequences, every answer compared with InMemorySaver.

A hypothesis ``RuleBasedStateMachine`` drives put / put_writes / get_tuple / list /
delete_thread / delete_for_runs / copy_thread / prune / get_delta_channel_history over
odd thread ids, namespaces and metadata, through the blocking saver or the asyncio one
(drawn per call), and checks each answer against ``InMemorySaver``, the reference
implementation of the LangGraph contract.

``InMemorySaver`` (langgraph-checkpoint 4.3.2) has no ``delete_for_runs``,
``copy_thread`` or ``prune``: :class:`Oracle` adds them with their documented meaning.
Two documented differences are modelled rather than compared away:

* ``list`` of several namespaces or threads is newest first across all of them (ties:
  thread id descending, then namespace); ``InMemorySaver`` walks threads and namespaces
  in insertion order. The oracle's answer is sorted into our order before ``limit``
  applies.
* Channel versions come from ``get_next_version`` or a global counter, so no two
  branches share a (channel, version) and ``InMemorySaver``'s overwriting of a blob
  cannot differ from our write-once blobs.

Checkpoint ids come from ``uuid6`` (time ordered) and only increase within a thread.
"""

from __future__ import annotations

import asyncio
import copy
import uuid
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    rule,
    run_state_machine_as_test,
)
from langgraph.checkpoint.base import CheckpointTuple
from langgraph.checkpoint.conformance.test_utils import generate_checkpoint
from langgraph.checkpoint.memory import InMemorySaver

from plain_redis_saver import AsyncPlainRedisSaver, PlainRedisSaver
from plain_redis_saver.codec import netstring

from .conftest import IN_CI, Backend
from .helpers import config, new_id

MODEL_BACKENDS = ("valkey", "fakeredis")

THREADS = ["", ":", "{x}", "%7Bx%7D", "ü", " a b ", "t*"]
NAMESPACES = ["", "child", "ü:{x}"]
CHANNELS = ["a", "b:c", "ü"]
SPECIAL_CHANNELS = ["__error__", "__interrupt__", "__scheduled__", "__resume__"]
TASKS = ["task-1", "task-2", "", ":", "ü"]
TASK_PATHS = ["", "~0", "~1", "~0:1"]
RUNS = ["run-1", "run-2", "run-3"]
META_KEYS = ["source", "step", "run_id", "user"]

#: A value for ``new_versions`` without a value in ``channel_values`` (stored "empty").
EMPTY = object()

scalars = st.one_of(st.none(), st.sampled_from(["", "x", "loop", "ü", *RUNS]), st.integers(-3, 3))
meta_values = st.one_of(scalars, st.dictionaries(st.sampled_from(["k", "ü"]), scalars, max_size=2))
metadata_st = st.fixed_dictionaries(
    {},
    optional={
        "source": meta_values,
        "step": meta_values,
        "run_id": st.one_of(st.sampled_from(RUNS), meta_values),
        "user": meta_values,
    },
)
channel_values = st.one_of(
    st.none(),
    st.integers(-(2**40), 2**40),
    st.text(max_size=4),
    st.binary(max_size=4),
    st.lists(st.integers(0, 9), max_size=3),
    st.dictionaries(st.sampled_from(["k", "ü"]), st.integers(0, 3), max_size=2),
)


def mostly(likely: st.SearchStrategy[Any], other: st.SearchStrategy[Any]) -> Any:
    """``likely`` four times out of five."""
    return st.one_of(likely, likely, likely, likely, other)


def view(tup: CheckpointTuple | None) -> Any:
    """Everything a tuple says, in a form that compares with ``==``."""
    if tup is None:
        return None
    return {
        "config": tup.config,
        "checkpoint": tup.checkpoint,
        "metadata": tup.metadata,
        "parent_config": tup.parent_config,
        "pending_writes": list(tup.pending_writes or []),
    }


def documented_order(tup: CheckpointTuple) -> tuple[str, str, bytes]:
    """Sort key (used descending) of list() across namespaces or threads: newest id
    first, then thread id, then namespace as the scripts compare it."""
    conf = tup.config["configurable"]
    return conf["checkpoint_id"], conf["thread_id"], netstring(conf["checkpoint_ns"])


class Oracle(InMemorySaver):
    """InMemorySaver plus the maintenance methods it lacks, with their documented
    meaning. Channel values are never dropped here: a remaining checkpoint must still
    see each value it references, which is what the saver's reference counts ensure."""

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        runs = set(run_ids)
        for thread_id, namespaces in self.storage.items():
            for ns, checkpoints in namespaces.items():
                for cid, (_, meta, _) in list(checkpoints.items()):
                    run = self.serde.loads_typed(meta).get("run_id")
                    if isinstance(run, str) and run in runs:
                        del checkpoints[cid]
                        self.writes.pop((thread_id, ns, cid), None)

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Adds what the target lacks; what the target already holds wins."""
        if source_thread_id == target_thread_id:
            return
        for ns, checkpoints in list(self.storage.get(source_thread_id, {}).items()):
            for cid, entry in checkpoints.items():
                self.storage[target_thread_id][ns].setdefault(cid, entry)
        for (thread_id, ns, cid), writes in list(self.writes.items()):
            if thread_id == source_thread_id:
                target = self.writes[(target_thread_id, ns, cid)]
                for key, value in writes.items():
                    target.setdefault(key, value)
        for (thread_id, ns, channel, version), blob in list(self.blobs.items()):
            if thread_id == source_thread_id:
                self.blobs.setdefault((target_thread_id, ns, channel, version), blob)

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        for thread_id in thread_ids:
            if strategy == "delete":
                self.delete_thread(thread_id)
                continue
            for ns, checkpoints in self.storage.get(thread_id, {}).items():
                if not checkpoints:
                    continue
                latest = max(checkpoints)
                for cid in [c for c in checkpoints if c != latest]:
                    del checkpoints[cid]
                    self.writes.pop((thread_id, ns, cid), None)

    def existing(self) -> list[tuple[str, str, str]]:
        return sorted(
            (thread_id, ns, cid)
            for thread_id, namespaces in self.storage.items()
            for ns, checkpoints in namespaces.items()
            for cid in checkpoints
        )

    def expected_list(
        self,
        config: Any,
        *,
        filter: dict[str, Any] | None,
        before: Any,
        limit: int | None,
    ) -> list[Any]:
        found = list(self.list(config, filter=filter, before=before))
        one_namespace = config is not None and "checkpoint_ns" in config["configurable"]
        if not one_namespace:
            found.sort(key=documented_order, reverse=True)
        return [view(t) for t in (found if limit is None else found[:limit])]


class Harness:
    """The two savers under test (blocking and asyncio) on one fresh key prefix."""

    def __init__(self, backend: Backend, admin: Any) -> None:
        self.backend = backend
        self.admin = admin
        self.prefix = f"lgtestm{uuid.uuid4().hex[:12]}"
        self.loop = asyncio.new_event_loop()
        self.client = backend.client()
        self.aclient = backend.async_client()
        # A thread is created uncounted by the blocking saver and counted by the asyncio
        # one (reference_counts), whichever writes it first: a walk meets both layouts,
        # and each written by either saver.
        self.sync = PlainRedisSaver(self.client, key_prefix=self.prefix)
        self.asaver = AsyncPlainRedisSaver(
            self.aclient, key_prefix=self.prefix, reference_counts=True
        )

    def call(self, use_async: bool, method: str, *args: Any, **kwargs: Any) -> Any:
        if not use_async:
            result = getattr(self.sync, method)(*args, **kwargs)
            return list(result) if method == "list" else result

        async def run() -> Any:
            if method == "list":
                return [t async for t in self.asaver.alist(*args, **kwargs)]
            return await getattr(self.asaver, "a" + method)(*args, **kwargs)

        return self.loop.run_until_complete(run())

    def close(self) -> None:
        keys = list(self.admin.scan_iter(match=f"{self.prefix}:*", count=1000))
        for key in keys:
            self.admin.unlink(key)
        self.loop.run_until_complete(self.aclient.aclose())
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()
        self.client.close()


def make_machine(backend: Backend, admin: Any) -> type[RuleBasedStateMachine]:
    class SaverModel(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.h = Harness(backend, admin)
            self.oracle = Oracle()
            self.counter = 1
            #: thread id -> an id newer than the thread's checkpoints, with writes
            #: stored before its checkpoint (which the next put in the thread uses)
            self.reserved: dict[str, str] = {}

        def teardown(self) -> None:
            self.h.close()

        # ---------------------------------------------------------------- helpers

        def both(self, data: Any, method: str, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
            use_async = data.draw(st.booleans(), label="use_async")
            expected = getattr(self.oracle, method)(*copy.deepcopy(args), **kwargs)
            actual = self.h.call(use_async, method, *copy.deepcopy(args), **kwargs)
            return expected, actual

        def check_threads(self, data: Any, thread_ids: Sequence[str] | None) -> None:
            """After a change: every checkpoint of these threads (of all, for None) is
            exactly what the oracle holds, values and writes included."""
            configs = [None] if thread_ids is None else [config(t, None) for t in set(thread_ids)]
            use_async = data.draw(st.booleans(), label="use_async")
            for listed in configs:
                expected = self.oracle.expected_list(listed, filter=None, before=None, limit=None)
                actual = self.h.call(use_async, "list", listed)
                assert [view(t) for t in actual] == expected
            # And their reference counts are exactly what they store references to; an
            # uncounted thread keeps none, and may hold garbage until its collection.
            for tid in THREADS if thread_ids is None else set(thread_ids):
                found = self.h.sync.audit_thread(tid)
                garbage = [] if found.uncounted else found.unreferenced
                assert (found.wrong_counts, garbage, found.missing) == ([], [], [])

        def place(self, data: Any) -> tuple[str, str]:
            """A (thread, namespace), usually one that holds checkpoints."""
            anywhere = st.tuples(st.sampled_from(THREADS), st.sampled_from(NAMESPACES))
            used = sorted({(tid, ns) for tid, ns, _ in self.oracle.existing()})
            if used:
                anywhere = mostly(st.sampled_from(used), anywhere)
            tid, ns = data.draw(anywhere, label="place")
            return tid, ns

        def thread(self, data: Any) -> str:
            """A thread id, usually one that holds checkpoints."""
            anywhere = st.sampled_from(THREADS)
            used = sorted({tid for tid, _, _ in self.oracle.existing()})
            if used:
                anywhere = mostly(st.sampled_from(used), anywhere)
            return data.draw(anywhere, label="thread_id")

        def next_version(self, data: Any, current: Any) -> Any:
            if (current is None or isinstance(current, int)) and data.draw(
                st.booleans(), label="int_version"
            ):
                self.counter += 1
                return self.counter
            return self.h.sync.get_next_version(current, None)

        def draw_metadata_filter(self, data: Any) -> dict[str, Any] | None:
            if data.draw(st.booleans(), label="no_filter"):
                return None
            stored = []
            for _, _, meta in self.metadata_of_all():
                stored += [(k, v) for k, v in meta.items() if k in META_KEYS]
            pair = st.tuples(st.sampled_from(META_KEYS), st.none() | meta_values)
            if stored:
                pair = st.sampled_from(stored) | pair
            pairs = data.draw(st.lists(pair, max_size=2), label="filter")
            return dict(pairs)

        def metadata_of_all(self) -> list[tuple[str, str, dict[str, Any]]]:
            return [
                (tid, cid, self.oracle.serde.loads_typed(self.oracle.storage[tid][ns][cid][1]))
                for tid, ns, cid in self.oracle.existing()
            ]

        # ------------------------------------------------------------------ rules

        @initialize(data=st.data())
        def seed(self, data: Any) -> None:
            """Start from a few threads with some history, so every rule has work."""
            for _ in range(data.draw(st.integers(2, 10), label="seed_puts")):
                self.put(data)
                self.superstep(data)
            for _ in range(data.draw(st.integers(1, 4), label="seed_writes")):
                self.put_writes(data)

        @rule(data=st.data())
        def put(self, data: Any) -> None:
            tid, ns = self.place(data)
            here = sorted(self.oracle.storage.get(tid, {}).get(ns, {}))
            parent = None
            if here:
                parent = data.draw(
                    mostly(st.just(here[-1]), st.none() | st.sampled_from(here)), label="parent"
                )
            self.put_child(data, tid, ns, parent)

        @rule(data=st.data())
        def superstep(self, data: Any) -> None:
            """What a graph step does: tasks write against the latest checkpoint, then
            its child is put."""
            used = sorted({(tid, ns) for tid, ns, _ in self.oracle.existing()})
            if not used:
                return
            tid, ns = data.draw(st.sampled_from(used), label="place")
            latest = max(self.oracle.storage[tid][ns])
            for task in range(data.draw(st.integers(1, 2), label="tasks")):
                writes = data.draw(
                    st.lists(st.tuples(st.sampled_from(CHANNELS), channel_values), max_size=3),
                    label="writes",
                )
                path = data.draw(st.sampled_from(TASK_PATHS), label="task_path")
                expected, actual = self.both(
                    data, "put_writes", config(tid, ns, latest), writes, f"step-{task}", path
                )
                assert actual is expected is None
            self.put_child(data, tid, ns, latest)

        def put_child(self, data: Any, tid: str, ns: str, parent: str | None) -> None:
            versions: dict[str, Any] = {}
            values: dict[str, Any] = {}
            if parent is not None:
                ptup = self.oracle.get_tuple(config(tid, ns, parent))
                assert ptup is not None
                versions = dict(ptup.checkpoint["channel_versions"])
                values = dict(ptup.checkpoint["channel_values"])
            updates = data.draw(
                st.dictionaries(
                    st.sampled_from(CHANNELS), st.just(EMPTY) | channel_values, max_size=3
                ),
                label="updates",
            )
            new_versions: dict[str, Any] = {}
            for channel, value in updates.items():
                versions[channel] = new_versions[channel] = self.next_version(
                    data, versions.get(channel)
                )
                if value is EMPTY:
                    values.pop(channel, None)
                else:
                    values[channel] = value
            cid = self.reserved.pop(tid, None) or new_id()
            checkpoint = generate_checkpoint(
                checkpoint_id=cid, channel_values=values, channel_versions=versions
            )
            meta = data.draw(metadata_st, label="metadata")
            expected, actual = self.both(
                data, "put", config(tid, ns, parent), checkpoint, meta, new_versions
            )
            assert actual == expected

        @rule(data=st.data())
        def retry_put(self, data: Any) -> None:
            """Putting a stored checkpoint again (a retried call) changes nothing."""
            existing = self.oracle.existing()
            if not existing:
                return
            tid, ns, cid = data.draw(st.sampled_from(existing), label="checkpoint")
            tup = self.oracle.get_tuple(config(tid, ns, cid))
            assert tup is not None
            parent = tup.parent_config or config(tid, ns)
            if tup.parent_config and self.oracle.get_tuple(tup.parent_config) is None:
                return  # a put needs its parent's values: LangGraph never re-puts orphans
            expected, actual = self.both(data, "put", parent, tup.checkpoint, tup.metadata, {})
            assert actual == expected

        @rule(data=st.data())
        def reserve(self, data: Any) -> None:
            """Writes may arrive before their checkpoint: pick the next id of a thread."""
            tid = data.draw(st.sampled_from(THREADS), label="thread_id")
            self.reserved.setdefault(tid, new_id())

        @rule(data=st.data())
        def put_writes(self, data: Any) -> None:
            early = [
                (tid, ns, cid) for tid, cid in sorted(self.reserved.items()) for ns in NAMESPACES
            ]
            existing = self.oracle.existing()
            if not existing + early:
                return
            latest = sorted({(t, n): (t, n, c) for t, n, c in existing}.values())
            target = mostly(st.sampled_from(latest + early), st.sampled_from(existing + early))
            tid, ns, cid = data.draw(target, label="target")
            writes = data.draw(
                st.lists(
                    st.tuples(
                        st.sampled_from(CHANNELS) | st.sampled_from(SPECIAL_CHANNELS),
                        channel_values,
                    ),
                    max_size=3,
                ),
                label="writes",
            )
            task_id = data.draw(st.sampled_from(TASKS), label="task_id")
            task_path = data.draw(st.sampled_from(TASK_PATHS), label="task_path")
            expected, actual = self.both(
                data, "put_writes", config(tid, ns, cid), writes, task_id, task_path
            )
            assert actual is expected is None

        @rule(data=st.data())
        def get_tuple(self, data: Any) -> None:
            tid, ns = self.place(data)
            here = sorted(self.oracle.storage.get(tid, {}).get(ns, {}))
            ids = [c for _, _, c in self.oracle.existing()]
            choices = st.none() | st.just(new_id())
            if ids:  # one of this place, or of another (not found here)
                choices = choices | st.sampled_from(ids)
            if here:
                choices = st.sampled_from(here) | choices
            cid = data.draw(choices, label="checkpoint_id")
            expected, actual = self.both(data, "get_tuple", config(tid, ns, cid))
            assert view(actual) == view(expected)

        @rule(data=st.data())
        def list_checkpoints(self, data: Any) -> None:
            existing = self.oracle.existing()
            shape = data.draw(
                st.sampled_from(["all", "thread", "namespace", "id", "id-any-namespace"]),
                label="shape",
            )
            tid, ns = self.place(data)
            mine = [c for t, _, c in existing if t == tid]
            listed: Any
            if shape == "all":
                listed = None
            elif shape == "thread":
                listed = config(tid, None)
            elif shape == "namespace":
                listed = config(tid, ns)
            else:
                cid = data.draw(st.sampled_from(mine) if mine else st.just(new_id()), label="id")
                listed = config(tid, ns if shape == "id" else None, cid)
            ids = [c for _, _, c in existing]
            before_id = data.draw(
                st.none() | st.just(new_id()) | (st.sampled_from(ids) if ids else st.nothing()),
                label="before",
            )
            before = None if before_id is None else {"configurable": {"checkpoint_id": before_id}}
            limit = data.draw(st.none() | st.integers(0, 4), label="limit")
            filter_ = self.draw_metadata_filter(data)
            use_async = data.draw(st.booleans(), label="use_async")
            expected = self.oracle.expected_list(listed, filter=filter_, before=before, limit=limit)
            actual = self.h.call(
                use_async, "list", listed, filter=filter_, before=before, limit=limit
            )
            assert [view(t) for t in actual] == expected

        @rule(data=st.data())
        def delete_thread(self, data: Any) -> None:
            tid = self.thread(data)
            expected, actual = self.both(data, "delete_thread", tid)
            assert actual is expected is None
            self.check_threads(data, [tid])

        @rule(data=st.data())
        def delete_for_runs(self, data: Any) -> None:
            stored = sorted(
                {
                    m["run_id"]
                    for _, _, m in self.metadata_of_all()
                    if isinstance(m.get("run_id"), str)
                }
            )
            run = st.sampled_from([*RUNS, "nope"])
            if stored:
                run = st.sampled_from(stored) | run
            runs = data.draw(st.lists(run, max_size=2), label="runs")
            expected, actual = self.both(data, "delete_for_runs", runs)
            assert actual is expected is None
            self.check_threads(data, None)

        @rule(data=st.data())
        def copy_thread(self, data: Any) -> None:
            source = self.thread(data)
            target = data.draw(st.sampled_from(THREADS), label="target")
            self.reserved.pop(target, None)  # the copy may bring newer ids
            expected, actual = self.both(data, "copy_thread", source, target)
            assert actual is expected is None
            self.check_threads(data, [source, target])

        @rule(data=st.data())
        def prune(self, data: Any) -> None:
            threads = [self.thread(data) for _ in range(data.draw(st.integers(0, 2)))]
            strategy = data.draw(st.sampled_from(["keep_latest", "delete"]), label="strategy")
            expected, actual = self.both(data, "prune", threads, strategy=strategy)
            assert actual is expected is None
            self.check_threads(data, threads)

        @rule(data=st.data())
        def repair_thread(self, data: Any) -> None:
            """A thread written only through the saver has nothing to repair but the
            garbage of an uncounted thread: the repair (its collector) finds no wrong
            count and nothing missing, leaves nothing unreferenced, and every read still
            equals the oracle's."""
            tid = self.thread(data)
            use_async = data.draw(st.booleans(), label="use_async")
            found = self.h.call(use_async, "repair_thread", tid)
            garbage = [] if found.uncounted else found.unreferenced
            assert (found.wrong_counts, garbage, found.missing) == ([], [], [])
            assert self.h.sync.audit_thread(tid).unreferenced == []
            self.check_threads(data, [tid])

        @rule(data=st.data())
        def cold_reader(self, data: Any) -> None:
            """A process that wrote nothing and read nothing (no copy to confirm, no
            content held) reads and lists what the oracle holds."""
            tid, ns = self.place(data)
            here = sorted(self.oracle.storage.get(tid, {}).get(ns, {}))
            cid = data.draw(st.none() | st.sampled_from(here) if here else st.none(), label="id")
            cold = PlainRedisSaver(self.h.client, key_prefix=self.h.prefix)
            assert view(cold.get_tuple(config(tid, ns, cid))) == view(
                self.oracle.get_tuple(config(tid, ns, cid))
            )
            # And a whole thread, listed by another cold saver (all its content sent).
            listed = config(tid, None)
            expected = self.oracle.expected_list(listed, filter=None, before=None, limit=None)
            other = PlainRedisSaver(self.h.client, key_prefix=self.h.prefix)
            assert [view(t) for t in other.list(listed)] == expected

        @rule(data=st.data())
        def delta_channel_history(self, data: Any) -> None:
            tid, ns = self.place(data)
            here = sorted(self.oracle.storage.get(tid, {}).get(ns, {}))
            cid = data.draw(
                mostly(st.none(), st.sampled_from(here) if here else st.none()), label="id"
            )
            channels = data.draw(
                st.just(CHANNELS)
                | st.lists(st.sampled_from([*CHANNELS, "nope"]), unique=True, max_size=3),
                label="channels",
            )
            expected, actual = self.both(
                data, "get_delta_channel_history", config=config(tid, ns, cid), channels=channels
            )
            assert actual == expected

    return SaverModel


def skip_unless_model_backend(backend: Backend) -> None:
    if backend.name not in MODEL_BACKENDS:
        pytest.skip(
            f"the model-based test runs on {' and '.join(MODEL_BACKENDS)} only: the same "
            f"scripts run on '{backend.name}', and the random walk is too slow to repeat there"
        )


def test_saver_behaves_like_in_memory_saver(backend: Backend, admin: Any) -> None:
    skip_unless_model_backend(backend)
    fast = backend.name == "valkey"
    run_state_machine_as_test(
        make_machine(backend, admin),
        settings=settings(
            max_examples=40 if fast else 30,
            stateful_step_count=60,
            deadline=None,
            derandomize=IN_CI,  # CI replays the same examples; a local run explores
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
            print_blob=True,
        ),
    )
