"""Round trips per operation, counted on the wire (deterministic, so asserted)."""

from __future__ import annotations

from typing import Any

import pytest

from .helpers import checkpoint, config, count_round_trips, metadata, put_chain


@pytest.fixture
def warm(saver: Any) -> Any:
    saver.setup()  # scripts loaded and connection open, as in any running app
    saver.client.ping()
    return saver


def test_put_is_one_round_trip(warm: Any) -> None:
    cp = checkpoint({"a": 1, "b": [1, 2]})
    with count_round_trips() as rt:
        warm.put(config("t"), cp, metadata(), cp["channel_versions"])
    assert rt.count == 1


def test_put_writes_is_one_round_trip(warm: Any) -> None:
    [stored] = put_chain(warm, "t", 1)
    with count_round_trips() as rt:
        warm.put_writes(stored, [("a", 1), ("b", 2), ("c", 3)], "task")
    assert rt.count == 1


@pytest.mark.parametrize("by_id", [False, True], ids=["latest", "by_id"])
def test_get_tuple_is_one_round_trip(warm: Any, by_id: bool) -> None:
    stored = put_chain(warm, "t", 5)
    warm.put_writes(stored[2], [("a", 1)], "task")
    target = stored[2] if by_id else config("t")
    with count_round_trips() as rt:
        tup = warm.get_tuple(target)
    assert tup is not None and rt.count == 1


@pytest.mark.parametrize("history", [3, 300])
def test_list_with_limit_is_one_round_trip_whatever_the_history(warm: Any, history: int) -> None:
    put_chain(warm, "t", history)
    with count_round_trips() as rt:
        found = list(warm.list(config("t"), limit=10))
    assert len(found) == min(10, history) and rt.count == 1


def test_list_with_filter_and_limit_is_one_round_trip(warm: Any) -> None:
    put_chain(warm, "t", 50, user="ann")
    with count_round_trips() as rt:
        found = list(warm.list(config("t"), filter={"user": "ann"}, limit=10))
    assert len(found) == 10 and rt.count == 1


def test_delete_thread_is_one_round_trip(warm: Any) -> None:
    put_chain(warm, "t", 20)
    with count_round_trips() as rt:
        warm.delete_thread("t")
    assert rt.count == 1


def test_delta_channel_history_is_one_round_trip(warm: Any) -> None:
    stored = put_chain(warm, "t", 30)
    with count_round_trips() as rt:
        warm.get_delta_channel_history(config=stored[-1], channels=["n", "other"])
    assert rt.count == 1


async def test_async_put_and_get_tuple_are_one_round_trip_each(asaver: Any) -> None:
    await asaver.asetup()
    cp = checkpoint({"a": 1})
    with count_round_trips() as rt:
        stored = await asaver.aput(config("t"), cp, metadata(), cp["channel_versions"])
    assert rt.count == 1
    with count_round_trips() as rt:
        await asaver.aput_writes(stored, [("a", 2)], "task")
        await asaver.aget_tuple(config("t"))
    assert rt.count == 2
