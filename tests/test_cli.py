"""The ``plain-redis-saver`` command line, end to end on every backend.

Commands run in-process through ``main(argv)`` (fakeredis has no URL: it is handed the
client) and once per server through ``python -m plain_redis_saver`` in a subprocess.
The CLI connects as the least-privilege user, like the saver.
"""

from __future__ import annotations

import base64
import json
import operator
import os
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.graph import START, StateGraph
from langgraph.types import Command, interrupt

from plain_redis_saver import PlainRedisSaver
from plain_redis_saver.cli import EXPORT_FORMAT, main

from .conftest import Backend
from .helpers import checkpoint, config, metadata, put_chain

REPO = Path(__file__).resolve().parent.parent


@dataclass
class Run:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        assert self.code == 0, self.err
        return json.loads(self.out)


CLI = Callable[..., Run]


@pytest.fixture
def cli(backend: Backend, prefix: str, capsys: pytest.CaptureFixture[str]) -> CLI:
    """Runs main() in-process; ``prefix`` and the least-privilege URL unless given."""

    def run(*args: str, key_prefix: str | None = None, admin: bool = False) -> Run:
        argv = ["--key-prefix", key_prefix or prefix, *args]
        client = None
        if backend.url is None:
            client = backend.client()
        else:
            argv = ["--url", backend.admin_url if admin else backend.url, *argv]
        capsys.readouterr()
        try:
            code = main(argv, client=client)
        finally:
            if client is not None:
                client.close()
        captured = capsys.readouterr()
        assert "Traceback" not in captured.err
        return Run(code, captured.out, captured.err)

    return run


class State(TypedDict):
    items: Annotated[list[Any], operator.add]


def graph(saver: PlainRedisSaver) -> Any:
    """Parallel nodes, a subgraph (a second namespace) and an interrupt."""
    inner = StateGraph(State)
    inner.add_node("inner", lambda s: {"items": ["inner"]})
    inner.add_edge(START, "inner")
    builder = StateGraph(State)
    builder.add_node("a", lambda s: {"items": [AIMessage("from a")]})
    builder.add_node("zz", lambda s: {"items": ["zz"]})
    builder.add_node("sub", inner.compile())
    builder.add_node("ask", lambda s: {"items": [interrupt("approve?")]})
    for node in ("a", "zz", "sub"):
        builder.add_edge(START, node)
        builder.add_edge(node, "ask")
    return builder.compile(checkpointer=saver)


def run_graph(saver: PlainRedisSaver, thread_id: str, *, resume: bool = True) -> None:
    g = graph(saver)
    conf = {"configurable": {"thread_id": thread_id}}
    g.invoke({"items": [HumanMessage("hi"), {1, 2}, b"raw"]}, conf)
    if resume:
        g.invoke(Command(resume="yes"), conf)


def tuples(saver: PlainRedisSaver, thread_id: str) -> list[Any]:
    """A thread's checkpoints in comparable form (without the thread id)."""
    out = []
    for t in saver.list({"configurable": {"thread_id": thread_id}}):
        conf = t.config["configurable"]
        parent = t.parent_config["configurable"]["checkpoint_id"] if t.parent_config else None
        out.append(
            (
                conf["checkpoint_ns"],
                conf["checkpoint_id"],
                parent,
                t.checkpoint,
                t.metadata,
                t.pending_writes,
            )
        )
    return out


# --------------------------------------------------------------------------- threads


def test_threads_lists_threads_with_counts(cli: CLI, saver: PlainRedisSaver) -> None:
    run_graph(saver, "a")
    run_graph(saver, "odd:{id}* %", resume=False)
    put_chain(saver, "c", 3)
    data = cli("threads", "--json").json()
    assert data["cursor"] == "0"
    rows = {row["thread_id"]: row for row in data["threads"]}
    assert set(rows) == {"a", "odd:{id}* %", "c"}
    for thread_id, row in rows.items():
        listed = list(saver.list({"configurable": {"thread_id": thread_id}}))
        assert row["checkpoints"] == len(listed)
        assert row["namespaces"] == sorted(
            {t.config["configurable"]["checkpoint_ns"] for t in listed}
        )
        assert row["pending_writes"] == sum(len(t.pending_writes) for t in listed)
        assert row["last_update"] == max(t.checkpoint["ts"] for t in listed)
        assert row["ttl_seconds"] is None
        assert row["keys"] >= 3 and row["keys_without_ttl"] == row["keys"]
    assert len(rows["a"]["namespaces"]) == 2 and rows["c"]["namespaces"] == [""]


