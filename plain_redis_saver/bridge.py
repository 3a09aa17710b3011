"""One object serving both halves of an API on whichever client it was given.

The store and the cache implement LangGraph interfaces that have a blocking and an
async form of every method. Given a blocking client, the async methods run the plan's
operations in a worker thread; given an asyncio client, the async methods are native
and the blocking ones run on the client's event loop from another thread (calling
them from inside that loop would block it, so that raises EventLoopError).
"""

from __future__ import annotations

import asyncio
from typing import Any

from .clients import is_async_client
from .drive import AsyncRunner, SyncRunner, afirst, drive
from .errors import EventLoopError
from .ops import Op, Plan


class Executor:
    """Runs a plan to its first emitted value, blocking (``run``) or awaited (``arun``)."""

    def __init__(self, client: Any, owner: str, var: str) -> None:
        self.client = client
        self.owner = owner
        self.var = var
        self.is_async = is_async_client(client)
        self.loop: asyncio.AbstractEventLoop | None = None
        self._sync: SyncRunner | None = None
        self._async: AsyncRunner | None = None
        if self.is_async:
            self._async = AsyncRunner(client)
            try:
                self.loop = asyncio.get_running_loop()
            except RuntimeError:
                self.loop = None
        else:
            self._sync = SyncRunner(client)

    def run(self, plan: Plan, method: str) -> Any:
        if self._sync is not None:
            return next(drive(plan, self._sync), None)
        loop = self._loop_for(method)
        return asyncio.run_coroutine_threadsafe(self.arun(plan), loop).result()

    async def arun(self, plan: Plan) -> Any:
        if self._async is not None:
            self.loop = asyncio.get_running_loop()
            return await afirst(plan, self._async)
        sync = self._sync
        assert sync is not None

        async def in_thread(op: Op) -> Any:
            return await asyncio.to_thread(sync, op)

        return await afirst(plan, in_thread)

    def _loop_for(self, method: str) -> asyncio.AbstractEventLoop:
        return loop_for(
            self.loop,
            inside=(
                f"{self.owner}.{method}() was called from inside the event loop of its "
                f"asyncio client, where it would block that loop; use "
                f"'await {self.var}.a{method}(...)' instead"
            ),
            outside=(
                f"{self.owner}.{method}() on an asyncio client needs that client's event "
                f"loop running in another thread; call 'await {self.var}.a{method}(...)' "
                "instead, or give the object a blocking client (redis.Redis)"
            ),
        )


def loop_for(
    loop: asyncio.AbstractEventLoop | None, *, inside: str, outside: str
) -> asyncio.AbstractEventLoop:
    """``loop``, for a blocking call to run a coroutine on from another thread; raises
    EventLoopError with ``inside`` when called from that very loop (it would block),
    with ``outside`` when the loop is not running."""
    try:
        running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is not None and running is loop:
        raise EventLoopError(inside)
    if loop is None or not loop.is_running():
        raise EventLoopError(outside)
    return loop
