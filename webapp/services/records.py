"""An uploaded record -> beats -> images -> classes: the WFDB or CSV reader and the record pipeline.

Every domain step is the project's public code (``pipelines``): :func:`~pipelines.read_record`
verifies the WFDB files, :func:`~pipelines.detect_r_peaks` and :func:`~pipelines.refine_peaks` find
the beats as the segment stage's ``christov`` method does, :func:`~pipelines.compute_windows` and
:func:`~pipelines.extract_windows` cut the ``segment.window`` windows, :func:`~pipelines.render_beats`
draws them with the ``render`` section's raster settings, :func:`~pipelines.rr_intervals` and
:func:`~pipelines.rhythm_features` and :func:`~pipelines.template_features` give the rhythm input, and the
served run scores them.

Uploaded files are written under fixed names (``upload.hea``, ``upload.dat``, ``upload.atr``) in a
per-request temporary directory: the header's record and signal-file names are rewritten to those,
so no client-supplied name reaches a path.
"""
from __future__ import annotations

import io
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from pipelines import DataError

NAME = "upload"
#: Shortest signal accepted, seconds.
MIN_SECONDS = 3.0


@dataclass(frozen=True)
class PipelineConfig:
    """The ``segment`` and ``render`` settings the record pipeline uses (from ``params.yaml``)."""

    segment: Mapping[str, Any]
    render: Mapping[str, Any]
    min_fs: float = 50.0
    max_fs: float = 5000.0


def check_fs(fs: float, cfg: PipelineConfig, where: str) -> float:
    """``fs`` as a float inside ``[min_fs, max_fs]``; :class:`DataError` naming it otherwise."""
    try:
        fs = float(fs)
    except (TypeError, ValueError):
        raise DataError(where, f"sampling rate {fs!r} is not a number") from None
    if not math.isfinite(fs) or not cfg.min_fs <= fs <= cfg.max_fs:
        raise DataError(where, f"sampling rate {fs} Hz out of range [{cfg.min_fs:g}, {cfg.max_fs:g}] Hz")
    return fs


def rewrite_header(text: str) -> str:
    r"""The header with its record name and signal-file names replaced by ``upload`` / ``upload.dat``.

    Examples
    --------
    >>> print(rewrite_header("evil 2 360 10\n../x.dat 212 200 11 1024 0 0 0 MLII\n../x.dat 212 200 11 1024 0 0 0 V5"), end="")
    upload 2 360 10
    upload.dat 212 200 11 1024 0 0 0 MLII
    upload.dat 212 200 11 1024 0 0 0 V5
    """
    lines = text.splitlines()
    body = [i for i, line in enumerate(lines) if line.strip() and not line.lstrip().startswith("#")]
    if not body:
        raise DataError("upload.hea", "record line: missing (empty header)")
    first = lines[body[0]].split()
    name, slash, rest = first[0].partition("/")
    lines[body[0]] = " ".join([NAME + slash + rest, *first[1:]])
    files = {lines[i].split()[0] for i in body[1:]}
    if len(files) > 1:
        raise DataError("upload.hea", f"signal files: the header names {len(files)} signal files; upload a record "
                                      "with one .dat file")
    for i in body[1:]:
        tokens = lines[i].split()
        lines[i] = " ".join([f"{NAME}.dat", *tokens[1:]])
    return "\n".join(lines) + "\n"


def write_placeholder_annotations(directory: Path) -> None:
    """``upload.atr`` with one non-beat annotation (``~``, signal-quality change, at sample 0): the reader
    verifies records with an annotation file; an upload without one gets this placeholder (no beat, so no
    reference and no agreement table). WFDB drops a lone comment annotation, hence ``~``."""
    import wfdb

    wfdb.wrann(NAME, "atr", np.array([0]), symbol=["~"], write_dir=str(directory))


