"""The turn floor benchmark's parts: the request mirror, the ping saver, the arithmetic."""

from __future__ import annotations

from typing import Any

import fakeredis
import pytest
import redis
from langgraph.checkpoint.memory import InMemorySaver

from benchmarks import get_bound, lean_bounds, put_bound
from benchmarks.turn_floor import (
    AWS,
    FLOOR,
    LEAN,
    PLAIN,
    UNCOUNTED,
    Mirror,
    RequestSizes,
    RoundTripSaver,
    ratios,
    report,
    rotated,
)
from plain_redis_saver import PlainRedisSaver, compose, scripts
from plain_redis_saver.keys import Keyspace


class _Client:
    def __init__(self, reply: Any = "real") -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.reply = reply
        self.pings = 0

    def evalsha(self, sha: str, numkeys: int, *args: Any) -> Any:
        self.calls.append((sha, numkeys, *args))
        return self.reply

    def ping(self) -> bool:
        self.pings += 1
        return True


SHAS = {"noop": "noop", "put_checkpoint": "lean-put", "get_checkpoint": "lean-get"}


def test_mirror_answers_with_the_real_reply() -> None:
    client, shadow = _Client("answer"), _Client("ignored")
    Mirror(client, shadow, FLOOR, SHAS)
    assert client.evalsha("abc", 1, "k", "v") == "answer"


def test_mirror_sends_the_same_keys_and_arguments_to_the_no_op_script() -> None:
    client, shadow = _Client(), _Client()
    mirror = Mirror(client, shadow, FLOOR, SHAS)
    client.evalsha(scripts.PUT_CHECKPOINT.sha, 2, "k1", "k2", b"arg")
    assert (shadow.calls, mirror.sent) == ([("noop", 2, "k1", "k2", b"arg")], 1)


def test_mirror_sends_a_get_to_its_lean_script_unchanged() -> None:
    client, shadow = _Client(), _Client()
    Mirror(client, shadow, LEAN, SHAS)
    client.evalsha(scripts.GET_CHECKPOINT.sha, 1, "k", "", "2:ns", "", b"")
    assert shadow.calls == [("lean-get", 1, "k", "", "2:ns", "", b"")]


def test_mirror_sends_other_scripts_to_the_no_op_in_lean_mode() -> None:
    client, shadow = _Client(), _Client()
    Mirror(client, shadow, LEAN, SHAS)
    client.evalsha(scripts.LIST_CHECKPOINTS.sha, 1, "k", "x")
    assert shadow.calls == [("noop", 1, "k", "x")]


def test_mirror_sends_nothing_when_the_real_call_fails() -> None:
    class Failing(_Client):
        def evalsha(self, sha: str, numkeys: int, *args: Any) -> Any:
            raise RuntimeError("server error")

    client, shadow = Failing(), _Client()
    Mirror(client, shadow, FLOOR, SHAS)
    with pytest.raises(RuntimeError):
        client.evalsha("abc", 0)
    assert shadow.calls == []


CONFIG = {"configurable": {"thread_id": "t", "checkpoint_ns": ""}}
CHECKPOINT: Any = {
    "v": 4,
    "id": "1",
    "ts": "2026-12-01T00:00:00+00:00",
    "channel_values": {"a": 1},
    "channel_versions": {"a": 1},
    "versions_seen": {},
}


def test_round_trip_saver_pings_once_per_call() -> None:
    client = _Client()
    saver = RoundTripSaver(client)
    stored = saver.put(CONFIG, CHECKPOINT, {}, {"a": 1})  # type: ignore[arg-type]
    saver.put_writes(stored, [("a", 2)], "task")
    saver.get_tuple(CONFIG)  # type: ignore[arg-type]
    assert client.pings == 3


def test_round_trip_saver_keeps_what_in_memory_saver_keeps() -> None:
    saver, reference = RoundTripSaver(_Client()), InMemorySaver()
    for s in (saver, reference):
        s.put(CONFIG, CHECKPOINT, {}, {"a": 1})  # type: ignore[arg-type]
    got, want = saver.get_tuple(CONFIG), reference.get_tuple(CONFIG)  # type: ignore[arg-type]
    assert got is not None and want is not None and got.checkpoint == want.checkpoint


def test_rotated_starts_at_the_offset_modulo_the_length() -> None:
    assert rotated(["a", "b", "c"], 4) == ["b", "c", "a"]


def test_round_trip_saver_sends_a_no_op_script_with_the_size_of_each_call() -> None:
    client = _Client()
    saver = RoundTripSaver(client, "noop", {"get_tuple": 3, "put": 5, "put_writes": 2})
    stored = saver.put(CONFIG, CHECKPOINT, {}, {"a": 1})  # type: ignore[arg-type]
    saver.put_writes(stored, [("a", 2)], "task")
    saver.get_tuple(CONFIG)  # type: ignore[arg-type]
    assert client.calls == [("noop", 0, b"x" * 5), ("noop", 0, b"x" * 2), ("noop", 0, b"x" * 3)]


