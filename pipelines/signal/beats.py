"""The beats of one record: reference beats or detections, their windows and labels, and the counts.

Pure functions of a verified record (:class:`pipelines.records.reader.EcgRecord`: signal, sampling
rate, annotations) and a :class:`SegmentConfig`; the segment stage (:mod:`pipelines.segment`) runs
them per record and :mod:`pipelines.formats.beats` assembles the results into the beats table.

``annotations``
    The reference beat annotations (symbols in :data:`pipelines.signal.labels.BEAT_SYMBOLS` plus
    ``segment.extra_symbols``); rhythm, noise and other non-beat marks are skipped and counted.
``christov``
    R-peaks found by :func:`pipelines.signal.christov.detect_r_peaks` at the record's sampling rate and
    moved to the local QRS extremum by :func:`pipelines.signal.christov.refine_peaks`. Each detection takes
    the symbol of the reference beat it matches within ``segment.match_tolerance_ms``
    (:func:`pipelines.signal.matching.match_beats`); a detection with no reference beat is kept with null
    labels and counted.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from ..core.errors import ConfigError, DataError
from ..records.annotations import annotation_exclusions, excluded_counts, merge_counts
from .labels import BEAT_SYMBOLS
from .quality import QUALITY_REASONS, QualitySpec, screen_beats
from .rhythm import RR_COLUMNS, rr_intervals
from .template import TemplateSpec, template_features
from .windows import DROP_REASONS, WindowSpec, compute_windows, extract_windows, ms_to_samples

#: Beat-finding methods (``--method``).
METHODS: tuple[str, ...] = ("annotations", "christov")


# --------------------------------------------------------------------------------------------- config

@dataclass(frozen=True)
class SegmentConfig:
    """Everything that decides the beats of a record (from ``params.yaml``).

    Examples
    --------
    >>> cfg = SegmentConfig.from_params({"window": "midpoint", "extra_symbols": ["!"]}, "annotations")
    >>> cfg.window.kind, cfg.extra_symbols, cfg.beat_symbols[-1]
    ('midpoint', ('!',), '!')
    """

    method: str
    window: WindowSpec = field(default_factory=WindowSpec)
    lead: str = "MLII"
    annotator: str = "atr"
    extra_symbols: tuple[str, ...] = ()
    match_tolerance_ms: float = 150.0
    refine_ms: float = 50.0
    quality: QualitySpec = field(default_factory=QualitySpec)
    template: TemplateSpec = field(default_factory=TemplateSpec)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(f"--method: unknown method {self.method!r}; expected one of {list(METHODS)}")

    @property
    def beat_symbols(self) -> tuple[str, ...]:
        """Symbols taken as beats: the WFDB beat symbols plus ``extra_symbols``."""
        return BEAT_SYMBOLS + tuple(s for s in self.extra_symbols if s not in BEAT_SYMBOLS)

    @classmethod
    def from_params(cls, segment: Mapping[str, Any], method: str, annotator: str = "atr") -> "SegmentConfig":
        """Build from the ``segment`` section of ``params.yaml`` (checked by the params schema, defaults
        filled in) and ``ingest.annotator``."""
        from ..core.params import validate_section

        section = validate_section("segment", segment).model_dump()
        return cls(
            method=method,
            window=WindowSpec.from_params(section),
            lead=section["lead"],
            annotator=annotator,
            extra_symbols=tuple(section["extra_symbols"]),
            match_tolerance_ms=float(section["match_tolerance_ms"]),
            refine_ms=float(section["christov"]["refine_ms"]),
            quality=QualitySpec.from_params(section),
            template=TemplateSpec.from_params(section["template"]),
        )

    def to_json(self) -> dict[str, Any]:
        """The settings as JSON types (provenance in the table metadata and the report)."""
        out: dict[str, Any] = {
            "method": self.method, "lead": self.lead, "annotator": self.annotator,
            "window": self.window.kind, "extra_symbols": list(self.extra_symbols),
        }
        if self.window.kind == "jun":
            out["jun_gap_ms"] = self.window.jun_gap_ms
        elif self.window.kind == "fixed":
            out["fixed_before_ms"] = self.window.fixed_before_ms
            out["fixed_after_ms"] = self.window.fixed_after_ms
        if self.method == "christov":
            out["match_tolerance_ms"] = self.match_tolerance_ms
            out["refine_ms"] = self.refine_ms
        out["template"] = self.template.to_json()
        if not self.quality.is_default:  # defaults left out: tables made before the screen stay identical
            out["quality"] = self.quality.to_json()
        return out


# ------------------------------------------------------------------------------------------ per record

@dataclass
class RecordBeats:
    """The kept beats of one record (arrays aligned per beat) and its report entry.

    ``values[offsets[i]:offsets[i + 1]]`` is the signal window of beat ``i``.
    """

    record: str
    lead: str
    fs: float
    r_sample: np.ndarray
    symbol: np.ndarray
    start: np.ndarray
    end: np.ndarray
    values: np.ndarray
    offsets: np.ndarray
    counts: dict[str, Any]
    rr: dict[str, np.ndarray] = field(default_factory=dict)
    template: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def n_beats(self) -> int:
        return int(self.r_sample.size)


def sequence_rr(r_peaks: np.ndarray, fs: float, keep: np.ndarray) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """RR columns of the kept beats, from the whole beat sequence of the record, and the nulls per column.

    The intervals come from every beat of the sequence (a beat dropped for its window still bounds
    its neighbours' RR), so they do not depend on the window or quality settings.

    Examples
    --------
    >>> rr, missing = sequence_rr(np.array([0, 360, 720, 1080]), 360.0, np.array([False, True, True, False]))
    >>> rr["rr_pre_ms"].tolist(), missing["rr_local_ms"]
    ([1000.0, 1000.0], 1)
    """
    full = rr_intervals(r_peaks, np.zeros(len(r_peaks), dtype=np.int8), fs)
    rr = {c: full[c][keep] for c in RR_COLUMNS}
    return rr, {c: int(np.isnan(v).sum()) for c, v in rr.items()}


def sequence_template(record, r_peaks: np.ndarray, keep: np.ndarray,
                      spec: TemplateSpec) -> tuple[dict[str, np.ndarray], int]:
    """Template columns (:func:`pipelines.signal.template.template_features`) of the kept beats, the
    template being the median of the whole beat sequence of the record, and how many kept beats are null."""
    full = template_features(record.signal, r_peaks, float(record.fs), spec)
    tpl = {c: v[keep] for c, v in full.items()}
    first = next(iter(tpl.values()), np.zeros(0))
    return tpl, int(np.isnan(first).sum())


def value_counts(values: np.ndarray) -> dict[str, int]:
    """Occurrences of each non-null value, as a dict sorted by value (JSON-ready).

    Examples
    --------
    >>> value_counts(np.array(["N", "V", None, "N"], dtype=object))
    {'N': 2, 'V': 1}
    """
    counts = pd.Series(values, dtype=object).value_counts(dropna=True)
    return {str(k): int(v) for k, v in sorted(counts.items())}


def reference_beats(ann_sample: np.ndarray, ann_symbol: np.ndarray,
                    beat_symbols: Sequence[str]) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """Split annotations into the beat sequence and the skipped (non-beat) marks.

    Returns
    -------
    sample : ndarray of int64
    symbol : ndarray of object (str)
    skipped : dict
        Number of skipped annotations per symbol.

    Examples
    --------
    >>> s, y, skipped = reference_beats(np.array([5, 9, 20]), np.array(["+", "N", "~"], dtype=object), ("N",))
    >>> s.tolist(), y.tolist(), skipped
    ([9], ['N'], {'+': 1, '~': 1})
    """
    symbol = np.asarray(ann_symbol, dtype=object)
    is_beat = pd.Series(symbol, dtype=object).isin(list(beat_symbols)).to_numpy()
    return (np.asarray(ann_sample, dtype=np.int64)[is_beat], symbol[is_beat],
            value_counts(symbol[~is_beat]))


def _windows_and_values(where: str, record, r_peaks: np.ndarray, config: SegmentConfig):
    """Windows of the beat sequence, then the quality screen (:func:`pipelines.signal.quality.screen_beats`)."""
    signal, fs = record.signal, float(record.fs)
    try:
        windows = compute_windows(r_peaks, fs, config.window, n_samples=signal.shape[0])
    except ValueError as exc:
        raise DataError(where, f"bad beat sequence: {exc}") from None
    values, offsets = extract_windows(signal, windows.start[windows.keep], windows.end[windows.keep])
    screened = screen_beats(windows.keep, values.astype(np.float32, copy=False), offsets, signal, fs,
                            config.quality, getattr(record, "adc_limits_mv", None))
    return windows, screened


def _dropped(windows, screened) -> dict[str, int]:
    """Beats dropped per reason: no window (``DROP_REASONS``), then the quality screen (``QUALITY_REASONS``)."""
    return {**windows.dropped(), **screened.dropped()}


def _dropped_symbols(windows, screened, symbol: np.ndarray) -> dict[str, dict[str, int]]:
    """Dropped beats per reason and symbol (null symbols are not counted here)."""
    out = {reason: value_counts(symbol[windows.reason == i + 1])
           for i, reason in enumerate(DROP_REASONS) if np.any(windows.reason == i + 1)}
    out.update({reason: value_counts(symbol[screened.reason == i + 1])
                for i, reason in enumerate(QUALITY_REASONS) if np.any(screened.reason == i + 1)})
    return out


def _beat_exclusions(record, beat_symbols: Sequence[str]) -> tuple[np.ndarray, np.ndarray, dict]:
    """The record's annotations less duplicate/conflicting beats of ``beat_symbols`` (the reader already
    removed those of the WFDB beat symbols), and every exclusion counted: the reader's and these."""
    sample, symbol = np.asarray(record.ann_sample, dtype=np.int64), np.asarray(record.ann_symbol, dtype=object)
    codes = annotation_exclusions(sample, symbol, record.signal.shape[0], beat_symbols)
    excluded = merge_counts(getattr(record, "excluded_annotations", {}) or {}, excluded_counts(codes, symbol))
    return sample[codes == 0], symbol[codes == 0], excluded


