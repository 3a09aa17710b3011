"""How the Lua scripts are assembled (plain_redis_saver.scripts), without a server."""

from __future__ import annotations

from plain_redis_saver import scripts
from plain_redis_saver.scripts import _pruned

HELPERS = """\
local rcall = redis.call
local TTL = table.remove(ARGV, 1) -- always

-- Reads a thing (see unused_helper for the other way).
local function used_helper(x)
  return rcall('GET', x)
end

local function unused_helper(x)
  return used_helper(x) -- not called by the script
end
"""


def test_a_script_carries_the_helpers_it_calls_not_those_its_comments_name() -> None:
    pruned = _pruned(HELPERS, "-- like unused_helper, but shorter\nreturn used_helper(KEYS[1])\n")
    assert "local function used_helper" in pruned
    assert "local function unused_helper" not in pruned


def test_a_statement_marked_always_is_kept_though_nothing_names_it() -> None:
    assert "table.remove(ARGV, 1)" in _pruned(HELPERS, "return 1\n")


def test_the_read_scripts_carry_no_write_helpers() -> None:
    for script in (scripts.GET_CHECKPOINT, scripts.LIST_CHECKPOINTS):
        for helper in ("append_index", "bump_generation", "plan_counts", "expand_values"):
            assert f"local function {helper}(" not in script.source, (script.name, helper)
