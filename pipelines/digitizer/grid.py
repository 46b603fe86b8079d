"""Paper and grid of a scanned ECG strip: ink and grid masks, skew angle and grid pitch, from pixels only.

* :func:`masks` splits an RGB page into *ink* (dark in every channel: the traces) and *grid* (lighter
  than the paper in some channel, not ink), after dividing by the paper's local brightness (uneven
  lighting, creases).
* :func:`skew_degrees` finds the rotation that makes the horizontal grid lines horizontal: the angle
  whose sheared row projection of the grid mask is sharpest (coarse-to-fine search).
* :func:`grid_pitch` measures the minor grid pitch (px per mm) along one axis: the first strong peak
  of the autocorrelation of the grid's projection gives a rough pitch, then the period of the
  projection's strongest Fourier component near it gives it to ~1e-3 px (:func:`_refine`).

Examples
--------
>>> from pipelines.printout.grid import grid_template, page_geometry
>>> page = np.array(grid_template(page_geometry(seconds=4, n_leads=1)))
>>> ink, grid, _ = masks(page)
>>> p = grid_pitch(grid, axis=1)
>>> int(ink.sum()), round(p.pitch, 2), round(p.offset, 1)  # 7.3 = -0.5: the template's 2 px major
(0, 7.87, 7.3)
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

#: Ink: darker than this fraction of the local paper brightness in every channel.
INK_LEVEL = 0.5
#: Grid: darker than this fraction of the local paper brightness in its darkest channel (and not ink)
GRID_LEVEL = 0.93  # (the skew search's grid pixels: strength > 1 - GRID_LEVEL)
#: The paper's brightness is the max over this window (px), which erases the thin traces and lines.
PAPER_WINDOW = 25
#: Minor lines per major line (1 mm and 5 mm).
MAJOR_EVERY = 5
#: Pitches (px per mm) a grid may have: 2.5 .. 40 (64 to 1000 dpi).
PITCH_RANGE = (2.5, 40.0)


@dataclass(frozen=True)
class Pitch:
    """A grid's minor pitch along one axis.

    Attributes
    ----------
    pitch : float
        px per mm.
    offset : float
        Where the minor lines are: at ``offset + k * pitch`` px (the Fourier phase; ``0 <= offset < pitch``).
    strength : float
        Normalised autocorrelation at the rough pitch (0: no periodic grid, 1: perfect).
    """

    pitch: float
    offset: float
    strength: float


def paper_level(channel: np.ndarray) -> np.ndarray:
    """The local paper brightness of a uint8 channel (float32, >= 1): a max filter, then a box blur."""
    k = cv2.getStructuringElement(cv2.MORPH_RECT, (PAPER_WINDOW, PAPER_WINDOW))
    bg = cv2.dilate(channel, k)
    bg = cv2.blur(bg, (PAPER_WINDOW, PAPER_WINDOW)).astype(np.float32)
    return np.maximum(bg, 1.0)


def brightest(rgb: np.ndarray) -> np.ndarray:
    """The brightest channel of each pixel (uint8): black ink is dark in it, coloured grid is not."""
    return np.maximum(np.maximum(rgb[:, :, 0], rgb[:, :, 1]), rgb[:, :, 2])


def masks(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(ink, grid, darkness)`` of an RGB uint8 page, relative to the local paper brightness: the ink
    mask (bool), the grid's strength (float32: how far the darkest channel falls below the paper,
    0 on and next to ink) and the ink darkness (float32, 0 for paper and grid, 1 for black)."""
    hi = brightest(rgb)
    lo = np.minimum(np.minimum(rgb[:, :, 0], rgb[:, :, 1]), rgb[:, :, 2])
    inv = 1.0 / paper_level(hi)
    rel_hi = hi * inv                     # float32, 1 = paper
    ink = rel_hi < INK_LEVEL
    near_ink = cv2.dilate(ink.view(np.uint8), np.ones((5, 5), np.uint8)).view(bool)  # and its fringe
    grid = 1.0 - lo * inv                 # how much colour: grid lines
    np.maximum(grid, 0.0, out=grid)
    grid[near_ink] = 0.0
    darkness = (0.9 - rel_hi) * np.float32(1 / 0.9)
    np.clip(darkness, 0.0, 1.0, out=darkness)
    return ink, grid, darkness