def segment_annotations(record, config: SegmentConfig, database: str = "mitdb") -> RecordBeats:
    """Beats of one record from its reference annotations.

    Parameters
    ----------
    record : pipelines.records.reader.EcgRecord
    config : SegmentConfig
    database : str
        Used in error messages (``"<database>/<record>"``).
    """
    where = f"{database}/{record.name}"
    ann_sample, ann_symbol, excluded = _beat_exclusions(record, config.beat_symbols)
    sample, symbol, skipped = reference_beats(ann_sample, ann_symbol, config.beat_symbols)
    windows, screened = _windows_and_values(where, record, sample, config)
    keep, values, offsets = screened.keep, screened.values, screened.offsets
    rr, rr_missing = sequence_rr(sample, float(record.fs), keep)
    tpl, tpl_missing = sequence_template(record, sample, keep, config.template)
    counts = {
        "lead": record.lead, "fs": float(record.fs), "n_samples": int(record.signal.shape[0]),
        "reference_beats": int(sample.size), "reference_symbols": value_counts(symbol),
        "beats": int(keep.sum()), "symbols": value_counts(symbol[keep]),
        "dropped": _dropped(windows, screened), "dropped_symbols": _dropped_symbols(windows, screened, symbol),
        "skipped_non_beat": skipped, "window_samples": config.window.in_samples(record.fs),
        "excluded_annotations": excluded, "flat_lead": screened.flat_lead, "rr_missing": rr_missing,
        "template_missing": tpl_missing,
    }
    return RecordBeats(record=record.name, lead=record.lead, fs=float(record.fs), r_sample=sample[keep],
                       symbol=symbol[keep], start=windows.start[keep], end=windows.end[keep], values=values,
                       offsets=offsets, counts=counts, rr=rr, template=tpl)


