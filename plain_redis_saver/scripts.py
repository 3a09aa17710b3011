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
from dataclasses import dataclass
from importlib import resources
from typing import Final


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


def _pruned(helpers: str, uses: str) -> str:
    """``helpers`` (an include of top-level ``local`` statements) without the statements
    that ``uses`` does not need, directly or through the statements it does need.

    A script runs its whole text on every call, so each helper it carries is created
    anew each time: carrying only those it uses saves server CPU on every call. A
    statement that defines no name used elsewhere but has an effect (the expiry taken
    off ARGV) is marked ``-- always`` and kept."""
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
    defined = {name: i for i, (names, _) in enumerate(blocks) for name in names}
    needed: set[int] = {0}
    queue = [uses] + [text for _, text in blocks if "-- always" in text]
    needed |= {i for i, (_, text) in enumerate(blocks) if "-- always" in text}
    while queue:
        # Names in comments do not count: a helper mentioned in a comment is not used.
        for word in set(_NAME.findall(_COMMENT.sub("", queue.pop()))):
            i = defined.get(word)
            if i is not None and i not in needed:
                needed.add(i)
                queue.append(blocks[i][1])
    return "".join(text for i, (_, text) in enumerate(blocks) if i in needed)


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
    source = _assembled(name, texts, body, prune=includes[:1] == ("common",))
    return LuaScript(name, source, hashlib.sha1(source.encode()).hexdigest())


def _assembled(name: str, texts: list[str], body: str, *, prune: bool) -> str:
    """The source of script ``name``: the include ``texts`` (the first pruned to what the
    rest and ``body`` use, with ``prune``: common.lua), then ``body``."""
    if prune:
        texts = [_pruned(texts[0], "\n".join([*texts[1:], body])), *texts[1:]]
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
    CACHE_SET,
    STORE_BATCH,
)
