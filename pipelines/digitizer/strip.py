"""Digitise one strip: PNG bytes -> one signal (mV) per lead, or a failure with its reason.

Steps (each in its module): decode and check the image; ink and grid masks
(:mod:`~pipelines.digitizer.grid`); deskew from the grid's horizontal lines; the grid pitch on both
axes (px per mm); the traces' ink, the lead rows (:mod:`~pipelines.digitizer.trace`); per lead, the
trace's first and last column, its 0 mV row (the foot of the lead's calibration pulse, or the
trace's median), column-by-column following, column values and resampling at ``fs``
(:mod:`~pipelines.digitizer.calibrate`).

Only the image is read; ``n_leads`` and ``fs`` (known to whoever holds the printout: how many
leads it shows, the rate to resample to) say what to produce. Failures (:data:`FAILURES`) are
returned, never raised, so a stage counts them.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from .calibrate import fill_gaps, resample, thickness, trace_points
from .grid import deskew, grid_pitch, masks, skew_degrees
from .trace import follow, lead_rows, trace_extent, trace_mask

#: Why a strip can fail (the ``status`` column; ``ok`` otherwise).
FAILURES: tuple[str, ...] = ("not_png", "bad_mode", "bad_size", "blank", "no_grid", "lead_missing",
                             "trace_lost")


@dataclass(frozen=True)
class DigitizeConfig:
    """What the digitiser assumes about printouts (``params.yaml`` ``digitize:``; docs/digitize.md).

    Attributes
    ----------
    mm_per_s, mm_per_mv : float
        Paper speed and gain the strips were printed at (the ECG convention: 25 mm/s, 10 mm/mV).
    baseline : str
        0 mV row: ``pulse`` (the calibration pulse's foot; the trace median if no pulse is found) or
        ``median`` (the trace's median row).
    max_skew_degrees : float
        Largest rotation searched for.
    max_gap_ms : float
        Longest stretch without ink that is interpolated; longer stays NaN (not recovered).
    min_recovered : float
        A lead with a smaller fraction of recovered samples fails (``trace_lost``).
    supersede_px : float
        A steep stroke's row point replaces a column's stroke end point within this many pixels
        (:func:`~pipelines.digitizer.calibrate.trace_points`).
    min_side_px, max_side_px : int
        Accepted image sizes (``bad_size`` outside).
    seconds : float or None
        The strip's length as printed (like the sample count of a Challenge header): the trace's
        first and last column then span ``round(seconds * fs) - 1`` sample intervals, centred on the
        trace. None: the length is measured from the trace (less exact: +-2 samples).
    """

    mm_per_s: float = 25.0
    mm_per_mv: float = 10.0
    baseline: str = "pulse"
    max_skew_degrees: float = 5.0
    max_gap_ms: float = 40.0
    min_recovered: float = 0.9
    supersede_px: float = 2.0
    min_side_px: int = 64
    max_side_px: int = 20000
    seconds: float | None = 10.0


@dataclass
class Digitized:
    """One strip's result: ``status`` (``ok`` or a :data:`FAILURES` reason), ``detail`` (words),
    ``signals`` (one float32 array per lead, top to bottom; empty unless ok) and ``info``
    (measured geometry: skew, pitch, lead rows, thickness)."""

    status: str
    detail: str = ""
    signals: list[np.ndarray] = field(default_factory=list)
    info: dict = field(default_factory=dict)


def decode_png(data: bytes) -> tuple[np.ndarray | None, str, str]:
    """``(image, status, detail)`` of PNG bytes: the 8-bit 3-channel image (in OpenCV's BGR order:
    the digitiser treats the channels alike) or None and a failure."""
    if not isinstance(data, (bytes, bytearray)) or not bytes(data[:8]) == b"\x89PNG\r\n\x1a\n":
        return None, "not_png", "no PNG signature"
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if img is None:
        return None, "not_png", "undecodable PNG"
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        mode = f"{img.dtype}, {img.shape[2] if img.ndim == 3 else 1} channel(s)"
        return None, "bad_mode", f"expected 8-bit RGB, got {mode}"
    return img, "ok", ""


def _pulse_base(ink: np.ndarray, weight: np.ndarray, x_end: int, row: int, half: int, px_per_mv: float,
                thick: float) -> float | None:
    """Row of a calibration pulse's foot left of ``x_end`` near ``row`` (None if none is 1 mV tall):
    the darkness-weighted centre of the pulse's first columns (its foot, at 0 mV)."""
    lo, hi = max(0, row - half), min(ink.shape[0], row + half)
    region = ink[lo:hi, :max(0, x_end - 2)]
    if region.size == 0 or not region.any():
        return None
    n, labels, stats, _ = cv2.connectedComponentsWithStats(region.view(np.uint8), connectivity=8)
    best = None
    for i in range(1, n):  # a handful of components (pulse, letters)
        h = stats[i, cv2.CC_STAT_HEIGHT] - thick
        if 0.8 * px_per_mv <= h <= 1.2 * px_per_mv and (best is None or stats[i, cv2.CC_STAT_AREA] >
                                                         stats[best, cv2.CC_STAT_AREA]):
            best = i
    if best is None:
        return None
    left = stats[best, cv2.CC_STAT_LEFT]
    cols = slice(left, left + max(1, int(round(thick))))
    mine = (labels[:, cols] == best)
    mine = mine | np.roll(mine, 1, axis=0) | np.roll(mine, -1, axis=0)  # and the anti-aliased fringe
    w = weight[lo:hi, cols] * mine
    return float(lo + (w * np.arange(w.shape[0])[:, None]).sum() / max(float(w.sum()), 1e-9))


def trace_ends(weight: np.ndarray, traces: np.ndarray, x0: int, x1: int) -> tuple[float, float]:
    """Sub-pixel left and right ends of a trace whose ink spans columns ``x0..x1`` of a lead's band.

    An anti-aliased line ending inside a column darkens it in proportion to the part it covers. Each
    end is its outermost ink column's outer edge, moved in by the part of that column the line leaves
    uncovered and out by the part of the column beyond it that the line's fringe covers (too faint to
    be ink), both as fractions of the ink of the next column inwards: the column nearest the end, so
    that a trace that slopes or turns near its end changes the reference least. Whole-pixel ends
    would put the centre of the trace, hence every sample's time, up to half a pixel (one sample at
    200 dpi and 360 Hz) off; on the clean MIT-BIH strips these ends place the centre with an error of
    sd 0.10 px (0.26 px with the two outermost columns against the median of the two after them;
    benchmarks/bench_digitize_error.py).

    >>> w = np.zeros((5, 12), np.float32); w[2, 2:10] = 1.0; w[2, 1] = 0.25; w[2, 10] = 0.75
    >>> trace_ends(w, w > 0.2, 1, 10)
    (1.25, 10.25)
    >>> w[2, 0] = 0.125; w[2, 11] = 0.125  # each end's faint fringe, beyond its ink
    >>> trace_ends(w, w > 0.2, 1, 10)
    (1.125, 10.375)
    >>> w[2, 11] = 1.0                    # another trace's ink there: not this end's fringe
    >>> trace_ends(w, w > 0.2, 1, 10)
    (1.125, 10.25)
    """
    width = traces.shape[1]

    def column_mass(col: int, fringe: bool = False) -> float:
        """Darkness of column ``col`` over the trace ink and its 3 x 3 neighbourhood (0 off the page);
        ``fringe``: over the neighbourhood only (another trace's ink there is not this end's fringe)."""
        if not 0 <= col < width:
            return 0.0
        lo, hi = max(0, col - 1), min(width, col + 2)
        near = cv2.dilate(np.ascontiguousarray(traces[:, lo:hi]).view(np.uint8), np.ones((3, 3), np.uint8))
        near = near[:, col - lo].astype(bool)
        if fringe:
            near &= ~traces[:, col]
        return float(np.where(near, weight[:, col], 0.0).sum(dtype=np.float64))

    def end(col: int, inwards: int) -> float:
        full = column_mass(col + inwards) if x0 <= col + inwards <= x1 else 0.0
        if full <= 0:
            return col - 0.5 * inwards
        uncovered = min(max(1.0 - column_mass(col) / full, 0.0), 1.0)
        fringe = min(max(column_mass(col - inwards, fringe=True) / full, 0.0), 1.0)
        return float(col - 0.5 * inwards + inwards * (uncovered - fringe))

    return end(x0, 1), end(x1, -1)


def _start_row(traces: np.ndarray, top: int, bottom: int, x0: int, row: float, look: int = 3) -> float:
    """Where to start following a lead: in the first of the columns ``x0 .. x0 + look - 1`` with trace ink
    in the lead's band (rows ``top .. bottom - 1``), the ink row nearest the lead's ``row``; ``row``
    if there is none. Only the band's ink: where a lead starts a pixel later than its neighbour, or
    clipped at the page's edge far from its row, the neighbour's first column is nearer.

    >>> t = np.zeros((10, 6), bool); t[1, 0:] = True; t[8, 1:] = True    # lead 2 starts one column later
    >>> _start_row(t, 5, 10, 0, 6.0), _start_row(t, 0, 5, 0, 3.0)
    (8.0, 1.0)
    """
    for col in range(x0, min(x0 + look, traces.shape[1])):
        ink_rows = top + np.nonzero(traces[top:bottom, col])[0]
        if len(ink_rows):
            return float(ink_rows[np.argmin(np.abs(ink_rows - row))])
    return float(row)


def _runs(mask: np.ndarray, min_len: int) -> list[tuple[int, int]]:
    """``(first, last)`` index of every run of True in ``mask`` at least ``min_len`` long."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1
    return [(int(a), int(b)) for a, b in zip(starts, ends) if b - a + 1 >= min_len]


def _stray_stretch(lead: tuple, other: tuple, row: float, other_row: float, thick: float, min_cols: int,
                   after: int) -> tuple[int, int] | None:
    """First stretch (absolute columns, starting after ``after``) of at least ``min_cols`` columns where
    ``lead`` reads ``other``'s runs (centres within ``thick`` px) on ink nearer ``other``'s row than its own."""
    x0k, x1k, _, _, ck = lead
    x0j, x1j, _, _, cj = other
    lo, hi = max(x0k, x0j, after + 1), min(x1k, x1j)
    if hi <= lo:
        return None
    a_k = ck[lo - x0k:hi - x0k + 1]
    with np.errstate(invalid="ignore"):
        same = np.abs(a_k - cj[lo - x0j:hi - x0j + 1]) <= thick
    for s, e in _runs(same, min_cols):
        shared = float(np.median(a_k[s:e + 1]))
        if abs(shared - other_row) < abs(shared - row):
            return lo + s, lo + e
    return None


def untangle(followed: list, rows: np.ndarray, ink: np.ndarray, weight: np.ndarray, thick: float,
             min_cols: int, reach: float) -> tuple[list, int]:
    """Re-follow a lead that ran onto its neighbour's trace.

    Where a deep deflection of one lead touches the next lead's trace, :func:`follow` can stay on the
    neighbour's ink: both leads then read the same runs. A stretch of at least ``min_cols`` columns
    where two adjacent leads' centres are within ``thick`` px is given to the lead whose row it lies
    nearer; the other is followed again from the column before the stretch with the neighbour's runs
    there masked out, unless that loses over ``min_cols`` columns (traces that cross: the mask cuts the
    stroke). Stretches are looked for again on the mended reading. ``followed``: ``(x0, x1, top, bot,
    cen)`` per lead (absolute columns ``x0..x1``). Returns the mended list and the number of stretches
    re-followed.
    """
    out, mended = list(followed), 0
    for k in range(len(out)):
        for j in (k - 1, k + 1):
            after = -1
            while 0 <= j < len(out):
                stretch = _stray_stretch(out[k], out[j], rows[k], rows[j], thick, min_cols, after)
                if stretch is None:
                    break
                first, after = stretch
                x0, x1, top, bot, cen = out[k]
                x0j, _, tj, bj, _ = out[j]
                masked = ink.copy()
                for c in range(first, after + 1):
                    t, b = tj[c - x0j], bj[c - x0j]
                    if np.isfinite(t):
                        masked[max(0, int(t) - 1):int(b) + 2, c] = False
                start = max(x0, first - 1)
                y0 = cen[start - x0]
                y0 = float(rows[k]) if not np.isfinite(y0) else float(y0)
                top2, bot2, cen2 = follow(masked, weight, start, x1, y0, reach=reach, home=float(rows[k]))
                i = start - x0
                if np.isfinite(cen2).sum() < np.isfinite(cen[i:]).sum() - min_cols:
                    continue  # the masked ink lost the trace (e.g. strokes that cross): keep the first reading
                out[k] = (x0, x1, np.concatenate([top[:i], top2]), np.concatenate([bot[:i], bot2]),
                          np.concatenate([cen[:i], cen2]))
                mended += 1
    return out, mended


def shared_time_origin(firsts: list[float], lengths: list[int], tolerance: float) -> list[float]:
    """One time origin for leads printed one above the other (their first samples share a column).

    Each lead's origin comes from its own two trace ends, each end off by a fraction of a pixel; where
    the leads have the same length and their origins agree within ``tolerance`` pixels, every lead gets
    their mean: over two leads that halves the variance of independent end errors (the MIT-BIH strips'
    correlate 0.22, so less there: benchmarks/bench_digitize_error.py). A lead that disagrees (a trace cut short
    at an end) keeps its own, and so do the others.

    >>> shared_time_origin([10.2, 9.9], [3600, 3600], tolerance=1.0)
    [10.05, 10.05]
    >>> shared_time_origin([10.2, 14.0], [3600, 3600], tolerance=1.0)
    [10.2, 14.0]
    """
    if len(firsts) < 2 or len(set(lengths)) != 1 or max(firsts) - min(firsts) > tolerance:
        return list(firsts)
    mean = round(float(np.mean(firsts)), 12)
    return [mean] * len(firsts)


def digitize_strip(data: bytes, n_leads: int, fs: float, config: DigitizeConfig = DigitizeConfig()) -> Digitized:
    """Digitise one strip's PNG into ``n_leads`` signals at ``fs`` Hz (see the module doc)."""
    rgb, status, detail = decode_png(data)
    if rgb is None:
        return Digitized(status, detail)
    h, w = rgb.shape[:2]
    if not (config.min_side_px <= min(h, w) and max(h, w) <= config.max_side_px):
        return Digitized("bad_size", f"{w} x {h} px outside [{config.min_side_px}, {config.max_side_px}]")
    if int(rgb.max()) - int(rgb.min()) < 16:
        return Digitized("blank", "no contrast in the image")
    ink, grid, weight = masks(rgb)
    angle = skew_degrees(grid, config.max_skew_degrees)
    if abs(angle) >= 0.02:
        rgb = deskew(rgb, angle)
        ink, grid, weight = masks(rgb)
    px = grid_pitch(grid, axis=1)
    py = grid_pitch(grid, axis=0, near=px.pitch)
    if not (np.isfinite(px.pitch) and np.isfinite(py.pitch)) or abs(px.pitch / py.pitch - 1) > 0.05:
        return Digitized("no_grid", f"no periodic grid (pitch x {px.pitch:.3f}, y {py.pitch:.3f} px/mm)")
    ppmm = px.pitch
    info = {"skew_degrees": angle, "px_per_mm_x": px.pitch, "px_per_mm_y": py.pitch}
    if not ink.any():
        return Digitized("blank", "no ink", info=info)
    px_per_s = config.mm_per_s * px.pitch
    px_per_mv = config.mm_per_mv * py.pitch
    min_width = int(round(20 * ppmm))
    traces, labels, stats = trace_mask(ink, min_width)
    rows = lead_rows(traces, min_gap=max(1.0 * px_per_mv, 0.5 * h / n_leads), limit=n_leads)  # stacked leads
    info["lead_rows"] = rows.tolist()
    if len(rows) < n_leads:
        return Digitized("lead_missing", f"{len(rows)} trace row(s) found, {n_leads} lead(s) expected", info=info)
    bounds = np.concatenate([[0], (rows[:-1] + rows[1:]) // 2, [h]])
    followed = []
    for k, row in enumerate(rows):
        band = traces[bounds[k]:bounds[k + 1]]
        cols = np.nonzero(band.any(axis=0))[0]
        if len(cols) < 2:
            return Digitized("lead_missing", f"lead {k}: no trace", info=info)
        x0, x1 = int(cols[0]), int(cols[-1])
        quarter = max(1, int(0.25 * (bounds[k + 1] - bounds[k])))
        own = trace_extent(labels, stats, slice(max(0, row - quarter), row + quarter), min_width)
        if own is not None and own[1] - own[0] >= 0.95 * (x1 - x0):  # one piece: its own ends
            x0, x1 = own
        start = _start_row(traces, bounds[k], bounds[k + 1], x0, float(row))
        followed.append((x0, x1, *follow(ink, weight, x0, x1, start, reach=0.6 * px_per_mv, home=float(row))))
    # one pen draws every lead: the thinnest lead's estimate (a noisy lead has few flat columns)
    thick = min(thickness(top, bot) for _, _, top, bot, _ in followed)
    info["thickness"] = thick
    followed, info["untangled"] = untangle(followed, rows, ink, weight, thick, max(2, int(0.1 * px_per_s)),
                                           reach=0.6 * px_per_mv)
    signals, recovered = [], []
    lengths, firsts = [], []
    for k, (x0, x1, *_) in enumerate(followed):
        if config.seconds is None:
            n = int(round((x1 - x0 + 1 - thick) / px_per_s * fs)) + 1
        else:
            n = int(round(config.seconds * fs))
        left, right = trace_ends(weight[bounds[k]:bounds[k + 1]], traces[bounds[k]:bounds[k + 1]], x0, x1)
        lengths.append(n)
        firsts.append(0.5 * (left + right) - 0.5 * (n - 1) / fs * px_per_s)  # ends' caps are alike: the centre
    info["x_first_own"] = list(firsts)
    firsts = shared_time_origin(firsts, lengths, tolerance=0.5 * ppmm)      # half a millimetre: 20 ms
    for k, (row, (x0, x1, top, bot, cen)) in enumerate(zip(rows, followed)):
        gap = int(config.max_gap_ms / 1000 * px_per_s)
        covered = np.zeros(w, dtype=bool)
        covered[x0:x1 + 1] = np.isfinite(fill_gaps(np.where(np.isfinite(top), 0.0, np.nan), gap))
        xs, ys = trace_points(top, bot, cen, weight, x0, thick, supersede_px=config.supersede_px)
        xs = xs + x0
        n, x_first = lengths[k], firsts[k]
        base = _pulse_base(ink, weight, x0, int(row), int(0.5 * (bounds[k + 1] - bounds[k])), px_per_mv, thick) \
            if config.baseline == "pulse" else None
        baseline = base if base is not None else float(np.median(ys))
        sig = resample(xs, ys, covered, x_first=x_first, px_per_s=px_per_s, baseline=baseline,
                       px_per_mv=px_per_mv, fs=fs, n=n)
        frac = float(np.isfinite(sig).mean())
        recovered.append(frac)
        if frac < config.min_recovered:
            return Digitized("trace_lost", f"lead {k}: {frac:.0%} of samples recovered", info=info)
        signals.append(sig)
        info.setdefault("x_first", []).append(x_first)
        info.setdefault("baseline_from", []).append("pulse" if base is not None else "median")
    info["recovered"] = recovered
    return Digitized("ok", "", signals, info)
