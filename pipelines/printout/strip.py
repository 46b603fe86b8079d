"""Draw one strip: the traces, the 1 mV calibration pulse and the lead names on the grid.

The drawing is OpenCV on a copy of the cached grid (:func:`pipelines.printout.grid.grid_template`):
one anti-aliased ``cv2.polylines`` per lead at 1/16 px precision. :func:`plot_signals` gives the
exact values and pixel coordinates that are drawn (the ground truth), :func:`draw_strip` draws them.

Examples
--------
>>> from pipelines.printout.grid import page_geometry
>>> g = page_geometry(seconds=1, n_leads=1)
>>> sig = np.zeros((1, 360), np.float32)
>>> plotted = plot_signals(sig, 360.0, g)
>>> plotted.x.shape, float(plotted.y[0, 0]) == g.baseline_y(0), plotted.clipped.tolist()
((1, 360), True, [0])
>>> img = draw_strip(plotted, ["MLII"], g)
>>> img.shape, img.dtype
((315, 315, 3), dtype('uint8'))
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

from .grid import SUBPIXEL_BITS, PageGeometry, grid_template, parse_colour, quantise

#: Baseline removal before plotting (``paper.baseline``).
BASELINES: tuple[str, ...] = ("median", "none")

#: Lead-name text height (mm) and its gap above the calibration pulse (mm).
LABEL_MM = 3.0
LABEL_GAP_MM = 1.0


@dataclass(frozen=True)
class PlottedStrip:
    """What is drawn: per lead the values (mV, float32) and their page pixels (float64, 1/16 px).

    Attributes
    ----------
    signal : ndarray, float32, (n_leads, n)
        The plotted values (after baseline removal and clipping to the page).
    x, y : ndarray, float64, (n_leads, n)
        Page pixel coordinates of every sample.
    clipped : ndarray, int32, (n_leads,)
        Samples clipped to the page's top or bottom edge.
    """

    signal: np.ndarray
    x: np.ndarray
    y: np.ndarray
    clipped: np.ndarray


def remove_baseline(signals: np.ndarray, how: str = "median") -> np.ndarray:
    """Each lead minus its median (``median``) or unchanged (``none``), float32.

    >>> remove_baseline(np.array([[1.0, 2.0, 9.0]])).tolist()
    [[-1.0, 0.0, 7.0]]
    """
    sig = np.asarray(signals, dtype=np.float32)
    if how == "median":
        return (sig - np.median(sig, axis=-1, keepdims=True)).astype(np.float32)
    if how == "none":
        return sig.copy()
    raise ValueError(f"unknown baseline {how!r}, expected one of {BASELINES}")


def plot_signals(signals: np.ndarray, fs: float, geometry: PageGeometry) -> PlottedStrip:
    """Clip each lead to the page and compute the pixel coordinates of every sample.

    Parameters
    ----------
    signals : array, (n_leads, n), mV
        The strip's leads, top to bottom, already baseline-corrected.
    fs : float
        Sampling rate (Hz).
    geometry : PageGeometry

    Returns
    -------
    PlottedStrip
    """
    sig = np.asarray(signals, dtype=np.float32)
    if sig.ndim != 2 or sig.shape[0] != geometry.n_leads:
        raise ValueError(f"expected ({geometry.n_leads}, n) signals, got {sig.shape}")
    if not np.isfinite(sig).all():
        raise ValueError("signals hold NaN or infinite values")
    lo, hi = np.array([geometry.mv_limits(k) for k in range(geometry.n_leads)], dtype=np.float64).T
    lo32 = np.ceil(lo * 1e4) / 1e4  # stay inside the page after float32 rounding
    hi32 = np.floor(hi * 1e4) / 1e4
    clipped_mask = (sig < lo32[:, None]) | (sig > hi32[:, None])
    sig = np.clip(sig, lo32[:, None].astype(np.float32), hi32[:, None].astype(np.float32))
    t = np.arange(sig.shape[1], dtype=np.float64) / float(fs)
    x = np.empty(sig.shape, dtype=np.float64)
    y = np.empty(sig.shape, dtype=np.float64)
    for k in range(sig.shape[0]):  # one vectorised call per lead
        x[k], y[k] = geometry.to_pixels(t, sig[k], k)
    return PlottedStrip(signal=sig, x=x, y=y, clipped=clipped_mask.sum(axis=1).astype(np.int32))


def pulse_points(geometry: PageGeometry, lead: int) -> np.ndarray:
    """The calibration pulse's polyline (page px, 1/16 px): baseline, up 1 mV, 0.2 s, down, baseline.

    >>> from pipelines.printout.grid import page_geometry
    >>> pulse_points(page_geometry(seconds=1, n_leads=1, dpi=254), 0).tolist()
    [[10.0, 200.0], [20.0, 200.0], [20.0, 100.0], [70.0, 100.0], [70.0, 200.0], [90.0, 200.0]]
    """
    x0, top, x1, base = geometry.pulse_box(lead)
    ppmm = geometry.px_per_mm
    a, b = quantise(x0 - 1.0 * ppmm), quantise(x1 + 2.0 * ppmm)
    return np.array([[a, base], [x0, base], [x0, top], [x1, top], [x1, base], [b, base]], dtype=np.float64)


def pen_offsets(line_px: int) -> list[tuple[float, float]]:
    """Offsets (px) at which a 1 px anti-aliased line is drawn to make a ``line_px`` wide pen.

    OpenCV's anti-aliased lines thicker than 1 px cost ten times a 1 px line; four 1 px lines
    shifted by +-(line_px - 1) / 2 in x and in y give the same width in every direction, centred on
    the true trace, for a fraction of the time.

    >>> pen_offsets(1), pen_offsets(2)
    ([(0.0, 0.0)], [(-0.5, 0.0), (0.5, 0.0), (0.0, -0.5), (0.0, 0.5)])
    """
    if line_px <= 1:
        return [(0.0, 0.0)]
    h = (int(line_px) - 1) / 2.0
    return [(-h, 0.0), (h, 0.0), (0.0, -h), (0.0, h)]


def _fixed(points: np.ndarray) -> np.ndarray:
    """Float (x, y) pixels -> OpenCV's fixed-point int32 points (``shift`` = :data:`SUBPIXEL_BITS`)."""
    return np.round(points * (1 << SUBPIXEL_BITS)).astype(np.int32).reshape(-1, 1, 2)