def _sharpness(ys: np.ndarray, xs: np.ndarray, slope: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Sum of squared row sums of weights ``w`` at points sheared by each slope (``y - x * slope``)."""
    out = np.empty(len(slope))
    for i, s in enumerate(slope):  # a handful of candidate angles
        b = ys - xs * s
        b = (b - (b.min() - 0.5)).astype(np.int64)  # rounded to rows
        counts = np.bincount(b, weights=w, minlength=1)
        out[i] = float(np.dot(counts, counts))
    return out


def skew_degrees(grid: np.ndarray, max_degrees: float = 5.0, step: int = 6) -> float:
    """The angle (degrees, image rotated counter-clockwise by it looks like ``cv2.getRotationMatrix2D(+a)``)
    that the horizontal grid lines make with the image rows; 0.0 when there is no grid.

    The page is then deskewed by rotating it by ``-angle`` about its centre. ``step`` subsamples the
    grid pixels (every step-th row and column) to save time.

    >>> from pipelines.printout.grid import grid_template, page_geometry
    >>> page = np.array(grid_template(page_geometry(seconds=4, n_leads=1)))
    >>> m = cv2.getRotationMatrix2D(((page.shape[1] - 1) / 2, (page.shape[0] - 1) / 2), 2.0, 1.0)
    >>> rot = cv2.warpAffine(page, m, page.shape[1::-1], borderValue=(255, 255, 255))
    >>> round(skew_degrees(masks(rot)[1]), 1)
    2.0
    """
    h, w = grid.shape
    sub = grid[:, ::step]
    ys, xs = np.nonzero(sub > 2.0 * (1.0 - GRID_LEVEL))  # every row: subsampled rows would alias the 1 px lines
    w = sub[ys, xs].astype(np.float64)
    if len(ys) < 100:
        return 0.0
    ys = ys.astype(np.float64)
    xs = xs.astype(np.float64) * step - (w - 1) / 2.0
    # coarse: a central slab narrow enough that a 0.25 degree error moves a line < 1/2 mm across it
    slab = np.abs(xs) < 200
    cand = np.arange(-max_degrees, max_degrees + 0.125, 0.25)
    best = float(cand[int(np.argmax(_sharpness(ys[slab], xs[slab], np.tan(np.deg2rad(-cand)), w[slab])))])
    for resolution in (0.08, 0.02, 0.005):  # fine: the whole width
        cand = best + np.arange(-3, 4) * resolution
        score = _sharpness(ys, xs, np.tan(np.deg2rad(-cand)), w)
        tied = np.nonzero(score == score.max())[0]
        if len(tied) > 1:  # a plateau (lines within one row across the page): its middle
            best = float(cand[tied].mean())
            continue
        i = int(np.clip(tied[0], 1, len(cand) - 2))
        a, b, c = score[i - 1], score[i], score[i + 1]
        shift = 0.5 * (a - c) / (a - 2 * b + c) if (a - 2 * b + c) < 0 else 0.0
        best = float(cand[i] + np.clip(shift, -0.5, 0.5) * resolution)
    return best


def deskew(rgb: np.ndarray, degrees: float) -> np.ndarray:
    """Rotate an RGB page by ``-degrees`` about its centre (white border); unchanged below 0.02 degree
    (a line then moves less than 1/3 px across a 2000 px page)."""
    if abs(degrees) < 0.02:
        return rgb
    h, w = rgb.shape[:2]
    m = cv2.getRotationMatrix2D(((w - 1) / 2.0, (h - 1) / 2.0), -degrees, 1.0)
    return cv2.warpAffine(rgb, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=(255, 255, 255))


def _rough_pitch(profile: np.ndarray) -> tuple[float, float]:
    """First strong autocorrelation peak of a projection in :data:`PITCH_RANGE`: ``(lag, strength)``."""
    p = profile - np.convolve(profile, np.ones(61) / 61.0, mode="same")  # no slow trend (lighting)
    n = len(p)
    denom = float(np.dot(p, p))
    hi = int(min(PITCH_RANGE[1] * 1.5, n // 3))
    if denom <= 0 or hi <= PITCH_RANGE[0]:
        return float("nan"), 0.0
    spec = np.fft.rfft(p, 2 * n)
    ac = np.fft.irfft(spec * np.conj(spec))[:hi + 2] / denom
    lags = np.arange(len(ac))
    peak = (ac[1:-1] > ac[:-2]) & (ac[1:-1] >= ac[2:]) & (lags[1:-1] >= PITCH_RANGE[0])
    idx = np.nonzero(peak)[0] + 1
    if len(idx) == 0 or ac[idx].max() <= 0:
        return float("nan"), 0.0
    top = ac[idx].max()
    first = idx[ac[idx] >= 0.5 * top][0]
    a, b, c = ac[first - 1], ac[first], ac[first + 1]
    shift = 0.5 * (a - c) / (a - 2 * b + c) if (a - 2 * b + c) != 0 else 0.0
    return float(first + shift), float(b)


def _refine(profile: np.ndarray, rough: float) -> float:
    """The period near ``rough`` with the strongest Fourier component of ``profile`` (two passes of a
    fine search: +-3 % in 0.15 % steps, then +-0.15 % in 0.02 % steps, each refined by a parabola)."""
    p = profile - profile.mean()
    x = np.arange(len(p), dtype=np.float64)
    best = rough
    for span, n in ((0.03, 41), (0.0015, 15)):
        cand = best * (1.0 + np.linspace(-span, span, n))
        phase = np.outer(2.0 * np.pi / cand, x)
        power = np.dot(np.cos(phase), p) ** 2 + np.dot(np.sin(phase), p) ** 2
        i = int(np.clip(np.argmax(power), 1, n - 2))
        a, b, c = power[i - 1], power[i], power[i + 1]
        shift = 0.5 * (a - c) / (a - 2 * b + c) if (a - 2 * b + c) < 0 else 0.0
        best = float(cand[i] + np.clip(shift, -0.5, 0.5) * (cand[1] - cand[0]))
    return best


def _power(profile: np.ndarray, period: float) -> float:
    """Power of ``profile``'s Fourier component of ``period`` (px)."""
    p = profile - profile.mean()
    phase = 2.0 * np.pi / period * np.arange(len(p))
    return float(np.dot(np.cos(phase), p) ** 2 + np.dot(np.sin(phase), p) ** 2)


def _minor_of(profile: np.ndarray, period: float) -> float:
    """``period / 5`` when ``period`` is the major (5 mm) pitch and the minor lines show (their
    component stands 2 x above its neighbours'), else ``period``."""
    minor = period / MAJOR_EVERY
    if minor < PITCH_RANGE[0]:
        return period
    around = 0.5 * (_power(profile, period / 4.5) + _power(profile, period / 5.5))
    return minor if _power(profile, minor) > 2.0 * around else period


def grid_pitch(grid: np.ndarray, axis: int = 1, near: float | None = None) -> Pitch:
    """The minor grid pitch along ``axis`` (1: x, from the vertical lines; 0: y, from the horizontal ones).

    ``near``: a pitch already known (the other axis: square pixels) to refine instead of the
    autocorrelation's rough one. Returns a :class:`Pitch`; its ``pitch`` is NaN when no periodic
    grid is found.
    """
    profile = grid.sum(axis=1 - axis, dtype=np.float64)
    rough, strength = _rough_pitch(profile)
    if near is not None and np.isfinite(near):
        rough = near
    elif np.isfinite(rough):
        rough = _minor_of(profile, rough)
    if not np.isfinite(rough) or not PITCH_RANGE[0] <= rough <= PITCH_RANGE[1]:
        return Pitch(float("nan"), float("nan"), strength)
    pitch = _refine(profile, rough)
    p = profile - profile.mean()
    phase = 2.0 * np.pi / pitch * np.arange(len(p))
    angle = np.arctan2(-np.dot(np.sin(phase), p), np.dot(np.cos(phase), p))  # lines at -angle / (2 pi) * pitch
    return Pitch(pitch, float((-angle / (2.0 * np.pi) * pitch) % pitch), strength)
