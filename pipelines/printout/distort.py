"""Seeded, deterministic distortions of a printed strip: what a scan or a photo of paper does.

A distortion set (one ``paper.variants`` entry) maps distortion names to their params. Per strip,
:func:`plan_distortions` draws every random choice from a generator seeded by
:func:`strip_rng` (``paper.seed``, variant, strip id) and returns the plan: a list of JSON-ready
dicts, one per distortion present, in :data:`DISTORTIONS` order. :func:`apply_distortions` then
applies the plan to the drawn page (pure: the same plan gives the same pixels) and moves the
plotted pixel coordinates with any geometric change. ``grid_colour`` acts at drawing time
(:func:`grid_colour_of`), the others on the image.

Examples
--------
>>> plan = plan_distortions({"rotate": {"max_degrees": 2.0}, "noise": {"sigma": 5.0}},
...                         strip_rng(0, "scan", "100-0"), (551, 2087), 7.874)
>>> [p["name"] for p in plan]
['rotate', 'noise']
>>> plan == plan_distortions({"noise": {"sigma": 5.0}, "rotate": {"max_degrees": 2.0}},
...                          strip_rng(0, "scan", "100-0"), (551, 2087), 7.874)
True
"""
from __future__ import annotations

import hashlib
from typing import Any, Mapping

import cv2
import numpy as np

from .grid import PAPER_RGB

#: Every distortion, in the order it is applied.
DISTORTIONS: tuple[str, ...] = ("grid_colour", "rotate", "crease", "lighting", "blur", "noise", "jpeg")


def strip_rng(seed: int, variant: str, strip_id: str) -> np.random.Generator:
    """The random generator of one strip of one variant: independent of workers and order.

    >>> int(strip_rng(1, "noise", "100-0").integers(1 << 30)) == int(strip_rng(1, "noise", "100-0").integers(1 << 30))
    True
    """
    digest = hashlib.sha256(f"{int(seed)}/{variant}/{strip_id}".encode()).digest()
    return np.random.default_rng(np.frombuffer(digest[:16], dtype=np.uint32).tolist())


def plan_distortions(spec: Mapping[str, Mapping[str, Any]], rng: np.random.Generator, shape: tuple[int, int],
                     px_per_mm: float) -> list[dict[str, Any]]:
    """Every random draw of a distortion set for one strip, as JSON-ready dicts in :data:`DISTORTIONS` order.

    Parameters
    ----------
    spec : mapping
        ``{name: params}``; names outside :data:`DISTORTIONS` are an error; None values are absent.
    rng : numpy Generator
        :func:`strip_rng` of the strip.
    shape : (height, width)
        Page size in px.
    px_per_mm : float
    """
    unknown = sorted(set(spec) - set(DISTORTIONS))
    if unknown:
        raise ValueError(f"unknown distortion(s) {unknown}, expected some of {DISTORTIONS}")
    h, w = shape
    plan: list[dict[str, Any]] = []
    for name in DISTORTIONS:  # the draws happen in this order whatever the spec's order
        params = spec.get(name)
        if params is None:
            continue
        entry: dict[str, Any] = {"name": name, **{k: v for k, v in params.items()}}
        if name == "grid_colour":
            entry["colour"] = str(params["colours"][int(rng.integers(len(params["colours"])))])
        elif name == "rotate":
            deg = float(rng.uniform(-params["max_degrees"], params["max_degrees"]))
            m = cv2.getRotationMatrix2D(((w - 1) / 2.0, (h - 1) / 2.0), deg, 1.0)
            entry.update(degrees=deg, matrix=m.tolist())
        elif name == "crease":
            entry.update(x=float(rng.uniform(0.2, 0.8) * (w - 1)), degrees=float(rng.uniform(-15.0, 15.0)),
                         sigma_px=float(params["width_mm"] * px_per_mm / 2.0))
        elif name == "lighting":
            entry["direction_degrees"] = float(rng.uniform(0.0, 360.0))
        elif name == "noise":
            entry["noise_seed"] = int(rng.integers(1 << 62))
        plan.append(entry)
    return plan