def label_detections(detected: np.ndarray, ref_sample: np.ndarray, ref_symbol: np.ndarray,
                     tolerance: int) -> np.ndarray:
    """Symbol of the reference beat each detection matches (one-to-one, nearest first), else None.

    Examples
    --------
    >>> label_detections(np.array([10, 95, 300]), np.array([0, 100]), np.array(["N", "V"], dtype=object),
    ...                  tolerance=20).tolist()
    ['N', 'V', None]
    """
    from .matching import match_beats

    matched = match_beats(detected, ref_sample, tolerance)
    symbol = np.full(matched.size, None, dtype=object)
    symbol[matched >= 0] = np.asarray(ref_symbol, dtype=object)[matched[matched >= 0]]
    return symbol


def segment_detections(record, peaks: np.ndarray, config: SegmentConfig, database: str = "mitdb") -> RecordBeats:
    """Beats of one record at detected R-peaks, labelled from its reference annotations.

    Parameters
    ----------
    record : pipelines.records.reader.EcgRecord
    peaks : ndarray of int
        Detected R-peaks, strictly increasing; they are the beat sequence (windows' neighbours).
    config : SegmentConfig
    database : str
        Used in error messages.
    """
    from .matching import detection_scores

    where = f"{database}/{record.name}"
    fs = float(record.fs)
    peaks = np.asarray(peaks, dtype=np.int64)
    tolerance = ms_to_samples(config.match_tolerance_ms, fs)
    ann_sample, ann_symbol, excluded = _beat_exclusions(record, config.beat_symbols)
    # scores: against the WFDB beat annotations only (the standard reference of EC57)
    true_sample, _, _ = reference_beats(ann_sample, ann_symbol, BEAT_SYMBOLS)
    scores = detection_scores(peaks, true_sample, tolerance)
    # labels: from the beat sequence of the annotations method (beats + extra_symbols)
    ref_sample, ref_symbol, skipped = reference_beats(ann_sample, ann_symbol, config.beat_symbols)
    symbol = label_detections(peaks, ref_sample, ref_symbol, tolerance)

    windows, screened = _windows_and_values(where, record, peaks, config)
    keep, values, offsets = screened.keep, screened.values, screened.offsets
    kept_symbol = symbol[keep]
    rr, rr_missing = sequence_rr(peaks, fs, keep)
    tpl, tpl_missing = sequence_template(record, peaks, keep, config.template)
    counts = {
        "lead": record.lead, "fs": fs, "n_samples": int(record.signal.shape[0]),
        "tp": scores["tp"], "fp": scores["fp"], "fn": scores["fn"],
        "sensitivity": scores["sensitivity"], "ppv": scores["ppv"], "tolerance_samples": tolerance,
        "reference_beats": int(true_sample.size), "detections": int(peaks.size),
        "beats": int(keep.sum()), "symbols": value_counts(kept_symbol),
        "unlabelled": int(np.count_nonzero(pd.isna(kept_symbol))),
        "dropped": _dropped(windows, screened), "dropped_symbols": _dropped_symbols(windows, screened, symbol),
        "skipped_non_beat": skipped, "window_samples": config.window.in_samples(fs),
        "excluded_annotations": excluded, "flat_lead": screened.flat_lead, "rr_missing": rr_missing,
        "template_missing": tpl_missing,
    }
    return RecordBeats(record=record.name, lead=record.lead, fs=fs, r_sample=peaks[keep], symbol=kept_symbol,
                       start=windows.start[keep], end=windows.end[keep], values=values, offsets=offsets,
                       counts=counts, rr=rr, template=tpl)


