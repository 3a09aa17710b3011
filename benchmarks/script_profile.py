"""Where the server's time goes in a chatbot turn, saver call by saver call.

``python -m benchmarks.script_profile [--turns 100] [--whole-values]`` (about 30 s):
the two benchmark chatbots (functional API and StateGraph, the cost phase's
300-character turns) run against this saver on an embedded Valkey, and every saver call
is bracketed by two reads of ``INFO commandstats``: the growth of ``EVALSHA``'s total
time is the server's own measure of the script's execution, commands it ran included
(not the request's parsing or the reply's writing, which the cost phase's ``INFO cpu``
adds). It shows which call to work on; the numbers are not comparable across machines.
``--whole-values`` stores values whole (schema 1) for comparison.
"""

from __future__ import annotations

import argparse
import uuid
from collections import defaultdict
from typing import Any

import redis
from langchain_core.messages import HumanMessage

from plain_redis_saver import PlainRedisSaver
from plain_redis_saver.embedded import EmbeddedServer

from .cost import USER_CHARS as COST_USER_CHARS
from .e2e import StandInChatModel, stategraph_chatbot, sync_chatbot, user_text

WINDOWS = ((1, 10), (91, 100))


CALLS = ("get_tuple", "put", "put_writes")


class _Meter:
    """Wraps the saver's calls to add each one's EVALSHA time to ``per`` and ``calls``."""

    def __init__(self, saver: Any, admin: Any) -> None:
        self.per: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self.on = False
        for name in CALLS:
            setattr(saver, name, self._wrap(name, getattr(saver, name), admin))

    def _wrap(self, name: str, call: Any, admin: Any) -> Any:
        def metered(*args: Any, **kwargs: Any) -> Any:
            if not self.on:
                return call(*args, **kwargs)
            before = _evalsha_usec(admin)
            try:
                return call(*args, **kwargs)
            finally:
                self.per[name] += _evalsha_usec(admin) - before
                self.calls[name] += 1

        return metered


def _evalsha_usec(admin: Any) -> float:
    return float(admin.info("commandstats").get("cmdstat_evalsha", {}).get("usec", 0))


def profile(turns: int, whole_values: bool) -> dict[str, dict[str, dict[str, float]]]:
    result: dict[str, dict[str, dict[str, float]]] = {}
    with EmbeddedServer() as server:
        admin = redis.Redis.from_url(server.url)
        saver = PlainRedisSaver(
            redis.Redis.from_url(server.url),
            key_prefix="prof",
            compose_values=not whole_values,
        )
        saver.setup()
        meter = _Meter(saver, admin)
        model = StandInChatModel()
        for style, chatbot in (
            ("functional", sync_chatbot(saver, model)),
            ("stategraph", stategraph_chatbot(saver, model)),
        ):
            config = {"configurable": {"thread_id": f"{style}-{uuid.uuid4().hex[:6]}"}}
            windows: dict[str, dict[str, float]] = {}
            for turn in range(1, turns + 1):
                window = next((w for w in WINDOWS if w[0] <= turn <= w[1]), None)
                if window and turn == window[0]:
                    meter.per.clear()
                    meter.calls.clear()
                meter.on = window is not None
                message = HumanMessage(content=user_text(turn, COST_USER_CHARS))
                if style == "functional":
                    chatbot.invoke([message], config)
                else:
                    chatbot.invoke({"messages": [message]}, config)
                if window and turn == window[1]:
                    n = window[1] - window[0] + 1
                    windows[f"turns {window[0]}-{window[1]}"] = {
                        **{f"{k} us": round(v / n, 1) for k, v in sorted(meter.per.items())},
                        **{f"{k} calls": round(v / n, 2) for k, v in sorted(meter.calls.items())},
                        "total us": round(sum(meter.per.values()) / n, 1),
                    }
            result[style] = windows
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.script_profile")
    parser.add_argument("--turns", type=int, default=100)
    parser.add_argument("--whole-values", action="store_true")
    args = parser.parse_args(argv)
    for style, windows in profile(args.turns, args.whole_values).items():
        for label, row in windows.items():
            print(f"{style} {label}: total {row['total us']} us per turn")
            names = sorted({k.rsplit(" ", 1)[0] for k in row if k.endswith(" calls")})
            for name in names:
                print(f"  {name:24s} {row[name + ' calls']:6.2f} calls {row[name + ' us']:8.1f} us")


if __name__ == "__main__":
    main()
