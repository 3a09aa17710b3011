"""What help(), IDEs and type checkers show a user of the public classes: every option
and error documented on each saver, and the client parameter typed so that a URL
string or the wrong kind of client is flagged before the program runs."""

from __future__ import annotations

import dataclasses
import inspect
import pydoc
import textwrap
from pathlib import Path
from typing import Any

import pytest
from mypy import api as mypy_api

import plain_redis_saver
from plain_redis_saver import (
    AsyncPlainRedisSaver,
    AsyncShallowRedisSaver,
    BaseRedisSaver,
    PlainRedisSaver,
    ShallowRedisSaver,
)
from plain_redis_saver.options import SaverOptions

REPO = Path(__file__).resolve().parent.parent
SAVERS = [PlainRedisSaver, AsyncPlainRedisSaver, ShallowRedisSaver, AsyncShallowRedisSaver]
OPTIONS = ["client", "key_prefix", "serde", *(f.name for f in dataclasses.fields(SaverOptions))]
ERRORS = [
    name
    for name, value in vars(plain_redis_saver).items()
    if isinstance(value, type) and issubclass(value, plain_redis_saver.PlainRedisSaverError)
    and value is not plain_redis_saver.PlainRedisSaverError
]  # fmt: skip


@pytest.mark.parametrize("cls", SAVERS, ids=lambda cls: cls.__name__)
def test_help_on_each_saver_explains_every_option(cls: type) -> None:
    shown = pydoc.render_doc(cls, renderer=pydoc.plaintext)
    own = inspect.getdoc(cls) or ""
    for option in OPTIONS:
        assert f"{option}:" in own and f"{option}:" in shown, option


@pytest.mark.parametrize("cls", SAVERS, ids=lambda cls: cls.__name__)
def test_help_on_each_saver_names_every_error(cls: type) -> None:
    own = inspect.getdoc(cls) or ""
    assert [e for e in ERRORS if e not in own] == []


def _public_methods(cls: type) -> list[str]:
    return [
        name
        for name, member in inspect.getmembers(cls)
        if not name.startswith("_") and callable(member) and name in dir(BaseRedisSaver)
        and hasattr(member, "__qualname__") and "RedisSaver" in member.__qualname__
    ]  # fmt: skip


@pytest.mark.parametrize("cls", SAVERS, ids=lambda cls: cls.__name__)
def test_every_public_method_says_what_it_does_and_async_ones_what_they_raise(
    cls: type,
) -> None:
    methods = _public_methods(cls)
    assert {"put", "aput", "list", "alist", "copy_thread", "acopy_thread"} <= set(methods)
    for name in methods:
        doc = inspect.getdoc(getattr(cls, name)) or ""
        assert len(doc) > 40, name
        sync = getattr(cls, name[1:], None) if name.startswith("a") else None
        if sync is not None and name[1:] in methods:
            assert (inspect.getdoc(sync) or "") in doc, name


@pytest.mark.parametrize(
    ("method", "errors"),
    [
        ("put", ["CheckpointRemovedError", "ValueTooLargeError", "ReplicationError"]),
        ("put_writes", ["ValueTooLargeError", "SerializationError"]),
        ("get_tuple", ["CorruptDataError"]),
        ("copy_thread", ["ConcurrentWriteError"]),
        ("setup", ["SchemaVersionError"]),
    ],
)
def test_methods_name_the_errors_they_raise(method: str, errors: list[str]) -> None:
    for name in (method, f"a{method}"):
        doc = inspect.getdoc(getattr(PlainRedisSaver, name)) or ""
        assert [e for e in errors if e not in doc] == [], name


TYPED_USE = """
import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.cluster
import valkey
import valkey.asyncio

from plain_redis_saver import (
    AsyncPlainRedisSaver,
    AsyncShallowRedisSaver,
    PlainRedisSaver,
    ShallowRedisSaver,
)

PlainRedisSaver(redis.Redis())
PlainRedisSaver(redis.cluster.RedisCluster())
PlainRedisSaver(valkey.Valkey())
ShallowRedisSaver(redis.Redis(), ttl=60)
AsyncPlainRedisSaver(redis.asyncio.Redis())
AsyncPlainRedisSaver(redis.asyncio.cluster.RedisCluster())
AsyncPlainRedisSaver(valkey.asyncio.Valkey())
AsyncShallowRedisSaver(redis.asyncio.Redis())
PlainRedisSaver("redis://localhost:6379/0")  # flagged
PlainRedisSaver(redis.asyncio.Redis())  # flagged
PlainRedisSaver(valkey.asyncio.Valkey())  # flagged
AsyncPlainRedisSaver(redis.Redis())  # flagged
AsyncPlainRedisSaver("redis://localhost:6379/0")  # flagged
ShallowRedisSaver(redis.asyncio.Redis())  # flagged
"""


def test_a_type_checker_flags_a_url_and_the_wrong_client_kind(tmp_path: Path) -> None:
    """mypy --strict on a user's module; the project's mypy cache keeps repeated runs to
    a few seconds."""
    module = tmp_path / "user_code.py"
    module.write_text(textwrap.dedent(TYPED_USE))
    out, err, _status = mypy_api.run(
        [
            "--strict",
            "--no-error-summary",
            "--config-file",
            str(REPO / "pyproject.toml"),
            "--cache-dir",
            str(REPO / ".mypy_cache"),
            str(module),
        ]
    )
    flagged = {int(line.split(":")[1]) for line in out.splitlines() if ": error:" in line}
    expected = {
        number
        for number, line in enumerate(TYPED_USE.splitlines(), start=1)
        if line.endswith("# flagged")
    }
    assert flagged == expected, out + err


def test_the_options_object_is_validated_once_and_frozen() -> None:
    options = SaverOptions(ttl=60, max_checkpoints=1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.ttl = 5  # type: ignore[misc]
    with pytest.raises(plain_redis_saver.InvalidConfigError, match="max_checkpoints"):
        SaverOptions(max_checkpoints=0)


def test_the_saver_and_its_core_share_one_options_object(client: Any) -> None:
    saver = PlainRedisSaver(client, ttl=60, max_checkpoints=2)
    assert saver._core.options is saver.options
    assert (saver.options.ttl, saver.max_checkpoints) == (60, 2)
