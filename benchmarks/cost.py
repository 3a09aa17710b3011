"""What a saver costs the server: CPU, bytes and memory, per operation and per chatbot turn.

Sync, one call at a time, savers interleaved round by round (the order rotates):

- operations: per round, one batch of ``put``, ``put_writes``, ``get_tuple`` (latest and
  by id) and ``list(limit=10)`` per saver, on threads of a few checkpoints of the
  benchmark's workload, and a batch of plain ``GET``s of 1 KB as a reference;
- turns: per round, one conversation per saver and chatbot (the functional API's
  ``previous`` and a StateGraph's ``MessagesState``), 300-character user messages and
  the stand-in model's 200-character replies, with the whole history kept. Turns 1–10
  and 91–100 are measured as windows; the requests of turns 10 and 100 are counted on
  their own; the server memory of the thread is read at 10, 100 and 200 turns.

Every batch and window is measured by :class:`~.measure.ServerWindow`: the server's CPU
(INFO cpu), time inside commands (INFO commandstats) and bytes in and out (INFO stats)
after minus before, minus an idle interval of the same wall time. The client counts
round trips, commands and request bytes on the wire. An ElastiCache Serverless
processing-unit (ECPU) estimate is derived from them (:func:`ecpu`).
"""

from __future__ import annotations

import contextlib
import itertools
import random
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis

from .context import Context
from .driver import Plan, run_sync
from .e2e import (
    MESSAGES,
    PREVIOUS,
    StandInChatModel,
    StateGraphTarget,
    Target,
    conversation,
    read_back,
    stategraph_chatbot,
    sync_chatbot,
)
from .measure import (
    OpRecord,
    ServerWindow,
    WireCounter,
    count_wire,
    delete_keys,
    memory_usage,
    scan_keys,
)
from .ops import History, plan_ops, plan_put, plan_put_writes
from .savers import OursMaxOneAdapter, SaverAdapter
from .workload import Entry, ThreadLog

#: Operations measured (each a batch of ``Sizes.cost_batch`` calls).
COST_OPS = ("put", "put_writes", "get_latest", "get_by_id", "list")
#: The reference batch: a plain GET of a 1 KB value, the command ECPUs are defined by.
REFERENCE = "get_1k"
REFERENCE_VALUE = b"r" * 1000
#: The floor of this saver's put: a script that returns at once, sent the keys and
#: arguments of one of its puts. Any put made of one atomic request (a script, or
#: MULTI/EXEC) pays at least this to receive and parse them.
FLOOR = "put_floor"
FLOOR_SCRIPT = "return 1"
#: Turn windows measured in every conversation, 1-based and inclusive.
WINDOWS = ((1, 10), (91, 100))
#: Characters of text in each user message of the cost phase's conversations.
USER_CHARS = 300
#: Untimed turns per saver and chatbot before the conversations.
WARM_UP_TURNS = 3
#: Threads the operations run on, per saver.
COST_THREADS = 4

# ---- the ECPU estimate
# ElastiCache Serverless bills requests in ECPUs: 1 ECPU per KB transferred for simple
# reads and writes (a command costs at least 1), and for commands that need more vCPU
# time the higher of the data transferred and the vCPU time, whose scale AWS does not
# publish (benchmarks/README.md cites the pricing page).
#: Bytes in the KB of the ECPU rule.
ECPU_KB = 1024
#: Assumed server CPU of one ECPU: about what a plain GET or SET of up to 1 KB costs a
#: Valkey process on a loopback connection (reading, parsing, executing, replying),
#: which the rule bills as 1 ECPU. The run measures that GET beside the savers.
ECPU_CPU_US = 20.0


def ecpu(
    commands: float, bytes_moved: float, cpu_us: float | None, cpu_us_per_ecpu: float = ECPU_CPU_US
) -> float:
    """ECPUs of a batch under the published rule, per batch rather than per command: the
    higher of one per command, one per KB in and out, and its server CPU in units of
    ``cpu_us_per_ecpu``. Per command the bill is at least this much."""
    units = max(float(commands), bytes_moved / ECPU_KB)
    if cpu_us is not None:
        units = max(units, cpu_us / cpu_us_per_ecpu)
    return units


@dataclass(frozen=True)
class ChatStyle:
    key: str
    label: str
    #: The channel that holds the saved conversation.
    channel: str

    def target(self, saver: Any, model: Any) -> Any:
        if self.key == "functional":
            return Target(sync_chatbot(saver, model), saver)
        return StateGraphTarget(stategraph_chatbot(saver, model), saver)


