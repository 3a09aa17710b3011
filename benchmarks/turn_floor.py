"""What a chatbot turn costs before a saver does any work: the floor under issue 12's
per-turn targets.

``python -m benchmarks.turn_floor [--turns 100] [--rounds 5]`` (about 3 minutes; the AWS
saver needs ``pip install '.[bench-peers]'``). Two embedded Valkey servers; the same
chatbots, 300-character user messages and 200-character replies as the cost phase.

**Server CPU per turn** (turns 1–10 and 91–100, :class:`~.measure.ServerWindow` on the
measured server: ``INFO cpu`` after minus before, minus an idle interval of the same wall
time), for

- ``ours``: this saver on the measured server;
- ``requests only``: this saver on the other server, each of its requests sent again to
  the measured server as ``EVALSHA`` of ``return 1`` with the same keys and arguments
  (:class:`Mirror`). That is what the turn's requests cost the server to receive,
  parse, enter a script and answer, before any work: the floor of any saver that, like
  this one, makes one atomic request per call. (The mirror's requests carry exactly the
  bytes this saver sends; the Python work between them is this saver's and one more
  request's, so the measured server runs as cold as under the saver itself.)
- ``lean scripts`` and ``plain-command writes``: the same mirror, sending the lower
  bounds of :mod:`.lean_bounds` instead: scripts that do only the essential writes and
  reads, and writes as transactions of plain commands with no Lua at all.
- ``uncounted scripts``: the same mirror, sending the writes of the design in
  ``benchmarks/COLLECTION.md``: the lean writes with every check that design keeps
  (the parent check, never replacing a value or write, the generation, the writes mark,
  the namespace's checkpoint count, the expiry look) and no reference count.
- ``aws``: the AWS saver on the measured server.

**Turns per second** (sync, one turn at a time, whole conversations of ``--turns``), for
the AWS saver, this saver, InMemorySaver, and :class:`RoundTripSaver`: InMemorySaver
plus one request per saver call, either ``EVALSHA`` of ``return 1`` carrying as many
bytes as this saver's request for that call (measured in a first, unrecorded
conversation), or a ``PING``. Those are the most any saver making one atomic request (or
one round trip) per call can reach: no client work beyond InMemorySaver's, none on the
server.

Savers and variants alternate within each round, their order rotating. The numbers are
not comparable across machines; the ratios to the AWS saver within one run are.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

import redis
from langchain_core.messages import HumanMessage
from langgraph.checkpoint.memory import InMemorySaver

from plain_redis_saver import PlainRedisSaver, scripts
from plain_redis_saver.embedded import EmbeddedServer

from . import lean_bounds
from .cost import USER_CHARS, chatbot
from .e2e import StandInChatModel, user_text
from .measure import ServerWindow
from .savers import AwsValkeyAdapter

WINDOWS = ((1, 10), (91, 100))
STYLES = ("functional", "stategraph")
AWS = "aws"
OURS = "ours"
FLOOR = "requests only"
LEAN = "lean scripts"
PLAIN = "plain-command writes"
UNCOUNTED = "uncounted scripts"
PING_SAVER = "InMemorySaver + 1 PING per call"
NOOP_SAVER = "InMemorySaver + 1 no-op script per call"
MEMORY = "InMemorySaver"
NOOP = "return 1"


#: This saver's scripts by SHA1.
SCRIPT_NAMES = {script.sha: script.name for script in scripts.ALL_SCRIPTS}


class Mirror:
    """Wraps a redis-py client's ``evalsha``: each script call runs as usual, then what
    stands for it under ``mode`` is sent to ``shadow``:

    - :data:`FLOOR`: ``EVALSHA`` of ``return 1`` with the same keys and arguments (what
      receiving the request costs a server that does no work);
    - :data:`LEAN`: the lean script of :mod:`.lean_bounds` for a put, put_writes or get
      (a put or put_writes gets one more argument: the digests it references unsent);
    - :data:`PLAIN`: a put or put_writes as a transaction of plain writes, a get as the
      lean script;
    - :data:`UNCOUNTED`: the uncounted design's script of :mod:`.lean_bounds` (the lean
      writes with every check that design keeps; its get is the lean one), arguments as
      for LEAN.

    Calls of other scripts get the no-op. ``shas`` holds the SHA1s of ``return 1``
    (``"noop"``), of the lean scripts (by script name) and of the uncounted ones
    (``"uncounted:"`` and the name) on ``shadow``."""

    def __init__(self, client: Any, shadow: Any, mode: str, shas: dict[str, str]) -> None:
        self.sent = 0
        self.indexes: dict[bytes, bytes] = {}
        real = client.evalsha

        def evalsha(sha: str, numkeys: int, *args: Any) -> Any:
            reply = real(sha, numkeys, *args)
            name = SCRIPT_NAMES.get(sha, "")
            keys, argv = list(args[:numkeys]), list(args[numkeys:])
            if mode == PLAIN and name in ("put_checkpoint", "put_writes"):
                pipe = shadow.pipeline(transaction=True)
                lean_bounds.plain_transaction(pipe, name, keys, argv, self.indexes)
                pipe.execute()
            elif mode in (LEAN, PLAIN, UNCOUNTED) and name in lean_bounds.LEAN:
                if name != "get_checkpoint":
                    argv.append(lean_bounds.unsent_references(name, argv))
                sha = shas[f"uncounted:{name}" if mode == UNCOUNTED else name]
                shadow.evalsha(sha, numkeys, *keys, *argv)
            else:
                shadow.evalsha(shas["noop"], numkeys, *args)
            self.sent += 1
            return reply

        client.evalsha = evalsha


class RoundTripSaver(InMemorySaver):
    """InMemorySaver that also makes one request per ``get_tuple``, ``put`` and
    ``put_writes``: a ``PING`` (``sizes`` None), or ``EVALSHA`` of the no-op script
    ``noop_sha`` carrying one argument of ``sizes[call]`` bytes (the size of this saver's
    request for that call). The least a saver making one round trip per call can cost
    the client: no serialization beyond InMemorySaver's, no work on the server."""

    def __init__(
        self, client: Any, noop_sha: str = "", sizes: dict[str, int] | None = None
    ) -> None:
        super().__init__()
        self.client = client
        self.noop_sha = noop_sha
        self.payloads = {k: b"x" * n for k, n in (sizes or {}).items()}

    def _request(self, call: str) -> None:
        if self.payloads:
            self.client.evalsha(self.noop_sha, 0, self.payloads[call])
        else:
            self.client.ping()

    def get_tuple(self, config: Any) -> Any:
        self._request("get_tuple")
        return super().get_tuple(config)

    def put(self, *args: Any, **kwargs: Any) -> Any:
        self._request("put")
        return super().put(*args, **kwargs)

    def put_writes(self, *args: Any, **kwargs: Any) -> Any:
        self._request("put_writes")
        super().put_writes(*args, **kwargs)