def test_threads_reports_bytes_when_memory_usage_is_allowed(
    backend: Backend, cli: CLI, saver: PlainRedisSaver
) -> None:
    put_chain(saver, "t", 2)
    # The least-privilege user may not run MEMORY USAGE (nor fakeredis): "unknown".
    assert cli("threads", "--json").json()["threads"][0]["bytes"] is None
    if backend.url is not None:
        assert cli("threads", "--json", admin=True).json()["threads"][0]["bytes"] > 100


def test_threads_pages_with_scan_cursors(cli: CLI, saver: PlainRedisSaver) -> None:
    expected = {f"t{i:02d}" for i in range(30)}
    for thread_id in expected:
        put_chain(saver, thread_id, 1)
    seen: list[str] = []
    cursor, pages = "0", 0
    while True:
        data = cli("threads", "--json", "--count", "4", "--cursor", cursor).json()
        seen += [row["thread_id"] for row in data["threads"]]
        cursor, pages = data["cursor"], pages + 1
        if cursor == "0":
            break
        assert pages < 100
    assert set(seen) == expected
    assert pages > 1


def test_threads_table_for_people(cli: CLI, saver: PlainRedisSaver) -> None:
    for i in range(5):
        put_chain(saver, f"thread-{i}", 2)
    run = cli("threads")
    assert run.code == 0, run.err
    lines = run.out.splitlines()
    assert lines[0].split() == [
        "THREAD", "CHECKPOINTS", "NAMESPACES", "WRITES", "LAST", "UPDATE", "BYTES", "TTL",
        "STATUS",
    ]  # fmt: skip
    assert {line.split()[0] for line in lines[1:]} == {f"thread-{i}" for i in range(5)}
    assert {line.split()[-1] for line in lines[1:]} == {"ok"}
    paged = cli("threads", "--count", "1")
    assert "next page: --cursor " in paged.out.splitlines()[-1]


def test_threads_rejects_a_bad_cursor(cli: CLI, saver: PlainRedisSaver) -> None:
    put_chain(saver, "t", 1)
    run = cli("threads", "--cursor", "nonsense")
    assert run.code == 2 and "invalid --cursor" in run.err


# --------------------------------------------------------------------------- history / show


def test_history_newest_first(cli: CLI, saver: PlainRedisSaver) -> None:
    run_graph(saver, "h")
    listed = list(saver.list({"configurable": {"thread_id": "h"}}))
    rows = cli("history", "h", "--json").json()["checkpoints"]
    assert [r["checkpoint_id"] for r in rows] == [
        t.config["configurable"]["checkpoint_id"] for t in listed
    ]
    for row, tup in zip(rows, listed, strict=True):
        assert row["step"] == tup.metadata["step"] and row["source"] == tup.metadata["source"]
        assert row["pending_writes"] == len(tup.pending_writes)
        parent = tup.parent_config["configurable"]["checkpoint_id"] if tup.parent_config else None
        assert row["parent_checkpoint_id"] == parent
        assert row["checkpoint_ns"] == tup.config["configurable"]["checkpoint_ns"]
    assert "run_id" in rows[0]
    root = cli("history", "h", "--ns", "", "--limit", "2", "--json").json()["checkpoints"]
    assert len(root) == 2 and all(r["checkpoint_ns"] == "" for r in root)
    assert [r["checkpoint_id"] for r in root] == [
        t.config["configurable"]["checkpoint_id"] for t in saver.list(config("h", ""), limit=2)
    ]
    table = cli("history", "h")
    assert table.code == 0 and table.out.split()[:4] == ["CHECKPOINT", "NS", "STEP", "SOURCE"]
    assert len(table.out.splitlines()) == len(listed) + 1


