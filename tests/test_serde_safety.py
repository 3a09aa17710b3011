"""Safe deserialization by default (plain_redis_saver.serde.SafeSerializer).

Half one: bytes naming ``os.system``, ``subprocess.Popen``, ``builtins.eval``, a module
not yet imported, a pickle or a LangGraph JSON constructor, written into a thread's
channel value, pending write or checkpoint record, run nothing (a marker file stays
absent) and raise DisallowedTypeError naming the type and how to allow it.

Half two: LangGraph programs whose state holds the application's own pydantic models,
dataclasses, named tuples, enums and LangChain messages round-trip with no
configuration; ``with_allowlist`` and ``LANGGRAPH_STRICT_MSGPACK`` are honoured; a
``serde=`` given by the user is used as given.

The hostile bytes are stored by an unrestricted client through the saver's own API
with a serializer that emits them, so the tests hold whatever the storage layout.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import json
import operator
import os
import pickle
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, NamedTuple, TypedDict

import ormsgpack
import pytest
from langchain_core.load import dumpd
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage
from langchain_core.prompts import PromptTemplate
from langgraph._internal import _serde as lg_internal_serde
from langgraph.checkpoint.serde import _msgpack as lg_msgpack
from langgraph.checkpoint.serde import jsonplus
from langgraph.checkpoint.serde.encrypted import EncryptedSerializer
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.func import entrypoint, task
from langgraph.graph import START, StateGraph, add_messages
from langgraph.types import Send
from pydantic import BaseModel, SecretStr

from plain_redis_saver import (
    AsyncPlainRedisSaver,
    CorruptDataError,
    DisallowedTypeError,
    PlainRedisSaver,
    PlainRedisSaverError,
    SafeSerializer,
)
from plain_redis_saver.cli import main

from .conftest import Backend
from .helpers import checkpoint, config, metadata

# ------------------------------------------------------------------ application types
# Module level, as an application's are: stored bytes name them by module and name.


class Mood(enum.Enum):
    HAPPY = "happy"
    GRUMPY = "grumpy"


@dataclasses.dataclass
class Note:
    text: str
    stars: int = 0


class Point(NamedTuple):
    x: int
    y: int


class Profile(BaseModel):
    name: str
    mood: Mood
    notes: list[Note] = []
    secret: SecretStr | None = None


class Plain:
    """Not a data type: stored bytes may not construct it."""

    def __init__(self, x: int) -> None:
        self.x = x


# ------------------------------------------------------------------ hostile bytes


def _ext(code: int, *parts: Any) -> bytes:
    return ormsgpack.packb(ormsgpack.Ext(code, ormsgpack.packb(list(parts))))


class Hostile:
    """A value the admin's serializer replaces by ``typed`` when storing it."""

    def __init__(self, typed: tuple[str, bytes]) -> None:
        self.typed = typed


class HostileSerde(JsonPlusSerializer):
    def dumps_typed(self, obj: Any) -> tuple[str, bytes]:
        if isinstance(obj, Hostile):
            return obj.typed
        # Metadata is stored as one value: a hostile item replaces all of it.
        if isinstance(obj, dict):
            for item in obj.values():
                if isinstance(item, Hostile):
                    return item.typed
        return super().dumps_typed(obj)


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> Any:
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture
def marker(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "pwned"
    yield path
    assert not path.exists(), "stored bytes ran code"


@pytest.fixture
def unimported_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, marker: Path) -> str:
    """A module on sys.path whose import would create the marker (and define a
    dataclass), never imported by the test."""
    name = f"never_imported_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(
        "import dataclasses, pathlib\n"
        f"pathlib.Path({str(marker)!r}).touch()\n"
        "@dataclasses.dataclass\nclass Data:\n    x: int = 0\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


ONE, POS, KW, METHOD, MODEL = (
    jsonplus.EXT_CONSTRUCTOR_SINGLE_ARG,
    jsonplus.EXT_CONSTRUCTOR_POS_ARGS,
    jsonplus.EXT_CONSTRUCTOR_KW_ARGS,
    jsonplus.EXT_METHOD_SINGLE_ARG,
    jsonplus.EXT_PYDANTIC_V2,
)


