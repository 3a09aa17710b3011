"""The runners' plan drivers, without a server: they run a plan's operations in order
and stop it where the caller stops reading."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from plain_redis_saver.drive import afirst
from plain_redis_saver.ops import Call, Emit, Op


def _plan(log: list[str]) -> Generator[Op | Emit, Any, None]:
    try:
        reply = yield Call(("PING",))
        log.append(f"got {reply}")
        yield Emit(reply)
        log.append("resumed after the first value")
        yield Call(("NEVER",))
    finally:
        log.append("closed")


async def _execute(op: Op) -> Any:
    assert isinstance(op, Call)
    return {("PING",): "PONG"}[op.args]


async def test_afirst_returns_the_first_value_and_closes_the_plan_there() -> None:
    log: list[str] = []
    assert await afirst(_plan(log), _execute) == "PONG"
    assert log == ["got PONG", "closed"]


async def test_afirst_returns_none_for_a_plan_that_emits_nothing() -> None:
    def silent() -> Generator[Op | Emit, Any, None]:
        yield Call(("PING",))

    assert await afirst(silent(), _execute) is None
