"""Read ``params.yaml``: every knob of the pipeline lives there."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError

DEFAULT_PARAMS = Path("params.yaml")


def load_params(path: str | os.PathLike = DEFAULT_PARAMS, section: str | None = None) -> dict[str, Any]:
    """Load ``params.yaml`` (or one top-level section of it)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: params file not found")
    with open(path) as fh:
        params = yaml.safe_load(fh) or {}
    if section is None:
        return params
    if section not in params:
        raise ConfigError(f"{path}: no section {section!r}")
    return params[section]


def params_hash(obj: Any) -> str:
    """Short, stable SHA-256 of a JSON-serialisable params object (provenance)."""
    blob = json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def deep_merge(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    """Return ``base`` with ``overlay`` merged in, recursively for nested mappings."""
    out = dict(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def overlay_file(base: str | os.PathLike, overlay: str | os.PathLike, out: str | os.PathLike) -> None:
    """Write ``base`` params with the ``overlay`` profile merged in (``make quick`` uses it)."""
    from .files import atomic_path

    merged = deep_merge(load_params(base), load_params(overlay))
    with atomic_path(out) as tmp:
        tmp.write_text(yaml.safe_dump(merged, sort_keys=False))


def main(argv: list[str] | None = None) -> None:
    """``python -m pipelines.params BASE OVERLAY --out OUT``: merge a profile into params."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m pipelines.params", description=main.__doc__)
    parser.add_argument("base")
    parser.add_argument("overlay")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    overlay_file(args.base, args.overlay, args.out)


if __name__ == "__main__":
    main()
