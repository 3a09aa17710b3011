"""The read scripts' replies, read by name (plain_redis_saver.replies), without a server."""

from __future__ import annotations

from typing import Any

import pytest

from plain_redis_saver import CorruptDataError
from plain_redis_saver.replies import checkpoint_reply, page_reply

CID = b"1f1ef02d-61ff-66fd-809c-3437274a62c3"


def test_a_full_read_of_the_newest_checkpoint_names_each_part_and_its_generation() -> None:
    found = checkpoint_reply([CID, b"record", [b"v"], b"index", [b"w"], [b"d", b"c"], 7])
    assert (found.cid, found.record, found.blobs, found.write_index) == (
        CID,
        b"record",
        [b"v"],
        b"index",
    )
    assert (found.writes, found.content, found.generation) == ([b"w"], [b"d", b"c"], 7)
    assert not found.confirmed


def test_a_confirmed_read_sends_no_record_and_no_generation() -> None:
    found = checkpoint_reply([CID, b"", [], b"", [], []])
    assert found.confirmed
    assert found.generation is None


@pytest.mark.parametrize(
    "reply",
    [
        b"OK",
        [CID, b"", [], b"", []],  # an item short
        [CID, b"", [], b"", [], [], 1, b"extra"],  # an item too many
        [CID, 5, [], b"", [], []],  # a record that is no bytes
        [CID, b"", b"blobs", b"", [], []],  # values that are no array
    ],
)
def test_a_checkpoint_reply_of_another_shape_is_refused_naming_the_script(reply: Any) -> None:
    with pytest.raises(CorruptDataError, match="get_checkpoint answered a reply of another"):
        checkpoint_reply(reply)


def test_a_page_names_its_checkpoints_cursor_and_content() -> None:
    entry = [b"0:", CID, b"record", b"", []]
    page = page_reply([entry, entry, [b"v"], 1, b"cursor-id", b"0:", [b"d", b"c"]])
    assert [(c.ns, c.cid, c.record) for c in page.checkpoints] == [(b"0:", CID, b"record")] * 2
    assert (page.blobs, page.done, page.cursor, page.cursor_ns, page.content) == (
        [b"v"],
        True,
        "cursor-id",
        b"0:",
        [b"d", b"c"],
    )


def test_an_empty_page_has_no_checkpoints() -> None:
    page = page_reply([[], 0, b"", b"", []])
    assert page.checkpoints == []
    assert not page.done


@pytest.mark.parametrize(
    "reply",
    [
        None,
        [[], 0, b"", []],  # an item short
        [[b"0:", CID, b"record", b""], [], 0, b"", b"", []],  # a checkpoint an item short
        [[], 0, 7, b"", []],  # a cursor that is no bytes
    ],
)
def test_a_page_of_another_shape_is_refused_naming_the_script(reply: Any) -> None:
    with pytest.raises(CorruptDataError, match="list_checkpoints answered a reply of another"):
        page_reply(reply)
