"""One adapter per saver: construction (sync and async), its keys, and cleanup.

Every saver gets its own client built the same way from the URL (library defaults, no
pool limit), and its own key space: this project and langgraph-checkpoint-plainredis
under a key prefix unique to the run, langgraph-checkpoint-aws (which has no prefix)
under thread ids unique to the run (its keys are ``checkpoint:{<thread>}:...``,
``writes:{<thread>}:...`` and ``thread:{<thread>}:...``). Cleanup deletes exactly
those keys, found with SCAN.
"""

from __future__ import annotations

import importlib
from typing import Any, ClassVar

from .measure import glob_escape


class SaverAdapter:
    key = ""
    label = ""
    dist: str | None = None
    #: Stores its data in the server (memory and server commands apply).
    in_server = True
    #: How it is kept to its own keys on a server the suite did not start.
    confinement = ""
    #: Modules that must import for the saver to run.
    requires: tuple[str, ...] = ()

    def __init__(self, url: str | None, run: str) -> None:
        self.url = url
        self.run = run
        self._sync: Any = None
        self._async_clients: list[Any] = []

    @classmethod
    def missing(cls) -> str | None:
        """Why the saver cannot run here, or None."""
        for module in cls.requires:
            try:
                importlib.import_module(module)
            except ImportError as exc:
                return f"not installed ({exc.name}); pip install '.[bench-peers]'"
        return None

    # ---- savers

    def sync(self) -> Any:
        if self._sync is None:
            self._sync = self._make_sync()
        return self._sync

    def _make_sync(self) -> Any:
        raise NotImplementedError

    async def open_async(self) -> Any:
        """A new async saver on a new client (call inside the running event loop)."""
        raise NotImplementedError

    async def close_async(self) -> None:
        clients, self._async_clients = self._async_clients, []
        for client in clients:
            await client.aclose()

    def close(self) -> None:
        if self._sync is not None and getattr(self._sync, "client", None) is not None:
            self._sync.client.close()
        self._sync = None

    # ---- keys

    def thread_patterns(self, thread_glob: str) -> list[str]:
        """SCAN patterns of the keys of the threads whose ids match ``thread_glob``."""
        return []

    def cleanup_patterns(self) -> list[str]:
        """SCAN patterns of every key this saver may have created in this run."""
        return []


class InMemoryAdapter(SaverAdapter):
    key = "inmemory"
    label = "InMemorySaver"
    dist = "langgraph-checkpoint"
    in_server = False
    confinement = "in-process"

    def _make_sync(self) -> Any:
        from langgraph.checkpoint.memory import InMemorySaver

        return InMemorySaver()

    async def open_async(self) -> Any:
        return self.sync()  # one object serves both APIs, over the same storage

    def close(self) -> None:
        self._sync = None


class OursAdapter(SaverAdapter):
    key = "ours"
    label = "plain_redis_saver"
    dist = "plain-redis-saver"
    confinement = "key prefix unique to the run"
    requires = ("plain_redis_saver",)
    #: Saver options beyond the key prefix.
    options: ClassVar[dict[str, Any]] = {}

    @property
    def prefix(self) -> str:
        return f"{self.run}-ours"

    def _make_sync(self) -> Any:
        import redis

        from plain_redis_saver import PlainRedisSaver

        client = redis.Redis.from_url(self.url)
        saver = PlainRedisSaver(client, key_prefix=self.prefix, **self.options)
        saver.setup()
        return saver

    async def open_async(self) -> Any:
        import redis.asyncio

        from plain_redis_saver import AsyncPlainRedisSaver

        client = redis.asyncio.Redis.from_url(self.url)
        self._async_clients.append(client)
        saver = AsyncPlainRedisSaver(client, key_prefix=self.prefix, **self.options)
        await saver.asetup()
        return saver

    def thread_patterns(self, thread_glob: str) -> list[str]:
        return [f"{glob_escape(self.prefix)}:{{{thread_glob}}}:*"]

    def cleanup_patterns(self) -> list[str]:
        return [f"{glob_escape(self.prefix)}:*"]


class OursMaxOneAdapter(OursAdapter):
    """This saver keeping only the newest checkpoint of a thread (``max_checkpoints=1``):
    the cost phase's extra column, not one of the compared savers."""

    key = "ours_max1"
    label = "plain_redis_saver (max_checkpoints=1)"

    @property
    def prefix(self) -> str:
        return f"{self.run}-ours-max1"

    options: ClassVar[dict[str, Any]] = {"max_checkpoints": 1}


class PlainRedisPeerAdapter(SaverAdapter):
    key = "plainredis"
    label = "langgraph-checkpoint-plainredis"
    dist = "langgraph-checkpoint-plainredis"
    confinement = "key prefix unique to the run"
    requires = ("langgraph_checkpoint_plainredis",)

    @property
    def prefix(self) -> str:
        return f"{self.run}-plainredis"

    def _make_sync(self) -> Any:
        import redis
        from langgraph_checkpoint_plainredis import RedisSaver

        return RedisSaver(redis.Redis.from_url(self.url), prefix=self.prefix)

    async def open_async(self) -> Any:
        import redis.asyncio
        from langgraph_checkpoint_plainredis import AsyncRedisSaver

        client = redis.asyncio.Redis.from_url(self.url)
        self._async_clients.append(client)
        return AsyncRedisSaver(client, prefix=self.prefix)

    def thread_patterns(self, thread_glob: str) -> list[str]:
        p = glob_escape(self.prefix)
        return [f"{p}:{kind}:{thread_glob}:*" for kind in ("cp", "blob", "wr", "idx")]

    def cleanup_patterns(self) -> list[str]:
        return [f"{glob_escape(self.prefix)}:*"]


class AwsValkeyAdapter(SaverAdapter):
    key = "aws"
    label = "langgraph-checkpoint-aws (Valkey)"
    dist = "langgraph-checkpoint-aws"
    confinement = (
        "thread ids unique to the run (it has no key prefix); its delete_thread runs "
        "KEYS, which reads every key name of the database"
    )
    requires = ("valkey", "langgraph_checkpoint_aws.checkpoint.valkey.saver")

    def _make_sync(self) -> Any:
        import valkey
        from langgraph_checkpoint_aws.checkpoint.valkey import ValkeySaver

        return ValkeySaver(valkey.Valkey.from_url(self.url))

    async def open_async(self) -> Any:
        import valkey.asyncio
        from langgraph_checkpoint_aws.checkpoint.valkey import AsyncValkeySaver

        client = valkey.asyncio.Valkey.from_url(self.url)
        self._async_clients.append(client)
        return AsyncValkeySaver(client)

    def thread_patterns(self, thread_glob: str) -> list[str]:
        return [f"{kind}:{{{thread_glob}}}:*" for kind in ("checkpoint", "writes", "thread")]

    def cleanup_patterns(self) -> list[str]:
        run = glob_escape(self.run)
        return [f"{kind}:{{{run}-*" for kind in ("checkpoint", "writes", "thread")]


ADAPTERS: dict[str, type[SaverAdapter]] = {
    cls.key: cls for cls in (InMemoryAdapter, OursAdapter, PlainRedisPeerAdapter, AwsValkeyAdapter)
}
PEERS = ("plainredis", "aws")
