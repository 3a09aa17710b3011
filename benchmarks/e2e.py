"""End to end: the docs' functional-API chatbot on each saver.

``@entrypoint`` with ``previous`` / ``entrypoint.final`` and a ``@task`` calling a local
stand-in chat model (no network, a 200-character reply that depends on how many
messages the model was given, so a lost or stale history gives a wrong reply).

- turns: many threads, a few turns each, one turn at a time, sync and async; savers
  interleaved thread by thread. Turns per second, and the checkpointer's share of a
  turn: (t_saver - t_InMemorySaver) / t_saver, from mean turn times.
- concurrency: async, 50 and 200 threads at once, each doing a few turns.
- memory: one 100-turn conversation per saver, the server memory of its keys.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langgraph.func import entrypoint, task
from langgraph.graph import START, MessagesState, StateGraph, add_messages

from .context import Context
from .driver import FAILED, Call, Counting, Plan, run_async, run_sync
from .measure import (
    OpRecord,
    count_wire,
    gc_paused,
    memory_usage,
    now_ns,
    scan_keys,
    summarize,
)
from .workload import _text

REPLY_CHARS = 200
#: Text of a user message in the throughput runs (the cost phase sends longer ones).
USER_CHARS = 60
PREVIOUS = "__previous__"
#: The channel a StateGraph chatbot keeps its conversation in (``MessagesState``).
MESSAGES = "messages"


def reply_text(n_messages: int, chars: int = REPLY_CHARS) -> str:
    head = f"[{n_messages}] "
    return head + _text(n_messages, chars - len(head))


def user_text(turn: int, chars: int = USER_CHARS) -> str:
    """The user's message of ``turn``: a head naming the turn and ``chars`` of text."""
    return f"turn {turn}: " + _text(turn * 3, chars)


class StandInChatModel(BaseChatModel):
    """Offline model: a fixed-length reply naming how many messages it was given."""

    reply_chars: int = REPLY_CHARS
    #: Give each reply an id that depends on the conversation only (LangGraph gives
    #: random ones), so that a conversation's content is the same in every run.
    fixed_ids: bool = False

    @property
    def _llm_type(self) -> str:
        return "bench-stand-in"

    def _result(self, messages: list[BaseMessage]) -> ChatResult:
        message = AIMessage(
            content=reply_text(len(messages), self.reply_chars),
            id=f"ai-{len(messages):05d}" if self.fixed_ids else None,
        )
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return self._result(messages)

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return self._result(messages)


def sync_chatbot(checkpointer: Any, model: BaseChatModel) -> Any:
    @task
    def call_model(messages: list[BaseMessage]) -> BaseMessage:
        return model.invoke(messages)

    @entrypoint(checkpointer=checkpointer)
    def chatbot(inputs: list[BaseMessage], *, previous: list[BaseMessage] | None) -> Any:
        prior = previous or []
        response = call_model(add_messages(prior, inputs)).result()
        return entrypoint.final(value=response, save=add_messages(prior, [*inputs, response]))

    return chatbot


def async_chatbot(checkpointer: Any, model: BaseChatModel) -> Any:
    @task
    async def call_model(messages: list[BaseMessage]) -> BaseMessage:
        return await model.ainvoke(messages)

    @entrypoint(checkpointer=checkpointer)
    async def chatbot(inputs: list[BaseMessage], *, previous: list[BaseMessage] | None) -> Any:
        prior = previous or []
        response = await call_model(add_messages(prior, inputs))
        return entrypoint.final(value=response, save=add_messages(prior, [*inputs, response]))

    return chatbot


def stategraph_chatbot(checkpointer: Any, model: BaseChatModel) -> Any:
    """The docs' StateGraph chatbot: ``MessagesState`` (an ``add_messages`` channel that
    keeps the whole history) and one node calling the model."""

    def respond(state: MessagesState) -> dict[str, list[BaseMessage]]:
        return {MESSAGES: [model.invoke(state[MESSAGES])]}

    builder = StateGraph(MessagesState)
    builder.add_node("respond", respond)
    builder.add_edge(START, "respond")
    return builder.compile(checkpointer=checkpointer)


