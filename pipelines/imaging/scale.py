"""Beat images that keep time and amplitude: fixed scales for the ``raster`` engine.

The recipe (:func:`pipelines.imaging.raster.render_beats`) stretches every beat window over the
image width and its min..max over the height, so a 1.4 s normal beat and a 0.98 s premature beat
look alike and amplitude is lost. :class:`ImageScale` chooses, per axis:

* ``time="stretch"`` (the recipe): sample ``j`` of ``L`` at ``x = left + j * (right - left) / (L - 1)``,
  ``left, right = margin * size, (1 - margin) * size``.
* ``time="fixed"``: ``ms_per_px`` milliseconds per pixel, the R-peak (sample ``r`` of the window)
  at ``x_R = r_column * size``: sample ``j`` at ``x = x_R + (j - r) * 1000 / (fs * ms_per_px)``.
  Samples outside ``[0, size)`` are not drawn; a window shorter than the image leaves blank sides.
* ``amplitude="beat"`` (the recipe): each beat's min..max (over its drawn part) fills
  ``[top, bottom] = [margin * size, (1 - margin) * size]``, max at the top.
* ``amplitude="fixed"``: ``mv_range = (lo, hi)`` millivolts (above the beat's median when
  ``center``) fill ``[top, bottom]``: ``y = top + (hi - (v - m)) * (bottom - top) / (hi - lo)``
  (``m`` the beat's median, or 0); the trace is cut at the image's top and bottom edges.
* ``amplitude="record"``: as ``fixed`` in units of the record's amplitude ``u`` (the median, over the
  record's beats, of ``|v[r] - m|``; :func:`record_amplitude`):
  ``y = top + (hi - (v - m) / u) * (bottom - top) / (hi - lo)`` with ``(lo, hi) = rel_range``.

Both fixed axes become per-beat inputs of the compiled kernel
(:func:`pipelines.imaging.kernel.render_spans_into`): each beat's x range and its row mapping
``y = y0 - v * gain``. ``ImageScale()`` draws the recipe's bytes (tested).

Examples
--------
>>> import numpy as np
>>> beats = [np.r_[np.zeros(100), 1.0, np.zeros(100)], np.r_[np.zeros(50), 1.0, np.zeros(50)]]
>>> values, offsets = np.concatenate(beats).astype(np.float32), np.array([0, 201, 302])
>>> spec = ImageScale(time="fixed", ms_per_px=5.0, amplitude="fixed")
>>> images = render_beats_scaled(values, offsets, scale=spec, r_index=np.array([100, 50]), fs=360.0)
>>> [np.flatnonzero((img < 255).any(axis=0))[[0, -1]].tolist() for img in images]  # inked columns
[[8, 119], [36, 91]]
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..core.errors import ConfigError, DataError
from .kernel import render_spans_into, segment_medians
from .raster import _check_size, check_beats

TIME_MODES = ("stretch", "fixed")
#: Largest |x| (pixels) of a beat's first or last sample the kernel takes (its column indices are int64).
_FAR = 2.0 ** 52
AMPLITUDE_MODES = ("beat", "fixed", "record")


@dataclass(frozen=True)
class ImageScale:
    """How beat time and amplitude map to pixels (see the module docstring for the formulas).

    Parameters
    ----------
    time : {"stretch", "fixed"}
        ``stretch``: each window fills the width (the recipe); ``fixed``: ``ms_per_px``.
    ms_per_px : float
        ``time="fixed"``: milliseconds per pixel (> 0). 12 ms/px shows 1.54 s on 128 px.
    r_column : float
        ``time="fixed"``: the R-peak's x as a fraction of the image side, in ``[0, 1]``.
    amplitude : {"beat", "fixed", "record"}
        ``beat``: each beat's min..max fills the box (the recipe); ``fixed``: ``mv_range``;
        ``record``: ``rel_range`` in units of the record's R amplitude.
    mv_range : (float, float)
        ``amplitude="fixed"``: millivolts at the box's bottom and top, ``low < high``.
    rel_range : (float, float)
        ``amplitude="record"``: record R amplitudes at the box's bottom and top, ``low < high``.
    center : bool
        ``amplitude="fixed"``: measure ``mv_range`` from each beat's median (True) or from 0 mV.

    Examples
    --------
    >>> ImageScale().is_recipe, ImageScale(time="fixed").is_recipe
    (True, False)
    >>> ImageScale(amplitude="peak")
    Traceback (most recent call last):
    ...
    pipelines.core.errors.ConfigError: render.scale.amplitude must be one of ('beat', 'fixed', 'record'), got 'peak'
    """

    time: str = "stretch"
    ms_per_px: float = 12.0
    r_column: float = 0.5
    amplitude: str = "beat"
    mv_range: tuple[float, float] = (-1.5, 2.5)
    rel_range: tuple[float, float] = (-1.0, 1.5)
    center: bool = True

    def __post_init__(self):
        if self.time not in TIME_MODES:
            raise ConfigError(f"render.scale.time must be one of {TIME_MODES}, got {self.time!r}")
        if self.amplitude not in AMPLITUDE_MODES:
            raise ConfigError(f"render.scale.amplitude must be one of {AMPLITUDE_MODES}, got {self.amplitude!r}")
        if not (_is_real(self.ms_per_px) and self.ms_per_px > 0):
            raise ConfigError(f"render.scale.ms_per_px must be a positive number, got {self.ms_per_px!r}")
        if not (_is_real(self.r_column) and 0.0 <= self.r_column <= 1.0):
            raise ConfigError(f"render.scale.r_column must be a number in [0, 1], got {self.r_column!r}")
        for key in ("mv_range", "rel_range"):
            pair = getattr(self, key)
            if not (isinstance(pair, (tuple, list)) and len(pair) == 2 and all(_is_real(p) for p in pair)
                    and pair[0] < pair[1]):
                raise ConfigError(f"render.scale.{key} must be two numbers (low, high) with low < high, got {pair!r}")
            object.__setattr__(self, key, (float(pair[0]), float(pair[1])))
        if not isinstance(self.center, (bool, np.bool_)):
            raise ConfigError(f"render.scale.center must be true or false, got {self.center!r}")

    @property
    def is_recipe(self) -> bool:
        """True for the recipe's scales (stretched time, per-beat min/max amplitude)."""
        return self.time == "stretch" and self.amplitude == "beat"