def draw_strip(plotted: PlottedStrip, leads: Sequence[str], geometry: PageGeometry, *,
               grid_colour: str | tuple[int, int, int] = "#f08080", trace_colour: str = "#000000",
               line_px: int = 2) -> np.ndarray:
    """Draw the grid, each lead's pulse, name and trace; return the RGB page (height, width, 3) uint8.

    Parameters
    ----------
    plotted : PlottedStrip
        From :func:`plot_signals`.
    leads : sequence of str
        Lead names, top to bottom.
    geometry : PageGeometry
    grid_colour : str or (r, g, b)
        Major grid line colour (minor lines: half-way to white).
    trace_colour : str
        Colour of traces, pulses and names.
    line_px : int
        Line thickness (px), see :func:`pen_offsets`.
    """
    if len(leads) != geometry.n_leads:
        raise ValueError(f"{len(leads)} lead names for {geometry.n_leads} leads")
    img = np.array(grid_template(geometry, grid_colour))
    ink = parse_colour(trace_colour)
    ppmm = geometry.px_per_mm
    scale = LABEL_MM * ppmm / 22.0  # FONT_HERSHEY_SIMPLEX is ~22 px high at scale 1
    thick_text = max(1, int(round(scale * 1.5)))
    shift = SUBPIXEL_BITS
    lines = [np.stack([plotted.x[k], plotted.y[k]], axis=1) for k in range(geometry.n_leads)]
    lines += [pulse_points(geometry, k) for k in range(geometry.n_leads)]
    for dx, dy in pen_offsets(line_px):
        cv2.polylines(img, [_fixed(p + (dx, dy)) for p in lines], False, ink, thickness=1, lineType=cv2.LINE_AA,
                      shift=shift)
    for k, name in enumerate(leads):
        x0, top, _, _ = geometry.pulse_box(k)
        org = (int(round(x0)), int(round(top - LABEL_GAP_MM * ppmm)))
        cv2.putText(img, str(name), org, cv2.FONT_HERSHEY_SIMPLEX, scale, ink, thick_text, cv2.LINE_AA)
    return img