def test_history_shows_run_ids_from_metadata(cli: CLI, saver: PlainRedisSaver) -> None:
    run_id = "00000000-0000-0000-0000-00000000abcd"
    conf: Any = {"configurable": {"thread_id": "r"}, "metadata": {"run_id": run_id}}
    graph(saver).invoke({"items": ["x"]}, conf)
    rows = cli("history", "r", "--ns", "", "--json").json()["checkpoints"]
    assert {r["run_id"] for r in rows} == {run_id}
    assert run_id in cli("history", "r").out


def test_show_renders_values_metadata_and_writes(cli: CLI, saver: PlainRedisSaver) -> None:
    run_graph(saver, "s", resume=False)
    latest = saver.get_tuple(config("s"))
    assert latest is not None
    doc = cli("show", "s").json()
    assert doc["checkpoint_id"] == latest.config["configurable"]["checkpoint_id"]
    assert doc["checkpoint"]["channel_versions"] == latest.checkpoint["channel_versions"]
    assert doc["metadata"]["step"] == latest.metadata["step"]
    items = doc["channel_values"]["items"]
    assert items[0]["type"] == "human" and items[0]["content"] == "hi"  # model_dump()
    assert items[1] == [1, 2]  # a set
    assert items[2] == {"__type__": "bytes", "size": 3}
    assert {"type": "ai", "content": "from a"}.items() <= items[3].items()
    interrupts = [w for w in doc["pending_writes"] if w["channel"] == "__interrupt__"]
    assert interrupts and interrupts[0]["value"][0]["value"] == "approve?"

    first = list(saver.list(config("s", "")))[-1]
    first_id = first.config["configurable"]["checkpoint_id"]
    older = cli("show", "s", first_id, "--ns", "").json()
    assert older["checkpoint_id"] == first_id and older["parent_checkpoint_id"] is None
    assert len(older["pending_writes"]) == len(first.pending_writes)

    # Values without a JSON form (here a Decimal and a deque) show as type and size.
    cp = checkpoint({"blob": Decimal("1." + "5" * 60)}, versions={"blob": "1"})
    saved = saver.put(config("o"), cp, metadata(), {"blob": "1"})
    saver.put_writes(saved, [("blob", deque([1, 2]))], "task")
    shown = cli("show", "o").json()
    assert shown["channel_values"]["blob"]["__type__"] == "decimal.Decimal"
    assert shown["channel_values"]["blob"]["size"] > 60
    assert shown["pending_writes"][0]["value"]["__type__"] == "collections.deque"


def test_show_and_history_of_a_missing_thread_or_checkpoint(
    cli: CLI, saver: PlainRedisSaver
) -> None:
    put_chain(saver, "there", 1)
    for args in (["show", "nope"], ["history", "nope"], ["show", "there", "no-such-id"]):
        run = cli(*args)
        assert run.code == 1 and run.out == ""
        assert "not found" in run.err and run.err.startswith("plain-redis-saver: error: ")
    run = cli("history", "there", "--ns", "elsewhere")
    assert run.code == 1 and "no checkpoint in namespace 'elsewhere'" in run.err


# --------------------------------------------------------------------------- stats


def test_stats_totals(backend: Backend, cli: CLI, saver: PlainRedisSaver, prefix: str) -> None:
    saver.setup()
    run_graph(saver, "g1")
    put_chain(saver, "g2", 4)
    stats = cli("stats", "--json").json()
    every = [t for tid in ("g1", "g2") for t in saver.list({"configurable": {"thread_id": tid}})]
    assert stats["key_prefix"] == prefix and stats["schema_version"] == "3"
    assert stats["threads"] == 2 and stats["checkpoints"] == len(every)
    assert stats["pending_writes"] == sum(len(t.pending_writes) for t in every)
    assert stats["namespaces"] == 3
    assert stats["keys"] >= 6 and stats["keys_without_ttl"] == stats["keys"]
    with_ttl = PlainRedisSaver(saver.client, key_prefix=prefix, ttl=3600)
    put_chain(with_ttl, "g3", 1)
    again = cli("stats", "--json").json()
    assert again["threads"] == 3 and again["keys_without_ttl"] == stats["keys"]
    table = cli("stats")
    assert "keys without TTL" in table.out and "schema version" in table.out
    if backend.url is not None:
        assert cli("stats", "--json", admin=True).json()["bytes"] > 0


