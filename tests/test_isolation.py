"""Tenant isolation by the documented ACL rule (``plain_redis_saver.acl``).

Two tenants are two ACL users made with ``acl_setuser_args``, on prefix pairs where the
old rule ``~<prefix>:*`` of tenant A also covered tenant B's keys: a longer prefix
(``lg`` / ``lg:b``) and prefixes holding the glob characters ``* ? [ ] \\``. Tenant A
points a saver (and a raw client) at B's keys and must be refused by the server every
time, while B's data stays as it was and A's own prefix works.

fakeredis is skipped where it does not enforce ACL key patterns (probed, not assumed).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.exceptions import ResponseError

from plain_redis_saver import InvalidConfigError, PlainRedisSaver
from plain_redis_saver.acl import acl_rule, acl_rules, acl_setuser_args
from plain_redis_saver.keys import Keyspace
from plain_redis_saver.keys import _glob_escape as glob_escape

from .conftest import Backend
from .helpers import checkpoint, config, metadata, put_chain

PASSWORD = "tenant-secret"

#: (tenant A's prefix, tenant B's prefix): the old rule for A covered B's keys.
PREFIX_PAIRS = [
    ("lg", "lg:b"),
    ("t*", "tenant2"),
    ("a?", "ab"),
    ("[x]", "x"),
    ("p\\", "p"),
]
PAIR_IDS = ["longer-prefix", "star", "question-mark", "brackets", "backslash"]

#: The server's refusal of a key (not of a command: every command used is granted).
PERMISSION_ERROR = r"(?i)(no permissions to access|can't access) .*key"


def _nodes(backend: Backend) -> list[int]:
    server: Any = backend.server
    return list(server.ports) if backend.is_cluster else [server.port]


def _fakeredis_enforces_key_patterns() -> bool:
    import fakeredis

    server = fakeredis.FakeServer()
    fakeredis.FakeRedis(server=server).execute_command(*acl_setuser_args("probe", PASSWORD, "only"))
    probe = fakeredis.FakeRedis(server=server, username="probe", password=PASSWORD)
    try:
        probe.hset("other:{t}:c", "f", "v")
    except ResponseError:
        return True
    return False


@dataclass
class Tenant:
    prefix: str
    user: str
    client: Any
    saver: PlainRedisSaver


@dataclass
class Tenants:
    a: Tenant
    b: Tenant
    admin: Any
    #: A's credentials aimed at B's keys: the attack under test.
    a_on_b: PlainRedisSaver


def _admins(backend: Backend) -> list[Any]:
    """An unrestricted client per node (ACL users are per node in a cluster)."""
    if backend.fake_server is not None:
        import fakeredis

        return [fakeredis.FakeRedis(server=backend.fake_server)]
    return [redis.Redis(host="127.0.0.1", port=port) for port in _nodes(backend)]


def _make_users(backend: Backend, args: list[list[str]]) -> Callable[[], None]:
    """Runs each ``ACL SETUSER`` on every node; returns the clean-up."""
    for node in _admins(backend):
        with node:
            for arg in args:
                node.execute_command(*arg)

    def clean() -> None:
        for node in _admins(backend):
            with node:
                node.execute_command("ACL", "DELUSER", *(arg[2] for arg in args))

    return clean


def _client_as(backend: Backend, user: str) -> Any:
    if backend.fake_server is not None:
        import fakeredis

        return fakeredis.FakeRedis(server=backend.fake_server, username=user, password=PASSWORD)
    url = (backend.admin_url or "").replace("redis://", f"redis://{user}:{PASSWORD}@", 1)
    if backend.is_cluster:
        return redis.cluster.RedisCluster.from_url(url)
    return redis.Redis.from_url(url)


def _wipe(admin: Any, prefix: str) -> None:
    keys = Keyspace(prefix)
    for pattern in (glob_escape(prefix) + ":{*", glob_escape(keys.schema)):
        for key in admin.scan_iter(match=pattern):
            admin.delete(key)


@pytest.fixture(params=PREFIX_PAIRS, ids=PAIR_IDS)
def tenants(backend: Backend, admin: Any, request: pytest.FixtureRequest) -> Iterator[Tenants]:
    if backend.fake_server is not None and not _fakeredis_enforces_key_patterns():
        pytest.skip(
            "fakeredis does not enforce ACL key patterns (a user granted ~only:{* may "
            "HSET other:{t}:c), so it cannot show isolation"
        )
    # A unique head keeps the pair's shape (and its glob characters) while tests that
    # share the server never share keys.
    head = f"iso{uuid.uuid4().hex[:8]}"
    prefix_a, prefix_b = (head + p for p in request.param)
    user_a, user_b = f"tenant-a-{head}", f"tenant-b-{head}"
    clean = _make_users(
        backend,
        [
            acl_setuser_args(user_a, PASSWORD, prefix_a),
            acl_setuser_args(user_b, PASSWORD, prefix_b),
        ],
    )
    client_a, client_b = _client_as(backend, user_a), _client_as(backend, user_b)
    a = Tenant(prefix_a, user_a, client_a, PlainRedisSaver(client_a, key_prefix=prefix_a))
    b = Tenant(prefix_b, user_b, client_b, PlainRedisSaver(client_b, key_prefix=prefix_b))
    b.saver.setup()
    put_chain(b.saver, "victim", 3, run_id="run-b")
    latest = b.saver.get_tuple(config("victim"))
    assert latest is not None
    b.saver.put_writes(latest.config, [("n", 42)], "task-b")
    try:
        yield Tenants(a, b, admin, PlainRedisSaver(client_a, key_prefix=prefix_b))
    finally:
        client_a.close()
        client_b.close()
        clean()
        _wipe(admin, prefix_a)
        _wipe(admin, prefix_b)


def _snapshot(admin: Any, prefix: str) -> dict[bytes, Any]:
    """Every key of the prefix with its value, as the admin sees it."""
    keys = Keyspace(prefix)
    found = {
        *admin.scan_iter(match=glob_escape(prefix) + ":{*"),
        *admin.scan_iter(match=glob_escape(keys.schema)),
    }
    return {key: admin.dump(key) for key in sorted(found)}


def _refused(call: Callable[[], Any]) -> None:
    with pytest.raises(ResponseError, match=PERMISSION_ERROR):
        result = call()
        if hasattr(result, "__next__"):
            list(result)


def test_a_tenant_cannot_read_another_tenants_threads(tenants: Tenants) -> None:
    before = _snapshot(tenants.admin, tenants.b.prefix)
    _refused(lambda: tenants.a_on_b.get_tuple(config("victim")))
    _refused(lambda: tenants.a_on_b.list(config("victim")))
    _refused(lambda: tenants.a_on_b.list(None))
    _refused(
        lambda: tenants.a_on_b.get_delta_channel_history(config=config("victim"), channels=["n"])
    )
    assert _snapshot(tenants.admin, tenants.b.prefix) == before


def test_a_tenant_cannot_write_another_tenants_threads(tenants: Tenants) -> None:
    before = _snapshot(tenants.admin, tenants.b.prefix)
    latest = tenants.b.saver.get_tuple(config("victim"))
    assert latest is not None
    cp = checkpoint({"n": "forged"}, versions={"n": "99"})
    _refused(lambda: tenants.a_on_b.put(config("victim"), cp, metadata(), {"n": "99"}))
    _refused(lambda: tenants.a_on_b.put(config("new"), cp, metadata(), {"n": "99"}))
    _refused(lambda: tenants.a_on_b.put_writes(latest.config, [("n", "forged")], "task-a"))
    _refused(lambda: tenants.a_on_b.setup())
    assert _snapshot(tenants.admin, tenants.b.prefix) == before


def test_a_tenant_cannot_delete_another_tenants_threads(tenants: Tenants) -> None:
    before = _snapshot(tenants.admin, tenants.b.prefix)
    _refused(lambda: tenants.a_on_b.delete_thread("victim"))
    _refused(lambda: tenants.a_on_b.delete_for_runs(["run-b"]))
    _refused(lambda: tenants.a_on_b.prune(["victim"], strategy="keep_latest"))
    _refused(lambda: tenants.a_on_b.prune(["victim"], strategy="delete"))
    assert _snapshot(tenants.admin, tenants.b.prefix) == before


def test_a_tenant_cannot_copy_another_tenants_threads(tenants: Tenants) -> None:
    before = _snapshot(tenants.admin, tenants.b.prefix)
    _refused(lambda: tenants.a_on_b.copy_thread("victim", "stolen"))
    _refused(lambda: tenants.a_on_b.copy_thread("victim", "victim-copy"))
    assert _snapshot(tenants.admin, tenants.b.prefix) == before
    assert _snapshot(tenants.admin, tenants.a.prefix) == {}


def test_raw_commands_on_another_tenants_keys_are_refused(tenants: Tenants) -> None:
    before = _snapshot(tenants.admin, tenants.b.prefix)
    victim = Keyspace(tenants.b.prefix).thread("victim")
    raw = tenants.a.client
    read_script = "return redis.call('HKEYS', KEYS[1])"
    sha = raw.script_load(read_script)
    _refused(lambda: raw.hget(victim.checkpoints, "x"))
    _refused(lambda: raw.hkeys(victim.blobs))
    _refused(lambda: raw.hset(victim.writes, "x", "forged"))
    _refused(lambda: raw.unlink(victim.order))
    _refused(lambda: raw.get(f"{tenants.b.prefix}:schema"))
    _refused(lambda: raw.set(f"{tenants.b.prefix}:schema", "999"))
    _refused(lambda: raw.evalsha(sha, 1, victim.checkpoints))
    _refused(lambda: raw.eval(read_script, 1, victim.checkpoints))
    assert _snapshot(tenants.admin, tenants.b.prefix) == before


def test_a_tenant_undeclared_key_in_a_script_is_refused(tenants: Tenants) -> None:
    # A script naming no KEYS still has each key it touches checked against the ACL.
    # (Cluster clients need a key to route EVAL, so the script gets one of A's own.)
    victim = Keyspace(tenants.b.prefix).thread("victim")
    own = Keyspace(tenants.a.prefix).thread("victim").checkpoints
    steal = f"return redis.call('HKEYS', '{victim.checkpoints}')"
    if "'" in victim.checkpoints:
        pytest.skip("the key cannot be quoted in this Lua literal")
    _refused(lambda: tenants.a.client.eval(steal, 1, own))


def test_a_tenant_keeps_full_use_of_its_own_prefix(tenants: Tenants) -> None:
    saver = tenants.a.saver
    saver.setup()
    stored = put_chain(saver, "mine", 3, run_id="run-a")
    saver.put_writes(stored[-1], [("n", "w")], "task-a")
    latest = saver.get_tuple(config("mine"))
    assert latest is not None and latest.pending_writes == [("task-a", "n", "w")]
    assert len(list(saver.list(config("mine")))) == 3
    assert {t.config["configurable"]["thread_id"] for t in saver.list(None)} == {"mine"}
    saver.copy_thread("mine", "mine-copy")
    saver.prune(["mine-copy"], strategy="keep_latest")
    assert len(list(saver.list(config("mine-copy")))) == 1
    saver.delete_for_runs(["run-a"])
    saver.delete_thread("mine")
    assert saver.get_tuple(config("mine")) is None
    assert tenants.b.saver.get_tuple(config("victim")) is not None


# ------------------------------------------------------------------ the rule itself


def test_acl_rule_is_acl_setuser_args_on_one_line() -> None:
    args = acl_setuser_args("u", "pw", "t*")
    assert args[:5] == ["ACL", "SETUSER", "u", "on", ">pw"]
    assert " ".join(args[5:]) == acl_rule("t*")


@pytest.mark.parametrize("prefix", ["my app", "tab\tsep", "line\n"])
def test_acl_rule_refuses_a_prefix_no_acl_pattern_can_name(prefix: str) -> None:
    with pytest.raises(InvalidConfigError, match="whitespace"):
        acl_rules(prefix)


def test_acl_rule_refuses_a_prefix_the_saver_refuses() -> None:
    with pytest.raises(InvalidConfigError, match="must not contain"):
        acl_rule("lg{x}")


PREFIX_CHARS = st.sampled_from(list("ab:*?[]\\^-! %"))
PREFIXES = st.text(PREFIX_CHARS, min_size=1, max_size=6)
THREAD_IDS = st.text(st.sampled_from(list("ab:*?[]\\{}% ")), max_size=4)


@given(mine=PREFIXES, other=PREFIXES, thread_id=THREAD_IDS)
@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_rule_of_a_prefix_grants_exactly_its_keys(
    backend: Backend, mine: str, other: str, thread_id: str
) -> None:
    """ACL DRYRUN asks the server's own matcher, for any prefixes and thread ids."""
    if backend.fake_server is not None:
        pytest.skip("fakeredis has no ACL DRYRUN")
    if " " in mine:
        with pytest.raises(InvalidConfigError):
            acl_rules(mine)
        return
    port = _nodes(backend)[0]
    user = "dryrun-" + uuid.uuid4().hex[:8]
    with redis.Redis(host="127.0.0.1", port=port) as admin:
        admin.execute_command(*acl_setuser_args(user, PASSWORD, mine))
        try:
            for prefix in (mine, other):
                keys = Keyspace(prefix)
                for key in (*keys.thread(thread_id), keys.schema):
                    reply = admin.execute_command("ACL", "DRYRUN", user, "HGET", key, "f")
                    allowed = reply == b"OK"
                    assert allowed == (prefix == mine), (mine, other, key, reply)
        finally:
            admin.execute_command("ACL", "DELUSER", user)


