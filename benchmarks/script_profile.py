"""Where the server's time goes in a chatbot turn, script by script.

``python -m benchmarks.script_profile [--turns 100] [--whole-values]`` (about 30 s):
an embedded Valkey with ``slowlog-log-slower-than 0`` records the execution time of
every command; the two benchmark chatbots (functional API and StateGraph, the cost
phase's 300-character turns) run against this saver, and the log is read back per turn
window and grouped by the script each ``EVALSHA`` ran. The times are the server's own
measure of each command's execution (not the request's parsing or reply writing, which
``INFO cpu`` in the cost phase adds), so they show which script to work on; they are
not comparable across machines. ``--whole-values`` stores values whole (schema 1) for
comparison.
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
from plain_redis_saver.scripts import ALL_SCRIPTS

from .cost import USER_CHARS as COST_USER_CHARS
from .e2e import StandInChatModel, stategraph_chatbot, sync_chatbot, user_text

WINDOWS = ((1, 10), (91, 100))


def _commands(client: Any) -> list[tuple[str, int]]:
    names = {script.sha.encode(): script.name for script in ALL_SCRIPTS}
    out = []
    for entry in reversed(client.slowlog_get(1_000_000)):
        args = entry["command"].split(b" ") if isinstance(entry["command"], bytes) else []
        first = args[0].upper() if args else b"?"
        name = first.decode()
        if first == b"EVALSHA" and len(args) > 1:
            name = names.get(args[1], "EVALSHA ?")
        out.append((name, int(entry["duration"])))
    return out


def profile(turns: int, whole_values: bool) -> dict[str, dict[str, dict[str, float]]]:
    result: dict[str, dict[str, dict[str, float]]] = {}
    with EmbeddedServer(extra_args=["--slowlog-max-len", "1000000"]) as server:
        admin = redis.Redis.from_url(server.url)
        saver = PlainRedisSaver(
            redis.Redis.from_url(server.url),
            key_prefix="prof",
            compose_values=not whole_values,
        )
        saver.setup()
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
                    admin.config_set("slowlog-log-slower-than", 0)
                    admin.slowlog_reset()
                message = HumanMessage(content=user_text(turn, COST_USER_CHARS))
                if style == "functional":
                    chatbot.invoke([message], config)
                else:
                    chatbot.invoke({"messages": [message]}, config)
                if window and turn == window[1]:
                    admin.config_set("slowlog-log-slower-than", -1)
                    per: dict[str, float] = defaultdict(float)
                    calls: dict[str, float] = defaultdict(float)
                    n = window[1] - window[0] + 1
                    for name, micros in _commands(admin):
                        if name in ("CONFIG", "SLOWLOG"):
                            continue
                        per[name] += micros / n
                        calls[name] += 1 / n
                    windows[f"turns {window[0]}-{window[1]}"] = {
                        **{f"{k} us": round(v, 1) for k, v in sorted(per.items())},
                        **{f"{k} calls": round(v, 2) for k, v in sorted(calls.items())},
                        "total us": round(sum(per.values()), 1),
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