def test_check_reads_every_thread_and_passes_healthy_ones(cli: CLI, saver: PlainRedisSaver) -> None:
    run_graph(saver, "g1")
    put_chain(saver, "g2", 3)
    report = cli("check", "--json").json()
    expected = {tid: len(tuples(saver, tid)) for tid in ("g1", "g2")}
    assert report["threads"] == 2 and report["damaged"] == 0
    assert {r["thread_id"]: r["checkpoints_read"] for r in report["results"]} == expected
    assert all(r["problem"] is None for r in report["results"])


@pytest.mark.parametrize("lost", ["checkpoints", "order", "blobs", "writes", "namespaces"])
def test_check_reports_a_thread_with_an_evicted_key_and_exits_1(
    cli: CLI, saver: PlainRedisSaver, admin: Any, lost: str
) -> None:
    put_chain(saver, "ok", 2)
    [*_, last] = put_chain(saver, "bad", 2)
    saver.put_writes(last, [("n", "w")], "task")
    key = getattr(saver._plans.keys.thread("bad"), lost)
    admin.unlink(key)  # what volatile-lru eviction of one key looks like
    run = cli("check", "--json")
    report = json.loads(run.out)
    assert run.code == 1 and "1 of 2 threads are damaged: 'bad'" in run.err
    [bad] = [r for r in report["results"] if r["problem"] is not None]
    assert bad["thread_id"] == "bad" and key in bad["problem"]


def test_check_reports_a_reference_count_changed_by_hand_and_exits_1(
    cli: CLI, saver: PlainRedisSaver, admin: Any
) -> None:
    counted = PlainRedisSaver(saver.client, key_prefix=saver.key_prefix, reference_counts=True)
    put_chain(counted, "ok", 2)
    put_chain(counted, "bad", 2)
    blobs = saver._plans.keys.thread("bad").blobs
    count = next(f for f in admin.hkeys(blobs) if f.startswith(b"#"))
    admin.hincrby(blobs, count, 1)
    run = cli("check", "--json")
    [bad] = [r for r in json.loads(run.out)["results"] if r["problem"] is not None]
    assert run.code == 1 and bad["thread_id"] == "bad"
    assert "reference count" in bad["problem"] and repr(count) in bad["problem"]


def test_check_passes_a_thread_holding_a_value_nothing_references_and_says_so(
    cli: CLI, saver: PlainRedisSaver, admin: Any
) -> None:
    put_chain(saver, "t", 2)
    admin.hset(saver._plans.keys.thread("t").blobs, b"0:1:x9", b"left over")
    report = cli("check", "--json")
    [row] = report.json()["results"]
    assert report.code == 0 and row["problem"] is None
    assert (row["unreferenced"], row["unreferenced_bytes"]) == (1, 9)
    assert "1 stored value(s) or piece(s) of content (9 B)" in cli("check").out


def test_check_says_an_uncounted_threads_removed_values_await_its_collection(
    cli: CLI, saver: PlainRedisSaver, admin: Any, prefix: str
) -> None:
    retained = PlainRedisSaver(saver.client, key_prefix=prefix, max_checkpoints=1)
    counted = PlainRedisSaver(saver.client, key_prefix=prefix, reference_counts=True)
    put_chain(retained, "u", 3)
    put_chain(counted, "c", 2)
    rows = {r["thread_id"]: r for r in cli("check", "--json").json()["results"]}
    assert (rows["u"]["uncounted"], rows["u"]["unreferenced"]) == (True, 2)
    assert (rows["c"]["uncounted"], rows["c"]["unreferenced"]) == (False, 0)
    assert "awaiting the thread's collection" in cli("check", "u").out


