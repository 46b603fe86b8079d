"""Read and check ``params.yaml``: every knob of the pipeline lives there (contract: docs/params.md).

:func:`load_params` validates the WHOLE file against :mod:`pipelines.core.schema` before it returns
anything, so every stage refuses a misspelt or ill-typed key anywhere before it does any work. A
problem is a :class:`~pipelines.core.errors.ConfigError` with one line per problem, each naming the
file, the dotted key path and what is wrong::

    params.yaml: render.sise: unknown key (did you mean 'size'?)
    params.yaml: train.small_cnn.learning_rate: expected a number, got True

Examples
--------
>>> validate_section("render", {"size": 64, "crops": {"size": 32}}).crops.size
32
>>> validate_params({"render": {"sise": 64}})
Traceback (most recent call last):
...
pipelines.core.errors.ConfigError: params.yaml: render.sise: unknown key (did you mean 'size'?)
"""
from __future__ import annotations

import difflib
import hashlib
import json
import os
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from .errors import ConfigError
from .schema import SECTIONS, KeyProblem, Params, Section

DEFAULT_PARAMS = Path("params.yaml")


# ------------------------------------------------------------------------------------------ reading

def read_yaml(path: str | os.PathLike) -> dict[str, Any]:
    """The raw mapping in a YAML params file (no validation); :class:`ConfigError` if unreadable."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: params file not found")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of sections, got {type(data).__name__}")
    return data


def load_config(path: str | os.PathLike = DEFAULT_PARAMS) -> Params:
    """The typed, validated params of ``path`` (:class:`pipelines.core.schema.Params`)."""
    return validate_params(read_yaml(path), where=str(path))


def load_params(path: str | os.PathLike = DEFAULT_PARAMS, section: str | None = None) -> dict[str, Any]:
    """Validate the whole params file, then return it (or one section) as plain dicts.

    The dicts hold every key of a present section, defaults filled in (``model_dump``).

    Raises
    ------
    ConfigError
        The file is missing, a key anywhere in it is unknown, ill-typed or out of range, or
        ``section`` is absent.
    """
    params = as_dicts(load_config(path))
    if section is None:
        return params
    if section not in params:
        raise ConfigError(f"{path}: no section {section!r}")
    return params[section]


def as_dicts(params: Params) -> dict[str, Any]:
    """The present sections of ``params`` as plain dicts (absent sections left out)."""
    return {name: getattr(params, name).model_dump() for name in SECTIONS if getattr(params, name) is not None}


# --------------------------------------------------------------------------------------- validating

def validate_params(data: Mapping[str, Any], where: str = "params.yaml") -> Params:
    """Check a whole params mapping; raise :class:`ConfigError` listing every problem (one per line)."""
    try:
        return Params.model_validate(dict(data))
    except ValidationError as exc:
        raise ConfigError("\n".join(problems(exc, data, where))) from None


def validate_section(name: str, data: Any, where: str = "params.yaml") -> Section:
    """Check one section (``"render"`` ...) of a params file, e.g. a mapping a stage was handed.

    >>> validate_section("segment", {"window": "fixed"}).fixed_after_ms
    400.0
    """
    if name not in SECTIONS:
        raise ConfigError(f"{where}: {name}: unknown section; expected one of {list(SECTIONS)}")
    return getattr(validate_params({name: data}, where), name)


def problems(exc: ValidationError, data: Any, where: str) -> list[str]:
    """One readable line per error of ``exc`` (``where: dotted.key: problem``), in input order."""
    lines: dict[str, list[str]] = {}
    for err in exc.errors(include_url=False):
        loc = _key_loc(err["loc"], data)
        message = _message(err, loc)
        error = (err.get("ctx") or {}).get("error")
        if isinstance(error, KeyProblem):        # a cross-key rule naming the key below its model
            loc, message = loc + error.path, error.problem
        lines.setdefault(_dotted(loc), [])
        if message not in lines[_dotted(loc)]:
            lines[_dotted(loc)].append(message)
    return [f"{where}: {path or '(top level)'}" + (" is missing" if msgs == [MISSING] else f": {_either(msgs)}")
            for path, msgs in lines.items()]


def _either(messages: list[str]) -> str:
    """Messages of one key's union members as one: ``expected an integer or a number, got 'x'``.

    >>> _either(["expected an integer, got 'x'", "expected a number, got 'x'"])
    "expected an integer or a number, got 'x'"
    """
    got = {m.rsplit(", got ", 1)[-1] for m in messages}
    if len(messages) > 1 and len(got) == 1 and all(m.startswith("expected ") and ", got " in m for m in messages):
        kinds = [m[len("expected "):].rsplit(", got ", 1)[0] for m in messages]
        return f"expected {' or '.join(kinds)}, got {got.pop()}"
    return " or ".join(messages)


def _key_loc(loc: tuple, data: Any) -> tuple:
    """``loc`` without pydantic's union/tag labels: only the keys and indices of the input."""
    out, node = [], data
    for i, part in enumerate(loc):
        if isinstance(node, Mapping) and part in node:
            out.append(part)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int):
            out.append(part)
            node = node[part] if part < len(node) else None
        elif isinstance(node, Mapping) and i == len(loc) - 1:
            out.append(part)          # a missing key
        # else: a label pydantic adds for a union member (e.g. "one K"); not a key of the file
    return tuple(out)


