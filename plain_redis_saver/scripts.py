"""The Lua scripts, loaded from ``lua/*.lua`` once per process.

Every script is the include files it names (the saver's: ``includes/common.lua``; the
store's and the cache's: their own) followed by its own file, so the helpers exist once
on disk and every script stays self-contained on the server (EVALSHA has no imports).
Scripts are called by SHA1; a server that does not know one (fresh start, SCRIPT FLUSH,
failover, eviction of the script cache) gets it with EVAL.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from importlib import resources
from typing import Final

from . import chunks, codec, compose

#: The constants of the stored format that the saver's scripts and the Python side both
#: use, by their name in the scripts: defined once, in Python, and pasted in front of
#: ``includes/common.lua`` (:func:`constants_prelude`), so the two cannot drift apart.
SHARED_CONSTANTS: Final[dict[str, bytes | int]] = {
    "JSON_REFS": codec.JSON_REFS_FORMAT,
    "WRITES_MARK": codec.WRITES_MARK,
    "GENERATION": codec.GENERATION,
    "KEPT_SINCE": codec.KEPT_SINCE,
    "UNCOUNTED": codec.UNCOUNTED,
    "GARBAGE": codec.GARBAGE,
    "GARBAGE_FLOOR": codec.GARBAGE_FLOOR,
    "COMPOSED": compose.COMPOSED[0],
    "CONTENT": codec.CONTENT_FIELD,
    "RECIPE": codec.RECIPE_FIELD[0],
    "CONTENT_COUNT": codec.CONTENT_COUNT_FIELD,
    "DIGEST_SIZE": chunks.DIGEST_SIZE,
    "MAX_NESTING": compose.MAX_NESTING,
    "MAX_BUILT": compose.MAX_BUILT,
    "MAX_PARTS": compose.MAX_PARTS,
}


def _lua_literal(value: bytes | int) -> str:
    """``value`` written as a Lua literal: an integer in decimal, bytes as a string with
    every byte outside printable ASCII (and the quote and backslash) as ``\\ddd``."""
    if isinstance(value, int):
        return str(value)
    return (
        "'"
        + "".join(chr(b) if 0x20 <= b < 0x7F and b not in b"'\\" else f"\\{b:03d}" for b in value)
        + "'"
    )


def constants_prelude() -> str:
    """``local NAME = value`` for each of :data:`SHARED_CONSTANTS`, the first statements
    of every script that takes ``includes/common.lua`` (those it does not use are
    pruned with the helpers)."""
    lines = [
        "-- The stored format's constants shared with the Python side, written from it",
        "-- (plain_redis_saver.scripts.SHARED_CONSTANTS): never copied here by hand.",
    ]
    lines += [f"local {name} = {_lua_literal(v)}" for name, v in SHARED_CONSTANTS.items()]
    return "\n".join(lines) + "\n"


_CONSTANTS_PRELUDE: Final = constants_prelude()


@dataclass(frozen=True)
class LuaScript:
    name: str
    source: str
    sha: str


_STATEMENT = re.compile(r"^local (?:function )?([\w, ]+?)\s*(?:=|\()")
_NAME = re.compile(r"[A-Za-z_]\w*")
# A comment: "--" at the start of a line or after a space, to the end of the line (the
# scripts write no "--" inside strings or expressions).
_COMMENT = re.compile(r"(?:^|(?<=\s))--[^\n]*", re.MULTILINE)
# A script's own cold helpers: "-- cold: name name ..." on a line of its file.
_COLD_LIST = re.compile(r"^-- cold: (.+)$", re.MULTILINE)
# And those of its second lazy group: "-- warm: name name ..." (see _prelude).
_WARM_LIST = re.compile(r"^-- warm: (.+)$", re.MULTILINE)
# What a rewrite must step over (comments and string literals) and the names it may
# rewrite: a name not reached through "." or ":" (a field), though ".." (concatenation)
# may stand before it.
_TOKEN = re.compile(
    r"""--[^\n]*|'(?:\\.|[^'\\\n])*'|"(?:\\.|[^"\\\n])*"|(?<!(?<!\.)\.)(?<!:)\b[A-Za-z_]\w*"""
)
# Code (comments and strings blanked) that declares a name: locals, loop variables and
# function parameters.
_DECLARES = re.compile(
    r"\b(?:local|for)\s+([\w\s,]+?)\s*(?:=|\bin\b|\n)|\bfunction\b[^(]*\(([^)]*)\)"
)


