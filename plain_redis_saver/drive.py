"""Running plans: the only place that talks to a client.

``SyncRunner`` and ``AsyncRunner`` execute the operations of :mod:`plain_redis_saver.core`
on a redis-py (or valkey-py) client, standalone or cluster. They are deliberately thin:
what an operation means is decided by the core.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterator
from typing import Any

from redis.exceptions import NoScriptError

from .clients import connection_kwargs, is_cluster
from .errors import (
    CheckpointRemovedError,
    ContentMissingError,
    CorruptDataError,
    PlainRedisSaverError,
)
from .ops import Batch, Call, Emit, Eval, LoadScripts, Op, Plan, Scan
from .scripts import ALL_SCRIPTS

SCAN_COUNT = 1000


def _is_noscript(reply: Any) -> bool:
    # valkey-py raises its own NoScriptError class; both carry the server's message.
    return isinstance(reply, NoScriptError) or (
        isinstance(reply, Exception) and str(reply).startswith("No matching script")
    )


#: Lua runtime errors: a script met a stored value of a shape it cannot use.
_LUA_RUNTIME_ERRORS = ("attempt to ", "bad argument #")


def _script_error(exc: Exception, op: Eval | Call | None = None) -> Exception:
    """A server error that reports foreign or damaged data, as the library's own error
    naming the keys; any other error unchanged."""
    if isinstance(exc, PlainRedisSaverError):
        return exc
    text = str(exc)
    if "plain_redis_saver: parent removed" in text:
        return CheckpointRemovedError(text[text.index("parent removed") :])
    if "plain_redis_saver: missing content" in text:
        return ContentMissingError(
            "the server does not hold content a composed value references (deleted or "
            "collected since this saver stored it); nothing was written"
        )
    if "plain_redis_saver: corrupt" in text:
        message = text[text.index("plain_redis_saver: corrupt") :]
        return CorruptDataError(message.replace("plain_redis_saver: ", "", 1))
    keys = _op_keys(op)
    if not keys:
        return exc
    named = ", ".join(repr(k) for k in keys)
    if text.startswith("WRONGTYPE"):
        return CorruptDataError(
            f"corrupt thread: one of the keys {named} holds another Redis type than the "
            "saver writes (its records, values, writes and namespaces are hashes, its "
            "order a sorted set; check each with TYPE): the key prefix may be shared with "
            f"another application, or a key was written by hand ({text})"
        )
    if isinstance(op, Eval) and any(mark in text for mark in _LUA_RUNTIME_ERRORS):
        return CorruptDataError(
            f"corrupt thread: script {op.script.name} cannot use a value stored in "
            f"{named}; the key prefix may be shared with another application, or a value "
            f"was written by hand ({text})"
        )
    return exc


def _op_keys(op: Eval | Call | None) -> tuple[str, ...]:
    if isinstance(op, Eval):
        return op.keys
    if isinstance(op, Call) and len(op.args) > 1 and isinstance(op.args[1], str):
        return (op.args[1],)
    return ()


def _eval_args(op: Eval) -> tuple[Any, ...]:
    return (len(op.keys), *op.keys, op.expiry, *op.args)


#: A plan: the core's (Plan: operations and Emit), or another vocabulary's (the transfer
#: module's saver calls and Emit) whose steps the caller's ``execute`` knows.
AnyPlan = Generator[Any, Any, None]


def _advance(plan: AnyPlan, reply: Any, error: Exception | None) -> Any:
    """The plan's next step: it is sent the last operation's reply, or has the
    operation's error raised inside it, so a plan can clean up after a failed step
    (an exception it does not catch comes back out unchanged)."""
    if error is not None:
        return plan.throw(error)
    return plan.send(reply)


def drive(plan: AnyPlan, execute: Callable[[Any], Any]) -> Iterator[Any]:
    """Run ``plan`` synchronously, yielding what it emits."""
    reply: Any = None
    error: Exception | None = None
    while True:
        try:
            step = _advance(plan, reply, error)
        except StopIteration:
            return
        reply, error = None, None
        if isinstance(step, Emit):
            yield step.value
        else:
            try:
                reply = execute(step)
            except Exception as exc:
                error = exc


async def afirst(plan: AnyPlan, execute: Callable[[Any], Awaitable[Any]]) -> Any:
    """Run ``plan`` on an event loop up to its first emitted value (None if it emits
    nothing). No async generator is involved, so nothing is left for the loop to
    finalize after the call."""
    reply: Any = None
    error: Exception | None = None
    try:
        while True:
            try:
                step = _advance(plan, reply, error)
            except StopIteration:
                return None
            if isinstance(step, Emit):
                return step.value
            reply, error = None, None
            try:
                reply = await execute(step)
            except Exception as exc:
                error = exc
    finally:
        plan.close()


async def adrive(plan: Plan, execute: Callable[[Op], Awaitable[Any]]) -> AsyncIterator[Any]:
    """Run ``plan`` on an event loop, yielding what it emits."""
    reply: Any = None
    error: Exception | None = None
    while True:
        try:
            step = _advance(plan, reply, error)
        except StopIteration:
            return
        reply, error = None, None
        if isinstance(step, Emit):
            yield step.value
        else:
            try:
                reply = await execute(step)
            except Exception as exc:
                error = exc


def _command(op: Eval | Call) -> tuple[Any, ...]:
    # Pipelines go through execute_command: redis-py's cluster pipeline refuses its
    # evalsha() method but routes an EVALSHA command by its first key like any other.
    if isinstance(op, Eval):
        return ("EVALSHA", op.script.sha, *_eval_args(op))
    return op.args


def _split_routed(client: Any, op: Batch) -> tuple[list[Eval | Call], list[Call]]:
    """On a cluster, keyless calls bound to a key's node (WAIT) leave the pipeline and
    run after it on that node; standalone, everything is pipelined in order."""
    if not is_cluster(client):
        return list(op.ops), []
    piped = [item for item in op.ops if not (isinstance(item, Call) and item.route)]
    routed = [item for item in op.ops if isinstance(item, Call) and item.route]
    if routed and op.ops[: len(piped)] != tuple(piped):
        raise ValueError("routed calls must come last in a batch")
    return piped, routed


def _errors(ops: list[Eval | Call], replies: list[Any], keep: bool) -> list[Any]:
    """Replies of a batch with its errors mapped (see _script_error); the first error
    is raised unless the batch keeps errors as replies."""
    for i, (item, reply) in enumerate(zip(ops, replies, strict=True)):
        if isinstance(reply, Exception):
            replies[i] = _script_error(reply, item)
            if not keep:
                raise replies[i] from reply
    return replies


class SyncRunner:
    def __init__(self, client: Any) -> None:
        self.client = client

    def eval(self, op: Eval) -> Any:
        try:
            try:
                return self.client.evalsha(op.script.sha, *_eval_args(op))
            except Exception as exc:
                if not _is_noscript(exc):
                    raise
            return self.client.eval(op.script.source, *_eval_args(op))
        except Exception as exc:
            raise _script_error(exc, op) from exc

    def __call__(self, op: Op) -> Any:
        if isinstance(op, Eval):
            return self.eval(op)
        if isinstance(op, Call):
            try:
                return self.client.execute_command(*op.args)
            except Exception as exc:
                mapped = _script_error(exc, op)
                if mapped is exc:
                    raise
                raise mapped from exc
        if isinstance(op, Batch):
            piped, routed = _split_routed(self.client, op)
            pipe = self.client.pipeline(transaction=False)
            for item in piped:
                pipe.execute_command(*_command(item))
            replies = list(pipe.execute(raise_on_error=False))
            for i, (item, reply) in enumerate(zip(piped, replies, strict=True)):
                if isinstance(item, Eval) and _is_noscript(reply):
                    try:
                        replies[i] = self.eval(item)
                    except Exception as exc:
                        replies[i] = exc
            for call in routed:
                node = self.client.get_node_from_key(call.route)
                replies.append(self.client.execute_command(*call.args, target_nodes=node))
            return _errors([*piped, *routed], replies, op.keep_errors)
        if isinstance(op, Scan):
            return list(self.client.scan_iter(match=op.pattern, count=SCAN_COUNT))
        if isinstance(op, LoadScripts):
            for script in ALL_SCRIPTS:
                self.client.script_load(script.source)
            return None
        raise TypeError(f"unknown operation {op!r}")


class AsyncRunner:
    """Runs operations on an asyncio client.

    redis-py's asyncio pools raise "Too many connections" once ``max_connections`` are
    in use. A checkpointer must not fail a run for that, so calls beyond the pool's
    size wait here for a free slot (one semaphore per event loop).

    redis-py's asyncio ``RedisCluster`` learns the slot map on its first command, and
    again after it has closed its connections (on a connection error, or after
    ``reinitialize_steps`` MOVED replies). redis-py 8.1 picks a command's node before
    it initializes, so a command sent while the map is unknown goes to an arbitrary
    node; a burst of calls on a cold client collects MOVED replies until the client
    closes every connection under the calls still in flight. Each call therefore
    waits for ``initialize()`` (which takes its own lock) when the map is unknown.
    """

    def __init__(self, client: Any) -> None:
        self.client = client
        pool = getattr(client, "connection_pool", None)
        size = getattr(pool, "max_connections", None)
        if size is None:  # a cluster client: its limit applies to each node
            size = connection_kwargs(client).get("max_connections")
        self._size = size if isinstance(size, int) and 0 < size < 2**31 - 1 else None
        self._cluster = is_cluster(client) and hasattr(client, "initialize")
        self._slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary()
        )

    def _slot(self) -> contextlib.AbstractAsyncContextManager[Any]:
        if self._size is None:
            return contextlib.nullcontext()
        loop = asyncio.get_running_loop()
        slot = self._slots.get(loop)
        if slot is None:
            slot = self._slots[loop] = asyncio.Semaphore(self._size)
        return slot

    async def __call__(self, op: Op) -> Any:
        async with self._slot():
            if self._cluster and getattr(self.client, "_initialize", False) is True:
                await self.client.initialize()
            return await self._execute(op)

    async def eval(self, op: Eval) -> Any:
        try:
            try:
                return await self.client.evalsha(op.script.sha, *_eval_args(op))
            except Exception as exc:
                if not _is_noscript(exc):
                    raise
            return await self.client.eval(op.script.source, *_eval_args(op))
        except Exception as exc:
            raise _script_error(exc, op) from exc

    async def _execute(self, op: Op) -> Any:
        if isinstance(op, Eval):
            return await self.eval(op)
        if isinstance(op, Call):
            try:
                return await self.client.execute_command(*op.args)
            except Exception as exc:
                mapped = _script_error(exc, op)
                if mapped is exc:
                    raise
                raise mapped from exc
        if isinstance(op, Batch):
            piped, routed = _split_routed(self.client, op)
            pipe = self.client.pipeline(transaction=False)
            for item in piped:
                pipe.execute_command(*_command(item))
            replies = list(await pipe.execute(raise_on_error=False))
            for i, (item, reply) in enumerate(zip(piped, replies, strict=True)):
                if isinstance(item, Eval) and _is_noscript(reply):
                    try:
                        replies[i] = await self.eval(item)
                    except Exception as exc:
                        replies[i] = exc
            for call in routed:
                node = self.client.get_node_from_key(call.route)
                replies.append(await self.client.execute_command(*call.args, target_nodes=node))
            return _errors([*piped, *routed], replies, op.keep_errors)
        if isinstance(op, Scan):
            return [key async for key in self.client.scan_iter(match=op.pattern, count=SCAN_COUNT)]
        if isinstance(op, LoadScripts):
            for script in ALL_SCRIPTS:
                await self.client.script_load(script.source)
            return None
        raise TypeError(f"unknown operation {op!r}")