class StateGraphTarget:
    """A StateGraph chatbot behind the functional chatbot's call shape: ``invoke`` takes
    the new messages and returns the reply, so one conversation plan drives both."""

    def __init__(self, graph: Any, saver: Any) -> None:
        self.graph = graph
        self.get_tuple = saver.get_tuple

    def invoke(self, inputs: list[BaseMessage], config: Any) -> Any:
        return self.graph.invoke({MESSAGES: inputs}, config)[MESSAGES][-1]


def _config(thread_id: str) -> Any:
    return {"configurable": {"thread_id": thread_id}}


def check_reply(reply: Any, turn: int) -> str | None:
    expected = reply_text(2 * turn + 1)
    content = getattr(reply, "content", None)
    if content != expected:
        return f"turn {turn}: reply {str(content)[:40]!r}..., expected {expected[:40]!r}..."
    return None


def check_state(
    tup: Any, turns: int, channel: str = PREVIOUS, user_chars: int = USER_CHARS
) -> str | None:
    """The saved conversation after ``turns`` turns, in ``channel``."""
    if tup is None:
        return "no checkpoint after the conversation"
    saved = tup.checkpoint.get("channel_values", {}).get(channel)
    if not isinstance(saved, list) or len(saved) != 2 * turns:
        size = len(saved) if isinstance(saved, list) else saved
        return f"saved conversation has {size} messages, expected {2 * turns}"
    for i in range(turns):
        if saved[2 * i].content != user_text(i, user_chars) or saved[
            2 * i + 1
        ].content != reply_text(2 * i + 1):
            return f"saved conversation differs at turn {i}"
    return None


class Target:
    """What a conversation plan calls: the chatbot's ``invoke`` and the saver's
    ``get_tuple`` (with their async forms), under the names the drivers look up."""

    def __init__(self, chatbot: Any, saver: Any) -> None:
        self.invoke = chatbot.invoke
        self.ainvoke = chatbot.ainvoke
        self.get_tuple = saver.get_tuple
        self.aget_tuple = saver.aget_tuple


def conversation(
    thread_id: str,
    turns: int,
    records: dict[str, OpRecord],
    *,
    verify: bool = True,
    completed: list[str] | None = None,
    first: int = 0,
    user_chars: int = USER_CHARS,
) -> Plan:
    """Turns ``first`` to ``turns - 1`` of one thread, each reply checked; then, with
    ``verify``, the saved conversation read back and checked (its errors count, its time
    does not). The thread id goes to ``completed`` when every turn got an answer."""
    config = _config(thread_id)
    for turn in range(first, turns):
        message = HumanMessage(content=user_text(turn, user_chars))
        reply = yield Call("turn", "invoke", ([message], config))
        if reply is FAILED:
            return
        if problem := check_reply(reply, turn):
            records["turn"].mismatch(f"{thread_id}: {problem}")
    if completed is not None:
        completed.append(thread_id)
    if verify:
        yield from read_back(thread_id, turns, records, user_chars=user_chars)


def read_back(
    thread_id: str,
    turns: int,
    records: dict[str, OpRecord],
    channel: str = PREVIOUS,
    user_chars: int = USER_CHARS,
) -> Plan:
    """The saved conversation of ``turns`` turns, read and checked (not timed)."""
    tup = yield Call("turn", "get_tuple", (_config(thread_id),), timed=False)
    if tup is not FAILED and (problem := check_state(tup, turns, channel, user_chars)):
        records["turn"].mismatch(f"{thread_id}: {problem}")


