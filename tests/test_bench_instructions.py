"""The instruction-count benchmark's parts that need no valgrind."""

from __future__ import annotations

import shutil

import pytest

from benchmarks import instructions

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