STYLES = (
    ChatStyle("functional", "functional chatbot", PREVIOUS),
    ChatStyle("stategraph", "StateGraph chatbot", MESSAGES),
)


def chatbot(style: str, saver: Any, model: Any) -> Any:
    """The chatbot of ``style`` (a key of :data:`STYLES`) on ``saver``: ``invoke`` takes
    the new messages, whichever the graph style."""
    return next(s for s in STYLES if s.key == style).target(saver, model)


def _measurement(window: ServerWindow, wire: WireCounter, calls: int) -> dict[str, Any]:
    """Per call: the server's work (None where not measured) and what the client sent."""
    per: dict[str, Any] = {
        "calls": calls,
        "wall_us": round(window.wall_ns / 1000 / calls, 1),
        "round_trips": round(wire.round_trips / calls, 2),
        "commands": round(sum(wire.commands.values()) / calls, 2),
        "request_bytes": round(wire.bytes_sent / calls, 1),
    }
    work = window.work
    if work is not None:
        main = work.main_cpu_us
        per.update(
            cpu_us=round(work.cpu_us / calls, 1),
            main_cpu_us=None if main is None else round(main / calls, 1),
            command_us=round(work.command_us / calls, 1),
            bytes_in=round(work.net_in / calls, 1),
            bytes_out=round(work.net_out / calls, 1),
        )
        per["ecpu"] = round(
            ecpu(per["commands"], per["bytes_in"] + per["bytes_out"], per["cpu_us"]), 2
        )
    return per


def script_arguments(saver: Any, call: Callable[[], Any]) -> tuple[int, tuple[Any, ...]] | None:
    """The EVALSHA arguments (numkeys, keys and arguments) of the last script call that
    ``call()`` makes through ``saver``'s standalone client, or None when it sent none."""
    client = getattr(saver, "client", None)
    if client is None or not hasattr(client, "evalsha"):
        return None
    seen: list[tuple[int, tuple[Any, ...]]] = []
    real = client.evalsha

    def spy(sha: str, numkeys: int, *args: Any) -> Any:
        seen.append((numkeys, args))
        return real(sha, numkeys, *args)

    client.evalsha = spy
    try:
        call()
    finally:
        del client.evalsha
    return seen[-1] if seen else None


def put_arguments(
    saver: Any, log: ThreadLog, records: dict[str, OpRecord]
) -> tuple[int, tuple[Any, ...]] | None:
    """The EVALSHA arguments (numkeys, keys and arguments) of one put of this saver on
    ``log``'s thread (a standalone client), or None when it sent none."""
    return script_arguments(
        saver, lambda: run_sync(saver, plan_put(log, records), records, timed=False)
    )


