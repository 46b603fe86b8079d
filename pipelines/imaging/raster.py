"""The ``raster`` engine: draw beats as anti-aliased 8-bit images, vectorised over batches of beats.

Each beat is a polyline through its samples: sample ``j`` of a beat of ``L`` samples sits at
``x = left + j * (right - left) / (L - 1)`` and its amplitude ``v`` at
``y = top + (vmax - v) * (bottom - top) / (vmax - vmin)`` (pixel coordinates with the origin at the
image's top-left corner, pixel ``(row, col)`` covering ``[row, row + 1) x [col, col + 1)``), so
the largest sample is at the top ("up is up"). :func:`render_beats` puts that box at ``margin``
of the image side from every edge.

Drawing works per image column, the way an oscilloscope display does. In column ``c`` the
polyline covers the vertical extent ``[ymin, ymax]`` of its points inside ``[c, c + 1)``: the
samples that fall there and the polyline's linearly interpolated values on both column edges, so
no sample is skipped however many samples a beat holds. The column then gets a vertical span
``[ymin - w/2, ymax + w/2]`` (``w`` the line width), and each pixel of the column is darkened by
the fraction of its height the span covers: the span's two end pixels get fractional (anti-aliased)
grey levels, the pixels between are black. Steep strokes are therefore one column wide, and a
slanted stroke's vertical thickness is ``w`` plus its rise over the column. Beats are never
resampled (a sharp R peak keeps its exact height). Output depends only on each beat's own samples,
not on the batch it comes in.

The engine runs a numba-compiled kernel (:mod:`pipelines.imaging.kernel`) that draws one beat at a
time with no temporaries. A NumPy statement of the same algorithm, vectorised over batches of beats,
is the test oracle (``tests/_raster_reference.py``: same bytes, tested; about three times slower,
``benchmarks/bench_render.py`` prints both).

Speed (``benchmarks/bench_render.py``, one thread): see ``docs/benchmarks/render.md``.

These are the recipe's scales (each window over the width, each beat's min..max over the height);
:mod:`pipelines.imaging.scale` draws the same trace at a fixed time (ms per pixel) and amplitude (mV,
or record) scale instead (``docs/imaging.md``).

Examples
--------
>>> import numpy as np
>>> values = np.array([0, 1, 0, -1, 0, 0, 2, 0], dtype=np.float32)
>>> offsets = np.array([0, 5, 8])
>>> images = render_beats(values, offsets, size=32)
>>> images.shape, images.dtype, int(images.min()), int(images.max())
((2, 32, 32), dtype('uint8'), 0, 255)
"""
from __future__ import annotations

import math

import numpy as np

from ..core.errors import ConfigError, DataError
from .kernel import MAX_SIZE, render_into

#: Grey level of the background and of full ink.
BACKGROUND, INK = 255, 0



