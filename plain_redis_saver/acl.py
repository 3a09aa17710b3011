"""The least privilege the saver needs, as a Redis/Valkey ACL rule.

Commands run inside the scripts are checked against the ACL too, so they are listed.
Nothing here is an admin command: no CONFIG, MODULE, KEYS, FUNCTION or DEBUG.
"""

from __future__ import annotations

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
)  # fmt: skip


def acl_rule(key_prefix: str) -> str:
    """ACL rules (keys and commands) for a saver using ``key_prefix``."""
    commands = " ".join(f"+{c}" for c in REQUIRED_COMMANDS)
    return f"resetkeys ~{key_prefix}:* resetchannels -@all {commands}"


def acl_setuser_args(username: str, password: str, key_prefix: str) -> list[str]:
    """Arguments of ``ACL SETUSER`` creating a least-privilege user for the saver."""
    return ["ACL", "SETUSER", username, "on", f">{password}", *acl_rule(key_prefix).split()]