def _dotted(loc: tuple) -> str:
    """``("evaluate", "published", 0, "accuracy")`` -> ``evaluate.published[0].accuracy``."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


MISSING = "missing"
_KINDS = {"int": "an integer", "float": "a number", "bool": "a boolean (true/false, unquoted)",
          "string": "a string (quote it)", "list": "a list", "dict": "a mapping", "model": "a mapping",
          "literal": "one of"}
_BOUNDS = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}


def _message(err: dict, loc: tuple) -> str:
    kind, ctx, value = err["type"], err.get("ctx") or {}, err.get("input")
    got = f", got {value!r}" if not isinstance(value, (dict, list)) else ""
    if kind == "extra_forbidden":
        near = difflib.get_close_matches(str(loc[-1]), allowed_keys(loc[:-1]), n=1)
        return "unknown key" + (f" (did you mean {near[0]!r}?)" if near else "")
    if kind == "missing":
        return MISSING
    if kind == "literal_error":
        return f"expected {ctx.get('expected')}{got}"
    if kind.endswith("_type") and kind[:-5] in _KINDS:
        return f"expected {_KINDS[kind[:-5]]}{got}"
    if kind in ("int_from_float", "int_parsing"):
        return f"expected an integer{got}"
    if kind in ("too_short", "too_long"):
        limit = ctx.get("min_length") if kind == "too_short" else ctx.get("max_length")
        return f"must hold {'at least' if kind == 'too_short' else 'at most'} {limit} item(s), got {ctx.get('actual_length')}"
    if kind in _BOUNDS:
        bound = next(iter(ctx.values()))
        bound = int(bound) if isinstance(bound, float) and bound.is_integer() else bound
        return f"must be {_BOUNDS[kind]} {bound}{got}"
    if kind in ("finite_number",):
        return f"must be a finite number{got}"
    if kind == "value_error":
        return str(ctx.get("error", err["msg"]))
    msg = err["msg"].replace("Input should be", "must be").replace("Value error, ", "")
    return msg[:1].lower() + msg[1:] + got


def allowed_keys(loc: tuple) -> list[str]:
    """The keys the schema allows in the mapping at ``loc`` (empty when it is not a model).

    >>> allowed_keys(("render", "crops"))[:2]
    ['materialise', 'size']
    """
    model: Any = Params
    for part in loc:
        model = _model_of(model, part)
        if model is None:
            return []
    return list(model.model_fields) if _is_model(model) else []


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _model_of(tp: Any, part: Any) -> Any:
    """The model (or container type) found under key/index ``part`` of ``tp``."""
    if _is_model(tp):
        field = tp.model_fields.get(part)
        return _unwrap(field.annotation) if field else None
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (dict, list) and args:
        return _unwrap(args[-1])
    return None


def _unwrap(tp: Any) -> Any:
    """Strip ``Annotated``/``Optional``/unions down to the one model or container inside."""
    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            tp = typing.get_args(tp)[0]
        elif origin in (typing.Union, types.UnionType):
            inner = [a for a in typing.get_args(tp) if _unwrap(a) is not None and a is not type(None)]
            structured = [a for a in inner if _is_model(_unwrap(a)) or typing.get_origin(_unwrap(a)) in (dict, list)]
            if len(structured) != 1:
                return None
            tp = structured[0]
        else:
            return tp


# ------------------------------------------------------------------------------------------ helpers

def params_hash(obj: Any) -> str:
    """Short, stable SHA-256 of a JSON-serialisable params object (provenance).

    >>> params_hash({"b": 1, "a": 2}) == params_hash({"a": 2, "b": 1})
    True
    """
    blob = json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def deep_merge(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    """Return ``base`` with ``overlay`` merged in, recursively for nested mappings.

    Plain merge, no checks; profiles use :func:`pipelines.core.profiles.apply_profile`.

    >>> deep_merge({"a": {"x": 1, "y": 2}}, {"a": {"y": 3}})
    {'a': {'x': 1, 'y': 3}}
    """
    out = dict(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out
