"""AsyncPlainRedisSaver: the checkpointer for asyncio code (``graph.ainvoke``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

from langgraph.checkpoint.serde.base import SerializerProtocol

from . import clients
from .base import BaseRedisSaver, conn_url, split_options
from .bridge import loop_for
from .drive import AsyncRunner, adrive, afirst
from .errors import EventLoopError
from .keys import DEFAULT_KEY_PREFIX
from .ops import Plan

#: Connections of the pool made by from_conn_string; callers beyond it wait for one
#: (redis-py's default pool raises "Too many connections" instead).
DEFAULT_MAX_CONNECTIONS = 64


class AsyncPlainRedisSaver(BaseRedisSaver[clients.AsyncClient]):
    """LangGraph checkpointer on plain Redis / Valkey for asyncio code.

    ``client`` is a ``redis.asyncio.Redis`` (or ``valkey.asyncio.Valkey``) created with
    ``decode_responses=False``. The blocking methods (``put`` ...) work from other
    threads while the saver's event loop runs; called from inside that loop they raise
    :class:`~plain_redis_saver.errors.EventLoopError` naming the async method to await.
    """

    _ASYNC_CLIENT = True

    def _attach(self, client: Any) -> None:
        self._runner = AsyncRunner(client)
        try:
            self.loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            self.loop = None

    @classmethod
    @asynccontextmanager
    async def from_conn_string(
        cls,
        url: str | None = None,
        *,
        redis_url: str | None = None,
        key_prefix: str = DEFAULT_KEY_PREFIX,
        serde: SerializerProtocol | None = None,
        cluster: bool | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[AsyncPlainRedisSaver]:
        """A saver on a new client for ``url``; ``cluster`` as in
        :meth:`PlainRedisSaver.from_conn_string`. Callers beyond ``max_connections``
        (default 64) wait for a free connection rather than fail. Raises as
        :meth:`PlainRedisSaver.from_conn_string` does."""
        options, client_kwargs = split_options(kwargs)
        client_kwargs.setdefault("max_connections", DEFAULT_MAX_CONNECTIONS)
        client = await clients.async_client(conn_url(url, redis_url), cluster, **client_kwargs)
        try:
            yield cls(client, key_prefix=key_prefix, serde=serde, **options)
        finally:
            await clients.release_async(client)

    # ---- async hooks

    async def _arun(self, plan: Plan) -> Any:
        self._bind_loop()
        return await afirst(plan, self._runner)

    async def _aiter(self, plan: Plan) -> AsyncIterator[Any]:
        self._bind_loop()
        async for value in adrive(plan, self._runner):
            yield value

    def _bind_loop(self) -> None:
        """Serve the running loop. A saver reused in a second ``asyncio.run()`` finds its
        client's connections bound to the first, closed loop: a standalone client's pool
        is emptied so that it connects again on this one."""
        running = asyncio.get_running_loop()
        previous = self.loop
        if previous is not None and previous is not running and previous.is_closed():
            pool: Any = getattr(self.client, "connection_pool", None)
            if not callable(getattr(pool, "reset", None)):
                raise EventLoopError(
                    "this AsyncPlainRedisSaver's cluster client was used on an event loop "
                    "that is now closed, and a cluster client cannot move to another loop; "
                    "create the saver and its client inside the asyncio.run() that uses "
                    "them (e.g. 'async with AsyncPlainRedisSaver.from_conn_string(url)' in "
                    "your main coroutine)"
                )
            pool.reset()
        self.loop = running

    # ---- blocking bridge

    def _loop_for(self, method: str) -> asyncio.AbstractEventLoop:
        return loop_for(
            self.loop,
            inside=(
                f"AsyncPlainRedisSaver.{method}() was called from inside the event loop it "
                f"serves, where it would block that loop; use 'await saver.a{method}(...)' "
                "(or graph.ainvoke), or PlainRedisSaver for blocking code"
            ),
            outside=(
                f"AsyncPlainRedisSaver.{method}() needs the saver's event loop running in "
                f"another thread; call 'await saver.a{method}(...)' instead, or use "
                "PlainRedisSaver for blocking code"
            ),
        )

    def _run(self, plan: Plan, method: str) -> Any:
        loop = self._loop_for(method)
        return asyncio.run_coroutine_threadsafe(self._arun(plan), loop).result()

    def _iter(self, plan: Plan, method: str) -> Iterator[Any]:
        loop = self._loop_for(method)

        async def collect() -> list[Any]:
            return [value async for value in self._aiter(plan)]

        return iter(asyncio.run_coroutine_threadsafe(collect(), loop).result())
