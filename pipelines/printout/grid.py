"""Page geometry of an ECG printout and its millimetre grid (see ``docs/paper.md``).

All page lengths are in mm; ``px_per_mm = dpi / 25.4``. Pixel ``(row i, column j)`` has its centre at
``x = j``, ``y = i``. Lead ``k`` (0 = top) has its 0 mV baseline at
``y = (top_mm + (k + 0.5) * lead_mm) * px_per_mm``; sample ``i`` of a strip sits at
``x = x_origin + i / fs * mm_per_s * px_per_mm``. Coordinates are quantised to 1/16 px
(:data:`SUBPIXEL_BITS`), the precision OpenCV draws with.

Examples
--------
>>> g = page_geometry(seconds=10, n_leads=2)
>>> g.width, g.height, round(g.px_per_mm, 3)
(2087, 551, 7.874)
>>> x, y = g.to_pixels(np.array([0.0, 1.0]), np.array([0.0, 1.0]), lead=0)
>>> x.tolist(), y.tolist()
([78.75, 275.625], [157.5, 78.75])
>>> t, v = g.to_signal(x, y, lead=0)       # pixel -> (s, mV) -> pixel is exact
>>> [a.tolist() for a in g.to_pixels(t, v, lead=0)] == [x.tolist(), y.tolist()]
True
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import numpy as np

#: Fractional bits of the drawing coordinates (``cv2.polylines(..., shift=4)``): 1/16 px.
SUBPIXEL_BITS = 4

#: Minor grid pitch and major grid pitch (mm): the standard ECG paper.
MINOR_MM = 1.0
MAJOR_EVERY = 5

#: Major line width (mm); minor lines are 1 px.
MAJOR_LINE_MM = 0.2

#: Calibration pulse: starts (rises) this far from the page's left edge, lasts 0.2 s, 1 mV high.
PULSE_X_MM = 2.0
PULSE_SECONDS = 0.2
PULSE_MV = 1.0

PAPER_RGB = (255, 255, 255)

_HEX = re.compile(r"^#[0-9a-fA-F]{6}$")


def parse_colour(colour: str) -> tuple[int, int, int]:
    """``"#rrggbb"`` -> ``(r, g, b)``.

    >>> parse_colour("#f08080")
    (240, 128, 128)
    """
    if not isinstance(colour, str) or not _HEX.match(colour):
        raise ValueError(f"colour {colour!r} is not '#rrggbb'")
    return tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]


def quantise(px: np.ndarray) -> np.ndarray:
    """Round pixel coordinates to the drawing precision (1/16 px), as float64.

    >>> quantise(np.array([1.03, 2.5])).tolist()
    [1.0, 2.5]
    """
    scale = float(1 << SUBPIXEL_BITS)
    return np.round(np.asarray(px, dtype=np.float64) * scale) / scale


@dataclass(frozen=True)
class PageGeometry:
    """Where everything of a strip lies on the page (mm) and in the image (px).

    Attributes
    ----------
    dpi, seconds, mm_per_s, mm_per_mv, lead_mm, left_mm, right_mm, top_mm, bottom_mm : float
    n_leads : int
    """

    dpi: float
    seconds: float
    n_leads: int
    mm_per_s: float = 25.0
    mm_per_mv: float = 10.0
    lead_mm: float = 30.0
    left_mm: float = 10.0
    right_mm: float = 5.0
    top_mm: float = 5.0
    bottom_mm: float = 5.0

    @property
    def px_per_mm(self) -> float:
        return self.dpi / 25.4

    @property
    def width_mm(self) -> float:
        return self.left_mm + self.seconds * self.mm_per_s + self.right_mm

    @property
    def height_mm(self) -> float:
        return self.top_mm + self.n_leads * self.lead_mm + self.bottom_mm

    @property
    def width(self) -> int:
        return int(round(self.width_mm * self.px_per_mm))

    @property
    def height(self) -> int:
        return int(round(self.height_mm * self.px_per_mm))

    @property
    def x_origin(self) -> float:
        """x (px) of a strip's first sample, quantised."""
        return float(quantise(self.left_mm * self.px_per_mm))

    def baseline_y(self, lead: int | None = None) -> np.ndarray | float:
        """y (px) of 0 mV of ``lead`` (or of every lead), quantised."""
        k = np.arange(self.n_leads) if lead is None else np.asarray(lead)
        y = quantise((self.top_mm + (k + 0.5) * self.lead_mm) * self.px_per_mm)
        return y if lead is None else float(y)

    def pulse_box(self, lead: int) -> tuple[float, float, float, float]:
        """``(x0, y_top, x1, y_base)`` (px) of the lead's 1 mV calibration pulse, quantised."""
        x0 = quantise(PULSE_X_MM * self.px_per_mm)
        x1 = quantise((PULSE_X_MM + PULSE_SECONDS * self.mm_per_s) * self.px_per_mm)
        base = self.baseline_y(lead)
        top = quantise(base - PULSE_MV * self.mm_per_mv * self.px_per_mm)
        return float(x0), float(top), float(x1), float(base)

    def to_pixels(self, t_s: np.ndarray, mv: np.ndarray, lead: int) -> tuple[np.ndarray, np.ndarray]:
        """Page pixels ``(x, y)`` of times (s from the strip start) and values (mV), quantised."""
        x = quantise(self.x_origin + np.asarray(t_s, dtype=np.float64) * self.mm_per_s * self.px_per_mm)
        y = quantise(self.baseline_y(lead) - np.asarray(mv, dtype=np.float64) * self.mm_per_mv * self.px_per_mm)
        return x, y

    def to_signal(self, x: np.ndarray, y: np.ndarray, lead: int) -> tuple[np.ndarray, np.ndarray]:
        """Times (s) and values (mV) of page pixels ``(x, y)``: the inverse of :meth:`to_pixels`."""
        t = (np.asarray(x, dtype=np.float64) - self.x_origin) / (self.mm_per_s * self.px_per_mm)
        v = (self.baseline_y(lead) - np.asarray(y, dtype=np.float64)) / (self.mm_per_mv * self.px_per_mm)
        return t, v

    def mv_limits(self, lead: int) -> tuple[float, float]:
        """The lowest and highest value (mV) of ``lead`` that stays on the page (y in [0, height - 1])."""
        scale = self.mm_per_mv * self.px_per_mm
        base = self.baseline_y(lead)
        return (base - (self.height - 1)) / scale, base / scale


