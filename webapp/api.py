"""The JSON API (OpenAPI at ``/docs`` and ``/openapi.json``): beat, record, health, model.

Predictions run in the thread pool (``run_in_threadpool``), off the event loop; the models are loaded
once per process (:class:`webapp.services.models.ModelStore`).
"""
from __future__ import annotations

import base64
import csv
import io
import math
import tempfile
from typing import Any, Optional

import numpy as np
from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from pipelines import DataError

from .services.beatcheck import RULE, check_beat_image, normalise_beat
from .services.records import PipelineConfig, agreement, find_beats, parse_csv_signal, read_wfdb_upload
from .services.uploads import UploadError, decode_image

router = APIRouter(prefix="/api", tags=["api"])


def _state(request: Request):
    return request.app.state


async def read_upload(file: UploadFile | None, limit: int, what: str, required: bool = True) -> bytes | None:
    """The bytes of an upload field, at most ``limit`` (413 beyond; the rest is never read)."""
    if file is None:
        if required:
            raise UploadError(400, f"missing upload field {what!r}")
        return None
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise UploadError(413, f"{what}: larger than the limit of {limit / 1e6:g} MB")
    return data


def _png_uri(image: np.ndarray) -> str:
    from pipelines import encode_png

    data, _ = encode_png(image[None])
    return "data:image/png;base64," + base64.b64encode(data.tobytes()).decode()


def _no_model(state, role: str) -> tuple[int, dict[str, Any]]:
    """503 and the page's message on how to get the ``role`` model (``dvc repro`` or ``dvc pull``)."""
    return 503, {"detail": state.models.status()[role].get("message", "model unavailable"), "model": None}


def classify_beat(state, data: bytes) -> tuple[int, dict[str, Any]]:
    """Decode, check the beat-image rule, normalise and classify one uploaded image (runs in a worker thread)."""
    gray = decode_image(data, int(state.settings.webapp["max_image_pixels"]))
    check = check_beat_image(gray)
    if not check.ok:
        return 422, {"beat_image": False, "detail": f"not a beat image: {check.reason}", "rule": RULE,
                     "figures": check.figures}
    run = state.models.get("beat")
    if run is None:
        return _no_model(state, "beat")
    size = int(run.run.get("image_size") or state.settings.render.get("size", 128))
    image = normalise_beat(gray, check.ink, size=size, margin=float(state.settings.render.get("margin", 0.05)))
    probs = run.predict(image[None])[0]
    classes = run.classes
    seen = _model_view(image, int(run.run["params"]["input_size"]))
    return 200, {"beat_image": True, "class": classes[int(np.argmax(probs))],
                 "probabilities": {c: float(p) for c, p in zip(classes, probs)},
                 "model_input": _png_uri(seen), "figures": check.figures, "model": run.card}


def _model_view(image: np.ndarray, input_size: int) -> np.ndarray:
    """The image at the model's input size (what the network sees, before scaling to [0, 1])."""
    import cv2

    if image.shape[0] == input_size:
        return image
    interp = cv2.INTER_AREA if input_size < image.shape[0] else cv2.INTER_LINEAR
    return cv2.resize(image, (input_size, input_size), interpolation=interp)


@router.post("/beat", summary="Classify one beat image (PNG or JPEG)")
async def beat(request: Request, file: UploadFile = File(..., description="PNG or JPEG image of one beat")):
    state = _state(request)
    data = await read_upload(file, state.settings.limit("max_image_mb"), "file")
    status, body = await run_in_threadpool(classify_beat, state, data)
    return JSONResponse(body, status_code=status)


