"""pytest plugin that runs LangGraph's own store and cache tests (from the
langgraph-checkpoint source distribution) against PlainRedisStore and PlainRedisCache.

Loaded with ``-p langgraph_suite_plugin`` by tests/test_langgraph_suites.py, with
SUITE_URL naming the server ("fakeredis" for an in-process fake). The suites build
``InMemoryStore(...)`` and ``RedisCache(client, prefix=...)`` by name; this plugin
rebinds those names in each test module to subclasses of our classes, and gives the
cache suite a client of SUITE_URL where it asks for ``redis.Redis(host="localhost")``.
"""

from __future__ import annotations

import contextlib
import os
import sys
import types
import unittest.mock
import uuid
from collections.abc import Iterator
from typing import Any

import fakeredis
import pytest
import redis
import redis.cluster

from plain_redis_saver import PlainRedisCache, PlainRedisStore

URL = os.environ["SUITE_URL"]
CLUSTER = os.environ.get("SUITE_CLUSTER") == "1"
_FAKE = fakeredis.FakeServer()


def client() -> Any:
    if URL == "fakeredis":
        return fakeredis.FakeRedis(server=_FAKE)
    if CLUSTER:
        return redis.cluster.RedisCluster.from_url(URL)
    return redis.Redis.from_url(URL)


class SuiteStore(PlainRedisStore):
    """``InMemoryStore(**options)`` as the suite calls it: a store on a fresh prefix."""

    def __init__(self, **options: Any) -> None:
        super().__init__(client(), key_prefix=f"suite{uuid.uuid4().hex[:8]}", **options)


class SuiteCache(PlainRedisCache[Any]):
    """``RedisCache(client, prefix=...)`` as the suite calls it. The suite expects a
    server error to be a miss, which is PlainRedisCache's on_error="warn"."""

    def __init__(self, redis_client: Any, *, prefix: str = "lg", **options: Any) -> None:
        safe = prefix.strip(":").replace(":", "-") or "lg"
        super().__init__(redis_client, key_prefix=safe, on_error="warn", **options)


def _redis_module() -> types.ModuleType:
    """The suite's ``redis`` module, whose Redis(host="localhost", ...) is SUITE_URL."""
    shim = types.ModuleType("redis")
    shim.__dict__.update(redis.__dict__)

    def connect(*args: Any, host: str = "localhost", port: int = 6379, **kwargs: Any) -> Any:
        if host == "localhost" and port == 6379:
            return client()
        return redis.Redis(*args, host=host, port=port, **kwargs)

    shim.Redis = connect  # type: ignore[attr-defined]
    return shim


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for module in {item.module for item in items if isinstance(item, pytest.Function)}:
        if module is None:
            continue
        if "InMemoryStore" in module.__dict__:
            module.InMemoryStore = SuiteStore
        if "RedisCache" in module.__dict__:
            module.RedisCache = SuiteCache
            module.redis = _redis_module()


class _Mocker:
    """The part of pytest-mock's ``mocker`` the suites use (not installed here)."""

    def __init__(self) -> None:
        self._stack = contextlib.ExitStack()
        self.patch = self._Patch(self._stack)

    class _Patch:
        def __init__(self, stack: contextlib.ExitStack) -> None:
            self._stack = stack

        def __call__(self, target: str, *args: Any, **kwargs: Any) -> Any:
            return self._stack.enter_context(unittest.mock.patch(target, *args, **kwargs))

        def object(self, target: Any, name: str, *args: Any, **kwargs: Any) -> Any:
            return self._stack.enter_context(
                unittest.mock.patch.object(target, name, *args, **kwargs)
            )

    def spy(self, owner: Any, name: str) -> Any:
        return self.patch.object(owner, name, autospec=True, side_effect=getattr(owner, name))

    def stub(self, name: str | None = None) -> Any:
        return unittest.mock.MagicMock(spec=lambda *args, **kwargs: None, name=name)

    def close(self) -> None:
        self._stack.close()


if "pytest_mock" not in sys.modules:
    try:
        import pytest_mock  # noqa: F401
    except ImportError:
        shim = types.ModuleType("pytest_mock")
        shim.MockerFixture = _Mocker  # type: ignore[attr-defined]
        sys.modules["pytest_mock"] = shim

        @pytest.fixture
        def mocker() -> Iterator[_Mocker]:
            m = _Mocker()
            yield m
            m.close()
