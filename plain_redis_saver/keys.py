"""Key names. Every key of one thread carries the same hash tag, so a thread lives in
one cluster slot and every script of it can declare all its keys (Redis Cluster and
ElastiCache Serverless reject scripts that touch keys in several slots).

    <prefix>:{<thread tag>}:c   checkpoint records (hash)
    <prefix>:{<thread tag>}:o   checkpoint order (sorted set)
    <prefix>:{<thread tag>}:b   channel values (hash)
    <prefix>:{<thread tag>}:w   pending writes (hash)
    <prefix>:{<thread tag>}:n   namespaces (hash)
    <prefix>:{<thread tag>}:s:<token>
                                rows of one put/put_writes too large for one request,
                                staged until the call commits (hash, short expiry)
    <prefix>:{<thread tag>}:s:<token>:<c|o|b|w|n>
                                a thread being built by copy_thread (its five keys),
                                renamed into place when the copy commits (short expiry)
    <prefix>:schema             storage schema version (string)

The thread tag is the thread id with ``%``, ``{`` and ``}`` percent-escaped, so the hash
tag always ends at our own ``}``; the empty thread id is written ``%`` (which escaping
never produces) because an empty ``{}`` would not count as a hash tag.
"""

from __future__ import annotations

from typing import NamedTuple

from .errors import InvalidConfigError

DEFAULT_KEY_PREFIX = "lg"
SUFFIXES = ("c", "o", "b", "w", "n")
#: Threads whose key names a Keyspace keeps made (then it starts afresh).
_REMEMBERED_THREADS = 4096


class ThreadKeys(NamedTuple):
    checkpoints: str
    order: str
    blobs: str
    writes: str
    namespaces: str


def escape_thread_id(thread_id: str) -> str:
    if thread_id == "":
        return "%"
    return thread_id.replace("%", "%25").replace("{", "%7B").replace("}", "%7D")


def unescape_thread_id(tag: str) -> str:
    if tag == "%":
        return ""
    return tag.replace("%7D", "}").replace("%7B", "{").replace("%25", "%")


def _glob_escape(text: str) -> str:
    return "".join("\\" + ch if ch in "*?[]\\" else ch for ch in text)


class Keyspace:
    """The key names under one prefix."""

    def __init__(self, prefix: str) -> None:
        if not isinstance(prefix, str) or not prefix:
            raise InvalidConfigError("key_prefix must be a non-empty string, e.g. 'lg'")
        if "{" in prefix or "}" in prefix:
            raise InvalidConfigError(
                f"key_prefix {prefix!r} must not contain '{{' or '}}': the saver puts each "
                "thread in its own hash tag and a brace in the prefix would replace it"
            )
        self.prefix = prefix
        self.schema = f"{prefix}:schema"
        # The keys of the threads named lately: every call names its thread's keys,
        # and a turn makes several calls on one thread.
        self._threads: dict[str, ThreadKeys] = {}

    def thread(self, thread_id: str) -> ThreadKeys:
        keys = self._threads.get(thread_id)
        if keys is None:
            base = f"{self.prefix}:{{{escape_thread_id(thread_id)}}}:"
            keys = ThreadKeys(*(base + suffix for suffix in SUFFIXES))
            if len(self._threads) >= _REMEMBERED_THREADS:
                self._threads.clear()
            self._threads[thread_id] = keys
        return keys

    def thread_keys_scan_pattern(self) -> str:
        """SCAN MATCH pattern that finds every key of every thread: a thread is found by
        whichever of its keys remain, so one that lost some keys (evicted, or deleted by
        hand) is still found and reported, and one with pending writes only is seen."""
        return _glob_escape(self.prefix) + ":{*}:[" + "".join(SUFFIXES) + "]"

    def staging(self, thread_id: str, token: str) -> str:
        """The staging hash of one large call on ``thread_id`` (``token`` is random)."""
        return f"{self.prefix}:{{{escape_thread_id(thread_id)}}}:s:{token}"

    def staged_thread(self, thread_id: str, token: str) -> ThreadKeys:
        """The keys a copy into ``thread_id`` is built under before it commits: in the
        thread's hash tag, so one script can rename them into place."""
        base = self.staging(thread_id, token) + ":"
        return ThreadKeys(*(base + suffix for suffix in SUFFIXES))

    def staging_scan_pattern(self, thread_id: str) -> str:
        """SCAN MATCH pattern of every staging key of ``thread_id``."""
        return _glob_escape(self.staging(thread_id, "")) + "*"

    def thread_id_of(self, key: bytes | str) -> str | None:
        """Thread id of a key found by one of the scan patterns, or None when the key is
        not one this saver names (not UTF-8, or a tag escape_thread_id never writes):
        another application's key, or one written by hand."""
        try:
            text = key.decode() if isinstance(key, bytes) else key
            start = len(self.prefix) + 2
            thread_id = unescape_thread_id(text[start : text.index("}", start)])
        except (UnicodeDecodeError, ValueError):
            return None
        return thread_id if text in self.thread(thread_id) else None

    def suffix_index(self, key: bytes | str) -> int:
        """Position in SUFFIXES (and ThreadKeys) of a key found by the scan pattern."""
        last = key[-1:]
        return SUFFIXES.index(last.decode() if isinstance(last, bytes) else last)