def rotated(items: list[str], by: int) -> list[str]:
    """``items`` starting from position ``by`` (mod its length)."""
    k = by % len(items)
    return items[k:] + items[:k]


def ratios(values: dict[str, list[float]], reference: str) -> dict[str, list[float]]:
    """Each entry's values over the reference's, round by round (entry ``i`` of every
    list is round ``i``): a ratio within one round is not moved by the machine's drift
    between rounds. Empty where either has no value for a round."""
    ref = values.get(reference, [])
    return {
        key: [v / r for v, r in zip(vals, ref, strict=False) if r] if len(vals) == len(ref) else []
        for key, vals in values.items()
    }


def _turn(bot: Any, turn: int, config: dict[str, Any]) -> None:
    bot.invoke([HumanMessage(content=user_text(turn, USER_CHARS))], config)


def _config() -> dict[str, Any]:
    return {"configurable": {"thread_id": f"floor-{uuid.uuid4().hex[:10]}"}}


def _cpu_windows(bot: Any, admin: Any, turns: int) -> dict[int, float]:
    """Server CPU µs per turn of each window that ``turns`` reaches, keyed by its start."""
    config = _config()
    out: dict[int, float] = {}
    done = 0
    for lo, hi in WINDOWS:
        if hi > turns:
            break
        for turn in range(done + 1, lo):
            _turn(bot, turn, config)
        with ServerWindow(admin) as window:
            for turn in range(lo, hi + 1):
                _turn(bot, turn, config)
        done = hi
        if window.work is not None:
            out[lo] = window.work.cpu_us / (hi - lo + 1)
    return out


