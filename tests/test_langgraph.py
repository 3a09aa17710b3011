"""End-to-end tests: real LangGraph graphs run on this saver and on ``InMemorySaver``.

``InMemorySaver`` is the oracle: every scenario is run once on it and once on the saver
under test (on each backend), and what the graph observably does -- results, state,
history, interrupts, task calls -- must be the same. Ids and timestamps differ between
two runs, so the comparisons leave them out and check them separately where it matters.
Nodes are plain deterministic Python; nothing sleeps or uses the network.
"""

from __future__ import annotations

import operator
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated, Any, TypedDict

import pytest
from langchain_core.runnables import RunnableConfig
from langgraph.channels import DeltaChannel
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.func import entrypoint, task
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, Durability, Send, StateSnapshot, interrupt

from plain_redis_saver import AsyncPlainRedisSaver, PlainRedisSaver

# ---------------------------------------------------------------- helpers


def _thread(thread_id: str = "1") -> RunnableConfig:
    return {"configurable": {"thread_id": thread_id}}


def _checkpoint_id(config: RunnableConfig | None) -> str | None:
    if config is None:
        return None
    return config["configurable"]["checkpoint_id"]  # type: ignore[no-any-return]


def _view(snapshot: StateSnapshot) -> dict[str, Any]:
    """What a snapshot shows, without ids and timestamps (which differ run to run)."""
    metadata = snapshot.metadata or {}
    return {
        "values": snapshot.values,
        "next": snapshot.next,
        "step": metadata.get("step"),
        "source": metadata.get("source"),
        "has_parent": snapshot.parent_config is not None,
        "tasks": [
            {
                "name": t.name,
                "error": repr(t.error) if t.error is not None else None,
                "interrupts": [i.value for i in t.interrupts],
                "result": t.result,
                "state": _view(t.state) if isinstance(t.state, StateSnapshot) else None,
            }
            for t in snapshot.tasks
        ],
        "interrupts": [i.value for i in snapshot.interrupts],
    }


def _assert_linear_chain(history: Sequence[StateSnapshot]) -> None:
    """Newest first, ids unique and descending, each entry's parent is the next one."""
    ids = [_checkpoint_id(s.config) for s in history]
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids, reverse=True)  # type: ignore[type-var]
    parents = [_checkpoint_id(s.parent_config) for s in history]
    assert parents == [*ids[1:], None]


def _oracle(saver: Any, scenario: Callable[[Any], Any]) -> Any:
    """Run ``scenario`` on InMemorySaver and on ``saver``; both must observe the same."""
    expected = scenario(InMemorySaver())
    actual = scenario(saver)
    assert actual == expected
    return actual


async def _aoracle(saver: Any, scenario: Callable[[Any], Awaitable[Any]]) -> Any:
    expected = await scenario(InMemorySaver())
    actual = await scenario(saver)
    assert actual == expected
    return actual


# ---------------------------------------------------------------- 1. functional chatbot


def _chatbot(checkpointer: Any) -> Any:
    @task
    def call_model(messages: list[str]) -> str:
        return f"reply#{len(messages)} to {messages[-1]}"

    @entrypoint(checkpointer=checkpointer)
    def chatbot(
        message: str, *, previous: list[str] | None = None
    ) -> entrypoint.final[str, list[str]]:
        history = [*(previous or []), message]
        reply = call_model(history).result()
        return entrypoint.final(value=reply, save=[*history, reply])

    return chatbot


def _achatbot(checkpointer: Any) -> Any:
    @task
    async def call_model(messages: list[str]) -> str:
        return f"reply#{len(messages)} to {messages[-1]}"

    @entrypoint(checkpointer=checkpointer)
    async def chatbot(
        message: str, *, previous: list[str] | None = None
    ) -> entrypoint.final[str, list[str]]:
        history = [*(previous or []), message]
        reply = await call_model(history)
        return entrypoint.final(value=reply, save=[*history, reply])

    return chatbot


_CHAT_EXPECTED = {
    "replies": ["reply#1 to hi", "reply#3 to how are you", "reply#1 to hello"],
    "values": ["reply#3 to how are you", "reply#1 to hello"],
    "saved": [
        ["hi", "reply#1 to hi", "how are you", "reply#3 to how are you"],
        ["hello", "reply#1 to hello"],
    ],
}