def hostile_payloads(marker: Path, module: str) -> dict[str, tuple[tuple[str, bytes], str]]:
    """Name -> (typed bytes, what the error must name)."""
    path = str(marker)
    touch = f"touch {path}"
    argv = ["touch", path]
    system = ormsgpack.Ext(ONE, ormsgpack.packb(["os", "system", touch]))
    lc2 = {"lc": 2, "type": "constructor", "id": ["os", "system"], "args": [touch]}
    return {
        "os.system": (("msgpack", _ext(ONE, "os", "system", touch)), "os.system"),
        "subprocess.Popen": (
            ("msgpack", _ext(POS, "subprocess", "Popen", [argv])),
            "subprocess.Popen",
        ),
        "subprocess.Popen-kwargs": (
            ("msgpack", _ext(KW, "subprocess", "Popen", {"args": argv})),
            "subprocess.Popen",
        ),
        "subprocess.Popen-as-pydantic": (
            ("msgpack", _ext(MODEL, "subprocess", "Popen", {"args": argv}, "model_validate_json")),
            "subprocess.Popen",
        ),
        "builtins.eval": (
            ("msgpack", _ext(ONE, "builtins", "eval", f"open({path!r}, 'w')")),
            "builtins.eval",
        ),
        "method-call": (
            ("msgpack", _ext(METHOD, "os", "system", touch, "__call__")),
            "os.system.__call__",
        ),
        "unimported-module": (("msgpack", _ext(KW, module, "Data", {"x": 1})), f"{module}.Data"),
        "nested-in-a-list": (("msgpack", ormsgpack.packb([1, {"deep": system}])), "os.system"),
        "json-constructor": (("json", json.dumps(lc2).encode()), "os.system"),
        "pickle": (("pickle", pickle.dumps(_Evil(marker))), "unpickle"),
    }


PAYLOAD_NAMES = list(hostile_payloads(Path("x"), "m"))


# ================================================================ unit: no server


@pytest.mark.parametrize("name", PAYLOAD_NAMES)
def test_hostile_bytes_run_nothing_and_raise_disallowed_type_error(
    name: str, marker: Path, unimported_module: str
) -> None:
    typed, named = hostile_payloads(marker, unimported_module)[name]
    with pytest.raises(DisallowedTypeError, match=named.replace(".", r"\.")) as raised:
        SafeSerializer().loads_typed(typed)
    assert unimported_module not in sys.modules
    if name != "pickle":
        assert "SafeSerializer(allowed_types=" in str(raised.value)
        assert "with_allowlist" in str(raised.value)


def test_the_permissive_langgraph_default_would_have_run_the_payload(marker: Path) -> None:
    """The attack the safe default stops (JsonPlusSerializer's permissive default)."""
    typed, _ = hostile_payloads(marker, "m")["os.system"]
    JsonPlusSerializer(allowed_msgpack_modules=True).loads_typed(typed)
    assert marker.exists()
    marker.unlink()


def test_disallowed_type_error_is_the_librarys_own_corrupt_data_error() -> None:
    # core re-raises the library's own errors as they are, and readers that expect
    # CorruptDataError for data they cannot accept catch it.
    assert issubclass(DisallowedTypeError, CorruptDataError)
    assert issubclass(DisallowedTypeError, PlainRedisSaverError)


def test_a_malformed_extension_is_a_plain_decoding_error() -> None:
    # Not a refused type: the saver reports it as CorruptDataError naming the key.
    with pytest.raises(ValueError, match="not \\(module, name"):
        SafeSerializer().loads_typed(("msgpack", _ext(ONE, 1)))


