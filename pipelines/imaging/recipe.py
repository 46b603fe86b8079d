"""The ``matplotlib`` engine: the published beat-image recipe, pixel for pixel, without files.

The recipe (``/work/shared/reference/recipe.md``; Jun et al. 2018 as the widely copied tutorial
reproduces it) draws every beat in a new ``plt.figure(frameon=False)`` (6.4 x 4.8 in at 100 dpi:
640 x 480 px) with ``plt.plot(beat)`` and matplotlib's defaults (line width 1.5 pt, colour C0,
axes margins 5 %), hides ticks and spines, saves a PNG, re-reads it with
``cv2.imread(path, cv2.IMREAD_GRAYSCALE)`` and shrinks it to 128 x 128 with ``cv2.INTER_LANCZOS4``.
:func:`render_beat_literal` does exactly that (the reference and the speed baseline).

:func:`render_beats` produces the same pixels (tested: identical on real beats) much faster:

* one Agg figure for all beats, created under matplotlib's default style (a user's
  ``matplotlibrc`` cannot change the recipe); each beat only updates the line's data and the
  autoscaled limits, and redraws just the line over a saved background (blitting);
* the RGBA canvas buffer is read in memory (``canvas.buffer_rgba``), no PNG is written;
* grey levels come from the same arithmetic as OpenCV's PNG decoder (libpng's
  ``png_set_rgb_to_gray`` with OpenCV's 0.299 / 0.587 weights, truncated:
  ``(9797 R + 19234 G + 3737 B) >> 15``), computed only inside the axes box, where the trace is;
* the figure is released at the end (it is never registered with pyplot, so
  ``plt.get_fignums()`` never changes).

matplotlib is not thread-safe: render from several processes, not threads.

Examples
--------
>>> import numpy as np
>>> values = np.sin(np.linspace(0, 6, 200)).astype(np.float32)
>>> images = render_beats(values, np.array([0, 100, 200]))
>>> images.shape, images.dtype, int(images.max())
((2, 128, 128), dtype('uint8'), 255)
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from typing import Iterator

import cv2
import matplotlib
import numpy as np
from matplotlib import style as mpl_style
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.transforms import Bbox

from ..core.errors import ConfigError
from .raster import check_beats

#: ``cv2.imread(png, IMREAD_GRAYSCALE)`` of an RGB(A) PNG: libpng's rgb-to-gray with OpenCV's
#: weights (0.299, 0.587) in 1/32768 units, truncated. As a ``cv2.transform`` matrix on RGB with
#: an offset column: ``floor(x) == round(x - 0.5 + 2**-16)`` for these multiples of 2**-15 (all
#: exact in float32), so the transform's rounding reproduces libpng's truncation.
_GRAY_MATRIX = np.array([[9797 / 32768, 19234 / 32768, 3737 / 32768, -32767 / 65536]])


def _check_size(size: int) -> int:
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 2:
        raise ConfigError(f"render.size must be an integer >= 2, got {size!r}")
    return int(size)


def png_gray(rgba: np.ndarray) -> np.ndarray:
    """Grey levels of an RGBA (or RGB) uint8 image as ``cv2.imread(png, IMREAD_GRAYSCALE)`` gives them.

    Alpha is ignored (OpenCV strips it); the weights are libpng's fixed-point 0.299 / 0.587 / 0.114.

    Examples
    --------
    >>> png_gray(np.array([[[31, 119, 180, 255], [255, 255, 255, 0]]], np.uint8)).tolist()  # C0, white
    [[99, 255]]
    """
    rgb = rgba if rgba.shape[-1] == 3 else cv2.cvtColor(rgba, cv2.COLOR_RGBA2RGB)
    return cv2.transform(rgb, _GRAY_MATRIX)


@contextlib.contextmanager
def _default_style() -> Iterator[None]:
    """matplotlib's default rcParams (the recipe's), whatever the user's matplotlibrc says."""
    with mpl_style.context("default"):
        yield