def _turns_per_second(bot: Any, turns: int) -> float:
    config = _config()
    start = time.perf_counter()
    for turn in range(1, turns + 1):
        _turn(bot, turn, config)
    return turns / (time.perf_counter() - start)


#: This saver's scripts by the saver call that sends them.
CALL_OF_SCRIPT = {
    scripts.GET_CHECKPOINT.sha: "get_tuple",
    scripts.PUT_CHECKPOINT.sha: "put",
    scripts.PUT_WRITES.sha: "put_writes",
}


class RequestSizes:
    """Wraps a redis-py client's ``evalsha`` to record the bytes of keys and arguments
    of each of this saver's ``get_tuple``, ``put`` and ``put_writes`` requests."""

    def __init__(self, client: Any) -> None:
        self.seen: dict[str, list[int]] = defaultdict(list)
        real = client.evalsha

        def evalsha(sha: str, numkeys: int, *args: Any) -> Any:
            call = CALL_OF_SCRIPT.get(sha)
            if call:
                self.seen[call].append(sum(len(a) for a in args if isinstance(a, (bytes, str))))
            return real(sha, numkeys, *args)

        client.evalsha = evalsha

    def medians(self) -> dict[str, int]:
        """The median request size of each call (0 for a call not seen)."""
        return {c: int(statistics.median(self.seen[c] or [0])) for c in CALL_OF_SCRIPT.values()}


def measure(turns: int, rounds: int, with_aws: bool) -> dict[str, Any]:
    """{"cpu": {style: {window start: {variant: [µs per turn, one per round]}}},
    "rate": {style: {saver: [turns/s, one per round]}}, "sizes": {style: {call: bytes}}};
    round 0 warms up and measures this saver's request sizes, unrecorded."""
    model = StandInChatModel()
    cpu: dict[str, dict[int, dict[str, list[float]]]] = {
        s: defaultdict(lambda: defaultdict(list)) for s in STYLES
    }
    rate: dict[str, dict[str, list[float]]] = {s: defaultdict(list) for s in STYLES}
    sizes: dict[str, dict[str, int]] = {}
    with EmbeddedServer() as measured, EmbeddedServer() as other:
        admin = redis.Redis.from_url(measured.url)
        noop_sha = admin.script_load(NOOP)
        shas = {"noop": noop_sha}
        shas.update({name: admin.script_load(src) for name, src in lean_bounds.LEAN.items()})
        shas.update(
            {
                f"uncounted:{name}": admin.script_load(src)
                for name, src in lean_bounds.UNCOUNTED.items()
            }
        )

        def ours(url: str = measured.url) -> PlainRedisSaver:
            saver = PlainRedisSaver(redis.Redis.from_url(url), key_prefix="floor")
            saver.setup()  # every call then goes by EVALSHA, which Mirror sees
            return saver

        def measured_client() -> Any:
            return redis.Redis.from_url(measured.url)

        def mirrored(mode: str) -> PlainRedisSaver:
            saver = ours(other.url)
            Mirror(saver.client, measured_client(), mode, shas)
            return saver

        cpu_savers: dict[str, Callable[[], Any]] = {
            OURS: ours,
            **{mode: partial(mirrored, mode) for mode in (FLOOR, LEAN, UNCOUNTED, PLAIN)},
        }
        with_aws_saver: dict[str, Callable[[], Any]] = {}
        if with_aws:
            with_aws_saver[AWS] = AwsValkeyAdapter(measured.url, "floor").sync
        cpu_savers.update(with_aws_saver)
        for style in STYLES:
            saver = ours(other.url)
            spy = RequestSizes(saver.client)
            _turns_per_second(chatbot(style, saver, model), turns)
            sizes[style] = spy.medians()
        for round_no in range(rounds + 1):
            for i, style in enumerate(STYLES):
                rate_savers: dict[str, Callable[[], Any]] = {
                    OURS: ours,
                    NOOP_SAVER: partial(RoundTripSaver, measured_client(), noop_sha, sizes[style]),
                    PING_SAVER: partial(RoundTripSaver, measured_client()),
                    MEMORY: InMemorySaver,
                    **with_aws_saver,
                }
                for key in rotated(list(cpu_savers), round_no + i):
                    bot = chatbot(style, cpu_savers[key](), model)
                    for lo, value in _cpu_windows(bot, admin, turns).items():
                        if round_no:
                            cpu[style][lo][key].append(value)
                for key in rotated(list(rate_savers), round_no + i):
                    bot = chatbot(style, rate_savers[key](), model)
                    value = _turns_per_second(bot, turns)
                    if round_no:
                        rate[style][key].append(value)
            admin.flushall()
    return {"cpu": cpu, "rate": rate, "sizes": sizes}