def classify_record(state, parts: dict[str, Any], include_signal: bool) -> tuple[int, dict[str, Any]]:
    """Read the upload in a per-request temporary directory, find, draw and classify its beats (worker thread)."""
    settings = state.settings
    cfg = PipelineConfig(segment=settings.segment, render=settings.render,
                         min_fs=float(settings.webapp["min_fs"]), max_fs=float(settings.webapp["max_fs"]))
    run = state.models.get("record")
    if run is None:
        return _no_model(state, "record")
    with tempfile.TemporaryDirectory(prefix="webapp-") as tmp:
        if parts.get("csv") is not None:
            record = parse_csv_signal(parts["csv"], parts.get("fs"), cfg)
        else:
            from pathlib import Path
            record = read_wfdb_upload(Path(tmp), parts["hea"], parts["dat"], parts.get("atr"), cfg)
    beats = find_beats(record, cfg)
    probs = run.predict(beats.images, beats.features)
    classes = run.classes
    y_pred = np.asarray(classes, dtype=object)[np.argmax(probs, axis=1)] if len(probs) else np.zeros(0, object)
    fs = float(record.fs)
    counts = {c: int(np.count_nonzero(y_pred == c)) for c in classes}
    body: dict[str, Any] = {
        "fs": fs, "lead": record.lead, "n_samples": int(record.signal.size), "seconds": record.signal.size / fs,
        "detections": beats.detections, "classes": list(classes), "counts": counts,
        "beats": {"sample": beats.r_sample.tolist(), "time_s": (beats.r_sample / fs).round(4).tolist(),
                  "class": y_pred.tolist(), "probabilities": np.round(probs, 4).tolist()},
        "agreement": agreement(record, beats.r_sample, y_pred, classes, run.run["labels"], cfg) if parts.get("atr")
        else None,
        "model": run.card,
    }
    if include_signal:
        body["signal"] = [None if not math.isfinite(v) else v for v in np.round(record.signal.astype(np.float64), 4).tolist()]
    return 200, body


def predictions_csv(body: dict[str, Any]) -> str:
    """Per-beat predictions as CSV: sample, time_s, class, p_<class>, [reference]."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    ref = (body.get("agreement") or {}).get("reference_class")
    writer.writerow(["sample", "time_s", "class", *[f"p_{c}" for c in body["classes"]], *(["reference"] if ref else [])])
    b = body["beats"]
    for i in range(len(b["sample"])):
        writer.writerow([b["sample"][i], b["time_s"][i], b["class"][i], *b["probabilities"][i],
                         *([ref[i] or ""] if ref else [])])
    return out.getvalue()


@router.post("/record", summary="Classify every beat of a WFDB record (hea + dat [+ atr]) or a CSV signal (csv + fs)")
async def record(request: Request,
                 hea: Optional[UploadFile] = File(None, description="WFDB header (.hea)"),
                 dat: Optional[UploadFile] = File(None, description="WFDB signal file (.dat)"),
                 atr: Optional[UploadFile] = File(None, description="reference annotations (.atr), optional"),
                 csv_file: Optional[UploadFile] = File(None, alias="csv", description="CSV/text signal, mV"),
                 fs: Optional[str] = Form(None, description="sampling rate (Hz) of the CSV signal"),
                 signal: bool = Query(False, description="include the signal (for the strip plot)"),
                 format: str = Query("json", pattern="^(json|csv)$", description="json, or csv per-beat predictions")):
    state = _state(request)
    limit = state.settings.limit("max_record_mb")
    if csv_file is not None:
        if fs is None:
            raise UploadError(400, "fs: the sampling rate of the CSV signal is required")
        parts = {"csv": await read_upload(csv_file, limit, "csv"), "fs": fs}
    elif hea is not None or dat is not None:
        parts = {"hea": await read_upload(hea, 1_000_000, "hea"), "dat": await read_upload(dat, limit, "dat"),
                 "atr": await read_upload(atr, limit, "atr", required=False)}
    else:
        raise UploadError(400, "upload a WFDB record (fields hea, dat, optional atr) or a CSV signal (fields csv, fs)")
    status, body = await run_in_threadpool(classify_record, state, parts, signal)
    if status == 200 and format == "csv":
        return Response(predictions_csv(body), media_type="text/csv",
                        headers={"content-disposition": 'attachment; filename="predictions.csv"'})
    return JSONResponse(body, status_code=status)


@router.get("/health", summary="Liveness and which models are on disk")
async def health(request: Request):
    return {"status": "ok", "models": _state(request).models.status()}


@router.get("/model", summary="The model cards of the served runs")
async def model(request: Request):
    state = _state(request)
    out = {}
    for role in ("beat", "record"):
        run = await run_in_threadpool(state.models.get, role)
        out[role] = run.card if run is not None else {"run": state.models.runs[role], "present": False,
                                                       "message": state.models.status()[role]["message"]}
    return out


__all__ = ["router", "DataError"]