def segment_christov(record, config: SegmentConfig, database: str = "mitdb") -> RecordBeats:
    """Beats of one record from Christov R-peak detections (at the record's own sampling rate).

    Detections are refined once to the local QRS extremum within ``segment.christov.refine_ms``
    (the detector's own refinement is switched off: refining twice walks some peaks further,
    up to the half-width again), then handled by :func:`segment_detections`.
    """
    from dataclasses import replace

    from .christov import DEFAULT_PARAMS, detect_r_peaks, refine_peaks

    fs = float(record.fs)
    raw_peaks = detect_r_peaks(record.signal, fs, params=replace(DEFAULT_PARAMS, refine_ms=0.0))
    peaks = refine_peaks(record.signal, raw_peaks, fs, half_width_ms=config.refine_ms)
    return segment_detections(record, peaks, config, database)


def segment_record(record, config: SegmentConfig, database: str = "mitdb") -> RecordBeats:
    """Beats of one record by ``config.method``."""
    if config.method == "annotations":
        return segment_annotations(record, config, database)
    return segment_christov(record, config, database)


# --------------------------------------------------------------------------------------------- report

_SUMMED = ("reference_beats", "beats", "detections", "unlabelled", "tp", "fp", "fn", "template_missing")
_COUNTED = ("reference_symbols", "symbols", "dropped", "skipped_non_beat", "rr_missing")


