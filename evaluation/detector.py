"""Read the R-peak detector report (``reports/detector.json``, written by the segment stage).

Format: ``{"tolerance_ms": 150, "total": {"tp", "fp", "fn", "sensitivity", "ppv"},
"records": {"100": {...}, ...}}``. Sensitivity and positive predictivity are recomputed here from
the counts (Se = TP / (TP + FN), +P = TP / (TP + FP), fractions, NaN when undefined), so the
benchmark shows figures consistent with the counts whatever unit the file uses.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from pipelines import DataError, read_json

from .metrics import safe_divide

_COUNTS = ("tp", "fp", "fn")


def _scores(entry: Any, where: str) -> dict[str, float | int]:
    if not isinstance(entry, dict):
        raise DataError(where, "expected an object with tp, fp, fn")
    counts = {}
    for key in _COUNTS:
        value = entry.get(key)
        integral = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
        if isinstance(value, bool) or not integral or value < 0:
            raise DataError(where, f"{key!r} must be a non-negative integer, got {value!r}")
        counts[key] = int(value)
    tp, fp, fn = counts["tp"], counts["fp"], counts["fn"]
    return {**counts, "sensitivity": float(safe_divide(tp, tp + fn)), "ppv": float(safe_divide(tp, tp + fp))}


def parse_detector(report: Any, where: str = "detector.json") -> dict[str, Any]:
    """Check a detector report and return ``{"tolerance_ms", "total", "records"}`` with recomputed scores.

    Records are sorted by name. ``where`` names the file in error messages.

    Examples
    --------
    >>> r = parse_detector({"tolerance_ms": 150, "total": {"tp": 9, "fp": 1, "fn": 0},
    ...                     "records": {"100": {"tp": 9, "fp": 1, "fn": 0}}})
    >>> r["total"]["ppv"], list(r["records"])
    (0.9, ['100'])
    """
    if not isinstance(report, dict):
        raise DataError(where, "expected a JSON object")
    for key in ("total", "records"):
        if key not in report:
            raise DataError(where, f"missing key {key!r}")
    if not isinstance(report["records"], dict) or not report["records"]:
        raise DataError(where, "'records' must map record names to counts")
    tolerance = report.get("tolerance_ms")
    return {
        "tolerance_ms": float(tolerance) if isinstance(tolerance, (int, float)) else None,
        "total": _scores(report["total"], f"{where}: total"),
        "records": {str(name): _scores(report["records"][name], f"{where}: record {name}")
                    for name in sorted(report["records"], key=str)},
    }


def read_detector(path: str | Path) -> dict[str, Any]:
    """Read and check ``reports/detector.json`` (see :func:`parse_detector`)."""
    path = Path(path)
    report = read_json(path, "detector report not found (written by the segment stage, christov method)")
    return parse_detector(report, str(path))
