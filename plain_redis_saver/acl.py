"""The least privilege the saver needs, as a Redis/Valkey ACL rule.

Commands run inside the scripts are checked against the ACL too, so they are listed.
Nothing here is an admin command: no CONFIG, MODULE, KEYS, FUNCTION or DEBUG.

The key patterns grant exactly one prefix's keys (see keys.py): ``<prefix>:{<tag>}:…``
and ``<prefix>:schema``. A prefix has no braces, so the first ``{`` of any saver key
follows its own prefix: ``<prefix>:{*`` cannot cover a longer prefix such as
``<prefix>:b``, which ``<prefix>:*`` did. ACL key patterns use the glob matcher of KEYS,
so the prefix's glob characters are escaped with backslashes.
"""

from __future__ import annotations

from .errors import InvalidConfigError
from .keys import Keyspace
from .keys import _glob_escape as glob_escape

#: Commands the saver sends, or its scripts run. ``command`` and ``cluster|…`` serve
#: cluster clients (they read the slot map and key positions), ``wait`` the
#: wait_replicas option, ``info`` the cluster
#: detection of from_conn_string. redis-py's CLIENT SETINFO on connect may be refused:
#: the client ignores that.
REQUIRED_COMMANDS = (
    "evalsha", "eval", "script|load",
    "unlink", "scan", "hscan", "set", "get",
    "hset", "hsetnx", "hget", "hmget", "hdel", "hkeys", "hexists", "hincrby",
    "hgetall", "rename",
    "zadd", "zrem", "zrangebylex", "zrevrangebylex", "pexpire", "persist", "pttl",
    "ping", "info", "wait", "command", "cluster|slots", "cluster|shards",
    # the store and the cache (store.py, cache.py)
    "mget", "del", "zrange", "zremrangebyscore", "zrangebyscore", "zscore", "zlexcount",
    "zcard",
)  # fmt: skip


#: The server refuses an ACL rule holding these (its ACL file separates rules by them).
_NOT_IN_ACL_RULES = " \t\n\v\f\r\0"


def key_patterns(key_prefix: str) -> list[str]:
    """ACL key patterns (``~…``) covering every key of ``key_prefix`` and no other
    prefix's. Raises InvalidConfigError for a prefix the saver would refuse, or one
    that no ACL pattern can name (whitespace)."""
    keys = Keyspace(key_prefix)
    if any(ch in _NOT_IN_ACL_RULES for ch in key_prefix):
        raise InvalidConfigError(
            f"key_prefix {key_prefix!r} holds whitespace, which Redis and Valkey refuse in "
            "an ACL key pattern; choose a prefix without whitespace to isolate it by ACL"
        )
    prefix = glob_escape(keys.prefix)
    return [f"~{prefix}:{{*", f"~{glob_escape(keys.schema)}"]


def acl_rules(key_prefix: str) -> list[str]:
    """The ACL rules (keys and commands) for a saver using ``key_prefix``, one rule
    per item, as ``ACL SETUSER`` takes them."""
    commands = [f"+{c}" for c in REQUIRED_COMMANDS]
    return ["resetkeys", *key_patterns(key_prefix), "resetchannels", "-@all", *commands]


def acl_rule(key_prefix: str) -> str:
    """:func:`acl_rules` as one line, for an ``ACL SETUSER`` typed by hand."""
    return " ".join(acl_rules(key_prefix))


def acl_setuser_args(username: str, password: str, key_prefix: str) -> list[str]:
    """Arguments of ``ACL SETUSER`` creating a least-privilege user for the saver."""
    return ["ACL", "SETUSER", username, "on", f">{password}", *acl_rules(key_prefix)]
