"""The instruction-count benchmark's parts that need no valgrind."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from typing import Any

import fakeredis
import pytest

from benchmarks import instructions, workload
from plain_redis_saver import scripts

DUMP = """\
# callgrind format
events: Ir
summary: 1234

fn=(1) main
0 1234

totals: 5678
"""


def test_the_count_of_a_dump_is_its_totals_line() -> None:
    assert instructions.parse_totals(DUMP) == 5678


def test_a_dump_without_totals_counts_its_summary_and_an_empty_one_nothing() -> None:
    assert instructions.parse_totals("events: Ir\nsummary: 42\n") == 42
    assert instructions.parse_totals("events: Ir\n") == 0


def test_without_valgrind_the_benchmark_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(shutil, "which", lambda _tool: None)
    assert "valgrind" in (instructions.missing() or "")


def test_the_read_scripts_of_a_revision_are_assembled_with_their_helpers() -> None:
    then = instructions.sources_at("HEAD")
    assert set(then) == set(instructions.READ_SCRIPTS)
    assert "\n-- get_checkpoint.lua\n" in then["get_checkpoint"]
    assert "local function load_checkpoint(" in then["get_checkpoint"]
    assert "local function load_records(" in then["list_checkpoints"]


@pytest.mark.parametrize("name", sorted(instructions.SECTIONS))
def test_every_section_marker_occurs_once_in_todays_script(name: str) -> None:
    # A script edited since its markers were chosen fails here, not under valgrind.
    source = getattr(scripts, name.upper()).source
    variants = instructions.section_variants(name, source)
    assert len(variants) == len(instructions.SECTIONS[name]) + 1
    assert variants[-1][1] == source
    for (_, cut), (_, marker, returns) in zip(variants, instructions.SECTIONS[name], strict=False):
        assert f"do {returns} end\n{marker}" in cut


def test_a_marker_that_is_not_in_the_script_once_is_refused() -> None:
    with pytest.raises(ValueError, match="occurs 0 times"):
        instructions.cut_at("return 1\n", "local x", "return 1")
    with pytest.raises(ValueError, match="occurs 2 times"):
        instructions.cut_at("a\na\n", "a", "return 1")


def test_every_section_variant_runs_with_the_savers_own_arguments() -> None:
    # On fakeredis (no valgrind): the cuts leave valid scripts, and the fresh ids let
    # each call store what the first one did.
    client = fakeredis.FakeRedis()
    saver, log = instructions.written_thread(client, "t")
    stored = len(list(saver.list(workload.config("t"))))
    calls = instructions.section_calls(saver, log)
    assert list(calls) == ["get_checkpoint", "list_checkpoints", "put_writes", "put_checkpoint"]

    def twice(call: Callable[[], Any]) -> float:
        call()
        call()
        return 0.0

    rows = instructions.replay_sections(client, calls, twice)
    assert len(rows) == sum(len(cuts) + 1 for cuts in instructions.SECTIONS.values())
    # The captured put added one checkpoint; three put variants store the record (the
    # two cut after storing it, and the whole script), twice each, and no id repeats.
    assert len(list(saver.list(workload.config("t")))) == stored + 1 + 3 * 2


def test_the_sections_report_gives_each_sections_own_cost() -> None:
    text = instructions.sections_report(
        [("put", "a", 100.0), ("put", "b", 250.0), ("list", "a", 40.0)], 10
    )
    assert "| put | b | 250 | +150 |" in text
    assert "| list | a | 40 | +40 |" in text


def _counted_turns(style: str, first: int = 2, last: int = 4) -> tuple[Any, dict[str, list[float]]]:
    client = fakeredis.FakeRedis()
    saver = instructions.PlainRedisSaver(client, key_prefix="turns")

    def one(call: Callable[[], Any]) -> float:
        call()
        return 1.0

    return client, instructions.chatbot_turns(saver, style, first, last, one)


@pytest.mark.parametrize(
    ("style", "expected"),
    [
        ("functional", {"get_checkpoint": 3, "put_checkpoint": 6, "put_writes": 6}),
        ("stategraph", {"get_checkpoint": 3, "put_checkpoint": 9, "put_writes": 6}),
    ],
)
def test_the_turns_count_every_script_call_of_the_counted_turns(
    style: str, expected: dict[str, int]
) -> None:
    _, per = _counted_turns(style)
    assert {name: len(counts) for name, counts in per.items()} == expected


def test_the_turns_store_the_same_content_in_every_run() -> None:
    # Fixed message ids: the same content, so runs close at the same messages.
    def content(client: Any) -> set[bytes]:
        return {
            f
            for key in client.keys("turns:*")
            if key.endswith(b":b")
            for f in client.hkeys(key)
            if f.startswith(b"*")
        }

    first, _ = _counted_turns("functional")
    second, _ = _counted_turns("functional")
    assert content(first) == content(second) != set()


def test_the_turns_report_gives_calls_and_instructions_per_turn() -> None:
    text = instructions.turns_report({"functional": {"put": [10.0, 30.0], "get": [5.0]}}, 1, 2)
    assert "| functional | put | 1.0 | 20 | 20 |" in text
    assert "| functional | all | | | **22** |" in text


@pytest.mark.parametrize("mode", instructions.FLOOR_MODES)
def test_the_floors_count_each_mirrored_request_of_the_counted_turns(mode: str) -> None:
    counted, own = fakeredis.FakeRedis(), fakeredis.FakeRedis()

    def one(call: Callable[[], Any]) -> float:
        call()
        return 1.0

    per = instructions.mirrored_turns(counted, "functional", mode, 2, 3, one, other=own)
    assert {name: len(counts) for name, counts in per.items()} == {
        "get_checkpoint": 2,
        "put_checkpoint": 4,
        "put_writes": 4,
    }


def test_the_lean_mirror_stores_the_same_checkpoints_on_the_counted_server() -> None:
    counted, own = fakeredis.FakeRedis(), fakeredis.FakeRedis()
    instructions.mirrored_turns(
        counted,
        "functional",
        instructions.turn_floor.LEAN,
        1,
        1,
        lambda call: call() or 1.0,
        other=own,
    )
    order = b"cg-functional:{mirror-functional-lean-scripts}:o"
    assert counted.zrange(order, 0, -1) == own.zrange(order, 0, -1) != []


def test_the_floors_report_gives_each_variant_per_turn_and_against_this_saver() -> None:
    found = {
        "functional": {
            "this saver": {"put": [30.0, 50.0], "get": [20.0]},
            "requests only": {"put": [5.0, 5.0], "get": [10.0]},
        }
    }
    text = instructions.floors_report(found, 1, 2)
    assert "| chatbot | this saver | requests only |" in text
    assert "| functional | 50 (1.00×) | 10 (0.20×) |" in text
