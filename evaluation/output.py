"""Stable serialisation of the evaluation outputs: rounded floats, ``null`` for undefined, sorted keys.

Examples
--------
>>> to_json({"b": float("nan"), "a": 0.123456789, "c": [1, 2.0]}, indent=None)
'{"a": 0.123457, "b": null, "c": [1, 2.0]}\\n'
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from pipelines import atomic_path

#: Decimal places kept for every float written.
DIGITS = 6


def clean(obj: Any, digits: int = DIGITS) -> Any:
    """Plain-Python copy of ``obj``: floats rounded to ``digits``, NaN/inf as None, NumPy scalars unwrapped."""
    if isinstance(obj, dict):
        return {str(k): clean(v, digits) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean(v, digits) for v in obj]
    if isinstance(obj, np.ndarray):
        return [clean(v, digits) for v in obj.tolist()]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        x = float(obj)
        if not math.isfinite(x):
            return None
        x = round(x, digits)
        return 0.0 if x == 0 else x  # no "-0.0"
    return obj


def to_json(obj: Any, indent: int | None = 2) -> str:
    """JSON text of :func:`clean` ``(obj)`` with sorted keys and a final newline."""
    return json.dumps(clean(obj), indent=indent, sort_keys=True, allow_nan=False, ensure_ascii=False) + "\n"


def to_json_rows(rows: list[dict[str, Any]]) -> str:
    """A JSON list with one compact, key-sorted object per line (small diffs, readable).

    Examples
    --------
    >>> print(to_json_rows([{"y": 1, "x": 0.5}, {"y": 2, "x": 1.0}]), end="")
    [
    {"x": 0.5, "y": 1},
    {"x": 1.0, "y": 2}
    ]
    """
    if not rows:
        return "[]\n"
    body = ",\n".join(json.dumps(clean(r), sort_keys=True, allow_nan=False, ensure_ascii=False) for r in rows)
    return "[\n" + body + "\n]\n"


def write_text(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