def read_wfdb_upload(directory: Path, hea: bytes, dat: bytes, atr: bytes | None, cfg: PipelineConfig):
    """Write the three parts under fixed names in ``directory`` and read them with :func:`pipelines.read_record`."""
    from pipelines import read_record

    try:
        text = hea.decode("ascii")
    except UnicodeDecodeError:
        raise DataError("upload.hea", "not a WFDB header: not ASCII text") from None
    (directory / f"{NAME}.hea").write_text(rewrite_header(text))
    (directory / f"{NAME}.dat").write_bytes(dat)
    if atr is not None:
        (directory / f"{NAME}.atr").write_bytes(atr)
    else:
        write_placeholder_annotations(directory)
    record = read_record(directory, NAME, lead=str(cfg.segment.get("lead", "MLII")), annotator="atr",
                         database="upload")
    check_fs(record.fs, cfg, "upload.hea")
    if record.signal.size < MIN_SECONDS * record.fs:
        raise DataError("upload.dat", f"{record.signal.size} samples: shorter than {MIN_SECONDS:g} s")
    return record


def parse_csv_signal(data: bytes, fs: float, cfg: PipelineConfig):
    """A CSV/text signal (one sample per line, first column, mV; an optional header line of names) as a record.

    Raises
    ------
    DataError
        ``signal.csv``: not text, a cell that is not a number or is missing/NaN (line and column named),
        too short; ``fs``: out of range.
    """
    import pandas as pd

    from pipelines import EcgRecord

    fs = check_fs(fs, cfg, "fs")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise DataError("signal.csv", "not UTF-8 text") from None
    lines = text.splitlines()
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is None:
        raise DataError("signal.csv", "empty file")
    sep = "," if "," in lines[first] else (";" if ";" in lines[first] else r"\s+")
    try:
        table = pd.read_csv(io.StringIO(text), sep=sep, header=None, dtype=str, skip_blank_lines=True,
                            keep_default_na=False, engine="python")
    except Exception as exc:                     # ragged rows and the like
        raise DataError("signal.csv", f"not a table of numbers ({type(exc).__name__}: {str(exc)[:200]})") from None
    values = table.apply(lambda col: pd.to_numeric(col.str.strip(), errors="coerce"))
    lead = "csv"
    if values.iloc[0].isna().all():              # a header line of column names
        lead = str(table.iloc[0, 0]).strip() or "csv"
        table, values = table.iloc[1:], values.iloc[1:]
    column = values.iloc[:, 0].to_numpy(np.float64)
    raw = table.iloc[:, 0].to_numpy(object)
    bad = ~np.isfinite(column)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        line = int(table.index[i]) + 1
        cell = str(raw[i]).strip()
        if cell == "":
            kind = "missing value"
        elif cell.lower().lstrip("+-") in ("nan", "inf", "infinity"):
            kind = "NaN or infinite value"
        else:
            kind = f"{cell[:40]!r} is not a number"
        raise DataError("signal.csv", f"line {line}, column 1: {kind} ({int(bad.sum())} bad cell(s))")
    if column.size < MIN_SECONDS * fs:
        raise DataError("signal.csv", f"{column.size} samples at {fs:g} Hz: shorter than {MIN_SECONDS:g} s")
    return EcgRecord(name=NAME, fs=fs, lead=lead, signal=column.astype(np.float32),
                     ann_sample=np.zeros(0, np.int64), ann_symbol=np.zeros(0, object))


@dataclass
class RecordBeats:
    """Beats found in a record: R-peak samples, their images and features (kept beats only; columns
    :func:`training.data.model_feature_names`: RR ratios, then template features)."""

    r_sample: np.ndarray
    images: np.ndarray
    features: np.ndarray
    detections: int