def _saved(checkpointer: Any, thread_id: str) -> Any:
    """What ``entrypoint.final(save=...)`` stored: the ``previous`` of the next call."""
    saved = checkpointer.get_tuple(_thread(thread_id))
    return saved.checkpoint["channel_values"]["__previous__"]


async def _asaved(checkpointer: Any, thread_id: str) -> Any:
    saved = await checkpointer.aget_tuple(_thread(thread_id))
    return saved.checkpoint["channel_values"]["__previous__"]


def test_functional_chatbot_remembers_per_thread(saver: PlainRedisSaver) -> None:
    def scenario(checkpointer: Any) -> dict[str, Any]:
        bot = _chatbot(checkpointer)
        replies = [
            bot.invoke("hi", _thread("1")),
            bot.invoke("how are you", _thread("1")),
            bot.invoke("hello", _thread("2")),
        ]
        return {
            "replies": replies,
            "values": [bot.get_state(_thread(t)).values for t in ("1", "2")],
            "saved": [_saved(checkpointer, t) for t in ("1", "2")],
        }

    assert _oracle(saver, scenario) == _CHAT_EXPECTED


async def test_async_functional_chatbot_remembers_per_thread(
    asaver: AsyncPlainRedisSaver,
) -> None:
    async def scenario(checkpointer: Any) -> dict[str, Any]:
        bot = _achatbot(checkpointer)
        replies = [
            await bot.ainvoke("hi", _thread("1")),
            await bot.ainvoke("how are you", _thread("1")),
            await bot.ainvoke("hello", _thread("2")),
        ]
        return {
            "replies": replies,
            "values": [(await bot.aget_state(_thread(t))).values for t in ("1", "2")],
            "saved": [await _asaved(checkpointer, t) for t in ("1", "2")],
        }

    assert await _aoracle(asaver, scenario) == _CHAT_EXPECTED


# ---------------------------------------------------------------- 2. state and history


class LogState(TypedDict, total=False):
    log: Annotated[list[str], operator.add]
    count: int


def _linear_graph(checkpointer: Any) -> Any:
    def node(name: str) -> Any:
        def run(state: LogState) -> LogState:
            return {"log": [f"{name}{state.get('count', 0)}"], "count": state.get("count", 0) + 1}

        return run

    builder = StateGraph(LogState)
    for name in ("a", "b", "c"):
        builder.add_node(name, node(name))
    builder.add_edge(START, "a")
    builder.add_edge("a", "b")
    builder.add_edge("b", "c")
    builder.add_edge("c", END)
    return builder.compile(checkpointer=checkpointer)


def test_state_and_history_match_in_memory_saver(saver: PlainRedisSaver) -> None:
    def scenario(checkpointer: Any) -> dict[str, Any]:
        graph = _linear_graph(checkpointer)
        graph.invoke({"log": ["in1"]}, _thread())
        graph.invoke({"log": ["in2"]}, _thread())
        history = list(graph.get_state_history(_thread()))
        _assert_linear_chain(history)
        latest = graph.get_state(_thread())
        assert _checkpoint_id(latest.config) == _checkpoint_id(history[0].config)
        return {"state": _view(latest), "history": [_view(s) for s in history]}

    result = _oracle(saver, scenario)
    assert result["state"]["values"] == {
        "log": ["in1", "a0", "b1", "c2", "in2", "a3", "b4", "c5"],
        "count": 6,
    }
    assert [h["step"] for h in result["history"]] == list(range(8, -2, -1))


# ---------------------------------------------------------------- 3. human in the loop


class ReviewState(TypedDict, total=False):
    draft: str
    verdict: str
    log: Annotated[list[str], operator.add]


