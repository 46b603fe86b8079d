"""Beat quality: windows that show no usable ECG are excluded in ``segment``, one reason per beat.

A beat window is excluded when it is

``saturated``
    at least ``saturated_ms`` of its samples sit at the lead's ADC limits (the recorder clipped
    the trace); checked only when the limits are known and ``saturated_ms`` is set;
``flat``
    its peak-to-peak amplitude is below ``flat_mv`` (a disconnected or all-zero lead);
``implausible_amplitude``
    its peak-to-peak amplitude is above ``max_mv`` (no surface ECG beat is that large: a wrong
    gain or unit).

The first reason that applies, in the order of :data:`QUALITY_REASONS`, is the beat's reason.
The functions are pure and vectorised over one record's ragged windows
(``values[offsets[i]:offsets[i + 1]]`` is beat ``i``), the layout of
:func:`pipelines.signal.windows.extract_windows`.

Defaults (``segment.quality`` in ``params.yaml``) exclude no MIT-BIH beat: its smallest beat
window spans 0.175 mV peak to peak and its largest 9.525 mV (record 116, clipped). Saturation is
off by default (``saturated_ms: null``): MIT-BIH record 116 has three clipped episodes
(samples 360271-361336, 500385-501401 and 505207-506254) whose 9 reference-beat windows each
hold 23 to 392 samples at the ADC limits; switching the check on excludes them.

Examples
--------
>>> import numpy as np
>>> values = np.array([0, 1.0, 0,   0, 0, 0,   0, 30.0, 0,   -5.12, -5.12, 0.5], dtype=np.float32)
>>> offsets = np.array([0, 3, 6, 9, 12])
>>> codes = beat_quality(values, offsets, adc_limits_mv=(-5.12, 5.115), saturated_samples=2)
>>> [QUALITY_REASONS[c - 1] if c else "ok" for c in codes]
['ok', 'flat', 'implausible_amplitude', 'saturated']
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from ..core.errors import ConfigError

#: Why a beat is excluded; code ``i + 1`` in :func:`beat_quality` (0: kept). Checked in this order.
QUALITY_REASONS: tuple[str, ...] = ("saturated", "flat", "implausible_amplitude")

_SATURATED, _FLAT, _IMPLAUSIBLE = 1, 2, 3


@dataclass(frozen=True)
class QualitySpec:
    """The ``segment.quality`` params.

    Examples
    --------
    >>> QualitySpec.from_params({"quality": {"saturated_ms": 50}}).saturated_samples(360.0)
    18
    >>> QualitySpec().is_default, QualitySpec().saturated_samples(360.0) is None
    (True, True)
    """

    flat_mv: float = 0.05
    max_mv: float = 15.0
    saturated_ms: float | None = None

    def __post_init__(self) -> None:
        for name in ("flat_mv", "max_mv", "saturated_ms"):
            value = getattr(self, name)
            if value is None and name == "saturated_ms":
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                    or value < 0:
                raise ConfigError(f"segment.quality.{name}: expected a finite number >= 0, got {value!r}")
        if self.max_mv <= self.flat_mv:
            raise ConfigError(f"segment.quality.max_mv ({self.max_mv}) must exceed flat_mv ({self.flat_mv})")

    @classmethod
    def from_params(cls, segment: Mapping[str, Any]) -> "QualitySpec":
        """Build from the ``segment`` section (its ``quality`` mapping; absent keys: defaults)."""
        quality = segment.get("quality") or {}
        if not isinstance(quality, Mapping):
            raise ConfigError(f"segment.quality: expected a mapping, got {quality!r}")
        unknown = sorted(set(quality) - {"flat_mv", "max_mv", "saturated_ms"})
        if unknown:
            raise ConfigError(f"segment.quality: unknown key(s) {', '.join(map(str, unknown))}")
        return cls(**dict(quality))

    @property
    def is_default(self) -> bool:
        """True when every setting is the default."""
        return self == QualitySpec()

    def to_json(self) -> dict[str, Any]:
        """The settings as JSON types."""
        return {"flat_mv": self.flat_mv, "max_mv": self.max_mv, "saturated_ms": self.saturated_ms}

    def saturated_samples(self, fs: float) -> int | None:
        """``saturated_ms`` in samples at ``fs`` (at least 1), or None when the check is off."""
        if self.saturated_ms is None:
            return None
        return max(1, int(math.floor(self.saturated_ms * fs / 1000.0 + 0.5)))


def beat_quality(values: np.ndarray, offsets: np.ndarray, *, adc_limits_mv: tuple[float, float] | None = None,
                 flat_mv: float = 0.05, max_mv: float = 15.0,
                 saturated_samples: int | None = None) -> np.ndarray:
    """Reason code of every beat window: 0 kept, else ``1 + QUALITY_REASONS.index(reason)``.

    Parameters
    ----------
    values : ndarray of float, shape (n_values,)
        The beat windows' samples (mV), concatenated.
    offsets : ndarray of int, shape (n_beats + 1,)
        Window ``i`` is ``values[offsets[i]:offsets[i + 1]]``; windows must not be empty.
    adc_limits_mv : (low, high), optional
        The lead's ADC limits in mV, computed exactly like the samples; a sample at or beyond
        them counts as clipped.
    flat_mv, max_mv : float
        Peak-to-peak bounds: below ``flat_mv`` is ``flat``, above ``max_mv`` is
        ``implausible_amplitude``.
    saturated_samples : int, optional
        Clipped samples that make a window ``saturated``; None: no saturation check.

    Returns
    -------
    ndarray of uint8, shape (n_beats,)
    """
    values = np.asarray(values)
    offsets = np.asarray(offsets, dtype=np.int64)
    n = offsets.size - 1
    if n <= 0:
        return np.zeros(0, dtype=np.uint8)
    if np.any(np.diff(offsets) <= 0) or offsets[0] != 0 or offsets[-1] != values.size:
        raise ValueError("offsets must start at 0, end at len(values) and give non-empty windows")
    starts = offsets[:-1]
    ptp = np.maximum.reduceat(values, starts) - np.minimum.reduceat(values, starts)
    codes = np.zeros(n, dtype=np.uint8)
    codes[ptp > max_mv] = _IMPLAUSIBLE
    codes[~(ptp >= flat_mv)] = _FLAT  # NaN windows count as flat
    if adc_limits_mv is not None and saturated_samples is not None:
        lo, hi = (np.asarray(v, dtype=values.dtype) for v in adc_limits_mv)
        clipped = np.add.reduceat(((values <= lo) | (values >= hi)).astype(np.int64), starts)
        codes[clipped >= saturated_samples] = _SATURATED
    return codes


def lead_is_flat(signal: np.ndarray, flat_mv: float = 0.05) -> bool:
    """True when the whole lead spans less than ``flat_mv`` peak to peak (or has no samples).

    >>> lead_is_flat(np.zeros(100)), lead_is_flat(np.array([0.0, 1.0]))
    (True, False)
    """
    signal = np.asarray(signal)
    return bool(signal.size == 0 or not (np.ptp(signal) >= flat_mv))


def select_windows(values: np.ndarray, offsets: np.ndarray, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The windows with ``keep`` True, in the same ragged layout.

    >>> v, o = select_windows(np.arange(5.0), np.array([0, 2, 3, 5]), np.array([True, False, True]))
    >>> v.tolist(), o.tolist()
    ([0.0, 1.0, 3.0, 4.0], [0, 2, 4])
    """
    offsets = np.asarray(offsets, dtype=np.int64)
    keep = np.asarray(keep, dtype=bool)
    lengths = np.diff(offsets)
    new_offsets = np.zeros(int(keep.sum()) + 1, dtype=offsets.dtype)
    np.cumsum(lengths[keep], out=new_offsets[1:])
    return np.asarray(values)[np.repeat(keep, lengths)], new_offsets