def find_beats(record, cfg: PipelineConfig) -> RecordBeats:
    """Christov detection, refinement, windows, rendering and rhythm features of one record."""
    from pipelines import (RR_COLUMNS, TEMPLATE_COLUMNS, ChristovParams, TemplateSpec, WindowSpec, compute_windows,
                           detect_r_peaks, extract_windows, refine_peaks, render_beats, rhythm_features, rr_intervals,
                           template_features)

    signal, fs = record.signal, float(record.fs)
    refine_ms = float((cfg.segment.get("christov") or {}).get("refine_ms", 50.0))
    raw = detect_r_peaks(signal, fs, params=replace(ChristovParams(), refine_ms=0.0))
    peaks = np.unique(refine_peaks(signal, raw, fs, half_width_ms=refine_ms)).astype(np.int64)
    windows = compute_windows(peaks, fs, WindowSpec.from_params(cfg.segment), n_samples=signal.shape[0])
    keep = windows.keep
    values, offsets = extract_windows(signal, windows.start[keep], windows.end[keep])
    r = cfg.render
    size = int(r.get("size", 128))
    images = render_beats(values, offsets, size=size, margin=float(r.get("margin", 0.05)),
                          line_width=float(r.get("line_width", 1.5))) if keep.any() else np.zeros((0, size, size), np.uint8)
    rr = rr_intervals(peaks, np.zeros(peaks.size, np.int64), fs)
    tpl = template_features(signal, peaks, fs, TemplateSpec.from_params(cfg.segment.get("template")))
    features = np.concatenate([rhythm_features(*(rr[c] for c in RR_COLUMNS)),
                               np.stack([tpl[c] for c in TEMPLATE_COLUMNS], axis=1).astype(np.float32)], axis=1)
    features = np.nan_to_num(np.asarray(features, np.float32)[keep], nan=0.0, posinf=0.0, neginf=0.0)
    return RecordBeats(peaks[keep], images, features, int(peaks.size))


def agreement(record, r_sample: np.ndarray, y_pred: np.ndarray, classes: tuple[str, ...], labels: str,
              cfg: PipelineConfig) -> dict[str, Any] | None:
    """Detection scores and the EC57 table of the predictions against the record's reference beats (None without)."""
    from evaluation.ec57 import ec57_confusion, ec57_scores, is_ec57_run
    from pipelines import BEAT_SYMBOLS, class_names, detection_scores, map_symbols, match_beats

    symbols = np.asarray(record.ann_symbol, dtype=object)
    is_beat = np.isin(symbols.astype(str), BEAT_SYMBOLS)
    if not is_beat.any():
        return None
    ref_sample = np.asarray(record.ann_sample)[is_beat]
    ref_class = map_symbols(symbols[is_beat], labels)
    tol = int(round(float(cfg.segment.get("match_tolerance_ms", 150.0)) * record.fs / 1000.0))
    detection = detection_scores(r_sample, ref_sample, tol)
    matched = match_beats(r_sample, ref_sample, tol)
    names = list(classes) + [c for c in class_names(labels) if c not in classes]
    true = np.array([None] * matched.size, dtype=object)
    true[matched >= 0] = ref_class[matched[matched >= 0]]
    scored = np.array([t is not None for t in true], bool)
    out: dict[str, Any] = {"detection": {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                                         for k, v in detection.items()},
                           "reference_beats": int(is_beat.sum()), "matched_beats": int(scored.sum()),
                           "reference_class": true.tolist()}
    if is_ec57_run(names) and scored.any():
        index = {c: i for i, c in enumerate(names)}
        y_true = np.array([index[t] for t in true[scored]], np.int64)
        y_hat = np.array([index[p] for p in np.asarray(y_pred, object)[scored]], np.int64)
        cm = ec57_confusion(y_true, y_hat, np.full(y_true.size, NAME), names)
        out["ec57"] = {"matrix": cm.tolist(), "rows": ["N", "S", "V", "F"], "columns": ["N", "S", "V", "F", "Q"],
                       **_finite(ec57_scores(cm))}
    return out


def _finite(obj: Any) -> Any:
    """NaN -> None, recursively (JSON has no NaN)."""
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj
