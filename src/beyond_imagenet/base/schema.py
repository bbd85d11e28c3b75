"""Typed parsing of YAML documents into frozen dataclasses: the machinery behind params.yaml's strict schema.

Each value is checked against its field's annotation (literals, unions, lists, mappings, nested dataclasses,
numbers, strings, booleans); an unknown key gets a close-match suggestion; every error names the field
(``inference.batch_size``) and raises :class:`ParamsError`.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from typing import Any, Literal

from beyond_imagenet.base.errors import ParamsError

_SCALAR_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true/false", type(None): "null"}


def type_name(tp: Any) -> str:
    """How an annotation reads in an error message (``'fp32' | 'bf16'``, ``a list of an integer``, ...)."""
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(type_name(a) for a in typing.get_args(tp))
    if origin is list:
        return f"a list of {type_name(typing.get_args(tp)[0])}"
    if origin is dict:
        return f"a mapping of {type_name(typing.get_args(tp)[1])}"
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    return _SCALAR_NAMES.get(tp, getattr(tp, "__name__", str(tp)))


def _wrong(value: Any, tp: Any, where: str) -> ParamsError:
    return ParamsError(f"params: {where} must be {type_name(tp)}, got {value!r} ({type(value).__name__})")


def _literal(value: Any, tp: Any, where: str) -> Any:
    if value in typing.get_args(tp):
        return value
    raise ParamsError(f"params: {where} must be {type_name(tp)}, got {value!r}")


def _union(value: Any, tp: Any, where: str) -> Any:
    for option in typing.get_args(tp):
        try:
            return convert(value, option, where)
        except ParamsError:
            continue
    raise _wrong(value, tp, where)


def _list(value: Any, tp: Any, where: str) -> Any:
    if not isinstance(value, list):
        raise _wrong(value, tp, where)
    return [convert(v, typing.get_args(tp)[0], f"{where}[{i}]") for i, v in enumerate(value)]


def _dict(value: Any, tp: Any, where: str) -> Any:
    if not isinstance(value, dict):
        raise _wrong(value, tp, where)
    return {str(k): convert(v, typing.get_args(tp)[1], f"{where}.{k}") for k, v in value.items()}


_GENERICS = {Literal: _literal, typing.Union: _union, types.UnionType: _union, list: _list, dict: _dict}


def _scalar(value: Any, tp: Any, where: str) -> Any:
    if tp is type(None):
        if value is None:
            return None
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif isinstance(value, tp):
        return value
    raise _wrong(value, tp, where)


def convert(value: Any, tp: Any, where: str) -> Any:
    """Check ``value`` against the annotation ``tp`` and return it converted (dataclasses built)."""
    origin = typing.get_origin(tp)
    if origin in _GENERICS:
        return _GENERICS[origin](value, tp, where)
    if dataclasses.is_dataclass(tp):
        return build_dataclass(tp, value, where)
    return _scalar(value, tp, where)


def build_dataclass(cls: type, data: Any, where: str) -> Any:
    """``cls`` built from the mapping ``data``: unknown keys refused with a suggestion, missing required ones named."""
    if not isinstance(data, dict):
        raise ParamsError(f"params: {where or 'the file'} must be a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in data:
        if key not in fields:
            close = difflib.get_close_matches(str(key), list(fields), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; allowed keys: {', '.join(fields)}"
            raise ParamsError(f"params: unknown key {(where + '.' if where else '') + str(key)!r}{hint}")
    kwargs = {}
    for name, spec in fields.items():
        sub = f"{where}.{name}" if where else name
        if name in data:
            kwargs[name] = convert(data[name], hints[name], sub)
        elif spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING:
            raise ParamsError(f"params: missing required key {sub!r}")
    return cls(**kwargs)