def grid_colour_of(plan: list[dict[str, Any]], default: str) -> str:
    """The grid colour a plan asks for (``default`` when it has no ``grid_colour``).

    >>> grid_colour_of([{"name": "grid_colour", "colour": "#00ff00"}], "#f08080"), grid_colour_of([], "#f08080")
    ('#00ff00', '#f08080')
    """
    return next((p["colour"] for p in plan if p["name"] == "grid_colour"), default)


def _shade(shape: tuple[int, int], plan: list[dict[str, Any]]) -> np.ndarray | None:
    """The multiplicative brightness map of ``crease`` and ``lighting`` (float32, (h, w)), or None."""
    h, w = shape
    factor: np.ndarray | None = None
    ys = np.arange(h, dtype=np.float32)[:, None]
    xs = np.arange(w, dtype=np.float32)[None, :]
    for p in plan:
        if p["name"] == "crease":
            a = np.deg2rad(p["degrees"])  # line through (x, h/2) tilted a from vertical
            d = (xs - np.float32(p["x"])) * np.float32(np.cos(a)) + (ys - np.float32((h - 1) / 2.0)) * np.float32(np.sin(a))
            f = np.float32(1.0) - np.float32(p["darkness"]) * np.exp(np.float32(-0.5) * (d / np.float32(p["sigma_px"])) ** 2)
        elif p["name"] == "lighting":
            a = np.deg2rad(p["direction_degrees"])
            r = (xs / np.float32(max(w - 1, 1)) - np.float32(0.5)) * np.float32(np.cos(a)) \
                + (ys / np.float32(max(h - 1, 1)) - np.float32(0.5)) * np.float32(np.sin(a))
            r = (r - r.min()) / np.float32(max(float(r.max() - r.min()), 1e-9))
            f = np.float32(1.0) - np.float32(p["strength"]) * r
        else:
            continue
        f = f.astype(np.float32, copy=False)
        factor = f if factor is None else factor * f
    return factor


def apply_distortions(image: np.ndarray, x: np.ndarray, y: np.ndarray,
                      plan: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Apply a plan to an RGB page; return the new image and the plotted pixels moved with it.

    Parameters
    ----------
    image : ndarray, uint8, (h, w, 3)
        The drawn page (with the plan's grid colour already).
    x, y : ndarray
        Plotted pixel coordinates (page), any shape.
    plan : list of dict
        :func:`plan_distortions` output.

    Returns
    -------
    image : ndarray, uint8, (h, w, 3)
    x, y : ndarray, float64
        Image coordinates of the plotted samples (changed only by ``rotate``).
    """
    h, w = image.shape[:2]
    img = image
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    for p in plan:
        if p["name"] == "rotate":
            m = np.asarray(p["matrix"], dtype=np.float64)
            img = cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                                 borderValue=PAPER_RGB)
            x, y = m[0, 0] * x + m[0, 1] * y + m[0, 2], m[1, 0] * x + m[1, 1] * y + m[1, 2]
    shade = _shade((h, w), plan)
    if shade is not None:  # OpenCV rounds and saturates to uint8
        img = cv2.multiply(img, cv2.merge([shade, shade, shade]), dtype=cv2.CV_8U)
    for p in plan:
        if p["name"] == "blur":
            img = cv2.GaussianBlur(img, (0, 0), sigmaX=float(p["sigma_px"]), sigmaY=float(p["sigma_px"]))
        elif p["name"] == "noise":  # grey-level noise: the same on R, G and B
            noise = np.random.default_rng(p["noise_seed"]).standard_normal((h, w), dtype=np.float32)
            noise *= np.float32(p["sigma"])
            img = cv2.add(img, cv2.merge([noise, noise, noise]), dtype=cv2.CV_8U)
        elif p["name"] == "jpeg":
            ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(img[:, :, ::-1]),
                                   [cv2.IMWRITE_JPEG_QUALITY, int(p["quality"])])
            if not ok:
                raise RuntimeError("cv2.imencode(.jpg) failed")
            img = np.ascontiguousarray(cv2.imdecode(buf, cv2.IMREAD_COLOR)[:, :, ::-1])
    return np.ascontiguousarray(img), x, y