# ------------------------------------------------------------ one tenant per database


def test_a_valkey_user_limited_to_its_database_cannot_reach_another(backend: Backend) -> None:
    """The README's recipe for one tenant per logical database (Valkey >= 9.0's ``db=``
    rule): the same prefix in database 0 stays out of reach of database 7's tenant."""
    if backend.name != "valkey":
        pytest.skip(
            "per-database ACL rules (db=) exist in Valkey >= 9.0 only: Redis 7 refuses "
            "them, fakeredis ignores ACL key rules, and the test cluster has database 0 only"
        )
    head = f"isodb{uuid.uuid4().hex[:8]}"
    user = f"tenant-{head}"
    port = _nodes(backend)[0]
    with redis.Redis(host="127.0.0.1", port=port) as admin:
        admin.execute_command(
            *acl_setuser_args(user, PASSWORD, head), "+select", "resetdbs", "db=7"
        )
        try:
            neighbour = PlainRedisSaver(admin, key_prefix=head)
            put_chain(neighbour, "victim", 1)
            url = f"redis://{user}:{PASSWORD}@127.0.0.1:{port}/7"
            with PlainRedisSaver.from_conn_string(url, key_prefix=head, cluster=False) as own:
                assert own.get_tuple(config("victim")) is None
                put_chain(own, "mine", 1)
                assert [t.config["configurable"]["thread_id"] for t in own.list(None)] == ["mine"]
                with pytest.raises(ResponseError, match="(?i)no permissions to access database"):
                    own.client.execute_command("SELECT", "0")
            assert neighbour.get_tuple(config("mine")) is None
            neighbour.delete_thread("victim")
            with redis.Redis(host="127.0.0.1", port=port, db=7) as admin7:
                PlainRedisSaver(admin7, key_prefix=head).delete_thread("mine")
        finally:
            admin.execute_command("ACL", "DELUSER", user)
