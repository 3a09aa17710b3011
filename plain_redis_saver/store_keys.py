"""Key names of the store and the cache, beside the saver's (see keys.py).

    <prefix>:{%cache:<ns tag>}:e:<key>     one cache entry (string, native expiry)
    <prefix>:{%cache:<ns tag>}:entries     the namespace's entries (sorted set)
    <prefix>:{%cache}:namespaces           namespaces holding entries (hash)
    <prefix>:{%store}:<part>               the store (all parts share one slot)

Rules that keep the saver and these apart, both ways:
- The saver finds threads with ``<prefix>:{*}:[cobwn]``: a key ending in ``}:`` and
  one letter. Here the only ``}`` of a key closes its hash tag and is followed by at
  least two more parts, so no store or cache key ends that way.
- The saver names a thread's tag with ``%`` only as ``%25``, ``%7B``, ``%7D`` or a lone
  ``%`` (keys.escape_thread_id); the tags here start ``%c`` or ``%s``, which it never
  writes, so no key here is a thread's, and no thread key is one of these.
- Every key starts ``<prefix>:{``, so the least-privilege ACL rule of the prefix
  (``~<prefix>:{*``, see acl.py) covers them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from .keys import Keyspace, escape_thread_id


def netstrings(labels: Sequence[str]) -> str:
    """Labels as one string that no other sequence of labels gives."""
    return "".join(f"{len(label)}:{label}" for label in labels)


def _escape(text: str) -> str:
    # escape_thread_id's escapes keep braces out of the name after the tag as well.
    return escape_thread_id(text) if text else ""


class CacheKeys:
    """The cache's key names under one prefix."""

    def __init__(self, prefix: str) -> None:
        self.prefix = Keyspace(prefix).prefix
        self.namespaces = f"{self.prefix}:{{%cache}}:namespaces"

    def tag(self, namespace: Sequence[str]) -> str:
        """The registry field naming a namespace (its keys' hash tag follows from it)."""
        return _escape(netstrings(namespace))

    def index(self, tag: str) -> str:
        return f"{self.prefix}:{{%cache:{tag}}}:entries"

    def entry(self, tag: str, key: str) -> str:
        return f"{self.prefix}:{{%cache:{tag}}}:e:{_escape(key)}"


class StoreKeys(NamedTuple):
    """The store's keys; one hash tag, so every script can declare all of them."""

    items: str  # hash: item id -> record
    order: str  # sorted set (lex): namespace, NUL, sequence, key -> item order
    namespaces: str  # sorted set (lex): namespace labels joined by NUL
    created: str  # sorted set: namespace -> sequence of its creation
    counts: str  # hash: namespace -> live items; "#seq" -> last sequence number
    expiry: str  # sorted set: item id -> expiry (ms since the epoch)
    vectors: str  # hash: item id -> packed float32 vectors


def store_keys(prefix: str) -> StoreKeys:
    base = f"{Keyspace(prefix).prefix}:{{%store}}:"
    return StoreKeys(*(base + part for part in StoreKeys._fields))