def test_request_sizes_records_the_bytes_of_each_call_by_its_script() -> None:
    client = _Client()
    spy = RequestSizes(client)
    client.evalsha(scripts.PUT_CHECKPOINT.sha, 1, "key", b"abcd")
    client.evalsha(scripts.PUT_CHECKPOINT.sha, 1, "key", b"abcdefgh")
    client.evalsha(scripts.LIST_CHECKPOINTS.sha, 1, "key", b"ignored")
    # keys count too: 3 + 4 and 3 + 8 bytes, median 9
    assert spy.medians() == {"get_tuple": 0, "put": 9, "put_writes": 0}


def test_ratios_are_taken_round_by_round() -> None:
    got = ratios({AWS: [100.0, 300.0], "x": [50.0, 600.0]}, AWS)
    assert got == {AWS: [1.0, 1.0], "x": [0.5, 2.0]}


def test_ratios_are_empty_without_the_reference() -> None:
    assert ratios({"x": [1.0]}, AWS) == {"x": []}


def test_report_shows_median_range_and_ratio_to_aws() -> None:
    result = {
        "cpu": {
            "functional": {1: {AWS: [400.0, 500.0, 600.0], "ours": [1000.0, 900.0, 1500.0]}},
            "stategraph": {},
        },
        "rate": {"functional": {AWS: [100.0]}, "stategraph": {}},
    }
    lines = list(report(result))
    assert "| 1,000 (900–1,500); 2.50× AWS (1.80–2.50) | – |" in lines[2]


def _mirrored_savers(mode: str) -> tuple[PlainRedisSaver, Any]:
    """This saver on one fakeredis server, mirrored in ``mode`` to another (returned)."""
    real, shadow = fakeredis.FakeRedis(), fakeredis.FakeRedis()
    shas = {"noop": shadow.script_load("return 1")}
    shas.update({name: shadow.script_load(src) for name, src in lean_bounds.LEAN.items()})
    shas.update({f"uncounted:{n}": shadow.script_load(s) for n, s in lean_bounds.UNCOUNTED.items()})
    saver = PlainRedisSaver(real, key_prefix="lean")
    saver.setup()  # every call then goes by EVALSHA, which the mirror sees
    Mirror(real, shadow, mode, shas)
    return saver, shadow


def _conversation(saver: PlainRedisSaver, turns: int) -> dict[str, Any]:
    """A thread whose one channel holds a growing list (composed from the second turn),
    with one write per checkpoint; returns the last config."""
    config: dict[str, Any] = {"configurable": {"thread_id": "t", "checkpoint_ns": ""}}
    history: list[str] = []
    for turn in range(turns):
        history.append(f"message {turn} " + "x" * 200)
        checkpoint = {**CHECKPOINT, "id": f"{turn:04d}", "channel_values": {"h": list(history)}}
        checkpoint["channel_versions"] = {"h": turn + 1}
        config = saver.put(config, checkpoint, {}, {"h": turn + 1})  # type: ignore[arg-type]
        saver.put_writes(config, [("h", list(history))], f"task{turn}")  # type: ignore[arg-type]
    return config


def test_lean_scripts_read_back_the_record_the_saver_stored() -> None:
    saver, shadow = _mirrored_savers(LEAN)
    _conversation(saver, 4)
    keys = Keyspace("lean").thread("t")
    reply = shadow.evalsha(shadow.script_load(lean_bounds.LEAN_GET), 5, *keys, "", "0:", "", b"")
    stored = saver.client.hget(keys[0], b"0:" + b"0003")
    assert (reply[0], reply[1]) == (b"0003", stored)


def test_lean_put_refuses_a_reference_to_missing_content() -> None:
    saver, shadow = _mirrored_savers(LEAN)
    _conversation(saver, 3)
    keys = Keyspace("lean").thread("t")
    missing = b"\x07" * 16
    args = ["", "0:", "0009", b"record", "", "", "", missing]
    with pytest.raises(redis.ResponseError, match="missing content"):
        shadow.evalsha(shadow.script_load(lean_bounds.LEAN_PUT), 5, *keys, *args)


def test_unsent_references_names_each_digest_a_new_value_needs_once() -> None:
    node = compose.COMPOSED + b"".join(compose._reference(bytes([i]) * 16) for i in (1, 2, 1))
    args = ["", "0:", "id", b"rec", "", "", "", "", b"2:h1", node, b"*" + bytes([2]) * 16]
    args.append(b"x" * 70)
    assert lean_bounds.unsent_references("put_checkpoint", args) == bytes([1]) * 16