def _cell(values: list[float], fmt: str, ratio: list[float]) -> str:
    if not values:
        return "–"
    text = f"{statistics.median(values):{fmt}} ({min(values):{fmt}}–{max(values):{fmt}})"
    if not ratio:
        return text
    return text + f"; {statistics.median(ratio):.2f}× AWS ({min(ratio):.2f}–{max(ratio):.2f})"


def report(result: dict[str, Any]) -> Iterable[str]:
    """Markdown tables of :func:`measure`'s result: median (min–max) over the rounds, and
    the median (min–max) of the ratios to the AWS saver within each round."""
    cpu, rate = result["cpu"], result["rate"]
    variants = [OURS, FLOOR, LEAN, UNCOUNTED, PLAIN, AWS]
    yield "| server CPU per turn (µs) | " + " | ".join(variants) + " |"
    yield "|---|" + "---|" * len(variants)
    for style in STYLES:
        for lo, hi in WINDOWS:
            values = cpu[style].get(lo)
            if not values:
                continue
            r = ratios(values, AWS)
            cells = [_cell(values.get(v, []), ",.0f", r.get(v, [])) for v in variants]
            yield f"| {style} · turns {lo}–{hi} | " + " | ".join(cells) + " |"
    yield ""
    savers = [OURS, NOOP_SAVER, PING_SAVER, MEMORY, AWS]
    yield "| turns per second | " + " | ".join(savers) + " |"
    yield "|---|" + "---|" * len(savers)
    for style in STYLES:
        r = ratios(rate[style], AWS)
        cells = [_cell(rate[style].get(s, []), ",.0f", r.get(s, [])) for s in savers]
        yield f"| {style} chatbot | " + " | ".join(cells) + " |"
    for style, by_call in result.get("sizes", {}).items():
        text = ", ".join(f"{call} {size:,} B" for call, size in by_call.items())
        yield ""
        yield f"This saver's median request sizes, {style} chatbot: {text}."


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.turn_floor")
    parser.add_argument("--turns", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    missing = AwsValkeyAdapter.missing()
    if missing:
        print(f"AWS saver: {missing}; measured without it")
    for line in report(measure(args.turns, args.rounds, with_aws=missing is None)):
        print(line)


if __name__ == "__main__":
    main()