def _review_graph(checkpointer: Any) -> Any:
    def write(state: ReviewState) -> ReviewState:
        return {"draft": f"draft of {state['draft']}", "log": ["write"]}

    def review(state: ReviewState) -> ReviewState:
        verdict = interrupt({"question": "approve?", "draft": state["draft"]})
        return {"verdict": verdict, "log": [f"review:{verdict}"]}

    def publish(state: ReviewState) -> ReviewState:
        return {"log": [f"publish:{state['verdict']}"]}

    builder = StateGraph(ReviewState)
    builder.add_node("write", write)
    builder.add_node("review", review)
    builder.add_node("publish", publish)
    builder.add_edge(START, "write")
    builder.add_edge("write", "review")
    builder.add_edge("review", "publish")
    builder.add_edge("publish", END)
    return builder.compile(checkpointer=checkpointer)


_QUESTION = {"question": "approve?", "draft": "draft of post"}
_PUBLISHED = {
    "draft": "draft of post",
    "verdict": "yes",
    "log": ["write", "review:yes", "publish:yes"],
}


def test_interrupt_then_resume_matches_in_memory_saver(saver: PlainRedisSaver) -> None:
    def scenario(checkpointer: Any) -> dict[str, Any]:
        graph = _review_graph(checkpointer)
        first = graph.invoke({"draft": "post"}, _thread())
        paused = _view(graph.get_state(_thread()))
        resumed = graph.invoke(Command(resume="yes"), _thread())
        return {
            "first": [i.value for i in first["__interrupt__"]],
            "paused": paused,
            "resumed": resumed,
            "final": _view(graph.get_state(_thread())),
        }

    result = _oracle(saver, scenario)
    assert result["first"] == [_QUESTION]
    assert result["paused"]["next"] == ("review",)
    assert result["paused"]["tasks"][0]["interrupts"] == [_QUESTION]
    assert result["paused"]["interrupts"] == [_QUESTION]
    assert result["resumed"] == _PUBLISHED
    assert result["final"]["next"] == ()
    assert result["final"]["interrupts"] == []


async def test_async_interrupt_then_resume_matches_in_memory_saver(
    asaver: AsyncPlainRedisSaver,
) -> None:
    async def scenario(checkpointer: Any) -> dict[str, Any]:
        graph = _review_graph(checkpointer)
        first = await graph.ainvoke({"draft": "post"}, _thread())
        paused = _view(await graph.aget_state(_thread()))
        resumed = await graph.ainvoke(Command(resume="yes"), _thread())
        return {
            "first": [i.value for i in first["__interrupt__"]],
            "paused": paused,
            "resumed": resumed,
            "final": _view(await graph.aget_state(_thread())),
        }

    result = await _aoracle(asaver, scenario)
    assert result["first"] == [_QUESTION]
    assert result["paused"]["next"] == ("review",)
    assert result["paused"]["tasks"][0]["interrupts"] == [_QUESTION]
    assert result["paused"]["interrupts"] == [_QUESTION]
    assert result["resumed"] == _PUBLISHED


# ---------------------------------------------------------------- 4. Send fan-out


def _concat(left: list[str], right: list[str]) -> list[str]:
    """Order-sensitive: the result records the order the writes were applied in."""
    return [*left, *right]


class FanState(TypedDict, total=False):
    items: list[str]
    results: Annotated[list[str], _concat]


def _fan_out_graph(checkpointer: Any, pause_on: str | None = None) -> tuple[Any, Counter[str]]:
    calls: Counter[str] = Counter()

    def worker(arg: Any) -> FanState:
        item = arg["item"]
        calls[item] += 1
        if item == pause_on:
            answer = interrupt(f"approve {item}?")
            return {"results": [f"done:{item}:{answer}"]}
        return {"results": [f"done:{item}"]}

    def collect(state: FanState) -> FanState:
        return {"results": [f"collected {len(state['results'])}"]}

    def fan_out(state: FanState) -> list[Send]:
        return [Send("worker", {"item": item}) for item in state["items"]]

    builder = StateGraph(FanState)
    builder.add_node("worker", worker)
    builder.add_node("collect", collect)
    builder.add_conditional_edges(START, fan_out, ["worker"])
    builder.add_edge("worker", "collect")
    builder.add_edge("collect", END)
    return builder.compile(checkpointer=checkpointer), calls


_FAN_ITEMS = ["k", "c", "x", "a", "q", "m", "b", "z", "e", "t", "h", "p"]