def _is_real(x) -> bool:
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool) and math.isfinite(x)


def beat_medians(values: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Median of each beat's samples (its baseline), float64, shape ``(n,)``.

    Examples
    --------
    >>> beat_medians(np.array([0.0, 5.0, 1.0, 2.0, 2.0], np.float32), np.array([0, 3, 5])).tolist()
    [1.0, 2.0]
    """
    values, offsets = check_beats(values, offsets)
    return segment_medians(values, offsets)


def record_amplitude(record: np.ndarray, values: np.ndarray, offsets: np.ndarray, r_index: np.ndarray) -> np.ndarray:
    """Each beat's record amplitude: the median over the record's beats of ``|v[r] - median(beat)|``.

    The input of ``amplitude="record"``: pass a whole record's beats (e.g. the whole beats table)
    so that every beat of a record gets the same robust unit, whatever batch it is drawn in.

    Parameters
    ----------
    record : array_like, ``(n,)``
        Each beat's record (any comparable dtype, e.g. the beats table's ``record`` strings).
    values, offsets : ndarray
        The beats (see :func:`pipelines.imaging.raster.check_beats`).
    r_index : array_like of int, ``(n,)``
        Each beat's R-peak as an index into its own samples (``r_sample - start``).

    Returns
    -------
    ndarray, float64, ``(n,)``
        In the units of ``values`` (mV), > 0.

    Raises
    ------
    DataError
        Misshapen inputs, an R index outside its beat, or a record whose amplitude is 0.

    Examples
    --------
    >>> values = np.array([0, 2, 0, 0, 4, 0, 0, 1, 0], np.float32)
    >>> record_amplitude(np.array(["a", "a", "b"]), values, np.array([0, 3, 6, 9]), np.array([1, 1, 1])).tolist()
    [3.0, 3.0, 1.0]
    """
    values, offsets = check_beats(values, offsets)
    n = offsets.size - 1
    r_index = _check_r_index(r_index, offsets)
    record = np.asarray(record)
    if record.shape != (n,):
        raise DataError("record", f"must hold one entry per beat ({n}), got shape {record.shape}")
    peak = np.abs(values[offsets[:-1] + r_index].astype(np.float64) - segment_medians(values, offsets))
    names, group = np.unique(record, return_inverse=True)
    order = np.argsort(group, kind="stable")
    bounds = np.searchsorted(group[order], np.arange(names.size + 1))
    unit = segment_medians(peak[order], bounds)
    if (unit <= 0).any():
        bad = names[unit <= 0]
        raise DataError(f"record {bad[0]}", f"its beats' median R amplitude above their baseline is 0 ({bad.size} "
                        "record(s) affected); amplitude='record' cannot scale them")
    return unit[group.reshape(-1)]


def time_axis(scale: ImageScale, lengths: np.ndarray, *, size: int, margin: float, r_index: np.ndarray | None = None,
              fs: float | np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Each beat's x of its first and last sample (pixels, may lie outside ``[0, size]``).

    Examples
    --------
    >>> left, right = time_axis(ImageScale(time="fixed", ms_per_px=10.0), np.array([11]), size=100, margin=0.0,
    ...                         r_index=np.array([4]), fs=1000.0)
    >>> left.tolist(), right.tolist()  # 1 ms per sample, 10 ms per pixel: R (sample 4) at x = 50
    ([49.6], [50.6])
    """
    n = lengths.size
    if scale.time == "stretch":
        return np.full(n, margin * size), np.full(n, (1.0 - margin) * size)
    px_per_sample = 1000.0 / (np.broadcast_to(fs, (n,)) * scale.ms_per_px)
    left = scale.r_column * size - r_index * px_per_sample
    return left, left + (lengths - 1) * px_per_sample


