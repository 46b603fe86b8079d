"""The paper gallery figure: a strip in every variant, stacked, labelled (``reports/figures/paper_gallery.png``).

Drawn with NumPy and OpenCV from the PNGs of the shards' first strips (no matplotlib); the bytes
depend only on those images, so the figure is as reproducible as the shards.

Examples
--------
>>> from pipelines.formats.paper import encode_strip
>>> png = encode_strip(np.full((40, 60, 3), 255, np.uint8))
>>> gallery_image({"clean": [png], "noise": [png, png]}, scale=1.0).shape
(136, 120, 3)
"""
from __future__ import annotations

import os
from typing import Mapping, Sequence

import cv2
import numpy as np

from ..core.files import atomic_path
from ..formats.paper import decode_strip, encode_strip

#: Height (px) of the label band above each variant's row.
LABEL_PX = 28


def gallery_image(images: Mapping[str, Sequence[bytes]], *, scale: float = 0.5) -> np.ndarray:
    """One RGB figure: per variant (in mapping order) a label band and its strips side by side.

    Variants without strips are left out; strips are resized by ``scale`` (area interpolation);
    shorter rows are padded white on the right.
    """
    rows = []
    for variant, pngs in images.items():
        if not pngs:
            continue
        strips = [decode_strip(p, f"gallery {variant}") for p in pngs]
        if scale != 1.0:
            strips = [cv2.resize(s, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) for s in strips]
        h = max(s.shape[0] for s in strips)
        body = np.hstack([np.pad(s, ((0, h - s.shape[0]), (0, 0), (0, 0)), constant_values=255) for s in strips])
        band = np.full((LABEL_PX, body.shape[1], 3), 255, np.uint8)
        cv2.putText(band, variant, (4, LABEL_PX - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (0, 0, 0), 2, cv2.LINE_AA)
        rows.append(np.vstack([band, body]))
    if not rows:
        raise ValueError("no strips for the gallery")
    w = max(r.shape[1] for r in rows)
    return np.vstack([np.pad(r, ((0, 0), (0, w - r.shape[1]), (0, 0)), constant_values=255) for r in rows])


def write_gallery(path: str | os.PathLike, images: Mapping[str, Sequence[bytes]], *, scale: float = 0.5) -> None:
    """Write :func:`gallery_image` as a PNG, atomically (parent directories made)."""
    from pathlib import Path

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_bytes(encode_strip(gallery_image(images, scale=scale), level=6))
