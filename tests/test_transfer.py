"""plain_redis_saver.transfer: the export format as library API, for both savers.

The compatibility promise is checked against tests/data/export_v1.jsonl, written by the
CLI's export before the format moved into the library (tests/transfer_sample.py builds
the same thread)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from plain_redis_saver import AsyncPlainRedisSaver, PlainRedisSaver
from plain_redis_saver.errors import (
    ExportFormatError,
    IncompleteImportError,
    PlainRedisSaverError,
    ThreadExistsError,
    ThreadNotFoundError,
    ValueTooLargeError,
)
from plain_redis_saver.transfer import (
    aexport_thread,
    aimport_thread,
    export_thread,
    import_thread,
)

from .conftest import Backend
from .helpers import config, put_chain
from .transfer_sample import SAMPLE_THREAD, build_sample_thread

REPO = Path(__file__).resolve().parent.parent
OLD_EXPORT = REPO / "tests" / "data" / "export_v1.jsonl"
#: The console script installed next to the interpreter running the tests.
INSTALLED = Path(sys.executable).parent / "plain-redis-saver"


def content(saver: Any, thread_id: str) -> list[Any]:
    """A thread's checkpoints in comparable form (without the thread id)."""
    out = []
    for t in saver.list({"configurable": {"thread_id": thread_id}}):
        conf = t.config["configurable"]
        parent = t.parent_config["configurable"]["checkpoint_id"] if t.parent_config else None
        out.append((conf["checkpoint_ns"], conf["checkpoint_id"], parent, t.checkpoint))
        out.append((t.metadata, t.pending_writes))
    return out


def test_a_file_exported_before_the_format_moved_imports_and_exports_the_same_lines(
    saver: PlainRedisSaver, prefix: str
) -> None:
    with OLD_EXPORT.open(encoding="utf-8") as file:
        summary = import_thread(saver, file)
    assert summary.thread_id == summary.source_thread_id == SAMPLE_THREAD
    assert (summary.checkpoints, summary.pending_writes) == (3, 3)
    expected = PlainRedisSaver(saver.client, key_prefix=prefix + "x")
    build_sample_thread(expected)
    assert content(saver, SAMPLE_THREAD) == content(expected, SAMPLE_THREAD)

    again = io.StringIO()
    export_thread(saver, SAMPLE_THREAD, again)
    old_lines = OLD_EXPORT.read_text(encoding="utf-8").splitlines()
    new_lines = again.getvalue().splitlines()
    assert new_lines[1:] == old_lines[1:]  # byte for byte, but for the header
    old_header, new_header = json.loads(old_lines[0]), json.loads(new_lines[0])
    assert list(new_header) == list(old_header)
    assert new_header["key_prefix"] == prefix
    for key in ("key_prefix", "exported_at"):
        del old_header[key], new_header[key]
    assert new_header == old_header


async def test_the_async_saver_exports_and_imports_the_same_thread(
    asaver: AsyncPlainRedisSaver, saver: PlainRedisSaver
) -> None:
    build_sample_thread(saver, "src")
    file = io.StringIO()
    exported = await aexport_thread(asaver, "src", file)
    assert (exported.checkpoints, exported.pending_writes) == (3, 3)
    sync_file = io.StringIO()
    export_thread(saver, "src", sync_file)
    assert file.getvalue().splitlines()[1:] == sync_file.getvalue().splitlines()[1:]
    file.seek(0)
    imported = await aimport_thread(asaver, file, thread_id="dst")
    assert imported.thread_id == "dst" and imported.source_thread_id == "src"
    assert content(saver, "dst") == content(saver, "src")


def test_a_truncated_file_raises_export_format_error_and_writes_nothing(
    saver: PlainRedisSaver,
) -> None:
    lines = OLD_EXPORT.read_text(encoding="utf-8").splitlines(keepends=True)
    with pytest.raises(ExportFormatError, match="truncated"):
        import_thread(saver, lines[:-1], thread_id="t")
    with pytest.raises(ExportFormatError, match="line 2: not JSON"):
        import_thread(saver, [lines[0], "{nope\n", *lines[1:]], thread_id="t")
    assert issubclass(ExportFormatError, PlainRedisSaverError)
    assert saver.get_tuple(config("t")) is None


def test_an_existing_target_raises_thread_exists_error_unless_replaced(
    saver: PlainRedisSaver,
) -> None:
    put_chain(saver, SAMPLE_THREAD, 1)
    before = content(saver, SAMPLE_THREAD)
    with pytest.raises(ThreadExistsError, match="replace=True"):
        import_thread(saver, OLD_EXPORT.read_text(encoding="utf-8").splitlines())
    assert content(saver, SAMPLE_THREAD) == before
    lines = OLD_EXPORT.read_text(encoding="utf-8").splitlines()
    assert import_thread(saver, lines, replace=True).checkpoints == 3
    assert len(list(saver.list({"configurable": {"thread_id": SAMPLE_THREAD}}))) == 3


def test_exporting_a_missing_thread_raises_thread_not_found_and_writes_nothing(
    saver: PlainRedisSaver,
) -> None:
    file = io.StringIO()
    with pytest.raises(ThreadNotFoundError, match="'nobody'"):
        export_thread(saver, "nobody", file)
    assert file.getvalue() == ""


def test_the_installed_command_imports_a_file_exported_before_the_format_moved(
    backend: Backend, saver: PlainRedisSaver, prefix: str
) -> None:
    if backend.url is None:
        pytest.skip("the installed command connects by URL; fakeredis has none")
    env = {**os.environ, "PYTHONPATH": str(REPO), "REDIS_URL": backend.url}
    ran = subprocess.run(
        [str(INSTALLED), "--key-prefix", prefix, "import", str(OLD_EXPORT), "--json"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout)["checkpoints"] == 3
    expected = PlainRedisSaver(saver.client, key_prefix=prefix + "x")
    build_sample_thread(expected)
    assert content(saver, SAMPLE_THREAD) == content(expected, SAMPLE_THREAD)


def test_a_write_refused_part_way_raises_incomplete_import_error_naming_the_progress(
    saver: PlainRedisSaver, prefix: str
) -> None:
    small = PlainRedisSaver(saver.client, key_prefix=prefix, max_value_size=64)
    with pytest.raises(IncompleteImportError, match="stopped after 0 of 3") as caught:
        import_thread(small, OLD_EXPORT.read_text(encoding="utf-8").splitlines())
    assert (caught.value.written, caught.value.total) == (0, 3)
    assert isinstance(caught.value.__cause__, ValueTooLargeError)