def _add_counts(total: dict[str, int], part: Mapping[str, int]) -> None:
    for k, v in part.items():
        total[k] = total.get(k, 0) + int(v)


def _finite_or_none(x: Any) -> Any:
    return None if isinstance(x, float) and not math.isfinite(x) else x


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def summarise(results: Sequence[RecordBeats], config: SegmentConfig) -> dict[str, Any]:
    """Per-record and total counts (and detection scores for ``christov``): the stage report."""
    total: dict[str, Any] = {k: 0 for k in _SUMMED if k in (results[0].counts if results else {})}
    for k in _COUNTED:
        total[k] = {}
    dropped_symbols: dict[str, dict[str, int]] = {}
    records: dict[str, Any] = {}
    for res in sorted(results, key=lambda r: r.record):
        c = res.counts
        for k in total:
            if k in _SUMMED:
                total[k] += int(c.get(k, 0))
        for k in _COUNTED:
            _add_counts(total[k], c.get(k, {}))
        for reason, by_symbol in c.get("dropped_symbols", {}).items():
            _add_counts(dropped_symbols.setdefault(reason, {}), by_symbol)
        records[res.record] = {k: _finite_or_none(v) for k, v in c.items()}
    for k in _COUNTED:
        total[k] = dict(sorted(total[k].items()))
    if dropped_symbols:
        total["dropped_symbols"] = {r: dict(sorted(s.items())) for r, s in sorted(dropped_symbols.items())}
    total["records"] = len(results)
    total["records_without_beats"] = [r.record for r in results if r.n_beats == 0]
    total["records_with_flat_lead"] = [r.record for r in results if r.counts.get("flat_lead")]
    total["excluded_annotations"] = merge_counts(*(r.counts.get("excluded_annotations", {}) for r in results))
    if config.method == "christov":
        total["sensitivity"] = _ratio(total["tp"], total["tp"] + total["fn"])
        total["ppv"] = _ratio(total["tp"], total["tp"] + total["fp"])
    report: dict[str, Any] = {"method": config.method, "params": config.to_json(), "total": total,
                              "records": records}
    if config.method == "christov":
        report["tolerance_ms"] = config.match_tolerance_ms
    return report


def table_metadata(report: Mapping[str, Any], config: SegmentConfig, manifest: Mapping[str, Any]) -> dict:
    """The ``ecg_beats`` schema metadata: provenance (params, source database) and counts."""
    total = report["total"]
    counts = {k: total[k] for k in ("beats", "symbols", "dropped", "records", "records_without_beats")}
    if config.method == "christov":
        counts.update({k: total[k] for k in ("unlabelled", "tp", "fp", "fn", "sensitivity", "ppv")})
    counts["per_record"] = {name: rec["beats"] for name, rec in report["records"].items()}
    return {
        "method": config.method,
        "params": config.to_json(),
        "database": manifest.get("database", "mitdb"),
        "version": manifest.get("version"),
        "counts": counts,
    }
