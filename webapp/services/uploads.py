"""Upload safety: body-size limits answered with 413 before the body is read whole, and image decoding.

:class:`BodyLimit` is an ASGI middleware: a request to a limited path whose ``Content-Length``
exceeds the limit is answered 413 at once (nothing read); a body without a length (chunked) is
counted as it streams and cut off with 413 as soon as it passes the limit.

:func:`decode_image` accepts PNG and JPEG only, reads the pixel dimensions from the header and
refuses an image of more than ``max_pixels`` pixels *before* decoding it (a decompression bomb: a
small file that inflates to gigabytes).
"""
from __future__ import annotations

import io
import json

import numpy as np


class UploadError(Exception):
    """A bad upload: the HTTP status and the message shown to the client."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


class BodyLimit:
    """ASGI middleware: ``limits`` maps a path prefix to its largest request body, in bytes."""

    def __init__(self, app, limits: dict[str, int]):
        self.app, self.limits = app, dict(limits)

    def _limit(self, path: str) -> int | None:
        return next((n for prefix, n in self.limits.items() if path.startswith(prefix)), None)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("method") != "POST":
            return await self.app(scope, receive, send)
        limit = self._limit(scope.get("path", ""))
        if limit is None:
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            return await _reject(send, limit)
        seen, rejected = 0, False

        async def counted():
            nonlocal seen, rejected
            if rejected:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:                 # answer now; the app sees a disconnected client
                    rejected = True
                    await _reject(send, limit)
                    return {"type": "http.disconnect"}
            return message

        async def guarded(message):
            if not rejected:
                await send(message)

        try:
            await self.app(scope, counted, guarded)
        except Exception:
            if not rejected:
                raise


async def _reject(send, limit: int) -> None:
    body = json.dumps({"detail": f"request body larger than the limit of {limit / 1e6:g} MB"}).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


def decode_image(data: bytes, max_pixels: int) -> np.ndarray:
    """PNG or JPEG bytes -> uint8 grayscale array (transparency composited on white).

    Raises
    ------
    UploadError
        415: not a PNG or JPEG (whatever its file name says); 413: more than ``max_pixels`` pixels;
        400: a truncated or corrupt image.

    Examples
    --------
    >>> decode_image(b"GIF89a...", 10**6)
    Traceback (most recent call last):
    ...
    webapp.services.uploads.UploadError: not a PNG or JPEG image (the bytes are no image format this page reads)
    """
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise UploadError(400, "empty file")
    try:
        img = Image.open(io.BytesIO(data), formats=["PNG", "JPEG"])
    except Image.DecompressionBombError:
        raise UploadError(413, "image too large: a decompression bomb?") from None
    except (UnidentifiedImageError, OSError, ValueError):
        raise UploadError(415, "not a PNG or JPEG image (the bytes are no image format this page reads)") from None
    w, h = img.size
    if w * h > max_pixels:
        raise UploadError(413, f"image of {w}x{h} = {w * h:,} pixels, above the limit of {max_pixels:,}")
    if min(w, h) < 16:
        raise UploadError(400, f"image of {w}x{h} pixels: too small for a beat image (16 px minimum)")
    try:
        img.load()
    except (OSError, ValueError, SyntaxError) as exc:
        raise UploadError(400, f"truncated or corrupt {img.format} image ({exc})") from None
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, rgba)
    return np.asarray(img.convert("L"), np.uint8)