def test_a_refused_type_inside_a_safe_one_is_raised_as_the_refusal_it_was() -> None:
    # ormsgpack turns an ext hook's exception into ValueError("ext_hook failed"): the
    # serializer must still raise the innermost refusal, naming the type.
    hostile = ormsgpack.Ext(KW, ormsgpack.packb(["subprocess", "Popen", {"args": ["true"]}]))
    message = {"content": "x", "id": hostile}
    typed = ("msgpack", _ext(MODEL, "langchain_core.messages.human", "HumanMessage", message))
    serde = SafeSerializer()
    for _ in range(2):  # and the same again: nothing of the first failure stays
        with pytest.raises(DisallowedTypeError, match=r"subprocess\.Popen"):
            serde.loads_typed(typed)


def test_bytes_that_are_not_msgpack_raise_the_decoders_error() -> None:
    with pytest.raises(ValueError):
        SafeSerializer().loads_typed(("msgpack", b"\xc1"))


def test_malformed_stored_extension_is_corrupt_data_naming_the_key(
    saver: PlainRedisSaver, admin: Any, prefix: str
) -> None:
    _store_hostile(admin, prefix, "value", ("msgpack", _ext(ONE, 1)))
    with pytest.raises(CorruptDataError, match=f"{prefix}:"):
        saver.get_tuple(config("t"))


VALUES: dict[str, Any] = {
    "enum": Mood.GRUMPY,
    "dataclass": Note("hi", 3),
    "named tuple": Point(1, 2),
    "pydantic model": Profile(
        name="bob", mood=Mood.HAPPY, notes=[Note("n")], secret=SecretStr("s")
    ),
    "messages": [HumanMessage("hi", id="1"), AIMessage("yo", id="2")],
    "stdlib": {
        "when": datetime.datetime(2024, 5, 1, 12, tzinfo=datetime.timezone.utc),
        "day": datetime.date(2024, 5, 1),
        "span": datetime.timedelta(seconds=5),
        "id": uuid.UUID(int=7),
        "set": {1, 2},
        "path": Path("/a/b"),
    },
    "send": Send("node", {"x": 1}),
}  # fmt: skip


@pytest.mark.parametrize("name", list(VALUES))
def test_data_types_round_trip_with_no_configuration(name: str) -> None:
    value = VALUES[name]
    typed = SafeSerializer().dumps_typed(value)
    restored = SafeSerializer().loads_typed(typed)
    if name == "pydantic model":
        assert restored.secret.get_secret_value() == "s"
        restored.secret = value.secret = None
    assert restored == value and type(restored) is type(value)


@pytest.mark.parametrize("name", list(VALUES))
def test_safe_serializer_writes_the_same_bytes_as_json_plus(name: str) -> None:
    assert SafeSerializer().dumps_typed(VALUES[name]) == JsonPlusSerializer().dumps_typed(
        VALUES[name]
    )


def test_a_class_that_is_not_a_data_type_is_refused_by_default() -> None:
    typed = ("msgpack", _ext(jsonplus.EXT_CONSTRUCTOR_KW_ARGS, __name__, "Plain", {"x": 1}))
    with pytest.raises(DisallowedTypeError, match=r"test_serde_safety\.Plain.*not a dataclass"):
        SafeSerializer().loads_typed(typed)
    assert SafeSerializer(allowed_types=[Plain]).loads_typed(typed).x == 1


def test_a_langchain_serializable_model_is_refused_by_default() -> None:
    # Chat models, tools and prompts are LangChain Serializable pydantic models:
    # configuration whose construction may reach the network, not state data.
    typed = SafeSerializer().dumps_typed(PromptTemplate.from_template("{x}"))
    with pytest.raises(DisallowedTypeError, match="PromptTemplate"):
        SafeSerializer().loads_typed(typed)


def test_a_legacy_json_langchain_object_outside_the_messages_is_refused() -> None:
    legacy = (
        b'{"lc": 1, "type": "constructor", "id": ["langchain_core", "prompts", "prompt",'
        b' "PromptTemplate"], "kwargs": {"template": "{x}", "input_variables": ["x"]}}'
    )
    with pytest.raises(ValueError, match="PromptTemplate"):
        SafeSerializer().loads_typed(("json", legacy))
    message = json.dumps(dumpd(HumanMessage("hi"))).encode()
    assert SafeSerializer().loads_typed(("json", message)) == HumanMessage("hi")


