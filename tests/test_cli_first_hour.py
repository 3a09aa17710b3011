"""The CLI's rough edges of issue 13: the package split, deleting damaged threads
cheaply, empty prefixes, --serde from the current directory, and check's report.

Each behaviour runs once through the INSTALLED console script (a subprocess of
``plain-redis-saver`` from the test interpreter's environment, importing this checkout
through PYTHONPATH); the rest runs in-process through ``main([...], client=...)``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.serde.encrypted import EncryptedSerializer

import plain_redis_saver.cli
from plain_redis_saver import PlainRedisSaver, SafeSerializer
from plain_redis_saver.cli import main

from .conftest import Backend
from .helpers import checkpoint, config, count_round_trips, metadata, put_chain
from .test_cli import Run

REPO = Path(__file__).resolve().parent.parent
INSTALLED = Path(sys.executable).parent / "plain-redis-saver"
KEY = b"k" * 16


@pytest.fixture
def cli(backend: Backend, prefix: str, capsys: pytest.CaptureFixture[str]) -> Any:
    def run(*args: str, key_prefix: str | None = None) -> Run:
        client = backend.client()
        capsys.readouterr()
        try:
            code = main(["--key-prefix", key_prefix or prefix, *args], client=client)
        finally:
            client.close()
        captured = capsys.readouterr()
        assert "Traceback" not in captured.err
        return Run(code, captured.out, captured.err)

    return run


@pytest.fixture
def installed(backend: Backend, prefix: str) -> Any:
    """Runs the installed ``plain-redis-saver`` command against the backend."""
    if backend.url is None:
        pytest.skip("the installed command connects by URL; fakeredis has none")
    assert INSTALLED.exists(), f"no console script next to {sys.executable}"

    def run(*args: str, cwd: Path | None = None) -> Run:
        env = {**os.environ, "PYTHONPATH": str(REPO), "REDIS_URL": backend.url or ""}
        done = subprocess.run(
            [str(INSTALLED), "--key-prefix", prefix, *args],
            env=env, capture_output=True, text=True, timeout=60, cwd=cwd or REPO,
        )  # fmt: skip
        assert "Traceback" not in done.stderr, done.stderr
        return Run(done.returncode, done.stdout, done.stderr)

    return run


def encrypted_saver(saver: PlainRedisSaver) -> PlainRedisSaver:
    serde = EncryptedSerializer.from_pycryptodome_aes(key=KEY)
    return PlainRedisSaver(saver.client, key_prefix=saver.key_prefix, serde=serde)


class UndecodableSerde(SafeSerializer):
    """Writes the value "broken" as msgpack bytes no reader accepts: a thread whose
    data no longer decodes, as check reports a damaged one."""

    def dumps_typed(self, obj: Any) -> tuple[str, bytes]:
        if obj == "broken":
            return "msgpack", b"\xc1\xc1"
        return super().dumps_typed(obj)


def undecodable_thread(saver: PlainRedisSaver, thread_id: str, n: int) -> None:
    """n checkpoints in a chain; the first holds a value that does not decode."""
    writer = PlainRedisSaver(saver.client, key_prefix=saver.key_prefix, serde=UndecodableSerde())
    parent = config(thread_id)
    for i in range(n):
        value = "broken" if i == 0 else i
        version = writer.get_next_version(None, None)
        cp = checkpoint({f"c{i}": value}, versions={f"c{i}": version})
        parent = writer.put(parent, cp, metadata(step=i), {f"c{i}": version})


# --------------------------------------------------------------------------- the package


def test_the_cli_is_a_package_of_small_modules_each_with_one_job() -> None:
    package = Path(plain_redis_saver.cli.__file__).parent
    assert Path(plain_redis_saver.cli.__file__).name == "__init__.py"
    modules = sorted(package.rglob("*.py"))
    names = {m.relative_to(package).as_posix() for m in modules}
    assert {"arguments.py", "connection.py", "store.py", "render.py"} <= names
    assert any(n.startswith("commands/") for n in names)
    too_long = {m.name: n for m in modules if (n := len(m.read_text().splitlines())) > 400}
    assert not too_long


def test_the_installed_command_and_python_m_run_every_command(
    installed: Any, saver: PlainRedisSaver, backend: Backend, prefix: str
) -> None:
    helped = installed("--help")
    assert helped.code == 0
    for name in ("threads", "history", "show", "stats", "check", "delete", "prune", "copy"):
        assert name in helped.out
    assert "export" in helped.out and "import" in helped.out
    put_chain(saver, "t", 2)
    assert installed("history", "t", "--json").json()["thread_id"] == "t"
    env = {**os.environ, "PYTHONPATH": str(REPO), "REDIS_URL": backend.url or ""}
    by_module = subprocess.run(
        [sys.executable, "-m", "plain_redis_saver", "--key-prefix", prefix, "stats", "--json"],
        env=env, capture_output=True, text=True, timeout=60, cwd=REPO,
    )  # fmt: skip
    assert by_module.returncode == 0 and json.loads(by_module.stdout)["checkpoints"] == 2


# --------------------------------------------------------------------------- delete / prune / copy


@pytest.fixture
def records_evicted(saver: PlainRedisSaver, admin: Any) -> Iterator[Any]:
    """Thread "bad" whose checkpoint records key is gone (as an eviction leaves it)."""
    put_chain(saver, "bad", 3)
    keys = saver._plans.keys.thread("bad")
    admin.unlink(keys.checkpoints)
    yield keys


def test_delete_removes_a_thread_that_check_reports_damaged(
    cli: Any, records_evicted: Any, admin: Any
) -> None:
    assert cli("check", "bad").code == 1
    deleted = cli("delete", "bad", "--json")
    assert deleted.code == 0, deleted.err
    assert deleted.json() == {"deleted": "bad", "checkpoints": 3}  # from the counters
    assert [admin.exists(k) for k in records_evicted] == [0] * 5


def test_the_installed_command_deletes_a_damaged_thread(
    installed: Any, records_evicted: Any, admin: Any
) -> None:
    assert installed("check", "bad").code == 1
    done = installed("delete", "bad")
    assert done.code == 0, done.err
    assert done.out == "deleted thread 'bad' (3 checkpoints)\n"
    assert [admin.exists(k) for k in records_evicted] == [0] * 5


def test_delete_decodes_nothing_and_costs_the_same_for_any_thread_length(
    cli: Any, saver: PlainRedisSaver, monkeypatch: pytest.MonkeyPatch
) -> None:
    put_chain(saver, "short", 2)
    put_chain(saver, "long", 120)
    decoded = []
    original = SafeSerializer.loads_typed

    def counting(self: Any, data: tuple[str, bytes]) -> Any:
        decoded.append(data[0])
        return original(self, data)

    monkeypatch.setattr(SafeSerializer, "loads_typed", counting)
    trips = []
    for thread_id in ("short", "long"):
        with count_round_trips() as counter:
            assert cli("delete", thread_id).code == 0
        trips.append(counter.count)
    assert decoded == []
    assert trips[0] == trips[1]


def test_prune_and_copy_work_on_a_thread_whose_data_does_not_decode(
    cli: Any, saver: PlainRedisSaver
) -> None:
    undecodable_thread(saver, "u", 3)
    assert cli("check", "u").code == 1
    copied = cli("copy", "u", "u2", "--json")
    assert copied.json() == {"source": "u", "target": "u2", "checkpoints": 3}
    pruned = cli("prune", "u", "--keep-latest", "--json")
    assert pruned.json() == {"pruned": [{"thread_id": "u", "before": 3, "after": 1}]}
    latest = saver.get_tuple(config("u"))
    assert latest is not None and latest.checkpoint["channel_values"] == {"c2": 2}


def test_prune_of_a_thread_that_lost_keys_names_the_key_and_points_to_delete(
    cli: Any, records_evicted: Any
) -> None:
    run = cli("prune", "bad", "--keep-latest")
    assert run.code == 1 and records_evicted.checkpoints in run.err
    assert "'delete THREAD' removes it" in run.err


# --------------------------------------------------------------------------- empty prefix


def test_threads_and_stats_on_an_empty_prefix_exit_0_with_a_hint(cli: Any) -> None:
    listed = cli("threads", "--json")
    assert listed.json() == {"threads": [], "cursor": "0"}
    assert "nothing is stored under key prefix" in listed.err
    assert "--key-prefix demo" in listed.err
    table = cli("threads")
    assert (table.code, table.out) == (0, "") and "is --key-prefix right?" in table.err
    stats = cli("stats", "--json").json()
    assert stats["threads"] == stats["checkpoints"] == 0
    assert "--key-prefix demo" in cli("stats").err
    checked = cli("check", "--json")
    assert checked.json()["threads"] == 0 and "nothing is stored" in checked.err


def test_the_installed_command_lists_an_empty_prefix_as_empty(installed: Any) -> None:
    run = installed("threads", "--json")
    assert run.code == 0, run.err
    assert json.loads(run.out)["threads"] == []
    assert "nothing is stored under key prefix" in run.err


# --------------------------------------------------------------------------- --serde, check


def test_the_installed_command_finds_the_serde_module_in_the_current_directory(
    installed: Any, saver: PlainRedisSaver, tmp_path: Path
) -> None:
    (tmp_path / "lgtest_cwd_serde.py").write_text(
        "from langgraph.checkpoint.serde.encrypted import EncryptedSerializer\n"
        f"serde = EncryptedSerializer.from_pycryptodome_aes(key={KEY!r})\n"
    )
    put_chain(encrypted_saver(saver), "secret", 2)
    shown = installed("--serde", "lgtest_cwd_serde:serde", "show", "secret", cwd=tmp_path)
    assert shown.code == 0, shown.err
    assert shown.json()["channel_values"] == {"n": 1}
    checked = installed("check", "secret", cwd=tmp_path)
    assert checked.code == 1 and "cannot decode: pass --serde" in checked.out


def test_check_reports_every_named_thread_even_a_missing_one(
    cli: Any, saver: PlainRedisSaver
) -> None:
    put_chain(saver, "one", 2)
    put_chain(saver, "two", 1)
    run = cli("check", "one", "nobody", "two", "--json")
    assert run.code == 1 and "'nobody' not found" in run.err
    rows = {r["thread_id"]: r for r in json.loads(run.out)["results"]}
    assert list(rows) == ["one", "nobody", "two"]
    assert rows["one"]["status"] == rows["two"]["status"] == "ok"
    assert rows["one"]["checkpoints_read"] == 2
    assert rows["nobody"]["status"] == "not found"
    table = cli("check", "one", "nobody")
    assert table.out.splitlines()[2].split()[:3] == ["nobody", "0", "not"]


def test_an_encrypted_thread_read_without_serde_is_reported_as_cannot_decode(
    cli: Any, saver: PlainRedisSaver
) -> None:
    put_chain(encrypted_saver(saver), "secret", 2)
    put_chain(saver, "plain", 1)
    run = cli("check", "--json")
    assert run.code == 1
    rows = {r["thread_id"]: r for r in json.loads(run.out)["results"]}
    assert rows["secret"]["status"] == "cannot decode"
    assert rows["secret"]["problem"].startswith("cannot decode: pass --serde")
    assert rows["plain"]["status"] == "ok"
    assert "damaged" not in run.err and "pass --serde module:name" in run.err
    listed = cli("threads", "--json")
    statuses = {r["thread_id"]: r["status"] for r in json.loads(listed.out)["threads"]}
    assert statuses == {"secret": "cannot decode", "plain": "ok"}


def test_counts_of_one_are_singular(cli: Any, saver: PlainRedisSaver, tmp_path: Path) -> None:
    [only] = put_chain(saver, "one", 1)
    saver.put_writes(only, [("n", 1)], "task")
    file = tmp_path / "one.jsonl"
    exported = cli("export", "one", "-o", str(file))
    assert "(1 checkpoint) to" in exported.err
    imported = cli("import", str(file), "--thread", "copy")
    assert imported.out.endswith(": 1 checkpoint, 1 pending write\n")
    assert cli("copy", "one", "two").out == "copied thread 'one' to 'two' (1 checkpoint)\n"
    assert cli("delete", "one").out == "deleted thread 'one' (1 checkpoint)\n"
    put_chain(saver, "three", 3)
    assert cli("delete", "three").out == "deleted thread 'three' (3 checkpoints)\n"
