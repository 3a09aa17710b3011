"""Byte formats shared by the Lua scripts and the Python side.

Values stay the serializer's own bytes (``serde.dumps_typed``); this module only frames
them. Field names are built from netstrings (``b"<len>:<bytes>"``): no netstring is a
prefix of another, so ids containing ``:``, NUL, braces or anything else cannot collide.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import msgpack

from .errors import CorruptDataError, SchemaVersionError

#: Version of the record layout written by this release (first item of every record):
#: 2 since a record lists its blob refs as a JSON array of strings, which the scripts
#: decode in C (``cjson``, in every Redis and Valkey) instead of splitting netstrings in
#: Lua, about 40 % of the work per record. Format 1 (netstrings) is read as before, and
#: written by savers with ``compose_values=False`` (what release 0.1 reads).
RECORD_FORMAT = 2
#: The record formats whose blob refs are netstrings, joined, and a JSON array.
NETSTRING_REFS_FORMAT = 1
JSON_REFS_FORMAT = 2
#: Storage schema version written to ``<prefix>:schema`` by ``setup()``: 2 since values
#: may be composed of shared content (compose.py), 3 since records may be format 2.
#: Schema 1 and 2 data is schema 3 data with every value whole or every record format 1,
#: so this release reads and extends it as it is; earlier releases cannot read what
#: this one writes, and refuse a prefix marked 3 at setup.
SCHEMA_VERSION = 3
#: The schema of a saver with ``compose_values=False``: what release 0.1 reads.
WHOLE_VALUES_SCHEMA = 1

EMPTY_BLOB = b""
#: Field of a thread's value hash present while its writes hash holds pending writes
#: (see lua/includes/common.lua).
WRITES_MARK = b"=w"
#: Field of a thread's value hash present when the thread keeps no reference counts:
#: its removals leave what they freed to a collection (see UNCOUNTED in
#: lua/includes/common.lua).
UNCOUNTED = b"=u"
#: Field of an uncounted thread's value hash: checkpoints removed (and values replaced)
#: since its last collection.
GARBAGE = b"=x"
#: Removals after which retention asks for an uncounted thread's collection, at least
#: (half the thread's checkpoints when that is more; see UNCOUNTED in
#: lua/includes/common.lua).
GARBAGE_FLOOR = 32
#: Field of a thread's value hash counting its changes (see bump_generation in
#: lua/includes/common.lua).
GENERATION = b"=g"
#: Field of an uncounted thread's value hash: the write generation since which no
#: content was deleted from it (see claim_holds in lua/includes/common.lua).
KEPT_SINCE = b"=k"
#: Field prefix of content (a piece or a node) in a thread's value hash, before its
#: digest (see compose.py).
CONTENT_FIELD = b"*"
#: Field prefix, in a write call's arguments only, of content sent as a recipe: a
#: digest, then the node items (literals, and references to content the thread holds)
#: whose bytes, joined, are the content's (see take_content in lua/includes/common.lua).
RECIPE_FIELD = b"+"
#: Field prefix of a reference count in a thread's value hash: before a channel
#: value's field (NS..netstring(channel)..version), or before CONTENT_FIELD and a digest.
COUNT_FIELD = b"#"
CONTENT_COUNT_FIELD = COUNT_FIELD + CONTENT_FIELD


def checkpoint_count_field(ns_field: bytes) -> bytes:
    """Field of a thread's value hash counting the checkpoints of one namespace, from
    that namespace's field in the namespaces hash (see lua/includes/common.lua)."""
    return b"=" + ns_field


def to_bytes(text: str | bytes) -> bytes:
    return text if isinstance(text, bytes) else text.encode("utf-8")


def netstring(text: str | bytes) -> bytes:
    data = to_bytes(text)
    return b"%d:%s" % (len(data), data)


def _bad_netstring(data: bytes, pos: int, where: str) -> CorruptDataError:
    return CorruptDataError(
        f"{where} is malformed: no netstring (<digits>:<bytes>, within its "
        f"{len(data)} bytes) at byte {pos}: {data[pos : pos + 24]!r}; the key prefix may "
        "be shared with another application, or the data was changed by hand"
    )


def read_netstring(data: bytes, pos: int = 0, where: str = "a stored value") -> tuple[bytes, int]:
    """Payload of the netstring at ``pos`` and the position after it.

    Raises CorruptDataError naming ``where`` unless the length is digits and the
    payload ends within ``data``: every step advances, whatever the bytes."""
    colon = data.find(b":", pos)
    digits = data[pos:colon]
    if colon < 0 or not digits.isdigit():
        raise _bad_netstring(data, pos, where)
    end = colon + 1 + int(digits)
    if end > len(data):
        raise _bad_netstring(data, pos, where)
    return data[colon + 1 : end], end


