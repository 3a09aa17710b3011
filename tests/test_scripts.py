"""How the Lua scripts are assembled (plain_redis_saver.scripts), without a server."""

from __future__ import annotations

from importlib import resources
from typing import Any

import fakeredis
import msgpack
import pytest
import redis
from hypothesis import example, given, settings
from hypothesis import strategies as st

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


COLD_HELPERS = """\
local rcall = redis.call

local function fail(message) -- cold
  return error(message)
end

local function describe(x)
  return 'key ' .. x
end

local function rare(x)
  return fail('rare: ' .. describe(x))
end

local function common_path(x)
  if x == 'bad' then
    return fail('bad input; fail names it')
  end
  return rcall('ECHO', x)
end
"""

COLD_BODY = """\
-- cold: rare
if ARGV[1] == 'rare' then
  return rare(ARGV[2])
end
local s = 'the word fail, quoted'..common_path(ARGV[1])
return s
"""


def _cold_script() -> str:
    return scripts._assembled("demo", [COLD_HELPERS], COLD_BODY, prune=True)


def test_helpers_marked_or_listed_cold_are_created_inside_the_factory() -> None:
    source = _cold_script()
    hot, cold = source.split("lazy = function(group)")
    assert "local function common_path" in hot
    for helper in ("fail", "rare", "describe"):  # describe: only a cold helper uses it
        assert f"local function {helper}(" in cold and f"local function {helper}(" not in hot


def test_uses_of_cold_helpers_outside_the_factory_go_through_cold() -> None:
    source = _cold_script()
    assert "return lazy('cold').fail('bad input; fail names it')" in source
    assert "return lazy('cold').rare(ARGV[2])" in source
    assert "'the word fail, quoted'..common_path" in source  # strings are not code


def test_a_local_named_like_a_cold_helper_is_refused() -> None:
    with pytest.raises(ValueError, match="rare"):
        scripts._assembled("demo", [COLD_HELPERS], COLD_BODY + "local rare = 1\n", prune=True)


def test_a_cold_list_naming_no_helper_is_refused() -> None:
    with pytest.raises(ValueError, match="no helper is named rarely"):
        scripts._assembled("demo", [COLD_HELPERS], "-- cold: rarely\nreturn 1\n", prune=True)


def test_a_script_with_cold_helpers_runs_both_paths() -> None:
    server = fakeredis.FakeRedis()
    source = _cold_script()
    assert server.eval(source, 0, "hello") == b"the word fail, quotedhello"
    with pytest.raises(redis.ResponseError, match="rare: key x"):
        server.eval(source, 0, "rare", "x")
    with pytest.raises(redis.ResponseError, match="bad input"):
        server.eval(source, 0, "bad")


WARM_HELPERS = (
    COLD_HELPERS
    + """
local LABEL = 'item '

local function label(x)
  return LABEL .. x
end

local function middling(x)
  if x == '' then
    return fail('empty')
  end
  return label(x)
end

local function rare_label(x)
  return fail('rare: ' .. label(x) .. ' ' .. LABEL)
end
"""
)

WARM_BODY = """\
-- cold: rare_label
-- warm: middling
if ARGV[1] == 'rare' then
  return rare_label(ARGV[2])
elseif ARGV[1] == 'middling' then
  return middling(ARGV[2])
end
return common_path(ARGV[1])
"""


def _warm_script() -> str:
    return scripts._assembled("demo", [WARM_HELPERS], WARM_BODY, prune=True)


def _groups(source: str) -> tuple[str, str, str]:
    """The hot part of an assembled script, and the text of its cold and warm groups."""
    hot, lazy = source.split("lazy = function(group)")
    cold, warm = lazy.split("if group == 'cold' then")[1].split("  COLD = {")
    return hot, cold, warm


def test_helpers_on_a_warm_line_get_a_group_of_their_own() -> None:
    hot, cold, warm = _groups(_warm_script())
    assert "local function common_path(" in hot
    assert "local function middling(" in warm and "local function middling(" not in hot + cold
    # label: used by the warm and the cold group, so in the warm one (made with fewer)
    assert "local function label(" in warm and "local function label(" not in hot + cold
    assert "local function rare_label(" in cold and "local function fail(" in cold


def test_a_constant_both_groups_use_is_made_on_every_call() -> None:
    hot, cold, warm = _groups(_warm_script())
    assert "local LABEL = 'item '" in hot
    assert "local LABEL" not in cold + warm


def test_each_group_reaches_the_others_helpers_through_the_accessor() -> None:
    _, cold, warm = _groups(_warm_script())
    assert "lazy('warm').label(x)" in cold and "lazy('cold').fail('empty')" in warm


def test_a_script_with_warm_helpers_runs_every_path() -> None:
    server = fakeredis.FakeRedis()
    source = _warm_script()
    assert server.eval(source, 0, "hello") == b"hello"
    assert server.eval(source, 0, "middling", "x") == b"item x"
    with pytest.raises(redis.ResponseError, match="empty"):
        server.eval(source, 0, "middling", "")
    with pytest.raises(redis.ResponseError, match="rare: item x item "):
        server.eval(source, 0, "rare", "x")


