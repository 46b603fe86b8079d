"""Is an uploaded picture a beat image? The rule, and the normalisation to the renderer's framing.

The rule (every step on the grayscale image; ``ink`` is the darker Otsu class, or the lighter one
when the darker class covers most of the picture, i.e. a light trace on a dark background):

1. contrast: the grey levels span at least :data:`MIN_CONTRAST` (a blank page has none);
2. ink fraction in ``[MIN_INK, MAX_INK]`` of the pixels (a line plot is sparse; photos, noise and
   checkerboards are not);
3. one trace: the largest 8-connected ink component holds at least :data:`MIN_MAIN_SHARE` of the ink
   (text is many components);
4. the trace spans at least :data:`MIN_SPAN` of the image width;
5. a function of time: at least :data:`MIN_SINGLE_RUN` of the columns the trace covers hold one
   vertical run of ink (a drawn signal is single-valued per column; blobs, letters and grids are not).

A picture passing the rule is normalised as the render stage frames a beat: the trace's bounding
box is stretched to ``[margin, 1 - margin]`` of a ``size`` square, dark ink on white (255).

Examples
--------
>>> import numpy as np
>>> img = np.full((64, 128), 255, np.uint8)
>>> rows = (32 + 20 * np.sin(np.linspace(0, 6.28, 120))).astype(int)
>>> img[rows, np.arange(4, 124)] = 0
>>> check_beat_image(img).ok
True
>>> check_beat_image(np.full((64, 64), 255, np.uint8)).reason
'no contrast: a blank picture (grey levels span 0)'
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

MIN_CONTRAST = 40
MIN_INK, MAX_INK = 0.003, 0.25
MIN_MAIN_SHARE = 0.9
MIN_SPAN = 0.6
MIN_SINGLE_RUN = 0.85

#: The rule as text (shown on the page and in the API's 422 answers).
RULE = (f"a beat image is one dark trace on a light background (or light on dark): after Otsu thresholding "
        f"the ink covers {MIN_INK:.1%}..{MAX_INK:.0%} of the pixels, one connected trace holds "
        f">= {MIN_MAIN_SHARE:.0%} of the ink and spans >= {MIN_SPAN:.0%} of the width, and >= "
        f"{MIN_SINGLE_RUN:.0%} of its columns hold a single vertical run of ink")


@dataclass(frozen=True)
class BeatCheck:
    """Outcome of :func:`check_beat_image`: ``ok``, the failed step's ``reason``, the measured figures, the ink mask."""

    ok: bool
    reason: str
    figures: dict = field(default_factory=dict)
    ink: np.ndarray | None = field(default=None, repr=False)


def otsu_threshold(gray: np.ndarray) -> int:
    """Otsu's threshold of a uint8 image: pixels ``<= t`` are one class (vectorised over the 256 levels).

    Examples
    --------
    >>> otsu_threshold(np.array([[10, 10, 200, 200]], np.uint8)) in range(10, 200)
    True
    """
    hist = np.bincount(gray.ravel(), minlength=256).astype(np.float64)
    p = hist / hist.sum()
    omega = np.cumsum(p)
    mu = np.cumsum(p * np.arange(256))
    between = (mu[-1] * omega - mu) ** 2 / np.maximum(omega * (1 - omega), 1e-12)
    between[(omega <= 0) | (omega >= 1)] = -1
    return int(np.argmax(between))


def _runs_per_column(mask: np.ndarray) -> np.ndarray:
    """Number of vertical runs of True in each column."""
    starts = mask[1:] & ~mask[:-1]
    return mask[0].astype(np.int64) + starts.sum(axis=0)


def check_beat_image(gray: np.ndarray) -> BeatCheck:
    """Apply the rule (module docstring) to a 2-D uint8 grayscale image."""
    from scipy import ndimage

    gray = np.asarray(gray, np.uint8)
    lo, hi = int(gray.min()), int(gray.max())
    if hi - lo < MIN_CONTRAST:
        return BeatCheck(False, f"no contrast: a blank picture (grey levels span {hi - lo})")
    t = otsu_threshold(gray)
    ink = gray <= t
    if ink.mean() > 0.5:                       # light trace on a dark background
        ink = ~ink
    frac = float(ink.mean())
    figures = {"ink_fraction": round(frac, 4), "threshold": t}
    if not MIN_INK <= frac <= MAX_INK:
        return BeatCheck(False, f"ink covers {frac:.1%} of the picture, outside {MIN_INK:.1%}..{MAX_INK:.0%} "
                                "(a photo, a texture or a filled shape, not a line plot)", figures)
    labels, n = ndimage.label(ink, structure=np.ones((3, 3), bool))
    sizes = np.bincount(labels.ravel(), minlength=n + 1)[1:]
    main = int(np.argmax(sizes)) + 1
    share = float(sizes[main - 1] / sizes.sum())
    trace = labels == main
    cols = np.flatnonzero(trace.any(axis=0))
    span = float((cols[-1] - cols[0] + 1) / gray.shape[1])
    runs = _runs_per_column(trace)[cols]
    single = float(np.mean(runs == 1))
    figures.update(components=int(n), main_share=round(share, 4), span=round(span, 4), single_run=round(single, 4))
    if share < MIN_MAIN_SHARE:
        return BeatCheck(False, f"no single trace: the largest connected stroke holds {share:.0%} of the ink "
                                f"({n} strokes; text or scattered marks?)", figures)
    if span < MIN_SPAN:
        return BeatCheck(False, f"the trace spans {span:.0%} of the width (< {MIN_SPAN:.0%})", figures)
    if single < MIN_SINGLE_RUN:
        return BeatCheck(False, f"not a signal trace: only {single:.0%} of its columns hold one run of ink "
                                "(a shape or drawing, not a function of time)", figures)
    return BeatCheck(True, "", figures, ink=trace)


def normalise_beat(gray: np.ndarray, ink: np.ndarray, *, size: int, margin: float) -> np.ndarray:
    """The trace's bounding box stretched to ``[margin, 1 - margin]`` of a ``size`` square, dark on white.

    Examples
    --------
    >>> g = np.full((10, 20), 255, np.uint8); g[5, 2:10] = 0; g[2, 10:18] = 0
    >>> out = normalise_beat(g, g < 128, size=16, margin=0.0)
    >>> out.shape, int(out.min()) < 128, int(out[0, 0])
    ((16, 16), True, 255)
    """
    import cv2

    if (~ink).any() and np.median(gray[ink]) > np.median(gray[~ink]):
        gray = 255 - gray                      # light-on-dark: make the ink dark
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    box = gray[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    lo = int(round(margin * size))
    inner = max(size - 2 * lo, 1)
    interp = cv2.INTER_AREA if max(box.shape) > inner else cv2.INTER_LINEAR
    out = np.full((size, size), 255, np.uint8)
    out[lo:lo + inner, lo:lo + inner] = cv2.resize(np.ascontiguousarray(box), (inner, inner), interpolation=interp)
    return out