def split_netstrings(data: bytes, where: str = "a stored value") -> list[bytes]:
    # read_netstring, inlined: this runs for every ref and write of every read.
    out: list[bytes] = []
    pos = 0
    size = len(data)
    while pos < size:
        colon = data.find(b":", pos)
        digits = data[pos:colon]
        # isdigit() is False for b"", "-1", "+1", " 1" and "1_0", which int() accepts.
        if colon < 0 or not digits.isdigit():
            raise _bad_netstring(data, pos, where)
        end = colon + 1 + int(digits)
        if end > size:
            raise _bad_netstring(data, pos, where)
        out.append(data[colon + 1 : end])
        pos = end
    return out


def version_token(version: str | int | float) -> bytes:
    """The text a channel version is filed under (versions are str, int or float)."""
    if isinstance(version, bool) or not isinstance(version, (str, int, float)):
        raise TypeError(f"channel versions must be str, int or float, got {version!r}")
    return to_bytes(version if isinstance(version, str) else repr(version))


def blob_ref(channel: str, version: str | int | float) -> bytes:
    name = channel.encode("utf-8")
    token = version.encode("utf-8") if type(version) is str else version_token(version)
    return b"%d:%b%b" % (len(name), name, token)


@functools.lru_cache(maxsize=8192)
def ref_channel(ref: bytes) -> str:
    """The channel a blob ref names (cached: a thread's reads meet the same refs)."""
    return read_netstring(ref)[0].decode("utf-8")


def write_sub(task_id: str, idx: int) -> bytes:
    return netstring(task_id) + str(idx).encode()


def parse_write_sub(sub: bytes, where: str = "a write index") -> tuple[str, int]:
    task, pos = read_netstring(sub, 0, where)
    idx = sub[pos:]
    # A write index is decimal, negative for LangGraph's special channels.
    if not (idx.isdigit() or (idx[:1] == b"-" and idx[1:].isdigit())):
        raise CorruptDataError(f"{where} is malformed: write {sub!r} has no index number")
    try:
        return task.decode("utf-8"), int(idx)
    except (UnicodeDecodeError, ValueError) as exc:
        raise CorruptDataError(f"{where} is malformed: write {sub!r} ({exc})") from exc


#: First byte of a pending-write index head that keeps older parts in segments, and of
#: the segment fields' suffix (see append_index in lua/includes/common.lua).
INDEX_SEGMENT_MARK = b"+"


def whole_index(base: bytes, head: bytes, fields: Mapping[bytes, bytes], key: str) -> bytes:
    """The whole pending-write index stored at field ``base`` (head ``head``) of the
    writes hash ``key``, whose fields are ``fields``: its segments joined with the head's
    own part."""
    if not head.startswith(INDEX_SEGMENT_MARK):
        return head
    colon = head.find(b":")
    count = head[1:colon]
    if colon < 0 or not count.isdigit():
        raise CorruptDataError(f"pending-write index {base!r} of {key!r} is malformed")
    parts = []
    for i in range(1, int(count) + 1):
        segment = fields.get(base + b"+%d" % i)
        if segment is None:
            raise CorruptDataError(
                f"index segment {base + b'+%d' % i!r} of {key!r} is missing (evicted, or "
                "deleted by hand)"
            )
        parts.append(segment)
    parts.append(head[colon + 1 :])
    return b"".join(parts)


def pack(value: Any) -> bytes:
    return msgpack.packb(value, use_bin_type=True)  # type: ignore[no-any-return]


def unpack(data: bytes) -> Any:
    return msgpack.unpackb(data, raw=False, strict_map_key=False)


def encode_blob(typed: tuple[str, bytes]) -> bytes:
    # netstring(type) + payload: framing without re-encoding the serializer's bytes.
    name = typed[0].encode("utf-8")
    return b"%d:%b%b" % (len(name), name, typed[1])


def decode_blob(data: bytes) -> tuple[str, bytes]:
    if data.startswith(_MSGPACK):  # what JsonPlusSerializer writes for almost everything
        return "msgpack", data[len(_MSGPACK) :]
    name, pos = read_netstring(data)
    return name.decode("utf-8"), data[pos:]


_MSGPACK = b"7:msgpack"


def encode_write(channel: str, typed: tuple[str, bytes], task_path: str) -> bytes:
    return pack([channel, typed[0], typed[1], task_path])


def decode_write(data: bytes) -> tuple[str, tuple[str, bytes], str]:
    channel, type_, payload, task_path = unpack(data)
    return channel, (type_, payload), task_path


def _normalize(value: Any, fallback: Any) -> Any:
    if value is None or isinstance(value, (bool, str, bytes)):
        return value
    if isinstance(value, int):
        # msgpack holds 64-bit ints; a larger one (which no serializer here can store
        # as metadata either) gets a form of its own, so a filter for it matches nothing.
        return value if -(2**63) <= value < 2**64 else {"\x00int": str(value)}
    if isinstance(value, float):
        # 1.0 == 1 in Python, so a filter for one must find the other.
        if math.isfinite(value) and value.is_integer():
            return int(value)
        return value
    if isinstance(value, Mapping):
        items = [(_normalize(k, fallback), _normalize(v, fallback)) for k, v in value.items()]
        items.sort(key=lambda kv: pack(kv[0]))
        return {"\x00map": [list(kv) for kv in items]}
    if isinstance(value, (list, tuple)):
        return [_normalize(v, fallback) for v in value]
    return {"\x00obj": list(fallback(value))}