def test_strict_mode_allows_only_safe_and_allowed_types() -> None:
    typed = SafeSerializer().dumps_typed(Note("x"))
    with pytest.raises(DisallowedTypeError, match="strict mode"):
        SafeSerializer(strict=True).loads_typed(typed)
    assert SafeSerializer(strict=True, allowed_types=[Note]).loads_typed(typed) == Note("x")
    widened = SafeSerializer(strict=True).with_msgpack_allowlist([(__name__, "Note")])
    assert widened.loads_typed(typed) == Note("x") and widened.strict


@pytest.mark.parametrize("value", ["true", "false"])
def test_strict_mode_follows_langgraph_strict_msgpack(value: str) -> None:
    env = {**os.environ, "LANGGRAPH_STRICT_MSGPACK": value}
    code = "from plain_redis_saver import SafeSerializer; print(SafeSerializer().strict)"
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == str(value == "true")


def test_a_numpy_array_is_refused_while_numpy_is_not_imported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delitem(sys.modules, "numpy", raising=False)
    typed = ("msgpack", _ext(jsonplus.EXT_NUMPY_ARRAY, "<i8", [1], "C", b"\0" * 8))
    with pytest.raises(DisallowedTypeError, match="numpy is not imported"):
        SafeSerializer().loads_typed(typed)
    assert "numpy" not in sys.modules


# ================================================================ through the saver


def _store_hostile(admin: Any, prefix: str, where: str, typed: tuple[str, bytes]) -> Any:
    """Stores ``typed`` as a channel value, a pending write or a metadata value (part
    of the checkpoint record) of thread "t", as an unrestricted client can."""
    writer = PlainRedisSaver(admin, key_prefix=prefix, serde=HostileSerde())
    bad = Hostile(typed)
    values = {"v": bad} if where == "value" else {"v": 1}
    md = metadata(extra=bad) if where == "record" else metadata()
    cp = checkpoint(values, versions={"v": "1"})
    stored = writer.put(config("t"), cp, md, {"v": "1"})
    if where == "write":
        writer.put_writes(stored, [("v", bad)], "task")
    return stored


WHERE = ["value", "write", "record"]


@pytest.mark.parametrize("where", WHERE)
@pytest.mark.parametrize(
    "name", ["os.system", "subprocess.Popen", "builtins.eval", "unimported-module"]
)
def test_hostile_stored_data_runs_nothing_on_read(
    saver: PlainRedisSaver,
    admin: Any,
    prefix: str,
    marker: Path,
    unimported_module: str,
    where: str,
    name: str,
) -> None:
    typed, named = hostile_payloads(marker, unimported_module)[name]
    _store_hostile(admin, prefix, where, typed)
    with pytest.raises(DisallowedTypeError, match=named.replace(".", r"\.")):
        saver.get_tuple(config("t"))
    # Over every thread, a refused one is reported with the others once all are read.
    with pytest.raises(CorruptDataError, match=named.replace(".", r"\.")):
        list(saver.list(None))
    assert unimported_module not in sys.modules


async def test_hostile_stored_data_runs_nothing_on_async_read(
    asaver: AsyncPlainRedisSaver, admin: Any, prefix: str, marker: Path
) -> None:
    typed, _ = hostile_payloads(marker, "m")["os.system"]
    _store_hostile(admin, prefix, "value", typed)
    with pytest.raises(DisallowedTypeError, match=r"os\.system"):
        await asaver.aget_tuple(config("t"))


def test_hostile_delta_history_runs_nothing(
    saver: PlainRedisSaver, admin: Any, prefix: str, marker: Path
) -> None:
    typed, _ = hostile_payloads(marker, "m")["subprocess.Popen"]
    parent = _store_hostile(admin, prefix, "write", typed)
    child = saver.put(parent, checkpoint({}, versions={"v": "1"}), metadata(step=1), {})
    with pytest.raises(DisallowedTypeError, match=r"subprocess\.Popen"):
        saver.get_delta_channel_history(config=child, channels=["v"])