class E2EPhase:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.sizes = ctx.sizes
        self.model = StandInChatModel()
        self.turns: dict[str, dict[str, OpRecord]] = defaultdict(lambda: defaultdict(OpRecord))
        self.round_trips: dict[str, dict[str, Any]] = defaultdict(dict)
        self.concurrency: dict[str, dict[str, Any]] = defaultdict(dict)

    def units(self) -> int:
        s = self.sizes
        n = len(self.ctx.adapters)
        return (
            2 * (s.e2e_rounds + 1)
            + s.conc_reps * len(s.conc_levels) * n
            + sum(a.in_server for a in self.ctx.adapters.values())
        )

    def _tick(self, text: str) -> None:
        self.ctx.progress.set_description_str(text)
        self.ctx.progress.update(1)

    # ---- turns, sync
    # The conversation is one plan for both modes; counting covers a whole conversation.

    def run_turns_sync(self) -> None:
        ctx = self.ctx
        keys = list(ctx.adapters)
        savers = {key: ctx.adapters[key].sync() for key in keys}
        bots = {key: sync_chatbot(savers[key], self.model) for key in keys}
        turns = self.sizes.e2e_turns
        targets = {key: Target(bots[key], savers[key]) for key in keys}
        for key in keys:  # warm-up, then the round trips of a conversation
            recs = {"turn": self.turns[key]["sync"]}
            warm = conversation(ctx.thread(f"e2e-s-w-{key}"), 2, recs)
            run_sync(targets[key], warm, recs, timed=False)
            tid = ctx.thread(f"e2e-s-c-{key}")
            with count_wire() as wire:
                counting = Counting(wire, ctx.admin if ctx.adapters[key].in_server else None)
                counting.start()
                run_sync(targets[key], conversation(tid, turns, recs, verify=False), recs)
                counting.stop("conversation")
            run_sync(targets[key], read_back(tid, turns, recs), recs)
            self.round_trips[key]["sync"] = _per_turn(counting, turns)
        self._tick("e2e sync: warm-up")
        for round_no in range(self.sizes.e2e_rounds):
            for key in ctx.order(round_no, keys):
                recs = {"turn": self.turns[key]["sync"]}
                plan = conversation(ctx.thread(f"e2e-s-{round_no}"), turns, recs)
                with gc_paused():
                    run_sync(targets[key], plan, recs)
            self._tick(f"e2e sync: thread {round_no + 1}/{self.sizes.e2e_rounds}")

    # ---- turns, async

    async def _run_turns_async(self) -> None:
        ctx = self.ctx
        keys = list(ctx.adapters)
        savers = {key: await ctx.adapters[key].open_async() for key in keys}
        try:
            bots = {key: async_chatbot(savers[key], self.model) for key in keys}
            turns = self.sizes.e2e_turns
            targets = {key: Target(bots[key], savers[key]) for key in keys}
            for key in keys:
                recs = {"turn": self.turns[key]["async"]}
                warm = conversation(ctx.thread(f"e2e-a-w-{key}"), 2, recs)
                await run_async(targets[key], warm, recs, timed=False)
                tid = ctx.thread(f"e2e-a-c-{key}")
                with count_wire() as wire:
                    counting = Counting(wire, ctx.admin if ctx.adapters[key].in_server else None)
                    counting.start()
                    plan = conversation(tid, turns, recs, verify=False)
                    await run_async(targets[key], plan, recs)
                    counting.stop("conversation")
                await run_async(targets[key], read_back(tid, turns, recs), recs)
                self.round_trips[key]["async"] = _per_turn(counting, turns)
            self._tick("e2e async: warm-up")
            for round_no in range(self.sizes.e2e_rounds):
                for key in ctx.order(round_no, keys):
                    recs = {"turn": self.turns[key]["async"]}
                    plan = conversation(ctx.thread(f"e2e-a-{round_no}"), turns, recs)
                    with gc_paused():
                        await run_async(targets[key], plan, recs)
                self._tick(f"e2e async: thread {round_no + 1}/{self.sizes.e2e_rounds}")
        finally:
            for key in keys:
                await ctx.adapters[key].close_async()

    def run_turns_async(self) -> None:
        asyncio.run(self._run_turns_async())

    # ---- concurrency

    async def _concurrent(self, key: str, threads: int, rep: int) -> dict[str, Any]:
        ctx = self.ctx
        saver = await ctx.adapters[key].open_async()
        rec = OpRecord()
        try:
            target = Target(async_chatbot(saver, self.model), saver)
            turns = self.sizes.conc_turns
            recs = {"turn": rec}
            tids = [ctx.thread(f"c{threads}-{rep}-{j}") for j in range(threads)]
            completed: list[str] = []  # a thread whose turn failed is counted, not read
            start = now_ns()
            await asyncio.gather(
                *(
                    run_async(
                        target,
                        conversation(t, turns, recs, verify=False, completed=completed),
                        recs,
                    )
                    for t in tids
                )
            )
            wall = (now_ns() - start) / 1e9
            for tid in completed:
                await run_async(target, read_back(tid, turns, recs), recs)
        finally:
            await ctx.adapters[key].close_async()
        return {"threads": threads, "seconds": wall, "record": rec}

    def run_concurrency(self) -> None:
        keys = list(self.ctx.adapters)
        runs: dict[str, dict[int, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))

        async def all_runs() -> None:
            i = 0
            for rep in range(self.sizes.conc_reps):
                for threads in self.sizes.conc_levels:
                    for key in self.ctx.order(i, keys):
                        runs[key][threads].append(await self._concurrent(key, threads, rep))
                        self._tick(f"concurrency: {threads} threads ({key})")
                    i += 1

        asyncio.run(all_runs())
        for key, by_level in runs.items():
            for threads, reps in by_level.items():
                self.concurrency[key][str(threads)] = _pool_reps(reps)

    # ---- memory of a conversation

    def run_conversation_memory(self) -> dict[str, Any]:
        ctx = self.ctx
        out: dict[str, Any] = {}
        turns = self.sizes.conversation_turns
        for key, adapter in ctx.adapters.items():
            if not adapter.in_server:
                continue
            saver = adapter.sync()
            bot = sync_chatbot(saver, self.model)
            tid = ctx.thread("conversation")
            rec = OpRecord()
            recs = {"turn": rec}
            run_sync(Target(bot, saver), conversation(tid, turns, recs), recs, timed=False)
            keys = scan_keys(ctx.admin, adapter.thread_patterns(tid))
            try:
                checkpoints = sum(1 for _ in saver.list(_config(tid)))
            except Exception:
                checkpoints = None
            total = memory_usage(ctx.admin, keys)
            out[key] = {
                "turns": turns,
                "reply_chars": REPLY_CHARS,
                "checkpoints": checkpoints,
                "keys": len(keys),
                "bytes": total,
                "bytes_per_turn": round(total / turns, 1) if total else None,
                "errors": rec.errors,
                "wrong": rec.wrong,
            }
            self._tick(f"memory: {turns}-turn conversation ({key})")
        return out

    def summary(self) -> dict[str, Any]:
        inmemory: dict[str, float] = {}
        turns: dict[str, Any] = {}
        for key in self.ctx.adapters:
            for mode, rec in self.turns[key].items():
                row = rec.summary()
                row["turns_per_s"] = (
                    round(len(rec.samples) / (sum(rec.samples) / 1e9), 1) if rec.samples else None
                )
                row["round_trips_per_turn"] = self.round_trips.get(key, {}).get(mode)
                turns.setdefault(key, {})[mode] = row
                if key == "inmemory" and row["mean_us"]:
                    inmemory[mode] = row["mean_us"]
        for key, by_mode in turns.items():
            for mode, row in by_mode.items():
                base, mine = inmemory.get(mode), row.get("mean_us")
                row["checkpointer_share"] = (
                    round((mine - base) / mine, 3) if base and mine and key != "inmemory" else None
                )
        return {"turns": turns, "concurrency": dict(self.concurrency)}