def test_check_repair_sets_counts_right_frees_leftovers_and_leaves_lost_keys(
    cli: CLI, saver: PlainRedisSaver, admin: Any
) -> None:
    counted = PlainRedisSaver(saver.client, key_prefix=saver.key_prefix, reference_counts=True)
    put_chain(counted, "counts", 2)
    put_chain(counted, "lost", 2)
    keys = saver._plans.keys.thread("counts")
    count = next(f for f in admin.hkeys(keys.blobs) if f.startswith(b"#"))
    admin.hincrby(keys.blobs, count, 1)
    admin.hset(keys.blobs, b"0:1:x9", b"left over")
    admin.unlink(saver._plans.keys.thread("lost").checkpoints)
    run = cli("check", "--repair", "--json")
    rows = {r["thread_id"]: r for r in json.loads(run.out)["results"]}
    assert run.code == 1 and "'lost'" in run.err  # the lost key is still reported
    assert rows["counts"]["problem"] is None
    assert rows["counts"]["repaired"] == {"counts": 1, "deleted": 1, "bytes": 9}
    assert admin.hget(keys.blobs, b"0:1:x9") is None
    assert cli("check", "counts").code == 0


def test_check_of_named_threads(cli: CLI, saver: PlainRedisSaver) -> None:
    put_chain(saver, "one", 2)
    put_chain(saver, "two", 1)
    table = cli("check", "two")
    assert table.code == 0 and "two" in table.out and "one" not in table.out
    missing = cli("check", "two", "nobody")
    assert missing.code == 1 and "'nobody' not found" in missing.err


def test_reads_do_not_extend_a_thread_ttl(
    cli: CLI, saver: PlainRedisSaver, admin: Any, prefix: str
) -> None:
    expiring = PlainRedisSaver(saver.client, key_prefix=prefix, ttl=1000)
    put_chain(expiring, "e", 2)
    time.sleep(0.3)
    for args in (["threads"], ["history", "e"], ["show", "e"], ["stats"], ["export", "e"]):
        assert cli(*args).code == 0
    for key in saver._plans.keys.thread("e")[:2]:
        assert 0 < admin.pttl(key) <= 999_700


# --------------------------------------------------------------------------- delete / prune / copy


def test_delete_prune_copy(cli: CLI, saver: PlainRedisSaver) -> None:
    run_graph(saver, "src")
    put_chain(saver, "p1", 5)
    put_chain(saver, "p2", 3, ns="child")

    copied = cli("copy", "src", "dst", "--json").json()
    assert copied == {"source": "src", "target": "dst", "checkpoints": len(tuples(saver, "src"))}
    assert tuples(saver, "dst") == tuples(saver, "src")
    refused = cli("copy", "p1", "dst")
    assert refused.code == 1 and "--replace" in refused.err
    assert cli("copy", "p1", "dst", "--replace").code == 0
    assert tuples(saver, "dst") == tuples(saver, "p1")

    pruned = cli("prune", "p1", "p2", "--keep-latest", "--json").json()["pruned"]
    assert pruned == [
        {"thread_id": "p1", "before": 5, "after": 1},
        {"thread_id": "p2", "before": 3, "after": 1},
    ]
    assert len(list(saver.list({"configurable": {"thread_id": "p1"}}))) == 1
    assert cli("prune", "p1").code == 2  # --keep-latest is required: nothing implicit
    missing = cli("prune", "p1", "ghost", "--keep-latest")
    assert missing.code == 1 and "ghost" in missing.err

    assert cli("delete", "src").code == 0
    assert saver.get_tuple(config("src")) is None
    gone = cli("delete", "src")
    assert gone.code == 1 and "not found" in gone.err
    assert saver.get_tuple(config("dst")) is not None  # the copy is independent


def test_prune_and_copy_keep_the_thread_ttl(
    cli: CLI, saver: PlainRedisSaver, admin: Any, prefix: str
) -> None:
    expiring = PlainRedisSaver(saver.client, key_prefix=prefix, ttl=500)
    put_chain(expiring, "e", 3)
    put_chain(saver, "forever", 3)
    assert cli("prune", "e", "forever", "--keep-latest").code == 0
    assert 0 < admin.pttl(saver._plans.keys.thread("e").checkpoints) <= 500_000
    assert admin.pttl(saver._plans.keys.thread("forever").checkpoints) == -1
    assert cli("copy", "e", "e2").code == 0
    assert 0 < admin.pttl(saver._plans.keys.thread("e2").checkpoints) <= 500_000
    assert cli("copy", "e", "e3", "--ttl", "none").code == 0
    assert admin.pttl(saver._plans.keys.thread("e3").checkpoints) == -1
    assert cli("copy", "forever", "f2", "--ttl", "60").code == 0
    assert 0 < admin.pttl(saver._plans.keys.thread("f2").checkpoints) <= 60_000
    assert cli("copy", "e", "e4", "--ttl", "soon").code == 2