def _blocks(helpers: str) -> list[tuple[list[str], str]]:
    """``helpers`` cut into its top-level statements, each with the names it defines
    and the comments before it; block 0 is the text before the first statement."""
    blocks: list[tuple[list[str], str]] = [([], "")]
    pending_comments: list[str] = []
    for line in helpers.splitlines(keepends=True):
        match = _STATEMENT.match(line)
        if match:
            names = [n.strip() for n in match.group(1).split(",")]
            blocks.append((names, "".join(pending_comments) + line))
            pending_comments = []
        elif line.startswith("--") or not line.strip():
            pending_comments.append(line)
        else:
            names, text = blocks[-1]
            blocks[-1] = (names, text + "".join(pending_comments) + line)
            pending_comments = []
    return blocks


def _words(text: str) -> set[str]:
    """The names ``text`` uses outside its comments."""
    return set(_NAME.findall(_COMMENT.sub("", text)))


def _reached(
    blocks: list[tuple[list[str], str]], roots: list[str], stop: AbstractSet[int]
) -> set[int]:
    """The blocks the texts ``roots`` use, directly or through the blocks they use,
    not entering those in ``stop``. Names in comments do not count."""
    defined = {name: i for i, (names, _) in enumerate(blocks) for name in names}
    reached: set[int] = set()
    queue = list(roots)
    while queue:
        for word in _words(queue.pop()):
            i = defined.get(word)
            if i is not None and i not in reached and i not in stop:
                reached.add(i)
                queue.append(blocks[i][1])
    return reached


def _needed(
    blocks: list[tuple[list[str], str]], uses: str, stop: AbstractSet[int] = frozenset()
) -> tuple[set[int], set[int]]:
    """The blocks a script whose own text is ``uses`` needs (not entering those in
    ``stop``), and among them those marked ``-- always``: a statement that defines no
    name used elsewhere but has an effect (the expiry taken off ARGV) is kept."""
    always = {i for i, (_, text) in enumerate(blocks) if "-- always" in text}
    roots = [uses] + [blocks[i][1] for i in always]
    return {0} | always | _reached(blocks, roots, stop), always


def _pruned(helpers: str, uses: str) -> str:
    """``helpers`` (an include of top-level ``local`` statements) without the statements
    that ``uses`` does not need, directly or through the statements it does need.

    A script runs its whole text on every call, so each helper it carries is created
    anew each time: carrying only those it uses saves server CPU on every call."""
    blocks = _blocks(helpers)
    needed, _ = _needed(blocks, uses)
    return "".join(text for i, (_, text) in enumerate(blocks) if i in needed)