class CostPhase:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.sizes = ctx.sizes
        self.model = StandInChatModel()
        self.rng = random.Random(4321)
        self.task_ids = itertools.count(10_000_000)
        #: Savers of the conversations: the compared ones and this saver with
        #: max_checkpoints=1 (memory of a saver that keeps only the newest checkpoint).
        self.adapters: dict[str, SaverAdapter] = dict(ctx.adapters)
        self.extra: dict[str, SaverAdapter] = {}
        if "ours" in ctx.adapters:
            self.extra[OursMaxOneAdapter.key] = OursMaxOneAdapter(ctx.url, ctx.run)
            self.adapters.update(self.extra)
        #: ops[saver][op] -> one measurement per round
        self.ops: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(
            lambda: defaultdict(list)
        )
        #: turns[style][saver] -> one conversation per round
        self.turns: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(
            lambda: defaultdict(list)
        )
        self.records: dict[str, dict[str, OpRecord]] = defaultdict(lambda: defaultdict(OpRecord))
        #: (numkeys, keys and arguments) of one of this saver's puts, for the floor batch.
        self.floor_args: tuple[int, tuple[Any, ...]] | None = None

    # ---- progress and cleanup

    def units(self) -> int:
        rounds = self.sizes.cost_rounds
        in_server = sum(a.in_server for a in self.ctx.adapters.values())
        conversations = self.sizes.cost_conversations * len(STYLES) * len(self.adapters)
        return in_server + rounds + conversations

    def _tick(self, text: str) -> None:
        self.ctx.progress.set_description_str(text)
        self.ctx.progress.update(1)

    def cleanup_patterns(self) -> list[str]:
        return [p for a in self.extra.values() for p in a.cleanup_patterns()]

    def close(self) -> None:
        for adapter in self.extra.values():
            delete_keys(self.ctx.admin, adapter.cleanup_patterns())
            adapter.close()
        self.ctx.admin.delete(self._reference_key)

    @property
    def _reference_key(self) -> str:
        return f"{self.ctx.run}-cost-ref"

    # ---- the phase

    def run(self) -> dict[str, Any]:
        self._operations()
        self._conversations()
        return self.summary()

    # ---- operations

    def _operations(self) -> None:
        ctx = self.ctx
        keys = [k for k, a in ctx.adapters.items() if a.in_server]
        hist: dict[str, History] = {}
        for key in keys:
            self._tick(f"cost: building {COST_THREADS}x{self.sizes.cost_history} ({key})")
            saver = ctx.adapters[key].sync()
            logs = [ThreadLog(ctx.thread(f"cost-h-{j}")) for j in range(COST_THREADS)]
            try:
                for log in logs:
                    for _ in range(self.sizes.cost_history):
                        plan = plan_put(log, self.records[key])
                        run_sync(saver, plan, self.records[key], timed=False)
            except Exception as exc:  # reported with the operations' errors
                self.records[key]["put"].error(exc)
                continue
            hist[key] = History(logs)
            if key == "ours":
                self.floor_args = put_arguments(saver, logs[0], self.records[key])
            warm = {op: 3 for op in ("put", "get_latest", "get_by_id", "list")}
            plan = plan_ops(hist[key], warm, self.records[key], self.rng, self.task_ids)
            run_sync(saver, plan, self.records[key], timed=False)
        client = redis.Redis.from_url(ctx.url)
        try:
            client.set(self._reference_key, REFERENCE_VALUE)
            order = [*hist, REFERENCE, *([FLOOR] if self.floor_args else [])]
            for round_no in range(self.sizes.cost_rounds):
                for key in ctx.order(round_no, order):
                    if key == REFERENCE:
                        self._reference_batch(client)
                    elif key == FLOOR:
                        self._floor_batch(client)
                    else:
                        self._op_batches(key, hist[key])
                self._tick(f"cost: operations, round {round_no + 1}/{self.sizes.cost_rounds}")
        finally:
            client.close()
        for key, history in hist.items():
            for log in history.logs:
                self._drop_thread(ctx.adapters[key], log.thread_id)

    def _measure(self, key: str, op: str, saver: Any, plan: Plan) -> None:
        records = self.records[key]
        with ServerWindow(self.ctx.admin) as window, count_wire() as wire:
            run_sync(saver, plan, records, timed=False)
        self.ops[key][op].append(_measurement(window, wire, self.sizes.cost_batch))

    def _op_batches(self, key: str, history: History) -> None:
        saver = self.ctx.adapters[key].sync()
        n = self.sizes.cost_batch
        records = self.records[key]
        done: list[tuple[ThreadLog, Entry]] = []
        self._measure(key, "put", saver, self._puts(history, n, records, done))
        self._measure(key, "put_writes", saver, self._writes(done, records))
        for op in ("get_latest", "get_by_id", "list"):
            plan = plan_ops(history, {op: n}, records, self.rng, self.task_ids)
            self._measure(key, op, saver, plan)

    @staticmethod
    def _puts(
        history: History,
        n: int,
        records: dict[str, OpRecord],
        done: list[tuple[ThreadLog, Entry]],
    ) -> Plan:
        for _ in range(n):
            log = history.writer()
            entry = yield from plan_put(log, records)
            if entry is not None:
                done.append((log, entry))

    def _writes(self, done: list[tuple[ThreadLog, Entry]], records: dict[str, OpRecord]) -> Plan:
        for log, entry in done:
            yield from plan_put_writes(log, entry, records, self.task_ids)

    def _floor_batch(self, client: Any) -> None:
        assert self.floor_args is not None
        numkeys, args = self.floor_args
        sha = client.script_load(FLOOR_SCRIPT)
        n = self.sizes.cost_batch
        with ServerWindow(self.ctx.admin) as window, count_wire() as wire:
            for _ in range(n):
                client.evalsha(sha, numkeys, *args)
        self.ops[FLOOR]["evalsha"].append(_measurement(window, wire, n))

    def _reference_batch(self, client: Any) -> None:
        n = self.sizes.cost_batch
        with ServerWindow(self.ctx.admin) as window, count_wire() as wire:
            for _ in range(n):
                client.get(self._reference_key)
        self.ops[REFERENCE]["get"].append(_measurement(window, wire, n))

    # ---- conversations

    def _conversations(self) -> None:
        keys = list(self.adapters)
        for style in STYLES:  # the first turns of a new graph and saver are slow
            for key in keys:
                self._warm_up(style, key)
        for round_no in range(self.sizes.cost_conversations):
            for i, style in enumerate(STYLES):
                for key in self.ctx.order(round_no + i, keys):
                    self.turns[style.key][key].append(self._conversation(style, key, round_no))
                    self._tick(f"cost: {style.key} chatbot, round {round_no + 1} ({key})")

    def _warm_up(self, style: ChatStyle, key: str) -> None:
        adapter = self.adapters[key]
        saver = adapter.sync()
        tid = self.ctx.thread(f"cost-{style.key}-warm")
        recs = {"turn": self.records[key][f"{style.key} chatbot"]}
        plan = conversation(tid, WARM_UP_TURNS, recs, verify=False, user_chars=USER_CHARS)
        run_sync(style.target(saver, self.model), plan, recs, timed=False)
        self._drop_thread(adapter, tid)

    def _drop_thread(self, adapter: SaverAdapter, tid: str) -> None:
        with contextlib.suppress(Exception):  # a failed delete leaves keys: removed below
            adapter.sync().delete_thread(tid)
        if adapter.in_server:
            delete_keys(self.ctx.admin, adapter.thread_patterns(tid))

    def _conversation(self, style: ChatStyle, key: str, round_no: int) -> dict[str, Any]:
        ctx = self.ctx
        adapter = self.adapters[key]
        saver = adapter.sync()
        target = style.target(saver, self.model)
        tid = ctx.thread(f"cost-{style.key}-{round_no}")
        record = self.records[key][f"{style.key} chatbot"]
        recs = {"turn": record}
        admin = ctx.admin if adapter.in_server else None
        memory_turns = sorted(self.sizes.cost_memory_turns)
        out: dict[str, Any] = {"windows": {}, "request_bytes": {}, "memory": {}}
        done = 0

        def turns(upto: int) -> bool:
            """Turns done+1..upto; False if one raised (the conversation stops there)."""
            nonlocal done
            errors = record.errors
            plan = conversation(tid, upto, recs, verify=False, first=done, user_chars=USER_CHARS)
            run_sync(target, plan, recs, timed=False)
            done = upto
            return record.errors == errors

        def advance(upto: int) -> bool:
            """Unmeasured turns up to ``upto``, reading the memory at each mark passed."""
            for mark in [m for m in memory_turns if done <= m <= upto] + [upto]:
                if done < mark and not turns(mark):
                    return False
                if mark in memory_turns and str(mark) not in out["memory"]:
                    out["memory"][str(mark)] = self._thread_memory(adapter, tid)
            return True

        ok = True
        for lo, hi in WINDOWS:
            if not (ok := advance(lo - 1)):
                break
            with ServerWindow(admin) as window, count_wire() as wire:
                ok = turns(hi - 1)
                sent = wire.bytes_sent
                wire.bytes_sent = 0
                ok = ok and turns(hi)
                out["request_bytes"][str(hi)] = wire.bytes_sent
                wire.bytes_sent += sent
            if not ok:
                break
            out["windows"][f"{lo}-{hi}"] = _measurement(window, wire, hi - lo + 1)
        if ok:
            ok = advance(max(memory_turns))
        if ok:
            check = read_back(tid, done, recs, style.channel, USER_CHARS)
            run_sync(target, check, recs, timed=False)
        out["turns"] = done
        self._drop_thread(adapter, tid)
        return out

    def _thread_memory(self, adapter: SaverAdapter, tid: str) -> dict[str, Any] | None:
        if not adapter.in_server:
            return None
        keys = scan_keys(self.ctx.admin, adapter.thread_patterns(tid))
        return {"bytes": memory_usage(self.ctx.admin, keys), "keys": len(keys)}

    # ---- results

    def summary(self) -> dict[str, Any]:
        errors: dict[str, dict[str, Any]] = {}
        for key, by_where in self.records.items():
            for where, rec in by_where.items():
                if rec.errors or rec.wrong:
                    errors.setdefault(key, {})[where] = rec.summary()
        return {
            "ecpu_cpu_us": ECPU_CPU_US,
            "ecpu_kb": ECPU_KB,
            "user_chars": USER_CHARS,
            "windows": [f"{lo}-{hi}" for lo, hi in WINDOWS],
            "memory_turns": list(self.sizes.cost_memory_turns),
            "labels": {k: a.label for k, a in self.adapters.items()},
            "in_server": {k: a.in_server for k, a in self.adapters.items()},
            "styles": {s.key: s.label for s in STYLES},
            "ops": {k: dict(v) for k, v in self.ops.items()},
            "turns": {s: dict(v) for s, v in self.turns.items()},
            "errors": errors,
        }