def test_a_user_serde_is_used_as_given(backend: Backend, client: Any, prefix: str) -> None:
    given = JsonPlusSerializer(allowed_msgpack_modules=True)
    saver = PlainRedisSaver(client, key_prefix=prefix, serde=given)
    assert saver.serde is given
    # The permissive serializer the user chose rebuilds what the default refuses.
    typed = ("msgpack", _ext(jsonplus.EXT_CONSTRUCTOR_KW_ARGS, __name__, "Plain", {"x": 5}))
    _store_hostile(backend.admin_client(), prefix, "value", typed)
    tup = saver.get_tuple(config("t"))
    assert tup is not None and tup.checkpoint["channel_values"]["v"].x == 5
    with pytest.raises(DisallowedTypeError, match="Plain"):
        PlainRedisSaver(client, key_prefix=prefix).get_tuple(config("t"))


def test_the_default_serde_is_the_safe_serializer(saver: PlainRedisSaver) -> None:
    assert isinstance(saver.serde, SafeSerializer)


def test_with_allowlist_adds_types_to_the_saver(
    saver: PlainRedisSaver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lg_msgpack, "STRICT_MSGPACK_ENABLED", True)
    strict = PlainRedisSaver(saver.client, key_prefix=saver.key_prefix)
    cp = checkpoint({"v": Note("kept")}, versions={"v": "1"})
    strict.put(config("t"), cp, metadata(), {"v": "1"})
    with pytest.raises(DisallowedTypeError, match="strict mode"):
        strict.get_tuple(config("t"))
    widened = strict.with_allowlist([(__name__, "Note")])
    tup = widened.get_tuple(config("t"))
    assert tup is not None and tup.checkpoint["channel_values"]["v"] == Note("kept")


def test_an_encrypted_safe_serializer_takes_the_allowlist(saver: PlainRedisSaver) -> None:
    encrypted = EncryptedSerializer.from_pycryptodome_aes(
        serde=SafeSerializer(strict=True), key=b"0" * 16
    )
    saver = PlainRedisSaver(saver.client, key_prefix=saver.key_prefix, serde=encrypted)
    cp = checkpoint({"v": Note("secret")}, versions={"v": "1"})
    saver.put(config("t"), cp, metadata(), {"v": "1"})
    with pytest.raises(DisallowedTypeError):
        saver.get_tuple(config("t"))
    tup = saver.with_allowlist([(__name__, "Note")]).get_tuple(config("t"))
    assert tup is not None and tup.checkpoint["channel_values"]["v"] == Note("secret")


# ================================================================ LangGraph programs


class State(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]
    profile: Profile
    notes: Annotated[list[Note], operator.add]
    mood: Mood


def _state_graph(saver: Any) -> Any:
    def talk(state: State) -> dict[str, Any]:
        turn = len(state["messages"])
        return {
            "messages": [AIMessage(f"turn {turn}")],
            "notes": [Note(f"note {turn}", turn)],
            "mood": Mood.GRUMPY if state["mood"] is Mood.HAPPY else Mood.HAPPY,
            "profile": state["profile"].model_copy(update={"notes": [Note("seen")]}),
        }

    builder = StateGraph(State)
    builder.add_node("talk", talk)
    builder.add_edge(START, "talk")
    return builder.compile(checkpointer=saver)


def _run_state_graph(saver: Any) -> dict[str, Any]:
    graph = _state_graph(saver)
    conf = {"configurable": {"thread_id": "app"}}
    first = {
        "messages": [HumanMessage("hi")],
        "profile": Profile(name="bob", mood=Mood.HAPPY),
        "notes": [],
        "mood": Mood.HAPPY,
    }
    graph.invoke(first, conf)
    graph.invoke({"messages": [HumanMessage("again")]}, conf)
    values: dict[str, Any] = graph.get_state(conf).values
    return values