def recipe_box(size: int = 128) -> tuple[float, float, float, float]:
    """Where the recipe puts a (non-constant) beat in its ``size`` x ``size`` image, in pixels.

    Returns ``(left, top, right, bottom)``: x of the first and last sample, row of the maximum and
    of the minimum, in the edge-based pixel coordinates of :func:`pipelines.imaging.raster.render_beats_box`
    (so the ``raster`` engine can draw into the recipe's frame). They follow from matplotlib's
    default subplot box (0.125..0.9 x 0.11..0.88 of the figure) and 5 % axes margins; the
    640 x 480 -> size x size resize scales both axes linearly.

    Examples
    --------
    >>> [round(v, 2) for v in recipe_box(128)]
    [20.51, 19.84, 110.69, 109.44]
    """
    size = _check_size(size)
    with _default_style():
        rc = matplotlib.rcParams
        x0, x1 = rc["figure.subplot.left"], rc["figure.subplot.right"]
        y0, y1 = rc["figure.subplot.bottom"], rc["figure.subplot.top"]
        xm, ym = rc["axes.xmargin"], rc["axes.ymargin"]
    dx = (x1 - x0) * xm / (1 + 2 * xm)
    dy = (y1 - y0) * ym / (1 + 2 * ym)
    return ((x0 + dx) * size, (1 - (y1 - dy)) * size, (x1 - dx) * size, (1 - (y0 + dy)) * size)


def render_beat_literal(beat: np.ndarray, *, size: int = 128, workdir: str | os.PathLike | None = None) -> np.ndarray:
    """The recipe as published, for one beat: new pyplot figure, ``savefig`` PNG, ``imread``, Lanczos.

    Slow (a figure and a PNG file per beat); the reference that :func:`render_beats` is tested
    against and the baseline of ``benchmarks/bench_render.py``. Unlike the tutorial, it closes
    its figure and deletes its PNG.

    Parameters
    ----------
    beat : ndarray, 1-D
        The beat's samples.
    size : int
        Output side (the recipe's 128).
    workdir : path, optional
        Directory for the temporary PNG (default: the system's temporary directory).

    Returns
    -------
    ndarray, uint8, shape ``(size, size)``
    """
    import matplotlib.pyplot as plt

    size = _check_size(size)
    with _default_style(), tempfile.TemporaryDirectory(dir=workdir) as tmp:
        path = os.path.join(tmp, "beat.png")
        fig = plt.figure(frameon=False)
        try:
            plt.plot(beat)
            plt.xticks([]), plt.yticks([])
            for spine in plt.gca().spines.values():
                spine.set_visible(False)
            fig.savefig(path)
        finally:
            plt.close(fig)
        gray = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
    return cv2.resize(gray, (size, size), interpolation=cv2.INTER_LANCZOS4)


class _RecipeCanvas:
    """One reusable recipe figure: ``draw(beat)`` returns the 640 x 480 grey image of a beat."""

    def __init__(self) -> None:
        self.fig = Figure(frameon=False)
        self.canvas = FigureCanvasAgg(self.fig)
        self.ax = self.fig.add_subplot()
        (self.line,) = self.ax.plot([0.0, 1.0], [0.0, 1.0], animated=True)
        self.ax.set_xticks([])
        self.ax.set_yticks([])
        for spine in self.ax.spines.values():
            spine.set_visible(False)
        self.canvas.draw()  # everything but the (animated) line: the blank axes
        # The line is clipped to the axes box: outside it the canvas stays transparent white
        # (grey 255) for good, so only the box (plus 2 px) is restored and converted per beat.
        width, height = self.canvas.get_width_height()
        x0, y0, x1, y1 = self.ax.bbox.extents
        x0, y0 = max(int(np.floor(x0)) - 2, 0), max(int(np.floor(y0)) - 2, 0)
        x1, y1 = min(int(np.ceil(x1)) + 2, width), min(int(np.ceil(y1)) + 2, height)
        self.background = self.canvas.copy_from_bbox(Bbox.from_extents(x0, y0, x1, y1))
        self.rows, self.cols = slice(height - y1, height - y0), slice(x0, x1)
        self.gray = np.full((height, width), 255, dtype=np.uint8)

    def draw(self, beat: np.ndarray) -> np.ndarray:
        self.line.set_data(np.arange(beat.size), beat)
        self.ax.relim()
        self.ax.autoscale_view()
        self.canvas.restore_region(self.background)
        self.ax.draw_artist(self.line)
        rgba = np.asarray(self.canvas.buffer_rgba())
        self.gray[self.rows, self.cols] = png_gray(rgba[self.rows, self.cols])
        return self.gray

    def close(self) -> None:
        self.fig.clear()
        self.canvas = self.fig = self.ax = self.line = self.background = None


