"""Runs a graph whose node is cached, and a functional-API task that is cached, on
PlainRedisCache; prints how many times each body ran in this process. Run twice with
the same REDIS_URL and KEY_PREFIX: the second process finds both results cached."""

from __future__ import annotations

import os
import sys

from langgraph.func import entrypoint, task
from langgraph.graph import END, START, StateGraph
from langgraph.types import CachePolicy
from typing_extensions import TypedDict

from plain_redis_saver import PlainRedisCache

runs = {"node": 0, "task": 0}


class State(TypedDict):
    n: int
    doubled: int


def double(state: State) -> dict[str, int]:
    runs["node"] += 1
    return {"doubled": state["n"] * 2}


@task(cache_policy=CachePolicy(ttl=600))
def square(n: int) -> int:
    runs["task"] += 1
    return n * n


def main() -> None:
    with PlainRedisCache.from_conn_string(
        os.environ["REDIS_URL"], key_prefix=os.environ["KEY_PREFIX"]
    ) as cache:
        builder = StateGraph(State)
        builder.add_node("double", double, cache_policy=CachePolicy(ttl=600))
        builder.add_edge(START, "double")
        builder.add_edge("double", END)
        graph = builder.compile(cache=cache)
        assert graph.invoke({"n": 21})["doubled"] == 42

        @entrypoint(cache=cache)
        def workflow(n: int) -> int:
            return square(n).result()

        assert workflow.invoke(12) == 144
    print(f"node ran {runs['node']}, task ran {runs['task']}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