def reason_counts(codes: np.ndarray) -> dict[str, int]:
    """Excluded beats per reason (reasons with none are left out), like ``Windows.dropped``.

    >>> reason_counts(np.array([0, 2, 2, 3], dtype=np.uint8))
    {'flat': 2, 'implausible_amplitude': 1}
    """
    counts = np.bincount(np.asarray(codes, dtype=np.int64), minlength=len(QUALITY_REASONS) + 1)
    return {name: int(counts[i + 1]) for i, name in enumerate(QUALITY_REASONS) if counts[i + 1]}


@dataclass(frozen=True)
class Screened:
    """A record's windowed beats after the quality screen.

    ``keep`` and ``reason`` are aligned with every beat of the sequence (as ``Windows.keep``):
    ``reason`` is the quality code of a beat the screen excluded, 0 otherwise (kept, or
    already dropped by its window). ``values``/``offsets`` hold the kept beats' windows.
    """

    keep: np.ndarray
    reason: np.ndarray
    values: np.ndarray
    offsets: np.ndarray
    flat_lead: bool

    def dropped(self) -> dict[str, int]:
        """Excluded beats per reason (none: ``{}``)."""
        return reason_counts(self.reason)


def screen_beats(window_keep: np.ndarray, values: np.ndarray, offsets: np.ndarray, signal: np.ndarray,
                 fs: float, spec: QualitySpec, adc_limits_mv: tuple[float, float] | None = None) -> Screened:
    """Apply :func:`beat_quality` to the windows of the beats that ``window_keep`` kept.

    Parameters
    ----------
    window_keep : ndarray of bool, shape (n_beats,)
        Beats that got a window; ``values``/``offsets`` hold those windows, in order.
    values, offsets : ndarray
        The kept windows (:func:`pipelines.signal.windows.extract_windows`).
    signal : ndarray
        The whole lead (mV), for :func:`lead_is_flat`.
    fs : float
        Sampling rate (``saturated_ms`` to samples).
    spec : QualitySpec
    adc_limits_mv : (low, high), optional
        ``EcgRecord.adc_limits_mv``.
    """
    window_keep = np.asarray(window_keep, dtype=bool)
    codes = beat_quality(values, offsets, adc_limits_mv=adc_limits_mv, flat_mv=spec.flat_mv, max_mv=spec.max_mv,
                         saturated_samples=spec.saturated_samples(fs))
    reason = np.zeros(window_keep.size, dtype=np.uint8)
    reason[np.flatnonzero(window_keep)] = codes
    if codes.any():
        values, offsets = select_windows(values, offsets, codes == 0)
    return Screened(keep=window_keep & (reason == 0), reason=reason, values=values, offsets=offsets,
                    flat_lead=lead_is_flat(signal, spec.flat_mv))


__all__ = ["QUALITY_REASONS", "QualitySpec", "Screened", "beat_quality", "lead_is_flat", "reason_counts",
           "screen_beats", "select_windows"]
