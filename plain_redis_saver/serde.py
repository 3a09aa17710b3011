"""The saver's default serializer: LangGraph's bytes, rebuilt only as data.

LangGraph's ``JsonPlusSerializer`` stores objects as msgpack extensions that name a
module, a class (or function) and its arguments; by default it imports that module and
calls what it names, so whoever can write one value into the database can run
``os.system`` in the process that reads it. ``SafeSerializer`` writes exactly the same
bytes (existing data and other savers stay compatible) but rebuilds only what is data:

- LangGraph's safe types and methods (``SAFE_MSGPACK_TYPES`` / ``SAFE_MSGPACK_METHODS``:
  datetimes, UUIDs, sets, LangChain messages, ``Send``, ``Interrupt``, ...);
- types the user allows (``allowed_types=`` or ``saver.with_allowlist(...)``);
- unless strict: enums, dataclasses, named tuples and pydantic models, each only in the
  encoding LangGraph writes for that kind, and only from a module that is already
  imported (importing a module runs its code, so stored bytes never cause an import).

Anything else (a function, a builtin, any other class, a module not imported, a
``pickle`` value) raises :class:`~plain_redis_saver.errors.DisallowedTypeError` naming
the type and how to allow it; nothing is silently returned as raw data.
``LANGGRAPH_STRICT_MSGPACK=true`` leaves only the safe types and the allowlist, as
LangGraph's strict mode does (LangGraph then adds each graph's own types through
``with_allowlist``).
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import importlib
import importlib.util
import json
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import ormsgpack
from langchain_core.load.load import Reviver
from langgraph.checkpoint.serde import _msgpack as lg_msgpack
from langgraph.checkpoint.serde import jsonplus
from langgraph.checkpoint.serde.types import _DeltaSnapshot

from .errors import DisallowedTypeError

__all__ = ["SafeSerializer"]

TypeName = tuple[str, str]

#: Secret wrappers LangGraph encodes like a safe type (one argument, the secret).
_SECRET_TYPES = frozenset(
    (module, name)
    for module in ("pydantic.types", "pydantic.v1.types")
    for name in ("SecretStr", "SecretBytes")
)

_OPTION = ormsgpack.OPT_NON_STR_KEYS
# The extension codes, read once: decoding a message history checks them per object.
_EXT_DELTA_SNAPSHOT = jsonplus.EXT_DELTA_SNAPSHOT
_EXT_NUMPY_ARRAY = jsonplus.EXT_NUMPY_ARRAY
_EXT_METHOD_SINGLE_ARG = jsonplus.EXT_METHOD_SINGLE_ARG
_EXT_CONSTRUCTOR_SINGLE_ARG = jsonplus.EXT_CONSTRUCTOR_SINGLE_ARG
_EXT_CONSTRUCTOR_POS_ARGS = jsonplus.EXT_CONSTRUCTOR_POS_ARGS
_EXT_CONSTRUCTOR_KW_ARGS = jsonplus.EXT_CONSTRUCTOR_KW_ARGS
_EXT_PYDANTIC_V1 = jsonplus.EXT_PYDANTIC_V1
_EXT_PYDANTIC_V2 = jsonplus.EXT_PYDANTIC_V2

_KINDS = {
    jsonplus.EXT_CONSTRUCTOR_SINGLE_ARG: "an enum",
    jsonplus.EXT_CONSTRUCTOR_KW_ARGS: "a dataclass or named tuple",
    jsonplus.EXT_PYDANTIC_V1: "a pydantic v1 model",
    jsonplus.EXT_PYDANTIC_V2: "a pydantic model",
}


def _type_names(types: Iterable[type | Sequence[str]]) -> frozenset[TypeName]:
    names = set()
    for item in types:
        if isinstance(item, type):
            names.add((item.__module__, item.__name__))
        elif (
            isinstance(item, Sequence)
            and not isinstance(item, str)
            and len(item) == 2
            and all(isinstance(part, str) for part in item)
        ):
            names.add((item[0], item[1]))
        else:
            raise TypeError(f"allowed types are classes or (module, name) pairs, got {item!r}")
    return frozenset(names)


def _imported(module: str, name: str) -> Any:
    """``module.name`` if the module is imported, else None. Reads the module's
    namespace directly: a module ``__getattr__`` may import things."""
    found = sys.modules.get(module)
    return None if found is None else vars(found).get(name)


def _base(module: str, name: str) -> type | None:
    found = _imported(module, name)
    return found if isinstance(found, type) else None


def _is_pydantic_model(cls: type, code: int) -> bool:
    if code == jsonplus.EXT_PYDANTIC_V2:
        bases = [_base("pydantic.main", "BaseModel")]
    else:
        bases = [_base("pydantic.v1.main", "BaseModel"), _base("pydantic.main", "BaseModel")]
    if not any(base is not None and issubclass(cls, base) for base in bases):
        return False
    # LangChain's Serializable models (chat models, tools, prompts) are configuration
    # whose constructors may reach the network; the message classes are safe types.
    serializable = _base("langchain_core.load.serializable", "Serializable")
    return serializable is None or not issubclass(cls, serializable)


def _is_data_class(cls: type, code: int) -> bool:
    """Whether ``cls`` is a data type of the kind extension ``code`` encodes."""
    if code == jsonplus.EXT_CONSTRUCTOR_SINGLE_ARG:
        return issubclass(cls, enum.Enum)
    if code == jsonplus.EXT_CONSTRUCTOR_KW_ARGS:
        named_tuple = issubclass(cls, tuple) and hasattr(cls, "_fields")
        return dataclasses.is_dataclass(cls) or named_tuple
    if code in (jsonplus.EXT_PYDANTIC_V1, jsonplus.EXT_PYDANTIC_V2):
        return _is_pydantic_model(cls, code)
    return False


@functools.lru_cache(maxsize=1)
def _langchain_reviver() -> Reviver:
    """LangChain's reviver for the pre-msgpack ``json`` format, limited to the LangChain
    classes among LangGraph's safe types (LangChain calls anything wider unsafe for
    untrusted input)."""
    classes = [
        getattr(importlib.import_module(module), name)
        for module, name in lg_msgpack.SAFE_MSGPACK_TYPES
        if module.startswith("langchain_core.") and importlib.util.find_spec(module)
    ]
    return Reviver(allowed_objects=classes)


class SafeSerializer(jsonplus.JsonPlusSerializer):
    """LangGraph's ``JsonPlusSerializer`` format, rebuilt only as data (see the module
    docstring). ``allowed_types``: further classes (or ``(module, name)`` pairs) the
    stored bytes may name, rebuilt as LangGraph would. ``strict``: only LangGraph's safe
    types and ``allowed_types``; defaults to ``LANGGRAPH_STRICT_MSGPACK``."""

    def __init__(
        self,
        *,
        allowed_types: Iterable[type | Sequence[str]] = (),
        strict: bool | None = None,
    ) -> None:
        super().__init__(allowed_msgpack_modules=None)
        self.allowed_types = _type_names(allowed_types)
        self.strict = lg_msgpack.STRICT_MSGPACK_ENABLED if strict is None else strict
        # What _resolve allowed, by (module, name, code): a message history names the
        # same few classes hundreds of times per read. Refusals are not kept (a module
        # imported later may make a name allowed).
        self._resolved: dict[tuple[str, str, int | None], Any] = {}
        # The ext hook of a decode: bound once, not per value.
        self._hook: Callable[[int, bytes], Any] = self._ext

    def with_msgpack_allowlist(
        self, extra_allowlist: Iterable[tuple[str, ...] | type]
    ) -> SafeSerializer:
        """A copy that also allows ``extra_allowlist`` (LangGraph calls this through
        ``BaseCheckpointSaver.with_allowlist`` with a graph's types)."""
        extra = _type_names(extra_allowlist)
        if extra <= self.allowed_types:
            return self
        return SafeSerializer(allowed_types=self.allowed_types | extra, strict=self.strict)

    # ---- reading

    def loads_typed(self, data: tuple[str, bytes]) -> Any:
        kind, payload = data
        if kind == "msgpack":
            return self._unpack(payload)
        if kind == "json":
            return json.loads(payload, object_hook=self._revive_json)
        if kind == "pickle":
            raise DisallowedTypeError(
                "refused to unpickle a stored value: unpickling can run any code. Only a "
                "serializer made with pickle_fallback=True writes 'pickle' values; to read "
                "them pass that serializer as serde= (and trust every writer)"
            )
        return super().loads_typed(data)

    def _unpack(self, payload: bytes) -> Any:
        try:
            return ormsgpack.unpackb(payload, ext_hook=self._hook, option=_OPTION)
        except ValueError:
            pass
        # ormsgpack replaces an ext hook's exception with ValueError("ext_hook
        # failed"): decode again keeping the first (innermost) one, to raise it as it
        # was. Refusals come before anything is built, so nothing runs twice that a
        # refusal stops; the fast path above carries no such bookkeeping.
        failures: list[Exception] = []

        def hook(code: int, data: bytes) -> Any:
            try:
                return self._ext(code, data, hook)
            except Exception as exc:
                failures.append(exc)
                raise

        try:
            return ormsgpack.unpackb(payload, ext_hook=hook, option=_OPTION)
        except ValueError:
            if failures:
                raise failures[0] from None
            raise

    def _ext(self, code: int, data: bytes, hook: Callable[[int, bytes], Any] | None = None) -> Any:
        """The object extension ``code`` stores as ``data``; ``hook`` decodes the
        extensions inside it (this method, bound, when None)."""
        inner = ormsgpack.unpackb(data, ext_hook=hook or self._hook, option=_OPTION)
        if code == _EXT_DELTA_SNAPSHOT:
            return _DeltaSnapshot(inner)
        if code == _EXT_NUMPY_ARRAY:
            return _numpy_array(inner)
        if not (
            isinstance(inner, list)
            and len(inner) >= 3
            and isinstance(inner[0], str)
            and isinstance(inner[1], str)
        ):
            raise ValueError(f"msgpack extension {code} is not (module, name, argument, ...)")
        module, name, arg = inner[0], inner[1], inner[2]
        if code == _EXT_METHOD_SINGLE_ARG:
            method = inner[3] if len(inner) > 3 else None
            if (module, name, method) not in lg_msgpack.SAFE_MSGPACK_METHODS:
                raise self._refusal(module, f"{name}.{method}", "it is not a safe method")
            return getattr(getattr(importlib.import_module(module), name), str(method))(arg)
        cls = self._resolved.get((module, name, code))
        if cls is None:
            cls = self._resolve(module, name, code)
        if code in (_EXT_PYDANTIC_V2, _EXT_PYDANTIC_V1):
            # As LangGraph: data that no longer validates is kept unvalidated.
            try:
                return cls(**arg)
            except Exception:
                construct = "construct" if code == _EXT_PYDANTIC_V1 else "model_construct"
                return getattr(cls, construct)(**arg)
        if code == _EXT_CONSTRUCTOR_KW_ARGS:
            return cls(**arg)
        if code == _EXT_CONSTRUCTOR_SINGLE_ARG:
            return cls(arg)
        if code == _EXT_CONSTRUCTOR_POS_ARGS:
            if (module, name) == ("langgraph.types", "Send"):
                return _send(cls, arg)
            return cls(*arg)
        raise ValueError(f"unknown msgpack extension {code} ({module}.{name})")

    def _revive_json(self, value: dict[str, Any]) -> Any:
        """The pre-msgpack ``json`` format: LangGraph's ``lc: 2`` constructor objects
        under the same rules as msgpack, LangChain's ``lc: 1`` objects by LangChain's
        reviver limited to the safe LangChain classes."""
        if value.get("lc") == 2 and value.get("type") == "constructor":
            path = value.get("id")
            if not (isinstance(path, list) and len(path) >= 2):
                raise ValueError(f"JSON constructor with a malformed id {path!r}")
            module, name = ".".join(map(str, path[:-1])), str(path[-1])
            cls = self._resolve(module, name, None)
            args, kwargs = value.get("args") or [], value.get("kwargs") or {}
            return cls(*args, **kwargs)
        return _langchain_reviver()(value)

    def _resolve(self, module: str, name: str, code: int | None) -> Any:
        """The class (or safe factory) ``module.name`` if stored bytes may use it for
        extension ``code`` (None: a JSON constructor, any data kind), else refuse."""
        key = (module, name, code)
        found = self._resolved.get(key)
        if found is None:
            found = self._resolved[key] = self._allowed(module, name, code)
        return found

    def _allowed(self, module: str, name: str, code: int | None) -> Any:
        if (module, name) in lg_msgpack.SAFE_MSGPACK_TYPES or (module, name) in (
            self.allowed_types
        ):
            return getattr(importlib.import_module(module), name)
        if self.strict:
            raise self._refusal(module, name, "strict mode allows only safe and allowed types")
        if (module, name) in _SECRET_TYPES and code == jsonplus.EXT_CONSTRUCTOR_SINGLE_ARG:
            return getattr(importlib.import_module(module), name)
        if module not in sys.modules:
            raise self._refusal(
                module, name, f"module {module!r} is not imported (reading never imports)"
            )
        found = _imported(module, name)
        if not isinstance(found, type):
            what = "missing" if found is None else f"a {type(found).__name__}, not a class"
            raise self._refusal(module, name, f"it is {what}")
        codes = _KINDS if code is None else [code]
        if not any(_is_data_class(found, kind) for kind in codes):
            expected = " or ".join(_KINDS.get(kind, "a safe type") for kind in codes)
            raise self._refusal(module, name, f"it is not {expected}")
        return found

    def _refusal(self, module: str, name: str, reason: str) -> DisallowedTypeError:
        pair = (module, name)
        return DisallowedTypeError(
            f"refused to rebuild {module}.{name} from stored data: {reason}. Stored data "
            "may name LangGraph's safe types and"
            + (
                " the allowed types (strict mode, LANGGRAPH_STRICT_MSGPACK)"
                if self.strict
                else ", from imported modules, enums, dataclasses, named tuples and pydantic models"
            )
            + ". If your application stores this type, allow it: "
            f"PlainRedisSaver(..., serde=SafeSerializer(allowed_types=[{pair!r}])) or "
            f"saver.with_allowlist([{pair!r}])"
        )


def _send(cls: Any, args: Sequence[Any]) -> Any:
    if len(args) == 2:
        return cls(*args)
    return cls(args[0], args[1], timeout=args[2])


def _numpy_array(parts: Any) -> Any:
    numpy = sys.modules.get("numpy")
    if numpy is None:
        raise DisallowedTypeError(
            "refused to rebuild a numpy array from stored data: numpy is not imported "
            "(reading never imports); import numpy before reading"
        )
    dtype_str, shape, order, buffer = parts
    dtype = numpy.dtype(dtype_str)
    if dtype.hasobject:
        raise DisallowedTypeError(f"refused a numpy array of object dtype {dtype_str!r}")
    return numpy.frombuffer(buffer, dtype=dtype).reshape(shape, order=order)
