"""The official conformance suite (langgraph-checkpoint-conformance), all 8 capabilities,
on every backend, for both savers."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.checkpoint.conformance.capabilities import ALL_CAPABILITIES

from plain_redis_saver import AsyncPlainRedisSaver, PlainRedisSaver

from .conftest import Backend


def _failures(report: Any) -> dict[str, Any]:
    return {cap: result.failures for cap, result in report.results.items() if not result.passed}


@pytest.mark.parametrize("flavour", ["sync", "async"])
async def test_all_capabilities_pass(backend: Backend, flavour: str) -> None:
    clients: list[Any] = []

    async def factory() -> AsyncIterator[Any]:
        prefix = f"lgtestconf{uuid.uuid4().hex[:8]}"
        if flavour == "sync":
            c = backend.client()
            clients.append(c)
            yield PlainRedisSaver(c, key_prefix=prefix)
        else:
            c = backend.async_client()
            yield AsyncPlainRedisSaver(c, key_prefix=prefix)
            await c.aclose()

    registered = checkpointer_test(name=f"plain-redis-{backend.name}-{flavour}")(factory)
    report = await validate(registered)
    for c in clients:
        c.close()
    assert set(report.results) == {cap.value for cap in ALL_CAPABILITIES}
    assert _failures(report) == {}