def _prelude(
    helpers: str, uses: str, cold: frozenset[str], warm: frozenset[str] = frozenset()
) -> tuple[str, dict[str, str]]:
    """``helpers`` pruned to what ``uses`` needs (see :func:`_pruned`), with the helpers
    only a ``cold`` helper reaches (those named, those marked ``-- cold`` on their first
    line, and whatever only they use) created on first use; and, for each of those that
    code outside its group uses, the group (code reaches it as ``lazy('cold').name``).

    Creating a function costs the server about 1.4 k instructions per call of the
    script, whether or not the call runs it; error reports and rare paths (retention,
    a repeated put) are most of a script's helpers. Those go, in their order, into one
    function, ``lazy``, that creates them all the first time a call needs one of them
    and hands back the same table after that: one function made per call, however many
    helpers it holds.

    ``warm`` names the roots of a second such group, for a path that is neither every
    call's nor rare (a read of a checkpoint with pending writes): it holds what they
    reach that no call needs and no cold helper is, so that path creates a few helpers,
    not all the rare ones (``lazy('warm')``); what both groups use is in the warm one,
    but for constants, which every call makes (at no cost worth a lookup)."""
    blocks = _blocks(helpers)
    unknown = (cold | warm) - {name for names, _ in blocks for name in names}
    if unknown:
        raise ValueError(
            f"no helper is named {', '.join(sorted(unknown))} (a '-- cold:' or '-- warm:' line)"
        )
    if cold & warm:
        raise ValueError(f"helpers both cold and warm: {', '.join(sorted(cold & warm))}")
    needed, always = _needed(blocks, uses)
    marked = {
        i for i in needed - always if set(blocks[i][0]) & cold or _first_line_cold(blocks[i][1])
    }
    roots = {i for i in needed - always - marked if set(blocks[i][0]) & warm}
    hot, _ = _needed(blocks, uses, marked | roots)
    warm_blocks = roots | _reached(blocks, [blocks[i][1] for i in roots], marked | hot)
    # A constant both groups use is made at the top: reaching it through an accessor
    # costs every use a call, and making it costs next to nothing.
    cold_words = _words("\n".join(blocks[i][1] for i in needed - hot - warm_blocks))
    lazy_names = {n for i in needed - hot for n in blocks[i][0]}
    hoisted = {
        i
        for i in warm_blocks - roots
        if set(blocks[i][0]) & cold_words
        and "function" not in _statement(blocks[i][1])
        and not (_words(blocks[i][1]) - set(blocks[i][0])) & lazy_names
    }
    hot |= hoisted
    warm_blocks -= hoisted
    groups = [("cold", sorted(needed - hot - warm_blocks)), ("warm", sorted(warm_blocks))]
    groups = [(name, members) for name, members in groups if members]
    if not groups:
        return "".join(text for i, (_, text) in enumerate(blocks) if i in needed), {}
    accessor: dict[str, str] = {}
    for group, members in groups:
        outside = [uses] + [blocks[i][1] for i in sorted(hot)]
        outside += [blocks[i][1] for other, m in groups if other != group for i in m]
        used_outside = _words("\n".join(outside))
        accessor.update(
            (name, group) for i in members for name in blocks[i][0] if name in used_outside
        )
    body = [
        blocks[0][1],
        "-- Helpers created on first use (see plain_redis_saver.scripts._prelude).\n",
        "local lazy\n",
        f"local {', '.join(group.upper() for group, _ in groups)}\n",
    ]
    body += [_rewritten(text, accessor) for i, (_, text) in enumerate(blocks) if i in hot and i]
    body.append("\nlazy = function(group)\n")
    for k, (group, members) in enumerate(groups):
        store = group.upper()
        own = {name: g for name, g in accessor.items() if g != group}
        fields = ", ".join(
            f"{name} = {name}" for name in sorted(n for n, g in accessor.items() if g == group)
        )
        last = k == len(groups) - 1
        body.append(
            ("" if last else f"if group == '{group}' then\n")
            + f"  if {store} then\n    return {store}\n  end\n"
        )
        body += [_rewritten(blocks[i][1], own) for i in members]
        body.append(f"  {store} = {{{fields}}}\n  return {store}\n" + ("" if last else "end\n"))
    body.append("end\n")
    return "".join(body), accessor


def _statement(text: str) -> str:
    """The first line of the statement in ``text`` (after its comments)."""
    return next((line for line in text.splitlines() if _STATEMENT.match(line)), "")


def _first_line_cold(text: str) -> bool:
    """Whether the statement in ``text`` (after its comments) is marked ``-- cold``."""
    return _statement(text).rstrip().endswith("-- cold")