#: What ``canonical(None)`` returns; the list script treats it as "missing" too.
CANONICAL_NONE = b"\xc0"


def canonical(value: Any, fallback: Any) -> bytes:
    """A digest that is equal exactly when two metadata values compare equal.

    JSON-like values are normalised first (map keys sorted, integral floats as ints,
    tuples as lists); other objects go through ``fallback`` (the serializer's
    ``dumps_typed``). Only this 128-bit digest is stored for filtering, so metadata
    values never appear in clear text, even next to an EncryptedSerializer.
    """
    if value is None:
        return CANONICAL_NONE
    kind = type(value)
    if kind is str or kind is int or kind is bool:
        return _scalar_digest(value)
    if (kind is dict or kind is list) and not value:  # "parents": {} in every checkpoint
        return _EMPTY_DIGESTS[kind]
    return _digest(pack(_normalize(value, fallback)))


def _digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=16).digest()


# Sources, steps, run ids and the like repeat from checkpoint to checkpoint. typed:
# True and 1 are one dict key but different values.
@functools.lru_cache(maxsize=4096, typed=True)
def _scalar_digest(value: str | int | bool) -> bytes:
    return _digest(pack(_normalize(value, None)))


_EMPTY_DIGESTS = {kind: _digest(pack(_normalize(kind(), None))) for kind in (dict, list)}


# Printable ASCII but '"' and '\\': what a JSON string holds unescaped.
_JSON_PLAIN = re.compile(rb"[\x20\x21\x23-\x5b\x5d-\x7e]*")


def json_ref(ref: bytes) -> bytes:
    """Blob ref ``ref`` as a JSON string (UTF-8, as every ref is: see :func:`blob_ref`),
    byte for byte as ``json.dumps(..., ensure_ascii=False)`` writes it."""
    if _JSON_PLAIN.fullmatch(ref):  # LangGraph's channel names and versions
        return b'"' + ref + b'"'
    return json.dumps(ref.decode("utf-8"), ensure_ascii=False).encode("utf-8")


def json_refs(fragments: Sequence[bytes]) -> bytes:
    """The JSON array of blob refs already encoded by :func:`json_ref`."""
    return b"[" + b",".join(fragments) + b"]"


def _decode_json_refs(data: bytes) -> list[bytes]:
    refs = json.loads(data)
    if type(refs) is not list or not all(type(ref) is str for ref in refs):
        raise TypeError("blob refs are not a JSON array of strings")
    return [ref.encode("utf-8") for ref in refs]


def encode_record(
    *,
    parent_id: str | None,
    delta_depth: int = 0,
    refs: bytes,
    meta_index: Sequence[bytes | str],
    checkpoint: tuple[str, bytes],
    metadata: tuple[str, bytes],
    record_format: int = RECORD_FORMAT,
) -> bytes:
    """A checkpoint record; ``refs`` is its blob refs as the format lists them (format
    2: :func:`json_refs`; format 1: their netstrings, joined).

    The scripts read the first four items: they are kept flat (the refs are one
    binary, not an array)."""
    return pack(
        [
            record_format,
            parent_id,
            refs,
            delta_depth,
            list(meta_index),
            checkpoint[0],
            checkpoint[1],
            metadata[0],
            metadata[1],
        ]
    )


class Record:
    """A decoded checkpoint record (the serialized parts are decoded lazily by the saver)."""

    __slots__ = ("parent_id", "refs", "checkpoint", "metadata")

    def __init__(self, data: bytes, key: str) -> None:
        try:
            items = unpack(data)
            fmt = items[0]
        except Exception as exc:
            raise CorruptDataError(
                f"checkpoint record in {key!r} is not valid msgpack ({exc}); the key "
                "prefix may be shared with another application"
            ) from exc
        if not isinstance(fmt, int) or isinstance(fmt, bool):
            raise CorruptDataError(
                f"checkpoint record in {key!r} has no valid format number ({fmt!r}); "
                "the key prefix may be shared with another application"
            )
        if fmt > RECORD_FORMAT:
            raise SchemaVersionError(
                f"checkpoint record in {key!r} has format {fmt!r}; this release reads "
                f"formats up to {RECORD_FORMAT}. Upgrade plain-redis-saver to read it."
            )
        try:
            _, parent, refs, depth, _index, ctype, cbytes, mtype, mbytes = items
            if type(refs) is not bytes:
                raise TypeError("blob refs are not bytes")
            self.refs: list[bytes] = (
                _decode_json_refs(refs)
                if fmt == JSON_REFS_FORMAT
                else split_netstrings(refs, f"checkpoint record in {key!r}")
            )
            if not (parent is None or isinstance(parent, str)) or type(depth) is not int:
                raise ValueError("bad parent id or DeltaChannel depth")
        except (ValueError, TypeError, RecursionError) as exc:
            raise CorruptDataError(f"checkpoint record in {key!r} is malformed") from exc
        self.parent_id: str | None = parent
        self.checkpoint = (ctype, cbytes)
        self.metadata = (mtype, mbytes)