def test_send_fan_out_final_state_order_matches_in_memory_saver(saver: PlainRedisSaver) -> None:
    def scenario(checkpointer: Any) -> dict[str, Any]:
        graph, _ = _fan_out_graph(checkpointer)
        out = graph.invoke({"items": _FAN_ITEMS, "results": ["start"]}, _thread())
        return {"out": out, "state": _view(graph.get_state(_thread()))}

    result = _oracle(saver, scenario)
    assert result["out"]["results"] == [
        "start",
        *(f"done:{item}" for item in _FAN_ITEMS),
        f"collected {len(_FAN_ITEMS) + 1}",
    ]


def test_send_fan_out_resume_keeps_sibling_writes_in_order(saver: PlainRedisSaver) -> None:
    # An interrupt (unlike an exception) lets the sibling tasks finish and save their
    # writes, so which writes are pending at the pause is deterministic.
    def scenario(checkpointer: Any) -> dict[str, Any]:
        graph, calls = _fan_out_graph(checkpointer, pause_on="x")
        graph.invoke({"items": _FAN_ITEMS, "results": ["start"]}, _thread())
        paused = _view(graph.get_state(_thread()))
        out = graph.invoke(Command(resume="ok"), _thread())
        return {"paused": paused, "out": out, "calls": dict(calls)}

    result = _oracle(saver, scenario)
    assert result["paused"]["next"] == ("worker",)
    assert result["paused"]["interrupts"] == ["approve x?"]
    # Only the paused worker ran again: its siblings' writes came back from the saver.
    assert result["calls"] == {item: 2 if item == "x" else 1 for item in _FAN_ITEMS}
    assert result["out"]["results"] == [
        "start",
        *(f"done:{item}" if item != "x" else "done:x:ok" for item in _FAN_ITEMS),
        f"collected {len(_FAN_ITEMS) + 1}",
    ]


# ---------------------------------------------------------------- 5. subgraphs


class TeamState(TypedDict, total=False):
    log: Annotated[list[str], operator.add]
    answer: str


def _parent_with_subgraph(checkpointer: Any) -> tuple[Any, Counter[str]]:
    calls: Counter[str] = Counter()

    def inner_prepare(state: TeamState) -> TeamState:
        calls["inner_prepare"] += 1
        return {"log": ["inner_prepare"]}

    def inner_ask(state: TeamState) -> TeamState:
        answer = interrupt({"seen": list(state["log"])})
        return {"log": [f"inner_ask:{answer}"], "answer": answer}

    sub = StateGraph(TeamState)
    sub.add_node("inner_prepare", inner_prepare)
    sub.add_node("inner_ask", inner_ask)
    sub.add_edge(START, "inner_prepare")
    sub.add_edge("inner_prepare", "inner_ask")
    sub.add_edge("inner_ask", END)

    def prepare(state: TeamState) -> TeamState:
        return {"log": ["prepare"]}

    def finish(state: TeamState) -> TeamState:
        return {"log": [f"finish:{state['answer']}"]}

    parent = StateGraph(TeamState)
    parent.add_node("prepare", prepare)
    parent.add_node("team", sub.compile())
    parent.add_node("finish", finish)
    parent.add_edge(START, "prepare")
    parent.add_edge("prepare", "team")
    parent.add_edge("team", "finish")
    parent.add_edge("finish", END)
    return parent.compile(checkpointer=checkpointer), calls


def test_subgraph_interrupt_state_and_resume_match_in_memory_saver(
    saver: PlainRedisSaver,
) -> None:
    def scenario(checkpointer: Any) -> dict[str, Any]:
        graph, calls = _parent_with_subgraph(checkpointer)
        graph.invoke({"log": ["in"]}, _thread())
        paused = _view(graph.get_state(_thread(), subgraphs=True))
        out = graph.invoke(Command(resume="42"), _thread())
        return {"paused": paused, "out": out, "calls": dict(calls)}

    result = _oracle(saver, scenario)
    paused = result["paused"]
    assert paused["next"] == ("team",)
    inner = paused["tasks"][0]["state"]
    assert inner["next"] == ("inner_ask",)
    assert inner["values"] == {"log": ["in", "prepare", "inner_prepare"]}
    assert inner["tasks"][0]["interrupts"] == [{"seen": ["in", "prepare", "inner_prepare"]}]
    assert result["out"] == {
        "log": ["in", "prepare", "in", "prepare", "inner_prepare", "inner_ask:42", "finish:42"],
        "answer": "42",
    }
    assert result["calls"] == {"inner_prepare": 1}