def _assert_app_state(values: dict[str, Any]) -> None:
    assert [type(m).__name__ for m in values["messages"]] == [
        "HumanMessage", "AIMessage", "HumanMessage", "AIMessage"
    ]  # fmt: skip
    assert values["notes"] == [Note("note 1", 1), Note("note 3", 3)]
    assert values["mood"] is Mood.HAPPY
    assert values["profile"] == Profile(name="bob", mood=Mood.HAPPY, notes=[Note("seen")])


def test_a_state_graph_with_application_types_round_trips(saver: PlainRedisSaver) -> None:
    _run_state_graph(saver)
    # A fresh saver reads what the first stored.
    fresh = PlainRedisSaver(saver.client, key_prefix=saver.key_prefix)
    _assert_app_state(_state_graph(fresh).get_state({"configurable": {"thread_id": "app"}}).values)


def test_a_state_graph_round_trips_in_strict_mode_through_langgraphs_allowlist(
    saver: PlainRedisSaver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lg_msgpack, "STRICT_MSGPACK_ENABLED", True)
    monkeypatch.setattr(lg_internal_serde, "STRICT_MSGPACK_ENABLED", True)
    strict = PlainRedisSaver(saver.client, key_prefix=saver.key_prefix)
    assert isinstance(strict.serde, SafeSerializer) and strict.serde.strict
    _assert_app_state(_run_state_graph(strict))
    with pytest.raises(DisallowedTypeError, match="strict mode"):
        strict.get_tuple(config("app"))


@task
def _remember(text: str) -> Note:
    return Note(text, len(text))


def _count_notes(text: str, *, previous: Profile | None = None) -> Any:
    profile = previous or Profile(name="ann", mood=Mood.HAPPY)
    note = _remember(text).result()
    saved = profile.model_copy(update={"notes": [*profile.notes, note]})
    return entrypoint.final(value=saved.notes, save=saved)


def test_a_functional_entrypoint_with_application_types_round_trips(
    saver: PlainRedisSaver,
) -> None:
    conf = {"configurable": {"thread_id": "fn"}}
    assert entrypoint(checkpointer=saver)(_count_notes).invoke("one", conf) == [Note("one", 3)]
    # A fresh saver and program: the Profile (and its Notes) come back from storage.
    fresh = PlainRedisSaver(saver.client, key_prefix=saver.key_prefix)
    assert entrypoint(checkpointer=fresh)(_count_notes).invoke("three", conf) == [
        Note("one", 3), Note("three", 5)
    ]  # fmt: skip


@pytest.mark.parametrize("command", [["show", "t"], ["check"], ["export", "t"]])
def test_the_cli_runs_nothing_that_stored_data_names(
    client: Any,
    admin: Any,
    prefix: str,
    marker: Path,
    command: list[str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    typed, _ = hostile_payloads(marker, "m")["os.system"]
    _store_hostile(admin, prefix, "value", typed)
    assert main(["--key-prefix", prefix, *command], client=client) == 1
    captured = capsys.readouterr()
    assert "os.system" in captured.err + captured.out and "Traceback" not in captured.err


def test_a_type_refused_while_its_module_is_not_imported_is_read_once_it_is(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import types

    module = types.ModuleType("prs_imported_late")

    @dataclasses.dataclass
    class Point:
        x: int

    Point.__module__ = module.__name__
    Point.__qualname__ = "Point"
    module.Point = Point  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, module.__name__, module)
    stored = SafeSerializer().dumps_typed(Point(3))
    monkeypatch.delitem(sys.modules, module.__name__)
    serde = SafeSerializer()
    with pytest.raises(DisallowedTypeError, match="not imported"):
        serde.loads_typed(stored)
    monkeypatch.setitem(sys.modules, module.__name__, module)
    assert serde.loads_typed(stored) == Point(3)
    assert serde.loads_typed(stored) == Point(3)  # the second read resolves from memory
