"""Beat windows: where each beat starts and ends, and the extraction of its samples.

Three window kinds, all configured in milliseconds (``params.yaml``, ``segment``) and converted
to samples with the record's own sampling rate:

``jun``
    From ``gap`` samples after the previous R-peak to ``gap`` samples before the next one, with
    ``gap = round(jun_gap_ms * fs / 1000)`` (Jun et al. 2018; 20 samples at 360 Hz).
``midpoint``
    Halfway to the neighbouring R-peaks: ``start = r - (r - r_prev) // 2`` and
    ``end = r + (r_next - r) // 2`` (the widely copied tutorial's recipe).
``fixed``
    ``[r - before, r + after)`` with ``before``/``after`` from ``fixed_before_ms``/``fixed_after_ms``.

Every window is the half-open sample range ``[start, end)``. ``jun`` and ``midpoint`` need both
neighbours, so the first and last beat of a sequence are dropped (reason ``edge``); ``fixed``
windows that run off the record are dropped (reason ``off_record``). A window that would not hold
its own R-peak (neighbours closer than the gap) is dropped as ``too_short``. Everything here is
vectorised over all beats of a record.

Examples
--------
>>> import numpy as np
>>> w = compute_windows(np.array([100, 400, 700, 1000]), fs=360.0, kind="jun", n_samples=1200)
>>> w.start.tolist(), w.end.tolist(), w.keep.tolist()
([0, 120, 420, 0], [0, 680, 980, 0], [False, True, True, False])
>>> w.dropped()
{'edge': 2}
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from ..core.errors import ConfigError

#: Window kinds understood by :func:`compute_windows`.
WINDOW_KINDS: tuple[str, ...] = ("jun", "midpoint", "fixed")

#: Reasons a beat gets no window, in report order (codes are indices into this tuple, offset by 1).
DROP_REASONS: tuple[str, ...] = ("edge", "too_short", "off_record")

_KEEP, _EDGE, _TOO_SHORT, _OFF_RECORD = 0, 1, 2, 3


def ms_to_samples(ms: float, fs: float) -> int:
    """Convert milliseconds to a whole number of samples, rounding halves up.

    Examples
    --------
    >>> ms_to_samples(55.6, 360.0)
    20
    >>> ms_to_samples(250.0, 360.0), ms_to_samples(150.0, 360.0)
    (90, 54)
    """
    return int(math.floor(float(ms) * float(fs) / 1000.0 + 0.5))


@dataclass(frozen=True)
class WindowSpec:
    """Window settings in milliseconds (the ``segment`` knobs of ``params.yaml``).

    Examples
    --------
    >>> WindowSpec.from_params({"window": "fixed", "fixed_before_ms": 250, "fixed_after_ms": 400}).kind
    'fixed'
    """

    kind: str = "jun"
    jun_gap_ms: float = 55.6
    fixed_before_ms: float = 250.0
    fixed_after_ms: float = 400.0

    def __post_init__(self) -> None:
        if self.kind not in WINDOW_KINDS:
            raise ConfigError(f"segment.window: unknown window {self.kind!r}; expected one of {list(WINDOW_KINDS)}")
        for name in ("jun_gap_ms", "fixed_before_ms", "fixed_after_ms"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                    or value < 0:
                raise ConfigError(f"segment.{name}: expected a finite number >= 0 (ms), got {value!r}")
        if self.kind == "fixed" and self.fixed_after_ms <= 0:
            raise ConfigError("segment.fixed_after_ms: must be > 0 so that a fixed window holds its R-peak")

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> "WindowSpec":
        """Build from the ``segment`` section of ``params.yaml`` (missing keys take the defaults)."""
        defaults = cls()
        return cls(
            kind=params.get("window", defaults.kind),
            jun_gap_ms=params.get("jun_gap_ms", defaults.jun_gap_ms),
            fixed_before_ms=params.get("fixed_before_ms", defaults.fixed_before_ms),
            fixed_after_ms=params.get("fixed_after_ms", defaults.fixed_after_ms),
        )

    def in_samples(self, fs: float) -> dict[str, int]:
        """The spec's lengths converted to samples at ``fs`` (what a record's windows used)."""
        if self.kind == "jun":
            return {"gap": ms_to_samples(self.jun_gap_ms, fs)}
        if self.kind == "fixed":
            return {"before": ms_to_samples(self.fixed_before_ms, fs),
                    "after": ms_to_samples(self.fixed_after_ms, fs)}
        return {}


@dataclass(frozen=True)
class Windows:
    """Windows of one beat sequence: ``[start, end)`` per beat and whether the beat is kept.

    Attributes
    ----------
    start, end : ndarray of int64
        Window bounds in samples, one per input beat (0 where the beat is dropped).
    keep : ndarray of bool
        True for beats with a usable window.
    reason : ndarray of int8
        0 for kept beats, else ``1 + DROP_REASONS.index(reason)``.
    """

    start: np.ndarray
    end: np.ndarray
    keep: np.ndarray
    reason: np.ndarray

    def dropped(self) -> dict[str, int]:
        """Number of dropped beats per reason (reasons with none are left out)."""
        counts = np.bincount(self.reason, minlength=len(DROP_REASONS) + 1)
        return {name: int(counts[i + 1]) for i, name in enumerate(DROP_REASONS) if counts[i + 1]}


def compute_windows(r_peaks: np.ndarray, fs: float, kind: str | WindowSpec = "jun", *, n_samples: int,
                    jun_gap_ms: float = 55.6, fixed_before_ms: float = 250.0,
                    fixed_after_ms: float = 400.0) -> Windows:
    """Window bounds of every beat of one sorted beat sequence.

    Parameters
    ----------
    r_peaks : array of int
        R-peak sample indices of one record's beat sequence, strictly increasing. The
        neighbours of a beat are the previous and next entries of this array.
    fs : float
        The record's sampling rate in Hz (millisecond settings are converted with it).
    kind : {"jun", "midpoint", "fixed"} or WindowSpec
        Window kind; a :class:`WindowSpec` also carries the millisecond settings.
    n_samples : int
        Length of the record; windows must lie in ``[0, n_samples)``.
    jun_gap_ms, fixed_before_ms, fixed_after_ms : float
        Millisecond settings, used when ``kind`` is a string.

    Returns
    -------
    Windows
        Bounds, keep mask and drop reasons, aligned with ``r_peaks``.

    Raises
    ------
    ValueError
        When ``r_peaks`` is not strictly increasing or lies outside the record.

    Examples
    --------
    >>> r = np.array([100, 300, 520, 700])
    >>> w = compute_windows(r, 360.0, "midpoint", n_samples=800)
    >>> w.start[w.keep].tolist(), w.end[w.keep].tolist()
    ([200, 410], [410, 610])
    >>> w = compute_windows(r, 360.0, "fixed", n_samples=750, fixed_before_ms=250, fixed_after_ms=250)
    >>> w.start.tolist(), w.end.tolist(), w.dropped()
    ([10, 210, 430, 0], [190, 390, 610, 0], {'off_record': 1})
    """
    spec = kind if isinstance(kind, WindowSpec) else WindowSpec(kind, jun_gap_ms, fixed_before_ms, fixed_after_ms)
    r = np.asarray(r_peaks, dtype=np.int64)
    if r.ndim != 1:
        raise ValueError(f"r_peaks must be 1-D, got shape {r.shape}")
    if r.size and (np.any(np.diff(r) <= 0)):
        raise ValueError("r_peaks must be strictly increasing")
    if r.size and (r[0] < 0 or r[-1] >= n_samples):
        raise ValueError(f"r_peaks must lie in [0, {n_samples}), got [{r[0]}, {r[-1]}]")
    n = r.size
    sizes = spec.in_samples(fs)
    reason = np.zeros(n, dtype=np.int8)

    if spec.kind == "fixed":
        start = r - sizes["before"]
        end = r + sizes["after"]
        reason[(start < 0) | (end > n_samples)] = _OFF_RECORD
        reason[(reason == _KEEP) & ~((start <= r) & (r < end))] = _TOO_SHORT
    else:
        prev = np.empty(n, dtype=np.int64)
        nxt = np.empty(n, dtype=np.int64)
        if n:
            prev[1:], prev[0] = r[:-1], r[0]
            nxt[:-1], nxt[-1] = r[1:], r[-1]
        if spec.kind == "jun":
            start = prev + sizes["gap"]
            end = nxt - sizes["gap"]
        else:  # midpoint
            start = r - (r - prev) // 2
            end = r + (nxt - r) // 2
        reason[~((start <= r) & (r < end))] = _TOO_SHORT
        if n:
            reason[[0, -1]] = _EDGE
    keep = reason == _KEEP
    return Windows(start=np.where(keep, start, 0), end=np.where(keep, end, 0), keep=keep, reason=reason)


def window_offsets(start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """List offsets (length ``n + 1``) of windows laid end to end: ``[0, len0, len0 + len1, ...]``.

    Examples
    --------
    >>> window_offsets(np.array([5, 20]), np.array([8, 24])).tolist()
    [0, 3, 7]
    """
    lengths = np.asarray(end, dtype=np.int64) - np.asarray(start, dtype=np.int64)
    if np.any(lengths < 0):
        raise ValueError("window end before start")
    offsets = np.zeros(lengths.size + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return offsets


def extract_windows(signal: np.ndarray, start: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Samples of every window, concatenated, with their list offsets (one gather, no Python loop).

    Parameters
    ----------
    signal : ndarray, shape (n_samples,)
    start, end : ndarray of int
        Window bounds ``[start, end)``, inside ``[0, n_samples]``.

    Returns
    -------
    values : ndarray
        All windows' samples end to end, same dtype as ``signal``.
    offsets : ndarray of int64, shape (n_windows + 1,)
        Window ``i`` is ``values[offsets[i]:offsets[i + 1]]``.

    Examples
    --------
    >>> values, offsets = extract_windows(np.arange(10.0), np.array([1, 6]), np.array([3, 9]))
    >>> values.tolist(), offsets.tolist()
    ([1.0, 2.0, 6.0, 7.0, 8.0], [0, 2, 5])
    """
    signal = np.asarray(signal)
    start = np.asarray(start, dtype=np.int64)
    end = np.asarray(end, dtype=np.int64)
    if start.size and (start.min() < 0 or end.max() > signal.shape[0]):
        raise ValueError(f"windows must lie in [0, {signal.shape[0]}]")
    offsets = window_offsets(start, end)
    total = int(offsets[-1])
    # sample index of element k of window i is start[i] + (k - offsets[i])
    lengths = np.diff(offsets)
    index = np.arange(total, dtype=np.int64) + np.repeat(start - offsets[:-1], lengths)
    return signal[index], offsets
