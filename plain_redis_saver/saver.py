"""PlainRedisSaver: the checkpointer for blocking code (``graph.invoke``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

from langgraph.checkpoint.serde.base import SerializerProtocol

from . import clients
from .base import BaseRedisSaver, conn_url, split_options
from .drive import SyncRunner, adrive, afirst, drive
from .keys import DEFAULT_KEY_PREFIX
from .ops import Plan


class PlainRedisSaver(BaseRedisSaver[clients.BlockingClient]):
    """LangGraph checkpointer on plain Redis >= 6.2 / Valkey >= 7.2, no modules.

    ``client`` is a ``redis.Redis`` (or ``valkey.Valkey``) created with the default
    ``decode_responses=False``. The async methods (``aput`` ...) run the blocking ones
    in a worker thread, so this saver also serves ``graph.ainvoke``; for many concurrent
    async runs prefer :class:`~plain_redis_saver.AsyncPlainRedisSaver`.
    """

    def _attach(self, client: Any) -> None:
        self._runner = SyncRunner(client)

    @classmethod
    @contextmanager
    def from_conn_string(
        cls,
        url: str | None = None,
        *,
        redis_url: str | None = None,
        key_prefix: str = DEFAULT_KEY_PREFIX,
        serde: SerializerProtocol | None = None,
        cluster: bool | None = None,
        **kwargs: Any,
    ) -> Iterator[PlainRedisSaver]:
        """A saver on a new client for ``url`` (``redis://``, ``rediss://``, ``unix://``;
        ``redis_url=`` is accepted too, as langgraph-checkpoint-redis names it).

        ``cluster=None`` asks the server (``INFO cluster``) whether it runs in cluster
        mode and makes a ``RedisCluster`` client if so; ``True``/``False`` force it.
        Keyword arguments that are saver options (``ttl``, ``max_checkpoints``, ...) go
        to the saver, the others to the redis-py client.
        Leaving the block closes the client's connections; the saver stays usable (it
        reconnects on its next call), as LangGraph's documentation pattern requires.

        Raises InvalidConfigError for a missing URL or a keyword close to a saver option
        ("did you mean max_checkpoints?"), and the client's ConnectionError /
        TimeoutError when the server cannot be reached (see the README's "Timeouts and
        retries": socket_connect_timeout, socket_timeout and retry go to the client).
        """
        options, client_kwargs = split_options(kwargs)
        client = clients.sync_client(conn_url(url, redis_url), cluster, **client_kwargs)
        try:
            yield cls(client, key_prefix=key_prefix, serde=serde, **options)
        finally:
            clients.release_sync(client)

    def _run(self, plan: Plan, method: str) -> Any:
        return next(drive(plan, self._runner), None)

    def _iter(self, plan: Plan, method: str) -> Iterator[Any]:
        return drive(plan, self._runner)

    async def _execute_in_thread(self, op: Any) -> Any:
        return await asyncio.to_thread(self._runner, op)

    async def _arun(self, plan: Plan) -> Any:
        return await afirst(plan, self._execute_in_thread)

    async def _aiter(self, plan: Plan) -> AsyncIterator[Any]:
        async for value in adrive(plan, self._execute_in_thread):
            yield value