# --------------------------------------------------------------------------- export / import


def writes_out_of_task_id_order(saver: PlainRedisSaver, thread_id: str) -> None:
    """Pending writes whose task_path order differs from their task_id order, special
    channels among them, and values JSON cannot hold."""
    first = saver.put(config(thread_id), checkpoint({"v": 1}), metadata(0), {"v": 1})
    cp = checkpoint({"v": 2, "w": Decimal("2.5")}, versions={"v": 2, "w": 1})
    second = saver.put(first, cp, metadata(1, run_id="run-1"), {"v": 2, "w": 1})
    saver.put_writes(second, [("v", "late"), ("__interrupt__", ["stop"])], "a-task", "z-path")
    saver.put_writes(second, [("v", b"\x00bytes"), ("w", Decimal("-0.1"))], "b-task", "a-path")
    saver.put_writes(second, [("__error__", ValueError("boom"))], "c-task", "m-path")


def test_export_import_round_trip(
    cli: CLI, saver: PlainRedisSaver, prefix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_graph(saver, "g")
    writes_out_of_task_id_order(saver, "g")  # same thread, root namespace, later ids
    source = tuples(saver, "g")
    order = [w[0] for w in source[0][5]]
    assert order == ["b-task", "b-task", "c-task", "a-task", "a-task"]  # by task_path

    exported = cli("export", "g")
    assert exported.code == 0, exported.err
    lines = [json.loads(line) for line in exported.out.splitlines()]
    assert lines[0]["type"] == "header" and lines[0]["format"] == EXPORT_FORMAT
    assert lines[0]["version"] == 1 and lines[0]["thread_id"] == "g"
    assert lines[-1] == {
        "type": "end",
        "checkpoints": len(source),
        "pending_writes": lines[0]["pending_writes"],
    }
    body = lines[1:-1]
    assert [(b["config"]["configurable"]["checkpoint_id"]) for b in body] == sorted(
        c[1] for c in source
    )
    assert {b["config"]["configurable"]["checkpoint_ns"] for b in body} == {c[0] for c in source}
    file = tmp_path / "g.jsonl"
    file.write_text(exported.out, encoding="utf-8")

    # Same prefix, another thread, from a file.
    imported = cli("import", str(file), "--thread", "g-copy", "--json").json()
    assert imported["checkpoints"] == len(source) and imported["thread_id"] == "g-copy"
    assert tuples(saver, "g-copy") == source
    latest, latest_copy = saver.get_tuple(config("g")), saver.get_tuple(config("g-copy"))
    assert latest is not None and latest_copy is not None
    assert latest_copy.checkpoint == latest.checkpoint and latest_copy.metadata == latest.metadata
    assert latest_copy.pending_writes == latest.pending_writes

    # Another prefix, same thread id, from stdin.
    other = prefix + "b"
    monkeypatch.setattr(sys, "stdin", open(file, encoding="utf-8"))  # noqa: SIM115
    assert cli("import", key_prefix=other).code == 0
    sys.stdin.close()
    other_saver = PlainRedisSaver(saver.client, key_prefix=other)
    assert tuples(other_saver, "g") == source
    # Exporting the copy gives the same checkpoints, byte for byte.
    again = cli("export", "g", key_prefix=other).out.splitlines()
    assert again[1:] == exported.out.splitlines()[1:]
    assert cli("stats", "--json", key_prefix=other).json()["schema_version"] == "3"


def test_export_import_of_an_interrupted_graph_resumes(
    cli: CLI, saver: PlainRedisSaver, tmp_path: Path, prefix: str
) -> None:
    run_graph(saver, "paused", resume=False)
    file = tmp_path / "paused.jsonl"
    assert cli("export", "paused", "-o", str(file)).code == 0
    other = PlainRedisSaver(saver.client, key_prefix=prefix + "r")
    assert cli("import", str(file), key_prefix=prefix + "r").code == 0
    conf = {"configurable": {"thread_id": "paused"}}
    original = graph(saver).invoke(Command(resume="yes"), conf)
    restored = graph(other).invoke(Command(resume="yes"), conf)
    assert restored == original and "yes" in restored["items"]


def test_import_honours_task_paths_in_the_file(
    cli: CLI, saver: PlainRedisSaver, tmp_path: Path
) -> None:
    writes_out_of_task_id_order(saver, "w")
    lines = [json.loads(line) for line in cli("export", "w").out.splitlines()]
    paths = {"b-task": "a-path", "c-task": "m-path", "a-task": "z-path"}
    for line in lines[1:-1]:
        for write in line["pending_writes"]:
            write["task_path"] = paths[write["task_id"]]
    file = tmp_path / "w.jsonl"
    file.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    assert cli("import", str(file), "--thread", "w2").code == 0
    assert tuples(saver, "w2") == tuples(saver, "w")
    # Importing again needs --replace, and replaces.
    assert cli("import", str(file), "--thread", "w2").code == 1
    assert cli("import", str(file), "--thread", "w2", "--replace").code == 0
    assert tuples(saver, "w2") == tuples(saver, "w")


def _damage_value(line: str) -> str:
    """The line with its first channel value replaced by bytes msgpack cannot read."""
    data = json.loads(line)
    entry = next(iter(data["channel_values"].values()))
    entry["data"] = base64.b64encode(b"\xc1\xc1").decode()
    return json.dumps(data) + "\n"


def test_import_refuses_damaged_files_and_writes_nothing(
    cli: CLI, saver: PlainRedisSaver, tmp_path: Path
) -> None:
    put_chain(saver, "x", 3)
    good = cli("export", "x").out.splitlines(keepends=True)
    header = json.loads(good[0])
    cases = {
        "truncated": good[:-2],
        "not json": [good[0], "{nope\n", *good[1:]],
        "no header": good[1:],
        "future version": [json.dumps({**header, "version": 99}) + "\n", *good[1:]],
        "bad base64": [good[0], good[1].replace('"data":"', '"data":"!!', 1), *good[2:]],
        "empty": [],
        "undecodable value": [good[0], _damage_value(good[1]), *good[2:]],
        "malformed line": [
            good[0],
            good[1].replace('"parent_config":null', '"parent_config":[1]'),
            *good[2:],
        ],
    }
    for name, lines in cases.items():
        file = tmp_path / f"{name}.jsonl"
        file.write_text("".join(lines), encoding="utf-8")
        run = cli("import", str(file), "--thread", "y")
        assert run.code == 1, name
        assert run.err.startswith("plain-redis-saver: error: "), (name, run.err)
        assert saver.get_tuple(config("y")) is None, name
    missing = cli("import", str(tmp_path / "absent.jsonl"))
    assert missing.code == 1 and "cannot read" in missing.err
    assert cli("export", "nope").code == 1


def test_serde_option_reads_and_moves_encrypted_threads(
    cli: CLI, saver: PlainRedisSaver, prefix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from langgraph.checkpoint.serde.encrypted import EncryptedSerializer

    (tmp_path / "lgtest_serde.py").write_text(
        "from langgraph.checkpoint.serde.encrypted import EncryptedSerializer\n"
        "def make():\n"
        "    return EncryptedSerializer.from_pycryptodome_aes(key=b'k' * 16)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    serde = EncryptedSerializer.from_pycryptodome_aes(key=b"k" * 16)
    encrypted = PlainRedisSaver(saver.client, key_prefix=prefix, serde=serde)
    run_graph(encrypted, "secret", resume=False)

    unreadable = cli("show", "secret")
    assert unreadable.code == 1 and "msgpack+aes" in unreadable.err
    shown = cli("--serde", "lgtest_serde:make", "show", "secret").json()
    assert shown["channel_values"]["items"][0]["content"] == "hi"
    exported = cli("--serde", "lgtest_serde:make", "export", "secret")
    body = [json.loads(line) for line in exported.out.splitlines()[1:-1]]
    assert {b["checkpoint"]["type"] for b in body} == {"msgpack+aes"}
    file = tmp_path / "secret.jsonl"
    file.write_text(exported.out)
    assert cli("--serde", "lgtest_serde:make", "import", str(file), "--thread", "s2").code == 0
    assert tuples(encrypted, "s2") == tuples(encrypted, "secret")
    assert cli("--serde", "lgtest_serde:nothing", "stats").code == 2
    assert cli("--serde", "no-colon", "stats").code == 2


# --------------------------------------------------------------------------- errors


def test_clear_errors_without_tracebacks(
    backend: Backend,
    cli: CLI,
    saver: PlainRedisSaver,
    prefix: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    put_chain(saver, "t", 1)
    # An empty prefix is an empty listing (exit 0) with a hint on stderr (issue 13).
    wrong = cli("threads", key_prefix="lgtestnothinghere")
    assert wrong.code == 0 and "is --key-prefix right?" in wrong.err
    assert cli("stats", key_prefix="lgtestnothinghere").code == 0
    lost = cli("show", "t", key_prefix="lgtestnothinghere")
    assert lost.code == 1 and "nothing at all is stored under this prefix" in lost.err
    bad = cli("threads", key_prefix="lg{x}")
    assert bad.code == 2 and "must not contain" in bad.err
    usage = cli("history")
    assert usage.code == 2 and "usage:" in usage.err
    assert cli("threads", "--count", "0").code == 2

    capsys.readouterr()
    assert main(["--url", "redis://127.0.0.1:1/0", "threads"]) == 1
    err = capsys.readouterr().err
    assert "cannot connect to redis://127.0.0.1:1/0" in err and "Traceback" not in err
    assert main(["--url", "redis://127.0.0.1:6379/0", "--ca-cert", "x.pem", "stats"]) == 2
    assert main(["--url", "http://127.0.0.1/", "stats"]) == 2
    if backend.admin_url is not None:
        wrong_password = backend.admin_url.replace("redis://", "redis://lgsaver:wrong@", 1)
        capsys.readouterr()
        assert main(["--url", wrong_password, "threads"]) == 1
        err = capsys.readouterr().err
        assert "cannot log in to redis://lgsaver:***@" in err and ":wrong@" not in err
        assert "Traceback" not in err


def test_a_foreign_key_under_the_prefix_is_reported(
    backend: Backend, cli: CLI, saver: PlainRedisSaver, admin: Any, prefix: str
) -> None:
    keys = saver._plans.keys.thread("foreign")
    admin.set(keys.checkpoints, "not a hash")
    run = cli("show", "foreign")
    assert run.code == 1 and run.err.startswith("plain-redis-saver: error: ")


# --------------------------------------------------------------------------- as a program


def test_python_m_runs_the_cli(backend: Backend, saver: PlainRedisSaver, prefix: str) -> None:
    if backend.url is None:
        pytest.skip("a subprocess connects by URL; fakeredis has none")
    put_chain(saver, "sub", 2)
    env = {**os.environ, "REDIS_URL": backend.url}
    ok = subprocess.run(
        [sys.executable, "-m", "plain_redis_saver", "--key-prefix", prefix, "threads", "--json"],
        env=env, capture_output=True, text=True, timeout=60, cwd=REPO,
    )  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert [row["thread_id"] for row in json.loads(ok.stdout)["threads"]] == ["sub"]
    failed = subprocess.run(
        [sys.executable, "-m", "plain_redis_saver", "--url", "redis://127.0.0.1:1/0", "stats"],
        capture_output=True, text=True, timeout=60, cwd=REPO,
    )  # fmt: skip
    assert failed.returncode == 1 and "Traceback" not in failed.stderr
    assert failed.stderr.startswith("plain-redis-saver: error: cannot connect")


def test_rediss_url_with_a_ca_certificate(
    tls_server: Any, capsys: pytest.CaptureFixture[str], prefix: str
) -> None:
    url, cert = tls_server
    with PlainRedisSaver.from_conn_string(url, key_prefix=prefix, ssl_ca_certs=str(cert)) as saver:
        put_chain(saver, "tls", 2)
    capsys.readouterr()
    argv = ["--url", url, "--ca-cert", str(cert), "--key-prefix", prefix, "stats", "--json"]
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)["checkpoints"] == 2
    assert main(["--url", url, "--key-prefix", prefix, "--no-cluster", "stats"]) == 1
    err = capsys.readouterr().err
    assert "certificate" in err.lower() and "Traceback" not in err