def test_plain_transactions_store_the_records_and_writes() -> None:
    saver, shadow = _mirrored_savers(PLAIN)
    _conversation(saver, 3)
    keys = Keyspace("lean").thread("t")
    assert shadow.hkeys(keys[0]) and shadow.hget(keys[0], b"0:0002") == saver.client.hget(
        keys[0], b"0:0002"
    )


def test_lean_list_returns_the_newest_records_first() -> None:
    saver, shadow = _mirrored_savers(LEAN)
    _conversation(saver, 4)
    keys = Keyspace("lean").thread("t")
    args = ["", "0:", "", "", "2", "", b""]
    reply = shadow.evalsha(shadow.script_load(lean_bounds.LEAN_LIST), 5, *keys, *args)
    stored = [saver.client.hget(keys[0], b"0:" + cid) for cid in (b"0003", b"0002")]
    assert [entry[1] for entry in reply[0]] == stored


def test_uncounted_scripts_store_what_the_saver_stores_without_counts() -> None:
    saver, shadow = _mirrored_savers(UNCOUNTED)
    _conversation(saver, 4)
    real = saver.client
    for key in Keyspace("lean").thread("t")[:4]:
        if key.endswith(":c"):
            stored = {f: v for f, v in shadow.hgetall(key).items() if not f.endswith(b"\0r")}
        elif key.endswith(":o"):
            assert shadow.zrange(key, 0, -1) == real.zrange(key, 0, -1)
            continue
        else:
            stored = shadow.hgetall(key)
        # The saver's thread is uncounted already; the mark is all the scripts leave out,
        # but for the claims' bookkeeping: the saver counts its generations from its seed
        # and keeps KEPT_SINCE, the scripts count from 0.
        expected = {f: v for f, v in real.hgetall(key).items() if f not in (b"=u", b"=g", b"=k")}
        stored.pop(b"=g", None)
        assert stored == expected


def test_the_uncounted_put_refuses_missing_content_and_a_removed_parent() -> None:
    saver, shadow = _mirrored_savers(UNCOUNTED)
    _conversation(saver, 3)
    keys = Keyspace("lean").thread("t")
    put = shadow.script_load(lean_bounds.UNCOUNTED_PUT)
    missing = ["", "0:", "0009", b"record", "", "", "", b"\x07" * 16]
    with pytest.raises(redis.ResponseError, match="missing content"):
        shadow.evalsha(put, 5, *keys, *missing)
    orphan = ["", "0:", "0009", b"record", "", "", "0000x", b""]
    with pytest.raises(redis.ResponseError, match="parent removed"):
        shadow.evalsha(put, 5, *keys, *orphan)
    assert shadow.hget(keys[0], b"0:0009") is None


@pytest.mark.parametrize("mode", [LEAN, UNCOUNTED])
def test_mirrored_scripts_build_the_runs_the_saver_sends_as_recipes(mode: str) -> None:
    saver, shadow = _mirrored_savers(mode)
    composer = saver._core.composer
    real = composer.recipes
    sent: list[dict[bytes, bytes]] = []

    def recording(thread_id: str, unsent: dict[bytes, bytes]) -> dict[bytes, bytes]:
        sent.append(real(thread_id, unsent))
        return sent[-1]

    composer.recipes = recording  # type: ignore[method-assign]
    _conversation(saver, 40)
    runs = {name for recipes in sent for name in recipes}
    assert runs, "no write closed a run"
    blobs = Keyspace("lean").thread("t").blobs
    for run in runs:
        assert shadow.hget(blobs, b"*" + run) == saver.client.hget(blobs, b"*" + run)


def test_unsent_references_names_what_a_recipe_references_and_not_the_run() -> None:
    run = bytes([5]) * 16
    recipe = compose._reference(bytes([3]) * 16) + compose._literal(b"tail")
    node = compose.COMPOSED + compose._reference(run)
    args = ["", "0:", "id", b"rec", "", "", "", "", b"2:h1", node, b"+" + run, recipe]
    assert lean_bounds.unsent_references("put_checkpoint", args) == bytes([3]) * 16


def test_the_put_bound_times_every_kind_of_put() -> None:
    medians = put_bound.run(rounds=1, batch=2)
    assert {"bound", "ours", "inmemory"} <= set(medians)
    assert all(len(values) == 1 and values[0] > 0 for values in medians.values())
    assert "| bound |" in put_bound.report(medians)


def test_the_get_bound_times_every_kind_of_read() -> None:
    medians = get_bound.run(threads=4, rounds=1, batch=2)
    assert {"ours", "bound-checks", "bound-min"} <= set(medians)
    assert all(len(values) == 1 and values[0] > 0 for values in medians.values())
    assert "| bound-checks |" in get_bound.report(medians)