def test_a_helper_both_cold_and_warm_is_refused() -> None:
    with pytest.raises(ValueError, match="both cold and warm: middling"):
        scripts._assembled("demo", [WARM_HELPERS], "-- cold: middling\n" + WARM_BODY, prune=True)


def test_a_confirmed_read_with_pending_writes_creates_no_rare_helper() -> None:
    _, cold, warm = _groups(scripts.GET_CHECKPOINT.source)
    for helper in ("confirmed_writes", "gather_content", "split_netstrings"):
        assert f"local function {helper}(" in warm, helper
    for helper in ("load_records", "full_index", "check_thread_intact", "corrupt"):
        assert f"local function {helper}(" in cold, helper


def test_the_hot_scripts_create_their_rare_helpers_only_when_called() -> None:
    rare = {
        scripts.PUT_CHECKPOINT: ("keep_newest", "store_record", "fail", "corrupt"),
        scripts.PUT_WRITES: ("release_refs", "fail"),
        scripts.GET_CHECKPOINT: ("check_thread_intact", "content_missing", "full_index"),
        scripts.LIST_CHECKPOINTS: ("check_thread_intact", "full_index"),
    }
    for script, helpers in rare.items():
        hot = script.source.split("lazy = function(group)")[0]
        for helper in helpers:
            assert f"local function {helper}(" not in hot, (script.name, helper)
            assert f"local function {helper}(" in script.source, (script.name, helper)


def _header_reader(general_only: bool) -> str:
    """A script that reads the record header in ARGV[1] (after the expiry) as the
    saver's scripts do: with the quick reader of the usual encodings, or (general_only)
    with the general msgpack reader alone."""
    common = resources.files("plain_redis_saver").joinpath("lua/includes/common.lua").read_text()
    body = (
        "local ok, parent, refs, depth, index, format = pcall(parse_header, ARGV[1], true)\n"
        "if not ok then return {'error'} end\n"
        "return {'ok', parent or '-', refs, depth, format, #index}\n"
    )
    source = scripts._assembled("header", [common], body, prune=True)
    if general_only:
        quick = "local parent, refs, depth, pos, format = plain_header(record)"
        assert quick in source
        source = source.replace(quick, "local parent, refs, depth, pos, format")
    return source


HEADER_ITEMS = st.tuples(
    st.sampled_from([1, 2, 127, 128, 300]),
    st.one_of(st.none(), st.text(max_size=300), st.binary(max_size=40)),
    st.one_of(
        st.binary(max_size=300),
        st.integers(0, 70_000).map(lambda n: b"r" * n),  # bin8, bin16 and bin32
        st.text(max_size=40),
        st.integers(0, 300),
    ),
    st.one_of(st.integers(-3, 70_000), st.none(), st.binary(max_size=3)),
    st.lists(st.binary(max_size=5), max_size=4),
)


@given(HEADER_ITEMS, st.integers(0, 12))
@example((2, "1f1ee33c-9f8e-66d8-8074-9774b5fe843a", b"[]" * 350, 0, []), 0)
@settings(max_examples=150, deadline=None)
def test_the_quick_header_reader_reads_what_the_general_one_reads(
    items: tuple[Any, ...], cut: int
) -> None:
    """Records as the client writes them, with other encodings of each item, and cut
    short: both readers return the same items, or both raise."""
    record = msgpack.packb(list(items), use_bin_type=True)
    if cut:
        record = record[: max(1, len(record) - cut)]
    server = fakeredis.FakeRedis()
    both = [server.eval(_header_reader(general), 0, "", record) for general in (False, True)]
    assert both[0] == both[1]


# ---- the stored format's constants, owned by the Python side


@given(st.binary(max_size=64))
@settings(max_examples=100, deadline=None)
def test_a_shared_constant_reaches_the_scripts_as_the_same_bytes(value: bytes) -> None:
    client = fakeredis.FakeRedis()
    assert client.eval(f"return {scripts._lua_literal(value)}", 0) == value


def test_the_scripts_see_every_shared_constant_as_the_python_side_defines_it() -> None:
    names = list(scripts.SHARED_CONSTANTS)
    source = scripts.constants_prelude() + f"return {{{', '.join(names)}}}"
    assert fakeredis.FakeRedis().eval(source, 0) == list(scripts.SHARED_CONSTANTS.values())


def test_no_lua_file_defines_a_shared_constant_by_hand() -> None:
    folder = resources.files("plain_redis_saver").joinpath("lua")
    files = [*folder.iterdir(), *folder.joinpath("includes").iterdir()]
    texts = {f.name: f.read_text(encoding="utf-8") for f in files if f.name.endswith(".lua")}
    copies = [
        (file, name)
        for file, text in texts.items()
        for name in scripts.SHARED_CONSTANTS
        if f"local {name} =" in text
    ]
    assert copies == []


def test_a_script_defines_the_shared_constants_it_uses_before_its_helpers() -> None:
    source = scripts.PUT_CHECKPOINT.source
    defined = source.index(f"local GENERATION = {scripts._lua_literal(scripts.codec.GENERATION)}")
    assert defined < source.index("local rcall = redis.call")