def render_beats(values: np.ndarray, offsets: np.ndarray, *, size: int = 128) -> np.ndarray:
    """Draw beats with the published matplotlib recipe (the ``matplotlib`` engine).

    Parameters
    ----------
    values : ndarray, float, 1-D
        All beats' samples, concatenated.
    offsets : ndarray, int, 1-D, length ``n + 1``
        Beat ``i`` is ``values[offsets[i]:offsets[i + 1]]``.
    size : int
        Output side; the 640 x 480 drawing is resized to ``size`` x ``size`` with Lanczos.

    Returns
    -------
    ndarray, uint8, shape ``(n, size, size)``
        The recipe's pixels: a thin grey trace (C0 blue becomes about 99) on white inside the
        middle ~70 % of the image (see :func:`recipe_box`).

    Raises
    ------
    DataError
        Bad beats (fewer than 2 samples, NaN/inf, inconsistent offsets).
    """
    size = _check_size(size)
    values, offsets = check_beats(values, offsets)
    n = offsets.size - 1
    out = np.empty((n, size, size), dtype=np.uint8)
    if n == 0:
        return out
    with _default_style():
        canvas = _RecipeCanvas()
        try:
            for i in range(n):
                gray = canvas.draw(values[offsets[i]:offsets[i + 1]])
                out[i] = cv2.resize(gray, (size, size), interpolation=cv2.INTER_LANCZOS4)
        finally:
            canvas.close()
    return out


def trace_rows(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row of the trace in every column: the darkness-weighted centre (``255 - pixel`` weights).

    Parameters
    ----------
    images : ndarray, uint8, shape ``(n, h, w)``

    Returns
    -------
    rows : ndarray, float64, shape ``(n, w)``
        Centre in edge-based pixel coordinates (a single dark pixel in row ``r`` gives ``r + 0.5``).
    inked : ndarray, bool, shape ``(n, w)``
        Whether the column holds any ink (``rows`` is 0 where it does not).

    Examples
    --------
    >>> img = np.full((1, 4, 2), 255, np.uint8); img[0, 1, 0] = 0
    >>> rows, inked = trace_rows(img)
    >>> rows.tolist(), inked.tolist()
    ([[1.5, 0.0]], [[True, False]])
    """
    dark = 255.0 - np.asarray(images, dtype=np.float64)
    weight = dark.sum(axis=1)
    centre = (dark * (np.arange(dark.shape[1]) + 0.5)[None, :, None]).sum(axis=1)
    inked = weight > 0
    return np.where(inked, centre / np.where(inked, weight, 1.0), 0.0), inked


def engine_agreement(recipe_images: np.ndarray, raster_images: np.ndarray, *, box: tuple[float, float, float, float],
                     tolerance: float = 2.0, ink_level: int = 191, flat_height: int = 6) -> dict[str, float]:
    """How well ``raster`` images drawn in the recipe's frame agree with the recipe's images.

    Both image sets show the same beats, the raster ones drawn with
    ``render_beats_box(..., box=recipe_box(size))``. Columns strictly inside the box (one column
    in from each end) where both images have ink are compared.

    Returns
    -------
    dict
        ``columns_within``: fraction of columns whose trace rows (:func:`trace_rows`) differ by at
        most ``tolerance`` pixels; ``flat_columns_within``: the same over the columns where the
        raster trace is at most ``flat_height`` pixels tall (everything but steep strokes);
        ``mean_abs_row_diff``: the mean absolute difference of all compared columns (px);
        ``recipe_ink_on_raster_ink``: fraction of the recipe's ink pixels (grey <= ``ink_level``)
        that are ink (< 255) in the raster image too; ``columns``: how many columns were compared.
        The recipe's 5x Lanczos shrink samples the thin 640 px-wide line near each column's centre,
        while the raster engine draws the polyline's whole extent within the column, so on steep
        strokes the raster trace is taller: its ink contains the recipe's, but the centres of
        such columns can differ by more than the tolerance.
    """
    left, _, right, _ = box
    cols = np.arange(int(np.ceil(left)) + 1, int(np.floor(right)) - 1)
    ra, ia = trace_rows(recipe_images[..., cols])
    rb, ib = trace_rows(raster_images[..., cols])
    both = ia & ib
    diff = np.abs(ra - rb)[both]
    flat = ((raster_images[..., cols] < 255).sum(axis=-2) <= flat_height)[both]
    ink_a = recipe_images[..., cols] <= ink_level
    on_b = ink_a & (raster_images[..., cols] < 255)
    return {
        "columns": int(both.sum()),
        "columns_within": float(np.mean(diff <= tolerance)) if diff.size else float("nan"),
        "flat_columns_within": float(np.mean(diff[flat] <= tolerance)) if flat.any() else float("nan"),
        "mean_abs_row_diff": float(diff.mean()) if diff.size else float("nan"),
        "recipe_ink_on_raster_ink": float(on_b.sum() / max(int(ink_a.sum()), 1)),
    }