def _per_turn(counting: Counting, turns: int) -> dict[str, Any]:
    counts = counting.ops.get("conversation")
    if counts is None:
        return {}
    server = sum(counts.server.values()) if counts.server else None
    return {
        "round_trips": round(counts.round_trips / turns, 2),
        "commands_top": round(sum(counts.top.values()) / turns, 2),
        "commands_total": round(server / turns, 2) if server is not None else None,
        "top_by_command": {k: round(v / turns, 2) for k, v in sorted(counts.top.items())},
        "server_by_command": {k: round(v / turns, 2) for k, v in sorted(counts.server.items())},
    }


def _pool_reps(reps: list[dict[str, Any]]) -> dict[str, Any]:
    """Repetitions of one concurrency run, pooled: turns per second over all of them."""
    samples = [t for r in reps for t in r["record"].samples]
    seconds = sum(r["seconds"] for r in reps)
    out = summarize(samples)
    out.update(
        threads=reps[0]["threads"],
        reps=len(reps),
        turns=len(samples),
        seconds=round(seconds, 3),
        turns_per_s=round(len(samples) / seconds, 1) if seconds else None,
        turns_per_s_each=[
            round(len(r["record"].samples) / r["seconds"], 1) if r["seconds"] else None
            for r in reps
        ],
        errors=sum(r["record"].errors for r in reps),
        wrong=sum(r["record"].wrong for r in reps),
    )
    for field in ("error_examples", "wrong_examples"):
        examples = [e for r in reps for e in getattr(r["record"], field)]
        if examples:
            out[field] = examples[:3]
    return out