def page_geometry(*, seconds: float, n_leads: int, dpi: float = 200.0, mm_per_s: float = 25.0,
                  mm_per_mv: float = 10.0, lead_mm: float = 30.0) -> PageGeometry:
    """The page of one strip of ``seconds`` with ``n_leads`` stacked leads.

    The left margin holds the calibration pulse: ``PULSE_X_MM`` + the pulse + 3 mm, rounded up to
    whole millimetres.
    """
    if n_leads < 1 or seconds <= 0 or dpi <= 0:
        raise ValueError(f"bad page: {n_leads} leads, {seconds} s, {dpi} dpi")
    left = float(np.ceil(PULSE_X_MM + PULSE_SECONDS * mm_per_s + 3.0))
    return PageGeometry(dpi=float(dpi), seconds=float(seconds), n_leads=int(n_leads), mm_per_s=float(mm_per_s),
                        mm_per_mv=float(mm_per_mv), lead_mm=float(lead_mm), left_mm=left)


def _line_pixels(n_lines: int, px_per_mm: float, width_px: int, limit: int) -> np.ndarray:
    """Pixel indices covered by lines centred on ``k * px_per_mm`` for k < n_lines, ``width_px`` wide."""
    centres = np.arange(n_lines) * px_per_mm
    first = np.floor(centres - width_px / 2 + 0.5).astype(np.int64)
    idx = (first[:, None] + np.arange(width_px)[None, :]).ravel()
    return np.unique(idx[(idx >= 0) & (idx < limit)])


def minor_colour(colour: tuple[int, int, int]) -> tuple[int, int, int]:
    """The minor-line colour: ``colour`` blended half-way to the paper white.

    >>> minor_colour((240, 128, 128))
    (248, 192, 192)
    """
    return tuple(int((c + p + 1) // 2) for c, p in zip(colour, PAPER_RGB))  # type: ignore[return-value]


@functools.lru_cache(maxsize=8)
def _grid(geometry: PageGeometry, colour: tuple[int, int, int]) -> np.ndarray:
    h, w, ppmm = geometry.height, geometry.width, geometry.px_per_mm
    img = np.empty((h, w, 3), dtype=np.uint8)
    img[:] = PAPER_RGB
    minor = minor_colour(colour)
    major_px = max(1, int(round(MAJOR_LINE_MM * ppmm)))
    nx, ny = int(geometry.width_mm / MINOR_MM) + 1, int(geometry.height_mm / MINOR_MM) + 1
    cols, rows = _line_pixels(nx, ppmm, 1, w), _line_pixels(ny, ppmm, 1, h)
    img[:, cols] = minor
    img[rows, :] = minor
    kx, ky = (nx - 1) // MAJOR_EVERY + 1, (ny - 1) // MAJOR_EVERY + 1
    cols = _line_pixels(kx, ppmm * MAJOR_EVERY, major_px, w)
    rows = _line_pixels(ky, ppmm * MAJOR_EVERY, major_px, h)
    img[:, cols] = colour
    img[rows, :] = colour
    img.flags.writeable = False
    return img


def grid_template(geometry: PageGeometry, colour: str | tuple[int, int, int] = "#f08080") -> np.ndarray:
    """The empty page: paper white with the 1 mm / 5 mm grid, RGB uint8 (height, width, 3), read-only.

    Cached per (geometry, colour): copy it (``np.array(t)``) before drawing on it.

    >>> t = grid_template(page_geometry(seconds=1, n_leads=1, dpi=254))  # 10 px per mm
    >>> t.shape, t[1, 1].tolist(), t[1, 10].tolist(), t[1, 50].tolist()
    ((400, 400, 3), [255, 255, 255], [248, 192, 192], [240, 128, 128])
    """
    rgb = parse_colour(colour) if isinstance(colour, str) else tuple(int(c) for c in colour)
    return _grid(geometry, rgb)
