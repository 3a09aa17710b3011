"""The byte-level helpers of plain_redis_saver.codec (no server)."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from plain_redis_saver import codec


@given(st.text())
def test_a_blob_ref_as_json_is_what_json_dumps_writes(text: str) -> None:
    ref = text.encode("utf-8")
    assert codec.json_ref(ref) == json.dumps(text, ensure_ascii=False).encode("utf-8")


def test_a_langgraph_blob_ref_as_json_reads_back() -> None:
    ref = codec.blob_ref("messages", "00000000000000000000000000000100.0.9197927813503215")
    assert json.loads(codec.json_ref(ref)) == ref.decode()