def _rewritten(text: str, names: dict[str, str]) -> str:
    """``text`` with each use of a helper in ``names`` (which maps it to its group,
    ``cold`` say) made ``lazy('<group>').name``; raises ValueError where ``text``
    declares such a name itself (a local or a parameter would be rewritten with it)."""
    if not names:
        return text
    code = _TOKEN.sub(lambda m: " " * len(m.group()) if m.group()[0] in "-'\"" else m.group(), text)
    for match in _DECLARES.finditer(code):
        declared = set(_NAME.findall(match.group(1) or match.group(2) or ""))
        if declared & names.keys():
            raise ValueError(
                f"a lazy helper's name is declared again: {sorted(declared & names.keys())}"
            )

    def rewrite(match: re.Match[str]) -> str:
        token = match.group()
        group = names.get(token)
        return f"lazy('{group}').{token}" if group else token

    return _TOKEN.sub(rewrite, text)


def _load(name: str, includes: tuple[str, ...] = ("common",), *, staged: bool = False) -> LuaScript:
    """``lua/<name>.lua`` after ``lua/includes/<include>.lua`` for each of ``includes``
    (the saver's scripts take common.lua; the store's and the cache's their own).
    ``staged``: the commit form of a write script, which first takes the rows a large
    call staged ahead (``includes/staged.lua``)."""
    folder = resources.files(__package__).joinpath("lua")
    body = folder.joinpath(f"{name}.lua").read_text(encoding="utf-8")
    included = folder.joinpath("includes")
    if staged:
        includes = (*includes, "staged")
        name = f"{name}_staged"
    texts = [included.joinpath(f"{i}.lua").read_text(encoding="utf-8") for i in includes]
    common = includes[:1] == ("common",)
    if common:
        texts[0] = _CONSTANTS_PRELUDE + texts[0]
    source = _assembled(name, texts, body, prune=common)
    return LuaScript(name, source, hashlib.sha1(source.encode()).hexdigest())


def _assembled(name: str, texts: list[str], body: str, *, prune: bool) -> str:
    """The source of script ``name``: the include ``texts`` (the first pruned to what the
    rest and ``body`` use, with ``prune``: common.lua, its cold helpers created on first
    use, see :func:`_prelude`), then ``body``."""
    if prune:
        cold = frozenset(word for line in _COLD_LIST.findall(body) for word in line.split())
        warm = frozenset(word for line in _WARM_LIST.findall(body) for word in line.split())
        rest = [*texts[1:], body]
        prelude, lazy = _prelude(texts[0], "\n".join(rest), cold, warm)
        *others, body = [_rewritten(text, lazy) for text in rest]
        texts = [prelude, *others]
    prelude = "\n".join(texts)
    return f"{prelude}\n-- {name}.lua\n{body}"


PUT_CHECKPOINT: Final = _load("put_checkpoint")
PUT_WRITES: Final = _load("put_writes")
GET_CHECKPOINT: Final = _load("get_checkpoint")
LIST_CHECKPOINTS: Final = _load("list_checkpoints")
DELTA_HISTORY: Final = _load("delta_history")
DELETE_CHECKPOINTS: Final = _load("delete_checkpoints")
IMPORT_THREAD: Final = _load("import_thread")
CHECK_THREAD: Final = _load("check_thread")
PUT_CHECKPOINT_STAGED: Final = _load("put_checkpoint", staged=True)
PUT_WRITES_STAGED: Final = _load("put_writes", staged=True)
COMMIT_COPY: Final = _load("commit_copy")
REPAIR_THREAD: Final = _load("repair_thread")
CACHE_SET: Final = _load("cache_set", includes=())
STORE_BATCH: Final = _load(
    "store_batch",
    includes=("store", "store_get", "store_write", "store_search", "store_list_namespaces"),
)

ALL_SCRIPTS: Final = (
    PUT_CHECKPOINT,
    PUT_WRITES,
    GET_CHECKPOINT,
    LIST_CHECKPOINTS,
    DELTA_HISTORY,
    DELETE_CHECKPOINTS,
    IMPORT_THREAD,
    CHECK_THREAD,
    PUT_CHECKPOINT_STAGED,
    PUT_WRITES_STAGED,
    COMMIT_COPY,
    REPAIR_THREAD,
    CACHE_SET,
    STORE_BATCH,
)
