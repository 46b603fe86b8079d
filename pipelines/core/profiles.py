"""Profiles: partial params files overlaid on ``params.yaml`` with explicit semantics (docs/params.md).

Overlay rules, applied key by key from the top:

* a mapping in the profile over a mapping in the base **merges** (keys the profile does not name
  keep their base value; keys it adds are added);
* a scalar or a list in the profile **replaces** the base value;
* a mapping that must be **replaced whole** (its base keys dropped, e.g. ``train.runs`` to run only
  the profile's runs) is listed, as a dotted path, under the profile's top-level ``replace:`` key;
* a profile that would change a value's shape (a mapping over a scalar or the reverse, e.g.
  ``train.folds.k: 10`` over ``{beat: 10, record: 5}``) is refused unless that path is listed under
  ``replace:``: the profile must say it means to drop the base's structure.

The result must itself be a valid params file (:func:`pipelines.core.params.validate_params`).
:func:`overlay_file` writes it keeping the base file's comments and key order (ruamel.yaml round
trip), atomically.

Examples
--------
>>> base = {"train": {"runs": {"a": 1, "b": 2}, "folds": {"k": 5, "validation_fraction": 0.1}}}
>>> apply_profile(base, {"replace": ["train.runs"], "train": {"runs": {"c": 3}, "folds": {"k": 10}}})
{'train': {'runs': {'c': 3}, 'folds': {'k': 10, 'validation_fraction': 0.1}}}
>>> apply_profile(base, {"train": {"folds": 10}})
Traceback (most recent call last):
...
pipelines.core.errors.ConfigError: profile: train.folds: replaces a mapping by a scalar; list 'train.folds' under `replace:` if the profile means it
"""
from __future__ import annotations

import copy
import io
import os
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .files import atomic_path
from .params import read_yaml, validate_params

#: The profile's top-level key listing dotted paths to replace whole (not a params section).
REPLACE_KEY = "replace"


def replace_paths(profile: Mapping[str, Any], where: str = "profile") -> set[str]:
    """The dotted paths a profile replaces whole; each must be a path the profile sets.

    >>> sorted(replace_paths({"replace": ["train.runs"], "train": {"runs": {}}}))
    ['train.runs']
    """
    paths = profile.get(REPLACE_KEY, [])
    if not isinstance(paths, list) or not all(isinstance(p, str) and p for p in paths):
        raise ConfigError(f"{where}: {REPLACE_KEY}: expected a list of dotted key paths, got {paths!r}")
    for path in paths:
        node: Any = profile
        for key in path.split("."):
            if not isinstance(node, Mapping) or key not in node:
                raise ConfigError(f"{where}: {REPLACE_KEY}: {path} is not set by the profile")
            node = node[key]
    return set(paths)


def merge_into(base: MutableMapping, overlay: Mapping, replace: set[str], where: str = "profile",
               prefix: str = "") -> None:
    """Merge ``overlay`` into ``base`` in place by the overlay rules (works on ruamel maps too)."""
    for key, value in overlay.items():
        if not prefix and key == REPLACE_KEY:
            continue
        path = f"{prefix}.{key}" if prefix else str(key)
        old = base.get(key)
        if path in replace or key not in base:
            base[key] = value
        elif isinstance(value, Mapping) and isinstance(old, Mapping):
            merge_into(old, value, replace, where, path)
        elif isinstance(value, Mapping) != isinstance(old, Mapping):
            shapes = ("a mapping", "a scalar") if isinstance(old, Mapping) else ("a scalar", "a mapping")
            raise ConfigError(f"{where}: {path}: replaces {shapes[0]} by {shapes[1]}; list {path!r} under "
                              f"`{REPLACE_KEY}:` if the profile means it")
        else:
            base[key] = value


def apply_profile(base: Mapping[str, Any], profile: Mapping[str, Any], where: str = "profile") -> dict[str, Any]:
    """``base`` with ``profile`` overlaid (new dicts; neither input is changed)."""
    out = copy.deepcopy(dict(base))
    merge_into(out, profile, replace_paths(profile, where), where)
    return out


def _round_trip():
    from ruamel.yaml import YAML

    yml = YAML(typ="rt")
    yml.width = 4096
    yml.indent(mapping=2, sequence=4, offset=2)
    yml.preserve_quotes = True
    yml.representer.add_representer(
        type(None), lambda rep, _: rep.represent_scalar("tag:yaml.org,2002:null", "null"))
    return yml


def _plain(node: Any) -> Any:
    """ruamel's commented maps/sequences as plain dicts/lists (for validation)."""
    if isinstance(node, Mapping):
        return {str(k) if not isinstance(k, (int, float)) else k: _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    if isinstance(node, str):
        return str(node)
    if isinstance(node, bool):
        return bool(node)
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    return node


def overlay_text(base: str | os.PathLike, overlay: str | os.PathLike) -> str:
    """The YAML text of ``base`` with the profile ``overlay`` applied, base comments kept; validated."""
    yml = _round_trip()
    read_yaml(base), read_yaml(overlay)                    # existence and plain-YAML errors, named
    doc = yml.load(Path(base).read_text())
    profile = yml.load(Path(overlay).read_text()) or {}
    where = str(overlay)
    merge_into(doc, profile, replace_paths(_plain(profile), where), where)
    validate_params(_plain(doc), where=f"{base} + {overlay}")
    buf = io.StringIO()
    yml.dump(doc, buf)
    return buf.getvalue()


def overlay_file(base: str | os.PathLike, overlay: str | os.PathLike, out: str | os.PathLike) -> None:
    """Write ``base`` with the profile ``overlay`` applied to ``out`` (atomically; ``make quick`` uses it)."""
    text = overlay_text(base, overlay)
    with atomic_path(out) as tmp:
        Path(tmp).write_text(text)


def main(argv: list[str] | None = None) -> int:
    """``python -m pipelines.params BASE OVERLAY --out OUT``: apply a profile to a params file."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="python -m pipelines.params", description=main.__doc__)
    parser.add_argument("base", help="params file, e.g. params.yaml")
    parser.add_argument("overlay", help="profile, e.g. profiles/quick.yaml (rules: docs/params.md)")
    parser.add_argument("--out", required=True, help="output params file (may be BASE)")
    args = parser.parse_args(argv)
    try:
        overlay_file(args.base, args.overlay, args.out)
    except ConfigError as exc:
        print(f"params: error: {exc}", file=sys.stderr)
        return 1
    return 0