def amplitude_axis(scale: ImageScale, baseline: np.ndarray, *, size: int, margin: float,
                   amp: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Each beat's row mapping ``y = y0 - v * gain`` (float32 ``y0``, ``gain``) for fixed amplitudes.

    ``baseline``: each beat's median (used by ``record``, and by ``fixed`` when ``center``);
    ``amp``: each beat's record amplitude (``record``).

    Examples
    --------
    >>> y0, gain = amplitude_axis(ImageScale(amplitude="fixed", mv_range=(-1.0, 3.0)), np.array([0.5]),
    ...                           size=100, margin=0.0)
    >>> float(y0[0]), float(gain[0])  # 25 px per mV; 0.5 mV above the median (0.5 mV) -> 1 mV at row 50
    (87.5, 25.0)
    """
    top, bottom = margin * size, (1.0 - margin) * size
    if scale.amplitude == "fixed":
        low, high = scale.mv_range
        unit = np.ones_like(baseline)
        base = baseline if scale.center else np.zeros_like(baseline)
    else:
        (low, high), unit, base = scale.rel_range, amp, baseline
    gain = (bottom - top) / ((high - low) * unit)
    y0 = top + (high * unit + base) * gain
    with np.errstate(over="ignore"):  # an overflow gives inf, refused by render_beats_scaled
        return y0.astype(np.float32), gain.astype(np.float32)


def render_beats_scaled(values: np.ndarray, offsets: np.ndarray, *, scale: ImageScale = ImageScale(),
                        r_index: np.ndarray | None = None, fs: float | np.ndarray | None = None,
                        amp: np.ndarray | None = None, size: int = 128, margin: float = 0.05,
                        line_width: float = 1.5) -> np.ndarray:
    """Draw beats as :func:`pipelines.imaging.raster.render_beats` does, at the time and amplitude scales of ``scale``.

    Parameters
    ----------
    values, offsets : ndarray
        The beats, as in :func:`pipelines.imaging.raster.render_beats`.
    scale : ImageScale
        ``ImageScale()`` (the default) draws exactly the bytes of ``render_beats``.
    r_index : array_like of int, ``(n,)``
        ``time="fixed"``: each beat's R-peak as an index into its samples (``r_sample - start``).
    fs : float or array_like, ``(n,)``
        ``time="fixed"``: sampling rate(s) in Hz.
    amp : array_like, ``(n,)``
        ``amplitude="record"``: each beat's record amplitude, from :func:`record_amplitude`.
    size, margin, line_width
        As in ``render_beats``; ``margin`` places the stretched window and the amplitude box.

    Returns
    -------
    ndarray, uint8, ``(n, size, size)``

    Raises
    ------
    ConfigError
        ``scale``, ``size``, ``margin`` or ``line_width`` out of range.
    DataError
        Bad beats, or a missing or misshapen ``r_index``, ``fs`` or ``amp`` that ``scale`` needs.

    Examples
    --------
    >>> values, offsets = np.array([0, 1, 0, -1, 0], np.float32), np.array([0, 5])
    >>> from pipelines.imaging.raster import render_beats
    >>> bool((render_beats_scaled(values, offsets, size=32) == render_beats(values, offsets, size=32)).all())
    True
    """
    if not isinstance(scale, ImageScale):
        raise ConfigError(f"render.scale must be an ImageScale, got {type(scale).__name__}")
    if not (_is_real(margin) and 0.0 <= margin < 0.5):
        raise ConfigError(f"render.margin must be in [0, 0.5), got {margin!r}")
    if not (_is_real(line_width) and line_width > 0):
        raise ConfigError(f"render.line_width must be a positive number, got {line_width!r}")
    size = _check_size(size)
    values, offsets = check_beats(values, offsets)
    n = offsets.size - 1
    if scale.time == "fixed":
        r_index = _check_r_index(r_index, offsets)
        fs = _check_per_beat("fs", fs, n)
    left, right = time_axis(scale, np.diff(offsets), size=size, margin=margin, r_index=r_index, fs=fs)
    far = np.flatnonzero(~((np.abs(left) < _FAR) & (np.abs(right) < _FAR)))
    if far.size:
        i = int(far[0])
        raise DataError(f"beat {i}", f"its samples span x = {float(left[i]):.4g}..{float(right[i]):.4g} px, beyond "
                        f"the kernel's range (check fs and ms_per_px; {far.size} beat(s) affected)")
    fit = scale.amplitude == "beat"
    if fit:
        y0 = gain = np.zeros(n, np.float32)
    else:
        if scale.amplitude == "record":
            amp = _check_per_beat("amp", amp, n)
        baseline = segment_medians(values, offsets)
        y0, gain = amplitude_axis(scale, baseline, size=size, margin=margin, amp=amp)
        wild = np.flatnonzero(~(np.isfinite(y0) & np.isfinite(gain)))
        if wild.size:
            raise DataError(f"beat {int(wild[0])}", f"its amplitude scale overflows float32 (amp too small?; "
                            f"{wild.size} beat(s) affected)")
    out = np.empty((n, size, size), dtype=np.uint8)
    render_spans_into(values, offsets, out, np.ascontiguousarray(left, np.float64),
                      np.ascontiguousarray(right, np.float64), margin * size, (1.0 - margin) * size, y0, gain, fit,
                      float(line_width))
    return out


def _check_r_index(r_index, offsets: np.ndarray) -> np.ndarray:
    n = offsets.size - 1
    if r_index is None:
        raise DataError("r_index", "is required: each beat's R-peak as an index into its samples (r_sample - start)")
    r_index = np.asarray(r_index)
    if r_index.shape != (n,) or not np.issubdtype(r_index.dtype, np.integer):
        raise DataError("r_index", f"must be {n} integers (one per beat), got shape {r_index.shape}, "
                        f"dtype {r_index.dtype}")
    r_index = r_index.astype(np.int64)
    outside = np.flatnonzero((r_index < 0) | (r_index >= np.diff(offsets)))
    if outside.size:
        i = int(outside[0])
        raise DataError(f"beat {i}", f"R index {int(r_index[i])} lies outside its {int(offsets[i + 1] - offsets[i])} "
                        f"samples ({outside.size} beat(s) affected)")
    return r_index


def _check_per_beat(name: str, x, n: int) -> np.ndarray:
    """A positive finite scalar or ``(n,)`` array, as float64 of shape ``(n,)``."""
    if x is None:
        raise DataError(name, "is required by this scale")
    arr = np.asarray(x)
    if arr.shape not in ((), (n,)) or not np.issubdtype(arr.dtype, np.number) \
            or np.issubdtype(arr.dtype, np.complexfloating):
        raise DataError(name, f"must be a number or {n} numbers (one per beat), got shape {arr.shape}, "
                        f"dtype {arr.dtype}")
    arr = np.broadcast_to(arr.astype(np.float64), (n,))
    bad = np.flatnonzero(~(np.isfinite(arr) & (arr > 0)))
    if bad.size:
        i = int(bad[0])
        raise DataError(f"beat {i}", f"{name} must be positive and finite, got {float(arr[i])} "
                        f"({bad.size} beat(s) affected)")
    return np.ascontiguousarray(arr)
