"""The release artifacts: ``python -m build`` makes an sdist and, from it, a wheel that
installs into a clean virtualenv and works there (library, CLI entry point, scripts).

To stay fast and offline, the wheel is installed with ``--no-deps`` into a fresh venv
(no system site-packages) whose dependencies are made visible from the running test
environment by a ``.pth`` file listing its site-packages directories. Those directories
are appended after the venv's own, and their ``.pth`` files are not processed, so the
editable install of this repository stays invisible: the smoke script checks that it
imports the wheel's copy. The dependency list itself is checked in the wheel's METADATA.
"""

from __future__ import annotations

import os
import site
import subprocess
import sys
import sysconfig
import tarfile
import textwrap
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

SMOKE = """
import importlib.metadata
import importlib.resources
import os
import sys

import plain_redis_saver
from plain_redis_saver import PlainRedisSaver
from langgraph.checkpoint.base import empty_checkpoint

location = os.path.realpath(plain_redis_saver.__file__)
assert location.startswith(os.path.realpath(sys.prefix)), ("not the wheel's copy", location)
files = importlib.resources.files("plain_redis_saver")
assert (files / "py.typed").is_file()
assert (files / "lua" / "put_checkpoint.lua").is_file()
assert (files / "lua" / "includes" / "common.lua").is_file()
assert importlib.metadata.version("plain-redis-saver") == plain_redis_saver.__version__

import fakeredis

saver = PlainRedisSaver(fakeredis.FakeRedis(), key_prefix="lgtestpkg")
saver.setup()
checkpoint = empty_checkpoint()
checkpoint["channel_values"] = {"messages": ["hello"]}
checkpoint["channel_versions"] = {"messages": saver.get_next_version(None, None)}
config = {"configurable": {"thread_id": "smoke", "checkpoint_ns": ""}}
versions = checkpoint["channel_versions"]
stored = saver.put(config, checkpoint, {"source": "input", "step": -1}, versions)
saver.put_writes(stored, [("messages", "pending")], "task-1")
found = saver.get_tuple(config)
assert found is not None
assert found.checkpoint["channel_values"] == {"messages": ["hello"]}
assert found.pending_writes == [("task-1", "messages", "pending")]
print("SMOKE OK", plain_redis_saver.__version__, location)
"""


def _run(args: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    return subprocess.run(args, capture_output=True, text=True, timeout=120, env=env, cwd=cwd)


def _dependency_dirs() -> list[str]:
    """The running environment's site-packages directories (where the deps are)."""
    dirs = [sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]
    dirs += site.getsitepackages()
    if site.ENABLE_USER_SITE:
        dirs.append(site.getusersitepackages())
    repo = str(REPO)
    return [d for d in dict.fromkeys(dirs) if os.path.isdir(d) and d != repo]


def test_wheel_installs_into_a_clean_venv_and_works(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    built = _run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(dist), str(REPO)]
    )
    assert built.returncode == 0, built.stdout + built.stderr
    [wheel] = dist.glob("plain_redis_saver-*.whl")
    [sdist] = dist.glob("plain_redis_saver-*.tar.gz")  # the wheel above was built from it

    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        info = next(n for n in names if n.endswith(".dist-info/METADATA"))
        metadata = zf.read(info).decode()
        entry_points = zf.read(info.replace("METADATA", "entry_points.txt")).decode()
    assert {"plain_redis_saver/py.typed", "plain_redis_saver/cli/__init__.py"} <= names
    assert "plain_redis_saver/__main__.py" in names
    assert {"plain_redis_saver/transfer.py", "plain_redis_saver/cli/commands/read.py"} <= names
    assert any(n.startswith("plain_redis_saver/lua/") and n.endswith(".lua") for n in names)
    assert "plain-redis-saver = plain_redis_saver.cli:main" in entry_points
    for requirement in ("langgraph-checkpoint", "redis[hiredis]", "msgpack"):
        assert f"Requires-Dist: {requirement}" in metadata
    assert "License-Expression: MIT" in metadata
    assert "Classifier: Programming Language :: Python :: 3.13" in metadata
    with tarfile.open(sdist) as tf:
        members = {Path(m).relative_to(Path(m).parts[0]).as_posix() for m in tf.getnames()[1:]}
    assert {"LICENSE", "pyproject.toml", "plain_redis_saver/lua/includes/common.lua"} <= members

    venv = tmp_path / "venv"
    made = _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    assert made.returncode == 0, made.stderr
    bindir = venv / ("Scripts" if os.name == "nt" else "bin")
    python = bindir / ("python.exe" if os.name == "nt" else "python")
    installed = _run(
        [
            sys.executable, "-m", "pip", "--python", str(python), "install",
            "--no-deps", "--no-index", "--disable-pip-version-check", str(wheel),
        ]
    )  # fmt: skip
    assert installed.returncode == 0, installed.stdout + installed.stderr
    purelib = _run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"])
    Path(purelib.stdout.strip(), "zz_test_dependencies.pth").write_text(
        "".join(d + "\n" for d in _dependency_dirs())
    )

    script = tmp_path / "smoke.py"
    script.write_text(textwrap.dedent(SMOKE))
    smoke = _run([str(python), str(script)], cwd=tmp_path)
    assert smoke.returncode == 0, smoke.stdout + smoke.stderr
    assert smoke.stdout.startswith("SMOKE OK 0.1.0 " + os.path.realpath(venv))

    command = bindir / ("plain-redis-saver.exe" if os.name == "nt" else "plain-redis-saver")
    helped = _run([str(command), "--help"], cwd=tmp_path)
    assert helped.returncode == 0, helped.stderr
    for name in ("threads", "history", "show", "stats", "delete", "prune", "copy", "export"):
        assert name in helped.stdout
    version = _run([str(python), "-m", "plain_redis_saver", "--version"], cwd=tmp_path)
    assert version.stdout.strip() == "plain-redis-saver 0.1.0", version.stderr
    refused = _run([str(command), "--url", "redis://127.0.0.1:1/0", "stats"], cwd=tmp_path)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "cannot connect" in refused.stderr


@pytest.mark.parametrize("name", ["CHANGELOG.md", "LICENSE"])
def test_release_files_exist(name: str) -> None:
    text = (REPO / name).read_text(encoding="utf-8")
    if name == "CHANGELOG.md":
        assert "## 0.1.0" in text