# ---------------------------------------------------------------- 6. time travel


def test_time_travel_fork_and_original_match_in_memory_saver(saver: PlainRedisSaver) -> None:
    def scenario(checkpointer: Any) -> dict[str, Any]:
        graph = _linear_graph(checkpointer)
        graph.invoke({"log": ["in"]}, _thread())
        history = list(graph.get_state_history(_thread()))
        original_end = history[0].config
        before_b = next(s for s in history if s.next == ("b",))
        fork_config = graph.update_state(before_b.config, {"log": ["edited"], "count": 10})
        fork_view = _view(graph.get_state(fork_config))
        fork_out = graph.invoke(None, fork_config)
        original_out = graph.invoke({"log": ["more"]}, original_end)
        full = list(graph.get_state_history(_thread()))
        ids = {_checkpoint_id(s.config) for s in full}
        assert all(_checkpoint_id(s.parent_config) in ids for s in full[:-1])
        return {
            "fork_view": fork_view,
            "fork": fork_out,
            "original": original_out,
            "latest": _view(graph.get_state(_thread())),
            "history": [_view(s) for s in full],
        }

    result = _oracle(saver, scenario)
    assert result["fork"] == {"log": ["in", "a0", "edited", "b10", "c11"], "count": 12}
    assert result["original"] == {
        "log": ["in", "a0", "b1", "c2", "more", "a3", "b4", "c5"],
        "count": 6,
    }
    assert result["latest"]["values"] == result["original"]


# ---------------------------------------------------------------- 7. DeltaChannel


def _extend(state: list[str], writes: Sequence[list[str]]) -> list[str]:
    """Batching-invariant, order-sensitive DeltaChannel reducer."""
    return [*state, *(item for write in writes for item in write)]


class DeltaState(TypedDict, total=False):
    items: Annotated[list[str], DeltaChannel(_extend, snapshot_frequency=3)]
    round: int


_DELTA_ROUNDS = 5


def _delta_graph(checkpointer: Any) -> Any:
    def plan(state: DeltaState) -> DeltaState:
        r = state.get("round", 0)
        return {"round": r + 1, "items": [f"plan{r}"]}

    def worker(arg: Any) -> DeltaState:
        return {"items": [f"r{arg['round']}w{arg['i']}"]}

    def route(state: DeltaState) -> Any:
        if state["round"] >= _DELTA_ROUNDS:
            return END
        return [Send("worker", {"round": state["round"], "i": i}) for i in (2, 0, 3, 1)]

    builder = StateGraph(DeltaState)
    builder.add_node("plan", plan)
    builder.add_node("worker", worker)
    builder.add_edge(START, "plan")
    builder.add_conditional_edges("plan", route, ["worker", END])
    builder.add_edge("worker", "plan")
    return builder.compile(checkpointer=checkpointer)


def _history_values(histories: Any) -> dict[str, Any]:
    """A get_delta_channel_history result without task ids (they differ between runs)."""
    return {
        ch: {"writes": [w[1:] for w in h["writes"]], "seed": h.get("seed", "<none>")}
        for ch, h in histories.items()
    }


def test_delta_channel_state_matches_in_memory_saver(saver: PlainRedisSaver) -> None:
    def scenario(checkpointer: Any) -> dict[str, Any]:
        graph = _delta_graph(checkpointer)
        graph.invoke({"items": ["in"]}, _thread())
        history = list(graph.get_state_history(_thread()))
        _assert_linear_chain(history)
        return {"state": _view(graph.get_state(_thread())), "history": [_view(s) for s in history]}

    result = _oracle(saver, scenario)
    items = result["state"]["values"]["items"]
    # Parallel writes land in the order of the Sends, not of the worker names.
    assert items[:7] == ["in", "plan0", "r1w2", "r1w0", "r1w3", "r1w1", "plan1"]
    assert items[-6:] == ["plan3", "r4w2", "r4w0", "r4w3", "r4w1", "plan4"]


