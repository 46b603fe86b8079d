"""PNG images of the image shards: encoding, decoding, and the ``image`` column.

Examples
--------
>>> import numpy as np
>>> data, offsets = encode_png(np.zeros((2, 8, 8), np.uint8))
>>> offsets.tolist()[0], len(offsets)
(0, 3)
>>> decode_png(data[offsets[0]:offsets[1]]).shape
(8, 8)
>>> decode_png(b"not a png", where="part.parquet beat 100-7")
Traceback (most recent call last):
...
pipelines.core.errors.DataError: part.parquet beat 100-7: not a decodable PNG (9 bytes)
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import cv2
import numpy as np
import pyarrow as pa

from ..core.errors import DataError

#: zlib level of the PNG encoder (``cv2.IMWRITE_PNG_COMPRESSION``). Measured by
#: ``benchmarks/bench_render_stage.py`` on real beat images (see ``docs/benchmarks/render_stage.md``):
#: levels 1-3 encode at the same speed, levels above 3 are 1.5-20x slower for files 5-20 % smaller.
DEFAULT_PNG_LEVEL = 2

#: PNG row filter: none. Beat images are a thin line on a flat background; libpng's default
#: adaptive filtering tries every filter on every row, doubling the encoding time for larger files.
PNG_FILTER = "none"

#: The ``image`` column type: exactly Hugging Face ``datasets.Image``'s Arrow storage.
IMAGE_TYPE = pa.struct([pa.field("bytes", pa.binary()), pa.field("path", pa.string())])


def encode_png(images: np.ndarray | Sequence[np.ndarray], level: int = DEFAULT_PNG_LEVEL
               ) -> tuple[np.ndarray, np.ndarray]:
    """Encode 8-bit grayscale images as PNG files, concatenated.

    Parameters
    ----------
    images : ndarray, uint8, shape (n, height, width), or a sequence of 2-D uint8 arrays
        A sequence of views avoids copying pixels into one array first.
    level : int
        zlib compression level 0..9. Rows are not filtered (:data:`PNG_FILTER`). The output
        bytes depend only on the pixels and the level (deterministic for a given OpenCV/libpng/zlib).

    Returns
    -------
    data : ndarray, uint8, shape (total_bytes,)
        The PNG files one after another.
    offsets : ndarray, int64, shape (n + 1,)
        Image ``i`` is ``data[offsets[i]:offsets[i + 1]]``.
    """
    if isinstance(images, np.ndarray):
        if images.ndim != 3 or images.dtype != np.uint8:
            raise ValueError(f"expected uint8 images of shape (n, h, w), got {images.dtype} {images.shape}")
    elif any(img.ndim != 2 or img.dtype != np.uint8 for img in images):
        bad = next(img for img in images if img.ndim != 2 or img.dtype != np.uint8)
        raise ValueError(f"expected 2-D uint8 images, got {bad.dtype} {bad.shape}")
    flags = [cv2.IMWRITE_PNG_COMPRESSION, int(level), cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_NONE]
    encode = cv2.imencode
    bufs = [encode(".png", img, flags)[1] for img in images]  # one C call per image: no batch API in PNG
    offsets = np.zeros(len(bufs) + 1, dtype=np.int64)
    if not bufs:
        return np.zeros(0, dtype=np.uint8), offsets
    np.cumsum([b.shape[0] for b in bufs], out=offsets[1:])
    if (np.diff(offsets) == 0).any():
        raise RuntimeError(f"cv2.imencode failed on image {int(np.flatnonzero(np.diff(offsets) == 0)[0])}")
    data = np.concatenate(bufs).reshape(-1)
    return data, offsets


def decode_png(data: bytes | np.ndarray | None, where: str = "image") -> np.ndarray:
    """Decode one PNG of the ``image`` column to a uint8 array of shape (height, width).

    Raises
    ------
    DataError
        Naming ``where`` (e.g. ``"<shard> beat <beat_id>"``) when the bytes are missing, truncated or
        not a PNG.
    """
    if data is None:
        raise DataError(where, "no image bytes (null)")
    buf = np.frombuffer(data, dtype=np.uint8) if not isinstance(data, np.ndarray) else data
    img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED) if buf.size else None
    if img is None:
        raise DataError(where, f"not a decodable PNG ({buf.size} bytes)")
    return img


def decode_images(column: pa.Array | pa.ChunkedArray | Sequence[Any],
                  where: str | Sequence[str] | None = None) -> np.ndarray:
    """Decode a batch of ``image`` values (structs, dicts or bytes) to (n, height, width) uint8.

    All images of the batch must have the same shape.

    Parameters
    ----------
    column : pyarrow array, or sequence of dicts / bytes
    where : str or sequence of str, optional
        What a bad image is called in the error: one string for the batch (e.g. the shard path; the
        row index is added), or one per image (e.g. ``"<shard> beat <beat_id> crop <c>"``).

    Raises
    ------
    DataError
        Naming the image's ``where`` when one is missing, truncated or not a PNG, or when the
        images differ in shape.
    """
    if isinstance(column, (pa.Array, pa.ChunkedArray)):
        if pa.types.is_struct(column.type):
            column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
            column = column.field("bytes")
        values = column.to_pylist()
    else:
        values = [v["bytes"] if isinstance(v, Mapping) else v for v in column]
    if where is None or isinstance(where, str):
        prefix = where or "image column"
        names: Sequence[str] | None = None
    else:
        if len(where) != len(values):
            raise ValueError(f"where has {len(where)} names for {len(values)} images")
        names, prefix = where, ""
    imgs = [decode_png(v, names[i] if names is not None else f"{prefix} row {i}") for i, v in enumerate(values)]
    if not imgs:
        return np.zeros((0, 0, 0), dtype=np.uint8)
    shapes = {img.shape for img in imgs}
    if len(shapes) > 1:
        i = next(i for i, img in enumerate(imgs) if img.shape != imgs[0].shape)
        raise DataError(names[i] if names is not None else f"{prefix} row {i}",
                        f"image shape {imgs[i].shape} differs from the batch's {imgs[0].shape}")
    return np.stack(imgs)


def image_array(data: np.ndarray, offsets: np.ndarray) -> pa.StructArray:
    """Build the ``image`` column (struct of PNG bytes and a null path) from :func:`encode_png` output."""
    n = len(offsets) - 1
    if offsets[-1] >= 2**31:
        raise ValueError("more than 2 GiB of PNG bytes in one batch: split it")
    binary = pa.Array.from_buffers(pa.binary(), n, [None, pa.py_buffer(offsets.astype(np.int32)),
                                                    pa.py_buffer(np.ascontiguousarray(data))])
    return pa.StructArray.from_arrays([binary, pa.nulls(n, pa.string())], fields=list(IMAGE_TYPE))
