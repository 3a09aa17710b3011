"""PlainRedisStore and AsyncPlainRedisStore: LangGraph's ``BaseStore`` (long-term
memory shared across threads) on plain Redis/Valkey, without modules.

The behaviour is InMemoryStore's (items, order, filters, namespace listing, semantic
ranking), plus TTL; store_core.py holds the logic as plans, the scripts do the work on
the server, and this module only embeds texts (blocking or awaited) and runs plans.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from typing import Any

from langchain_core.embeddings import Embeddings
from langgraph.checkpoint.serde.base import SerializerProtocol
from langgraph.store.base import (
    BaseStore,
    IndexConfig,
    Op,
    PutOp,
    Result,
    SearchOp,
    TTLConfig,
    ensure_embeddings,
    get_text_at_path,
    tokenize_path,
    validate_op_namespace,
)

from . import clients
from .bridge import Executor
from .keys import DEFAULT_KEY_PREFIX
from .ops import LoadScripts, Plan
from .serde import SafeSerializer
from .store_core import StorePlans, Write, filter_error, pack_vectors, ttl_ms
from .store_keys import store_keys

_STORE_OPTIONS = ("key_prefix", "index", "ttl", "serde", "clock")


class _Prepared:
    """A batch's ops, validated, with its puts deduplicated (the last one per item
    wins, at the place of the first, as in InMemoryStore) and the texts to embed."""

    def __init__(self, ops: Iterable[Op], store: BasePlainRedisStore) -> None:
        self.ops: list[Op] = list(ops)
        puts: dict[tuple[tuple[str, ...], str], PutOp] = {}
        for op in self.ops:
            # Labels only: LangGraph's put() refuses an empty namespace and the
            # "langgraph" root, but its own suite writes those through batch().
            validate_op_namespace(op)
            if isinstance(op, PutOp):
                puts[(op.namespace, op.key)] = op
        self.puts = list(puts.values())
        self.texts: dict[str, list[tuple[int, int]]] = {}  # text -> (put, vector slot)
        self.slots = [0] * len(self.puts)
        if store.embeddings is not None:
            for n, op in enumerate(self.puts):
                if op.value is None or op.index is False:
                    continue
                paths = store.fields if op.index is None else [tokenize_path(p) for p in op.index]
                for path in paths:
                    for text in get_text_at_path(op.value, path):
                        self.texts.setdefault(text, []).append((n, self.slots[n]))
                        self.slots[n] += 1
        self.queries = sorted(
            {op.query for op in self.ops if isinstance(op, SearchOp) and op.query}
            if store.embeddings is not None
            else set()
        )

    def writes(self, vectors: Sequence[Sequence[float]]) -> list[Write]:
        per_put: list[list[Sequence[float]]] = [[[]] * k for k in self.slots]
        for text_vector, places in zip(vectors, self.texts.values(), strict=True):
            for n, slot in places:
                per_put[n][slot] = text_vector
        return [
            Write(op, "-" if op.value is None else ttl_ms(op.ttl), pack_vectors(per_put[n]))
            for n, op in enumerate(self.puts)
        ]


class BasePlainRedisStore(BaseStore):
    """The API of both stores, written once (see PlainRedisStore)."""

    supports_ttl = True

    def __init__(
        self,
        client: Any,
        *,
        key_prefix: str = DEFAULT_KEY_PREFIX,
        index: IndexConfig | None = None,
        ttl: TTLConfig | None = None,
        serde: SerializerProtocol | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.key_prefix = key_prefix
        self.ttl_config = ttl
        self.index_config = index
        self.embeddings: Embeddings | None = None
        self.fields: list[Any] = []
        dims = 0
        if index:
            self.embeddings = ensure_embeddings(index.get("embed"))
            self.fields = [
                p if p == "$" else tokenize_path(p) for p in (index.get("fields") or ["$"])
            ]
            dims = int(index["dims"])
        self.serde = serde or SafeSerializer()
        self._plans = StorePlans(store_keys(key_prefix), self.serde, clock, dims)
        self._executor = Executor(client, type(self).__name__, "store")

    # ---- set-up

    def setup(self) -> None:
        """Load the scripts (optional, idempotent: a script unknown to the server is sent
        on first use)."""
        self._executor.run(_load_scripts(), "setup")

    async def asetup(self) -> None:
        await self._executor.arun(_load_scripts())

    # ---- the BaseStore interface

    def batch(self, ops: Iterable[Op]) -> list[Result]:
        prepared = _Prepared(ops, self)
        vectors: list[list[float]] = []
        queries: dict[str, list[float]] = {}
        if self.embeddings is not None:
            if prepared.texts:
                vectors = self.embeddings.embed_documents(list(prepared.texts))
            queries = {q: self.embeddings.embed_query(q) for q in prepared.queries}
        plan = self._plans.batch(prepared.ops, prepared.writes(vectors), queries)
        return self._run(plan)

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        prepared = _Prepared(ops, self)
        vectors: list[list[float]] = []
        queries: dict[str, list[float]] = {}
        if self.embeddings is not None:
            if prepared.texts:
                vectors = await self.embeddings.aembed_documents(list(prepared.texts))
            for q in prepared.queries:
                queries[q] = await self.embeddings.aembed_query(q)
        plan = self._plans.batch(prepared.ops, prepared.writes(vectors), queries)
        try:
            results: list[Result] = await self._executor.arun(plan)
        except Exception as exc:
            raise (filter_error(exc, self.serde) or exc) from exc
        return results

    def _run(self, plan: Plan) -> list[Result]:
        try:
            results: list[Result] = self._executor.run(plan, "batch")
        except Exception as exc:
            raise (filter_error(exc, self.serde) or exc) from exc
        return results


def _load_scripts() -> Plan:
    yield LoadScripts()


class PlainRedisStore(BasePlainRedisStore):
    """LangGraph store on plain Redis >= 6.2 / Valkey >= 7.2, no modules.

    ``client`` is a blocking ``redis.Redis`` or ``RedisCluster`` (``decode_responses``
    left False); the async methods run its calls in a worker thread. ``index`` and
    ``ttl`` are InMemoryStore's and PostgresStore's options: ``{"dims", "embed",
    "fields"}`` and ``{"default_ttl": minutes, "refresh_on_read": bool}``.
    """

    @classmethod
    @contextlib.contextmanager
    def from_conn_string(
        cls, url: str, *, cluster: bool | None = None, **kwargs: Any
    ) -> Iterator[PlainRedisStore]:
        """A store on a new client for ``url``; options as the constructor's, the
        other keyword arguments go to the client (``cluster`` as for the saver)."""
        options = {k: v for k, v in kwargs.items() if k in _STORE_OPTIONS}
        client_kwargs = {k: v for k, v in kwargs.items() if k not in _STORE_OPTIONS}
        client = clients.sync_client(url, cluster, **client_kwargs)
        try:
            yield cls(client, **options)
        finally:
            clients.release_sync(client)


class AsyncPlainRedisStore(BasePlainRedisStore):
    """PlainRedisStore for an asyncio client (``redis.asyncio.Redis``, its cluster
    client): the async methods are native; the blocking ones work from other threads
    while the client's loop runs, and raise EventLoopError inside that loop."""

    @classmethod
    @contextlib.asynccontextmanager
    async def from_conn_string(
        cls, url: str, *, cluster: bool | None = None, **kwargs: Any
    ) -> AsyncIterator[AsyncPlainRedisStore]:
        options = {k: v for k, v in kwargs.items() if k in _STORE_OPTIONS}
        client_kwargs = {k: v for k, v in kwargs.items() if k not in _STORE_OPTIONS}
        client = await clients.async_client(url, cluster, **client_kwargs)
        try:
            yield cls(client, **options)
        finally:
            await clients.release_async(client)