def test_delta_channel_history_equals_base_class_walk(saver: PlainRedisSaver) -> None:
    graph = _delta_graph(saver)
    graph.invoke({"items": ["in"]}, _thread())
    history = list(graph.get_state_history(_thread()))
    latest, older = history[0].config, history[len(history) // 2].config
    channels = ["items", "round", "missing"]
    for config in (latest, older):
        fast = saver.get_delta_channel_history(config=config, channels=channels)
        slow = BaseCheckpointSaver.get_delta_channel_history(
            saver, config=config, channels=channels
        )
        assert fast == slow
    # Every checkpoint, with and without a stored snapshot, including the input one.
    for snapshot in history:
        fast = saver.get_delta_channel_history(config=snapshot.config, channels=channels)
        slow = BaseCheckpointSaver.get_delta_channel_history(
            saver, config=snapshot.config, channels=channels
        )
        assert fast == slow


def test_delta_channel_history_matches_in_memory_saver(saver: PlainRedisSaver) -> None:
    def scenario(checkpointer: Any) -> list[dict[str, Any]]:
        graph = _delta_graph(checkpointer)
        graph.invoke({"items": ["in"]}, _thread())
        return [
            _history_values(
                checkpointer.get_delta_channel_history(config=s.config, channels=["items", "round"])
            )
            for s in graph.get_state_history(_thread())
        ]

    result = _oracle(saver, scenario)
    assert any(h["items"]["seed"] == "<none>" for h in result)
    assert any(h["items"]["seed"] != "<none>" for h in result)


def test_delta_channel_fork_reads_only_its_own_branch(saver: PlainRedisSaver) -> None:
    def scenario(checkpointer: Any) -> dict[str, Any]:
        graph = _delta_graph(checkpointer)
        graph.invoke({"items": ["in"]}, _thread())
        history = list(graph.get_state_history(_thread()))
        older = next(s for s in history if s.metadata and s.metadata["step"] == 3)
        fork_config = graph.update_state(older.config, {"items": ["edited"]})
        fork_out = graph.invoke(None, fork_config)
        full = list(graph.get_state_history(_thread()))
        channels = ["items", "round"]
        for snapshot in full:
            fast = checkpointer.get_delta_channel_history(config=snapshot.config, channels=channels)
            slow = BaseCheckpointSaver.get_delta_channel_history(
                checkpointer, config=snapshot.config, channels=channels
            )
            assert fast == slow
        return {
            "fork": fork_out,
            "original_end": _view(graph.get_state(history[0].config)),
            "history": [_view(s) for s in full],
        }

    result = _oracle(saver, scenario)
    assert "edited" in result["fork"]["items"]
    assert "edited" not in result["original_end"]["values"]["items"]


async def test_async_delta_channel_history_equals_base_class_walk(
    asaver: AsyncPlainRedisSaver,
) -> None:
    graph = _delta_graph(asaver)
    await graph.ainvoke({"items": ["in"]}, _thread())
    history = [s async for s in graph.aget_state_history(_thread())]
    channels = ["items", "round"]
    for snapshot in history:
        fast = await asaver.aget_delta_channel_history(config=snapshot.config, channels=channels)
        slow = await BaseCheckpointSaver.aget_delta_channel_history(
            asaver, config=snapshot.config, channels=channels
        )
        assert fast == slow
    state = await graph.aget_state(_thread())
    assert len(state.values["items"]) == 1 + _DELTA_ROUNDS + 4 * (_DELTA_ROUNDS - 1)


# ---------------------------------------------------------------- 8. durability modes


@pytest.mark.parametrize("durability", ["sync", "async", "exit"])
def test_durability_mode_final_state_matches_in_memory_saver(
    saver: PlainRedisSaver, durability: Durability
) -> None:
    def scenario(checkpointer: Any) -> dict[str, Any]:
        graph = _linear_graph(checkpointer)
        out = graph.invoke({"log": ["in"]}, _thread(), durability=durability)
        out2 = graph.invoke({"log": ["again"]}, _thread(), durability=durability)
        history = list(graph.get_state_history(_thread()))
        return {
            "out": [out, out2],
            "state": _view(graph.get_state(_thread())),
            "history": [_view(s) for s in history],
        }

    result = _oracle(saver, scenario)
    assert result["state"]["values"] == {
        "log": ["in", "a0", "b1", "c2", "again", "a3", "b4", "c5"],
        "count": 6,
    }


@pytest.mark.parametrize("durability", ["sync", "async", "exit"])
def test_durability_mode_interrupt_and_resume_match_in_memory_saver(
    saver: PlainRedisSaver, durability: Durability
) -> None:
    def scenario(checkpointer: Any) -> dict[str, Any]:
        graph = _review_graph(checkpointer)
        graph.invoke({"draft": "post"}, _thread(), durability=durability)
        paused = _view(graph.get_state(_thread()))
        out = graph.invoke(Command(resume="yes"), _thread(), durability=durability)
        history = list(graph.get_state_history(_thread()))
        return {"paused": paused, "out": out, "history": [_view(s) for s in history]}

    result = _oracle(saver, scenario)
    assert result["paused"]["interrupts"] == [_QUESTION]
    assert result["out"] == _PUBLISHED


@pytest.mark.parametrize("durability", ["sync", "async", "exit"])
async def test_async_durability_mode_final_state_matches_in_memory_saver(
    asaver: AsyncPlainRedisSaver, durability: Durability
) -> None:
    async def scenario(checkpointer: Any) -> dict[str, Any]:
        graph = _linear_graph(checkpointer)
        await graph.ainvoke({"log": ["in"]}, _thread(), durability=durability)
        await graph.ainvoke({"log": ["again"]}, _thread(), durability=durability)
        history = [s async for s in graph.aget_state_history(_thread())]
        return {
            "state": _view(await graph.aget_state(_thread())),
            "history": [_view(s) for s in history],
        }

    result = await _aoracle(asaver, scenario)
    assert result["state"]["values"]["count"] == 6


# ---------------------------------------------------------------- 9. failed task, resume


def _flaky_workflow(checkpointer: Any, calls: Counter[str]) -> Any:
    @task
    def fetch(x: int) -> int:
        calls["fetch"] += 1
        return x + 1

    @task
    def flaky(x: int) -> int:
        calls["flaky"] += 1
        if calls["flaky"] == 1:
            raise RuntimeError("transient failure")
        return x * 10

    @entrypoint(checkpointer=checkpointer)
    def workflow(x: int) -> int:
        fetched = fetch(x).result()
        return flaky(fetched).result()

    return workflow


def test_functional_resume_after_failure_skips_finished_task(saver: PlainRedisSaver) -> None:
    def scenario(checkpointer: Any) -> dict[str, Any]:
        calls: Counter[str] = Counter()
        workflow = _flaky_workflow(checkpointer, calls)
        with pytest.raises(RuntimeError, match="transient failure"):
            workflow.invoke(1, _thread())
        after_failure = dict(calls)
        result = workflow.invoke(None, _thread())
        return {"after_failure": after_failure, "result": result, "calls": dict(calls)}

    assert _oracle(saver, scenario) == {
        "after_failure": {"fetch": 1, "flaky": 1},
        "result": 20,
        "calls": {"fetch": 1, "flaky": 2},
    }


async def test_async_functional_resume_after_failure_skips_finished_task(
    asaver: AsyncPlainRedisSaver,
) -> None:
    async def scenario(checkpointer: Any) -> dict[str, Any]:
        calls: Counter[str] = Counter()

        @task
        async def fetch(x: int) -> int:
            calls["fetch"] += 1
            return x + 1

        @task
        async def flaky(x: int) -> int:
            calls["flaky"] += 1
            if calls["flaky"] == 1:
                raise RuntimeError("transient failure")
            return x * 10

        @entrypoint(checkpointer=checkpointer)
        async def workflow(x: int) -> int:
            return await flaky(await fetch(x))

        with pytest.raises(RuntimeError, match="transient failure"):
            await workflow.ainvoke(1, _thread())
        after_failure = dict(calls)
        result = await workflow.ainvoke(None, _thread())
        return {"after_failure": after_failure, "result": result, "calls": dict(calls)}

    assert await _aoracle(asaver, scenario) == {
        "after_failure": {"fetch": 1, "flaky": 1},
        "result": 20,
        "calls": {"fetch": 1, "flaky": 2},
    }
