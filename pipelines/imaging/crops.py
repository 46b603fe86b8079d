"""The nine crops of the published recipe: 96 x 96 windows of a beat image, resized back.

From each ``s`` x ``s`` image (``s`` = 128), crops of ``crop`` x ``crop`` (96) at rows x columns
``offsets`` x ``offsets`` ({0, 16, 32}), row-major: crop 1 = ``[:96, :96]`` (left-top),
2 = ``[:96, 16:112]``, 3 = ``[:96, 32:]``, 4 = ``[16:112, :96]``, 5 = ``[16:112, 16:112]`` (centre),
..., 9 = ``[32:, 32:]`` (right-bottom). Each is resized back to ``s`` x ``s`` with ``cv2.resize``;
the recipe calls ``cv2.resize(crop, (128, 128))``, i.e. OpenCV's default bilinear
(``INTER_LINEAR``), which is the default here too.

Implementation note: one ``cv2.resize`` per crop, writing straight into the output array. Stacking
a batch of images in the channel axis (one resize per crop position for many images) was
measured slower (``benchmarks/bench_render.py``, "crops"): OpenCV 5 accepts at most 128 channels,
and the two transposes in and out of the channel layout cost more than the calls they save;
for ``cubic`` it also changes some pixels by one grey level.

Examples
--------
>>> import numpy as np
>>> images = np.arange(2 * 128 * 128, dtype=np.uint32).reshape(2, 128, 128).astype(np.uint8)
>>> crops = nine_crops(images)
>>> crops.shape, crops.dtype
((2, 9, 128, 128), dtype('uint8'))
>>> crop_windows(128)[1]  # crop 2: rows 0..96, columns 16..112
(slice(0, 96, None), slice(16, 112, None))
"""
from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from ..core.errors import ConfigError

#: ``render.crops.interpolation`` names and their OpenCV flags.
INTERPOLATIONS: dict[str, int] = {
    "linear": cv2.INTER_LINEAR,
    "lanczos": cv2.INTER_LANCZOS4,
    "area": cv2.INTER_AREA,
    "cubic": cv2.INTER_CUBIC,
    "nearest": cv2.INTER_NEAREST,
}


def crop_windows(size: int, *, crop: int = 96, offsets: Sequence[int] = (0, 16, 32)) -> list[tuple[slice, slice]]:
    """The crop windows as ``(rows, cols)`` slices, row-major (crop ``k`` is entry ``k - 1``).

    Raises
    ------
    ConfigError
        When a window would leave the ``size`` x ``size`` image, or ``crop``/``offsets`` are not
        positive/non-negative integers.
    """
    if isinstance(crop, bool) or not isinstance(crop, (int, np.integer)) or crop < 1:
        raise ConfigError(f"render.crops.size must be a positive integer, got {crop!r}")
    offs = list(offsets)
    if not offs or any(isinstance(o, bool) or not isinstance(o, (int, np.integer)) or o < 0 for o in offs):
        raise ConfigError(f"render.crops.offsets must be non-negative integers, got {offsets!r}")
    if max(offs) + crop > size:
        raise ConfigError(f"render.crops: a {crop} px crop at offset {max(offs)} leaves the {size} px image")
    return [(slice(r, r + crop), slice(c, c + crop)) for r in offs for c in offs]


def nine_crops(images: np.ndarray, *, crop: int = 96, offsets: Sequence[int] = (0, 16, 32),
               interpolation: str = "linear") -> np.ndarray:
    """Crop every image at rows x cols ``offsets`` and resize each crop back to the image size.

    Parameters
    ----------
    images : ndarray, uint8, shape ``(n, s, s)``
        Beat images.
    crop : int
        Crop side in pixels (96).
    offsets : sequence of int
        Crop origins, used for rows and columns ({0, 16, 32}: nine crops).
    interpolation : str
        A key of :data:`INTERPOLATIONS`; ``linear`` is the recipe's (OpenCV's default).

    Returns
    -------
    ndarray, uint8, shape ``(n, len(offsets) ** 2, s, s)``
        ``out[i, k - 1]`` is crop ``k`` of image ``i`` (row-major order, see the module docstring).

    Raises
    ------
    ConfigError
        Unknown interpolation or windows that leave the image.
    ValueError
        ``images`` is not a ``(n, s, s)`` uint8 array.
    """
    if interpolation not in INTERPOLATIONS:
        raise ConfigError(f"render.crops.interpolation must be one of {sorted(INTERPOLATIONS)}, "
                          f"got {interpolation!r}")
    images = np.asarray(images)
    if images.ndim != 3 or images.shape[1] != images.shape[2] or images.dtype != np.uint8:
        raise ValueError(f"images must be a (n, s, s) uint8 array, got shape {images.shape} and dtype {images.dtype}")
    n, size = images.shape[0], images.shape[1]
    windows = crop_windows(size, crop=crop, offsets=offsets)
    flag = INTERPOLATIONS[interpolation]
    out = np.empty((n, len(windows), size, size), dtype=np.uint8)
    for i in range(n):
        image = images[i]
        for k, (rows, cols) in enumerate(windows):
            cv2.resize(image[rows, cols], (size, size), dst=out[i, k], interpolation=flag)
    return out