def check_beats(values: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate beats given as concatenated ``values`` and ``offsets``; return them as float32/int64.

    Parameters
    ----------
    values : array_like, 1-D
        All beats' samples, concatenated.
    offsets : array_like of int, 1-D, length ``n + 1``
        Beat ``i`` is ``values[offsets[i]:offsets[i + 1]]`` (a pyarrow ``ListArray``'s layout).

    Raises
    ------
    DataError
        (a ``ValueError``) when offsets are not a non-decreasing range inside ``values``, when a
        beat has fewer than 2 samples, or when a beat holds NaN or infinite values; the message
        names the first offending beat (its index in ``offsets``) and how many beats are affected.

    Examples
    --------
    >>> check_beats(np.array([0.0, 1.0, float("nan"), 1.0]), np.array([0, 2, 4]))
    Traceback (most recent call last):
    ...
    pipelines.core.errors.DataError: beat 1: holds NaN or infinite values (1 beat(s) affected); exclude such beats before rendering
    """
    values = np.asarray(values)
    offsets = np.asarray(offsets)
    if values.ndim != 1:
        raise DataError("values", f"must be 1-D, got shape {values.shape}")
    if offsets.ndim != 1 or offsets.size < 1:
        raise DataError("offsets", f"must be 1-D with n + 1 entries, got shape {offsets.shape}")
    if not np.issubdtype(offsets.dtype, np.integer):
        raise DataError("offsets", f"must be integers, got dtype {offsets.dtype}")
    if not np.issubdtype(values.dtype, np.number) or np.issubdtype(values.dtype, np.complexfloating):
        raise DataError("values", f"must be real numbers, got dtype {values.dtype}")
    offsets = offsets.astype(np.int64, copy=False)
    if offsets[0] < 0 or offsets[-1] > values.size:
        raise DataError("offsets", f"range [{offsets[0]}, {offsets[-1]}] lies outside values (size {values.size})")
    lengths = np.diff(offsets)
    if (lengths < 0).any():
        bad = int(np.flatnonzero(lengths < 0)[0])
        raise DataError("offsets", f"must be non-decreasing (offsets[{bad}] > offsets[{bad + 1}])")
    short = np.flatnonzero(lengths < 2)
    if short.size:
        i, k = int(short[0]), int(lengths[short[0]])
        raise DataError(f"beat {i}", f"has {k} sample{'' if k == 1 else 's'}; a beat needs at "
                        f"least 2 ({short.size} beat(s) affected)")
    values = np.ascontiguousarray(values, dtype=np.float32)
    used = values[offsets[0]:offsets[-1]]
    finite = np.isfinite(used)
    if not finite.all():
        bad_samples = np.flatnonzero(~finite) + offsets[0]
        beats = np.unique(np.searchsorted(offsets, bad_samples, side="right") - 1)
        raise DataError(f"beat {int(beats[0])}", f"holds NaN or infinite values ({beats.size} beat(s) affected); "
                        "exclude such beats before rendering")
    return values, offsets


def render_beats(values: np.ndarray, offsets: np.ndarray, *, size: int = 128, margin: float = 0.05,
                 line_width: float = 1.5) -> np.ndarray:
    """Draw beats as anti-aliased grayscale images (the fast ``raster`` engine).

    Parameters
    ----------
    values : ndarray, float, 1-D
        All beats' samples, concatenated (any real dtype; computed in float32).
    offsets : ndarray, int, 1-D, length ``n + 1``
        Beat ``i`` is ``values[offsets[i]:offsets[i + 1]]``, as in a pyarrow ``ListArray``.
    size : int
        Image side in pixels.
    margin : float
        Blank fraction of the side on each edge, in ``[0, 0.5)``: the trace's centre line spans
        ``[margin * size, (1 - margin) * size]`` both ways (x: sample index over the width; y: each
        beat's own min..max, largest at the top).
    line_width : float
        Trace width in pixels (> 0).

    Returns
    -------
    ndarray, uint8, shape ``(n, size, size)``
        255 background, dark anti-aliased trace (0 = full ink). A constant beat is a horizontal
        line through the middle.

    Raises
    ------
    DataError
        Bad beats (fewer than 2 samples, NaN/inf, inconsistent offsets); see :func:`check_beats`.
    ConfigError
        ``size``, ``margin`` or ``line_width`` out of range.

    Examples
    --------
    >>> img = render_beats(np.array([0.0, 0.0, 0.0]), np.array([0, 3]), size=16, margin=0.0)[0]
    >>> (img[:, 4] < 255).nonzero()[0].tolist()  # a flat beat: a line in the middle rows
    [7, 8]
    """
    if not 0.0 <= float(margin) < 0.5:
        raise ConfigError(f"render.margin must be in [0, 0.5), got {margin!r}")
    size = _check_size(size)
    lo, hi = margin * size, (1.0 - margin) * size
    return render_beats_box(values, offsets, size=size, box=(lo, lo, hi, hi), line_width=line_width)


def render_beats_box(values: np.ndarray, offsets: np.ndarray, *, size: int, box: tuple[float, float, float, float],
                     line_width: float = 1.5) -> np.ndarray:
    """Like :func:`render_beats`, with the trace's box given in pixels instead of a margin.

    Parameters
    ----------
    box : (left, top, right, bottom)
        Pixel coordinates (edges, origin top-left) of the first sample (``left``), the last sample
        (``right``), each beat's maximum (``top``) and minimum (``bottom``); ``left < right`` and
        ``top < bottom`` inside ``[0, size]``. Useful to draw into another renderer's frame (the
        ``matplotlib`` engine's trace lies in ``RECIPE_BOX`` of :mod:`pipelines.imaging.recipe`).

    Examples
    --------
    >>> img = render_beats_box(np.array([1.0, 0.0]), np.array([0, 2]), size=8, box=(0, 0, 8, 8))[0]
    >>> int(img[0, 0]), int(img[7, 7]), int(img[0, 7])  # a falling diagonal from top-left
    (0, 0, 255)
    """
    size = _check_size(size)
    left, top, right, bottom = (float(b) for b in box)
    if not (0.0 <= left < right <= size and 0.0 <= top < bottom <= size):
        raise ConfigError(f"render box {box!r} must satisfy 0 <= left < right <= {size} "
                          f"and 0 <= top < bottom <= {size}")
    if not (math.isfinite(line_width) and line_width > 0):
        raise ConfigError(f"render.line_width must be a positive number, got {line_width!r}")
    values, offsets = check_beats(values, offsets)
    out = np.empty((offsets.size - 1, size, size), dtype=np.uint8)
    render_into(values, offsets, out, left, top, right, bottom, float(line_width))
    return out


def _check_size(size: int) -> int:
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or not 2 <= size <= MAX_SIZE:
        raise ConfigError(f"render.size must be an integer in [2, {MAX_SIZE}], got {size!r}")
    return int(size)
