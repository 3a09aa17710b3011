"""What cutting values into content-addressed pieces (``plain_redis_saver.chunks``)
would save, before the storage redesign is built (``python -m benchmarks.chunking``).

No server: the cost phase's chatbots (the functional API's and the StateGraph
``add_messages`` one, 300-character user turns, the stand-in model's 200-character
replies) run on LangGraph's InMemorySaver, subclassed to record the serialized value of
every channel a ``put`` stores (its ``new_versions``) and of every ``put_writes``. Those
values are then replayed through :func:`chunks.split` as a client of the redesign
would: one memo per (put or writes, channel), and a set of the digests the thread's
server already holds, so a piece is sent once.

Per turn, in windows of ten turns ending at 10, 100 and 200:
- bytes the saver's calls carry today (each value whole) and chunked (every recipe,
  plus each piece the server lacks with its digest);
- bytes stored after that many turns (a memory proxy): today every value once per
  (channel, version) and per write; chunked every recipe plus each piece once (with its
  digest); each stored entry also counted ENTRY_OVERHEAD bytes;
- the same two with recipes stored as deltas, an estimate for a format not built: a
  recipe equal to one held is a reference, and one sharing a prefix of digests with the
  channel's previous recipe is a reference to it plus the rest;
- client CPU of splitting, µs per put and per put_writes call (median over the window),
  with the memo and without it (every element hashed).

A second table: a functional chatbot whose ``previous`` is a dict holding the message
list (one channel), cut with and without the one nested level, and a list of short
strings (a to-do list) under several piece sizes.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import BaseMessage, HumanMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.func import entrypoint, task
from langgraph.graph import add_messages

from plain_redis_saver import chunks
from plain_redis_saver.serde import SafeSerializer

from .cost import USER_CHARS
from .e2e import StandInChatModel, StateGraphTarget, stategraph_chatbot, sync_chatbot, user_text

MARKS = (10, 100, 200)
WINDOW = 10
#: Server bytes per stored entry beyond its field and value, assumed: a hash field in
#: Redis's hashtable encoding costs a dict entry and two string headers (~50 bytes).
#: It is what makes tiny pieces a loss, so the proxy must count it.
ENTRY_OVERHEAD = 50

Typed = tuple[str, bytes]


@dataclass
class Call:
    """One saver call of a turn: ``put`` or ``put_writes``, and its values by channel."""

    kind: str
    values: list[tuple[str, Typed]]


class RecordingSaver(InMemorySaver):
    """InMemorySaver that also keeps, per turn, the serialized values of each call."""

    def __init__(self) -> None:
        super().__init__(serde=SafeSerializer())
        self.turns: list[list[Call]] = []

    def put(self, config: Any, checkpoint: Any, metadata: Any, new_versions: Any) -> Any:
        values = checkpoint["channel_values"]
        typed = [(c, self.serde.dumps_typed(values[c])) for c in new_versions if c in values]
        self.turns[-1].append(Call("put", typed))
        return super().put(config, checkpoint, metadata, new_versions)

    def put_writes(self, config: Any, writes: Any, task_id: str, task_path: str = "") -> None:
        typed = [(c, self.serde.dumps_typed(v)) for c, v in writes]
        self.turns[-1].append(Call("put_writes", typed))
        super().put_writes(config, writes, task_id, task_path)


def dict_state_chatbot(checkpointer: Any, model: Any) -> Any:
    """The functional chatbot keeping ``{"messages": [...], "turns": n}`` as its state."""

    @task
    def call_model(messages: list[BaseMessage]) -> BaseMessage:
        return model.invoke(messages)

    @entrypoint(checkpointer=checkpointer)
    def chatbot(inputs: list[BaseMessage], *, previous: dict[str, Any] | None) -> Any:
        state = previous or {"messages": [], "turns": 0}
        history = add_messages(state["messages"], inputs)
        response = call_model(history).result()
        saved = {"messages": add_messages(history, [response]), "turns": state["turns"] + 1}
        return entrypoint.final(value=response, save=saved)

    return chatbot


def record(style: str, turns: int) -> list[list[Call]]:
    saver = RecordingSaver()
    model = StandInChatModel()
    config = {"configurable": {"thread_id": "chunking"}}
    invoke: Callable[[list[BaseMessage], Any], Any]
    if style == "stategraph":
        invoke = StateGraphTarget(stategraph_chatbot(saver, model), saver).invoke
    else:
        bot = (sync_chatbot if style == "functional" else dict_state_chatbot)(saver, model)
        invoke = bot.invoke
    for turn in range(turns):
        saver.turns.append([])
        invoke([HumanMessage(content=user_text(turn, USER_CHARS))], config)
    return saver.turns


@dataclass
class TurnCost:
    sent_today: int = 0
    sent_chunked: int = 0
    stored_today: int = 0  # cumulative
    stored_chunked: int = 0  # cumulative
    #: Estimates for recipes stored as deltas (see ``delta_recipe_size``).
    sent_delta: int = 0
    stored_delta: int = 0  # cumulative
    split_us: dict[str, list[float]] = field(default_factory=dict)


def delta_recipe_size(recipe: bytes, old: tuple[bytes, ...], new: tuple[bytes, ...]) -> int:
    """Size of ``recipe`` written as a reference to the channel's previous recipe plus
    what follows the digests they share (an estimate for a format not built yet)."""
    shared = 0
    for a, b in zip(old, new, strict=False):
        if a != b:
            break
        shared += 1
    return len(recipe) - shared * chunks.DIGEST_SIZE + (chunks.DIGEST_SIZE if shared else 0)


def replay(
    turns: list[list[Call]], policy: chunks.Policy = chunks.DEFAULT_POLICY, memo: bool = True
) -> list[TurnCost]:
    memos: dict[tuple[str, str], chunks.Memo] = {}
    held: set[bytes] = set()  # digests the server holds
    stored_today = stored_chunked = stored_delta = 0
    recipes: set[bytes] = set()  # recipe digests held (content-addressed recipes)
    out = []
    for calls in turns:
        cost = TurnCost()
        for call in calls:
            spent = 0
            for channel, typed in call.values:
                key = (call.kind, channel)
                start = time.perf_counter_ns()
                cut = chunks.split(typed, memos.get(key) if memo else None, policy)
                spent += time.perf_counter_ns() - start
                old = memos.get(key)
                memos[key] = cut.memo
                fresh = {d: p for d, p in cut.pieces.items() if d not in held}
                # A memo's pieces are held already; a piece of an older version may be too.
                held.update(fresh)
                size = sum(chunks.DIGEST_SIZE + len(p) for p in fresh.values())
                cost.sent_today += len(typed[1])
                cost.sent_chunked += len(cut.recipe) + size
                stored_today += len(typed[1]) + ENTRY_OVERHEAD
                stored_chunked += len(cut.recipe) + size + ENTRY_OVERHEAD * (1 + len(fresh))
                name = chunks.digest(cut.recipe)
                if name in recipes:  # the same value again (a write, then its put)
                    delta = chunks.DIGEST_SIZE
                else:
                    recipes.add(name)
                    old_digests = old.digests if old is not None else ()
                    delta = delta_recipe_size(cut.recipe, old_digests, cut.memo.digests)
                    stored_delta += delta + ENTRY_OVERHEAD
                cost.sent_delta += delta + size
                stored_delta += size + ENTRY_OVERHEAD * len(fresh)
            cost.split_us.setdefault(call.kind, []).append(spent / 1000)
        cost.stored_today, cost.stored_chunked = stored_today, stored_chunked
        cost.stored_delta = stored_delta
        out.append(cost)
    return out


def _median(samples: Iterable[float]) -> float:
    values = list(samples)
    return statistics.median(values) if values else float("nan")


def window(costs: list[TurnCost], mark: int) -> dict[str, float]:
    turns = costs[mark - WINDOW : mark]
    row = {
        "sent_today": statistics.mean(c.sent_today for c in turns),
        "sent_chunked": statistics.mean(c.sent_chunked for c in turns),
        "sent_delta": statistics.mean(c.sent_delta for c in turns),
        "stored_today": costs[mark - 1].stored_today,
        "stored_chunked": costs[mark - 1].stored_chunked,
        "stored_delta": costs[mark - 1].stored_delta,
    }
    for kind in ("put", "put_writes"):
        row[f"{kind}_us"] = _median(us for c in turns for us in c.split_us.get(kind, []))
    return row


def _kb(n: float) -> str:
    return f"{n / 1000:,.1f}"


def main_table(turns: int) -> list[str]:
    lines = [
        "| chatbot | turns | sent/turn KB: today / chunked / delta recipes "
        "| stored KB: today / chunked / delta recipes "
        "| split µs/put (memo / none) | split µs/put_writes (memo / none) |",
        "|---|---|---|---|---|---|",
    ]
    for style in ("functional", "stategraph"):
        recorded = record(style, turns)
        with_memo = replay(recorded)
        without = replay(recorded, memo=False)
        for mark in (m for m in MARKS if m <= turns):
            a, b = window(with_memo, mark), window(without, mark)
            lines.append(
                f"| {style} | {mark - WINDOW + 1}–{mark} | {_kb(a['sent_today'])} / "
                f"{_kb(a['sent_chunked'])} / {_kb(a['sent_delta'])} "
                f"| {_kb(a['stored_today'])} / {_kb(a['stored_chunked'])} / "
                f"{_kb(a['stored_delta'])} | {a['put_us']:.1f} / {b['put_us']:.1f} "
                f"| {a['put_writes_us']:.1f} / {b['put_writes_us']:.1f} |"
            )
    return lines


def todo_turns(turns: int, chars: int) -> list[list[Call]]:
    """A list channel of short strings, one appended per turn (a to-do list)."""
    serde = SafeSerializer()
    items: list[str] = []
    out = []
    for turn in range(turns):
        items.append(user_text(turn, chars))
        out.append([Call("put", [("todo", serde.dumps_typed(items))])])
    return out


def choices_table(turns: int) -> list[str]:
    lines = [
        f"| workload, {turns} turns | policy | sent/turn at the end KB | stored KB "
        "| split µs/put (median, last 10) |",
        "|---|---|---|---|---|",
    ]
    dict_state = record("dict", turns)
    for name, policy in (
        ("nested level cut (default)", chunks.DEFAULT_POLICY),
        ("top level only", chunks.Policy(max_depth=0)),
    ):
        row = window(replay(dict_state, policy), turns)
        lines.append(
            f"| functional, dict state | {name} | {_kb(row['sent_chunked'])} "
            f"| {_kb(row['stored_chunked'])} | {row['put_us']:.1f} |"
        )
    for chars in (20, 60):
        todo = todo_turns(turns, chars)
        whole = window(replay(todo, chunks.Policy(piece_min=10**9)), turns)
        lines.append(
            f"| to-do list of {chars + 9}-char strings | whole (today) "
            f"| {_kb(whole['sent_today'])} | {_kb(whole['stored_today'])} | – |"
        )
        for piece_min in (16, 32, 64, 128, 256):
            row = window(replay(todo, chunks.Policy(piece_min=piece_min)), turns)
            lines.append(
                f"| to-do list of {chars + 9}-char strings | piece_min={piece_min} "
                f"| {_kb(row['sent_chunked'])} | {_kb(row['stored_chunked'])} "
                f"| {row['put_us']:.1f} |"
            )
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=max(MARKS))
    args = parser.parse_args(argv)
    load = os.getloadavg()
    print(f"load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, {os.cpu_count()} CPUs")
    print("\n".join(main_table(args.turns)))
    print()
    print("\n".join(choices_table(min(args.turns, 100))))
    load = os.getloadavg()
    print(f"load average after: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


if __name__ == "__main__":
    main()
