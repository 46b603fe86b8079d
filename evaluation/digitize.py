"""Score a digitised paper variant against the strips' ground truth: ``reports/digitize.json``.

Per strip and lead: the Challenge SNR (:func:`evaluation.snr.compute_snr`) without and with the
alignment step (:func:`evaluation.snr.align`), and the fraction of samples recovered (finite).
Per strip (first lead, MLII in MIT-BIH): the project's R-peak detector on the digitised signal
(NaN as 0) against the strip's reference beats, and the same detector on the ground-truth signal
for comparison. A strip's truth lists only the beats inside it, so a detection that matches no beat of the
strip but, within the matching tolerance, a reference beat of the record just outside the strip (its QRS
reaches in) is counted as ``edge``, not as a false positive; those outside beats are read from the record's
annotations (``--raw``, the ingest output: the same WFDB beat symbols the paper stage keeps). ``ppv``
leaves ``edge`` detections out; ``ppv_edges_as_fp`` counts them as false positives.
Per variant: means, the status counts (failed strips score as all-NaN signals,
i.e. 0 dB), detection Se/+P pooled over strips.

Usage (the ``score_digitize`` stage of ``dvc.yaml``)::

    python -m evaluation.digitize --params params.yaml --paper datasets/paper \\
        --digitized datasets/digitized --out reports/digitize.json --figures reports/figures \\
        --raw datasets/raw/mitdb
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from pipelines import DataError, detect_r_peaks, load_params, match_beats, read_digitized, read_paper, write_json

from .snr import align, compute_snr

#: Ground-truth columns scoring reads.
TRUTH_COLUMNS: tuple[str, ...] = ("strip_id", "record", "start_sample", "fs", "leads", "signal", "beat_sample",
                                  "distortions")


def _finite(x: np.ndarray) -> np.ndarray:
    return np.nan_to_num(np.asarray(x, dtype=np.float64), nan=0.0)


def score_lead(truth: np.ndarray, output: np.ndarray | None, fs: float, max_shift_s: float,
               max_offset_mv: float) -> dict[str, float]:
    """SNR (dB) raw and aligned, and the fraction recovered, of one lead (``output`` None: failed)."""
    x = np.asarray(truth, dtype=np.float64)
    y = np.full(len(x), np.nan) if output is None else np.asarray(output, dtype=np.float64)
    aligned, lag, offset = align(x, y, fs, max_shift_s, max_offset_mv)
    n = min(len(x), len(y))
    return {"snr": compute_snr(x, y), "snr_aligned": compute_snr(x, aligned),
            "recovered": float(np.isfinite(y[:n]).sum() / max(len(x), 1)), "lag": lag, "offset_mv": offset}


def detection(signal: np.ndarray, beats: np.ndarray, fs: float, tolerance: int,
              outside: np.ndarray | None = None) -> dict[str, int]:
    """``{"tp", "fp", "fn", "edge"}`` of the project's detector on ``signal`` against ``beats`` (strip samples).

    ``edge``: detections that match no beat of ``beats`` but match (one-to-one, within ``tolerance``) one of
    ``outside``, the record's reference beats just outside the strip (strip samples: negative, or from
    ``len(signal)`` on).

    Examples
    --------
    >>> from unittest import mock
    >>> with mock.patch(__name__ + ".detect_r_peaks", return_value=np.array([3, 100, 250, 389, 396])):
    ...     detection(np.zeros(400), np.array([100, 300]), 360.0, 10, outside=np.array([-5, 404]))
    {'tp': 1, 'fp': 2, 'fn': 1, 'edge': 2}
    >>> with mock.patch(__name__ + ".detect_r_peaks", return_value=np.array([3, 100, 250, 389, 396])):
    ...     detection(np.zeros(400), np.array([100, 300]), 360.0, 10)      # no beat outside: 4 fp
    {'tp': 1, 'fp': 4, 'fn': 1, 'edge': 0}
    """
    x = _finite(signal)
    det = np.asarray(detect_r_peaks(x, fs), dtype=np.int64)
    matched = match_beats(det, np.asarray(beats, dtype=np.int64), tolerance)
    unmatched = det[matched < 0]
    edge = 0
    if outside is not None and len(outside) and unmatched.size:
        edge = int(np.count_nonzero(match_beats(unmatched, np.asarray(outside, dtype=np.int64), tolerance) >= 0))
    tp = int(np.count_nonzero(matched >= 0))
    return {"tp": tp, "fp": int(unmatched.size) - edge, "fn": int(len(beats) - tp), "edge": edge}


def outside_beats(record_beats: np.ndarray | None, start: int, n: int, tolerance: int) -> np.ndarray:
    """The record's beats within ``tolerance`` before or after a strip ``[start, start + n)``, in strip samples.

    >>> outside_beats(np.array([80, 95, 100, 150, 205, 260]), 100, 100, 10).tolist()
    [-5, 105]
    """
    if record_beats is None:
        return np.zeros(0, np.int64)
    b = np.asarray(record_beats, dtype=np.int64) - int(start)
    return b[((b >= -tolerance) & (b < 0)) | ((b >= n) & (b <= n - 1 + tolerance))]


def read_record_beats(raw_dir: str | Path, records: Sequence[str], annotator: str) -> dict[str, np.ndarray]:
    """Reference beat samples (WFDB beat symbols, after the reader's exclusions, as the paper stage keeps them)
    of ``records``, read from the ingest output ``raw_dir`` (``$MITDB_DIR`` or its downloaded files)."""
    from pipelines import BEAT_SYMBOLS
    from pipelines.records.annotations import read_annotations
    from pipelines.records.reader import load_manifest, resolve_source

    manifest = load_manifest(raw_dir)
    source = resolve_source(raw_dir, str(manifest.get("database", "mitdb")))
    out = {}
    for name in sorted(set(records)):
        entry = manifest["records"].get(name)
        if entry is None:
            raise DataError(str(Path(raw_dir) / "manifest.json"), f"no record {name!r} (the paper strips have it)")
        sample, symbol, _ = read_annotations(f"{source.name}/{name}", source, name, annotator,
                                             int(entry["n_samples"]))
        out[name] = sample[np.isin(symbol.astype(str), BEAT_SYMBOLS)]
    return out


def _ratio(a: int, b: int) -> float:
    return float(a / b) if b else float("nan")


def score_variant(truth_rows: Sequence[Mapping[str, Any]], digitized_rows: Sequence[Mapping[str, Any]],
                  params: Mapping[str, Any], record_beats: Mapping[str, np.ndarray] | None = None) -> dict[str, Any]:
    """The report of one variant (see the module doc) from its ground-truth and digitised rows.

    ``record_beats``: each record's reference beat samples (:func:`read_record_beats`), for the ``edge``
    count; without it no detection is counted as ``edge``.
    """
    out = {(r["strip_id"], r["lead"]): r for r in digitized_rows}
    per_lead, status = [], {}
    det = {"digitized": {"tp": 0, "fp": 0, "fn": 0, "edge": 0}, "truth": {"tp": 0, "fp": 0, "fn": 0, "edge": 0}}
    for row in truth_rows:  # one strip at a time
        fs = float(row["fs"])
        tol = int(round(params["rpeak_tolerance_ms"] / 1000.0 * fs))
        st = None
        for k, lead in enumerate(row["leads"]):
            d = out.get((row["strip_id"], lead))
            st = d["status"] if d is not None else "missing"
            sig = d["signal"] if d is not None and d["signal"] is not None else None
            s = score_lead(row["signal"][k], sig, fs, params["snr_max_shift_s"], params["snr_max_offset_mv"])
            per_lead.append({"strip_id": row["strip_id"], "lead": lead, "status": st, **s})
            if k == 0:
                beats = np.asarray(row["beat_sample"], dtype=np.int64) - int(row["start_sample"])
                n = len(row["signal"][0])
                beats = beats[(beats >= 0) & (beats < n)]
                near = outside_beats(None if record_beats is None else record_beats.get(str(row["record"])),
                                     int(row["start_sample"]), n, tol)
                y = np.full(n, np.nan) if sig is None else np.asarray(sig, dtype=np.float64)[:n]
                for name, x in (("digitized", y), ("truth", np.asarray(row["signal"][0]))):
                    for key, v in detection(x, beats, fs, tol, outside=near).items():
                        det[name][key] += v
        status[st] = status.get(st, 0) + 1

    def mean(key: str) -> float:
        vals = np.array([p[key] for p in per_lead], dtype=np.float64)
        vals = np.where(np.isposinf(vals), 100.0, vals)  # a perfect lead counts as 100 dB
        return float(vals.mean()) if len(vals) else float("nan")

    return {
        "strips": len(truth_rows), "leads": len(per_lead), "status": dict(sorted(status.items())),
        "snr_db": mean("snr"), "snr_aligned_db": mean("snr_aligned"), "recovered": mean("recovered"),
        "rpeak": {name: {**c, "sensitivity": _ratio(c["tp"], c["tp"] + c["fn"]),
                         "ppv": _ratio(c["tp"], c["tp"] + c["fp"]),
                         "ppv_edges_as_fp": _ratio(c["tp"], c["tp"] + c["fp"] + c["edge"])} for name, c in det.items()},
        "per_lead": per_lead,
    }


def run_score(params_path: str | Path, paper_dir: str | Path, digitized_dir: str | Path, out: str | Path,
              figures: str | Path | None = None, raw_dir: str | Path | None = None) -> dict[str, Any]:
    """Score every variant with a digitised file; write the report (and figures). ``raw_dir`` (the ingest
    output): the records' beats outside the strips, for the ``edge`` count (none without it)."""
    params = load_params(params_path, "digitize")
    annotator = str((load_params(params_path, "ingest") or {}).get("annotator", "atr")) if raw_dir else "atr"
    paper_dir, digitized_dir = Path(paper_dir), Path(digitized_dir)
    variants = sorted(p.stem for p in digitized_dir.glob("*.parquet"))
    report: dict[str, Any] = {"snr": "helper_code.compute_snr of physionetchallenges/evaluation-2024 "
                                     "(NaN as 0, output zero-padded/truncated to the label)",
                              "alignment": {"max_shift_s": params["snr_max_shift_s"],
                                            "max_offset_mv": params["snr_max_offset_mv"],
                                            "method": "cross-correlation lag, then mean offset"},
                              "variants": {}}
    per_lead_all = {}
    record_beats: dict[str, np.ndarray] | None = None if raw_dir is None else {}
    for v in variants:
        truth = read_paper(paper_dir / v, columns=TRUTH_COLUMNS).to_pylist()
        dig = read_digitized(digitized_dir / f"{v}.parquet").to_pylist()
        if record_beats is not None:       # each record's annotations read once, for whichever variant has it
            new = {str(r["record"]) for r in truth} - set(record_beats)
            if new:
                record_beats.update(read_record_beats(raw_dir, sorted(new), annotator))
        scored = score_variant(truth, dig, params, record_beats)
        per_lead_all[v] = scored.pop("per_lead")
        report["variants"][v] = scored
    write_json(out, report)
    if figures is not None:
        from .digitize_figures import write_figures
        write_figures(Path(figures), paper_dir, digitized_dir, report, per_lead_all)
    return report


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m evaluation.digitize", description=__doc__.split("\n")[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--paper", required=True, help="datasets/paper (one directory per variant)")
    ap.add_argument("--digitized", required=True, help="datasets/digitized (one <variant>.parquet each)")
    ap.add_argument("--out", required=True, help="reports/digitize.json")
    ap.add_argument("--figures", default=None, help="directory for digitize_overlay.png and digitize_snr.png")
    ap.add_argument("--raw", default=None, help="datasets/raw/mitdb (the ingest output): the records' beats "
                                                "just outside each strip, for the R-peak edge count")
    args = ap.parse_args(argv)
    report = run_score(args.params, args.paper, args.digitized, args.out, args.figures, args.raw)
    for v, r in report["variants"].items():
        print(f"{v:12s} SNR {r['snr_db']:6.2f} dB, aligned {r['snr_aligned_db']:6.2f} dB, "
              f"recovered {r['recovered']:.3f}, {r['status']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
