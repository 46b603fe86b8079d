"""Digitise, then classify: a one-fold run's model on the beats of the digitised clean strips.

How much of the DS1 -> DS2 model's accuracy survives a round trip through paper? Every test beat of the
run (``models/<run>/fold-00/predictions.parquet``: the DS2 beats, predicted from the original signals)
whose window ``[start, end)`` lies wholly inside one digitised strip of the beat's lead
(``datasets/digitized/clean.parquet``, :func:`pipelines.record_signals`) and has no unrecovered (NaN)
sample there is cut again from the digitised signal (the same record samples), drawn as the render stage
draws it (:func:`pipelines.draw_beats` with the ``render`` params and the render stage's geometry: R index,
sampling rate and, for ``amplitude: record``, the record amplitude of the original beats) and classified by
the run's models (:func:`training.predict.classify_drawn`, as ``python -m training.predict --beats`` does:
prior-corrected fold ensemble). A rhythm run gets the same RR and template features as the original beat, from the
beats table (:func:`training.data.rhythm_from_beats`: the reference beat times and signal), not from the
digitised signal:
the comparison isolates what digitisation does to the beat *images*.

The other side ("original") is the run's own prediction of the same beats. Both are scored with AAMI
EC57 (:mod:`evaluation.ec57`) on the same beats; beats left out are counted per reason
(:data:`EXCLUSIONS`) and per record. Output: ``reports/digitized_classify.json`` (``docs/digitize.md``).

Usage (the ``classify_digitized`` stage of ``dvc.yaml``)::

    python -m evaluation.digitized_classify --params params.yaml \\
        --digitized datasets/digitized/clean.parquet --beats datasets/beats/annotations.parquet \\
        --run models/small_cnn-ds1ds2 --out reports/digitized_classify.json
"""
from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence, TextIO

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from pipelines import DataError, Progress, load_params, read_beats, read_digitized, record_signals, run_stage
from training.data import branch_names, rhythm_from_beats

from .ec57 import ec57_confusion, ec57_exclusions, ec57_scores, is_ec57_run
from .metrics import encode_labels
from .output import to_json, write_text
from .runs import read_predictions, read_run_info

#: Name of the stage (error lines, progress lines).
STAGE = "classify_digitized"

#: Why a test beat is not classified again, in the order they are checked: the beat's record was
#: digitised but not the beat's lead; no digitised strip holds the whole window; a sample of the window
#: was not recovered (NaN: a gap in the trace, or a failed strip).
EXCLUSIONS: tuple[str, ...] = ("lead_not_digitised", "outside_strips", "not_recovered")
_LEAD, _OUTSIDE, _NAN = (1 + EXCLUSIONS.index(r) for r in EXCLUSIONS)

#: Beats drawn and classified at a time (bounds the images in memory).
CHUNK_BEATS = 2048


@dataclass(frozen=True)
class RunBeats:
    """The run's test beats, in beats-table order (records contiguous, R-peaks increasing).

    ``row`` indexes the beats table (:func:`pipelines.read_beats` order); ``start``, ``length``: the
    window in record samples; ``y_true``, ``y_pred``: the run's labels and original predictions as indices
    into ``classes`` (``run.json`` ``label_classes``: the label scheme's classes).
    """

    row: np.ndarray
    beat_id: np.ndarray
    record: np.ndarray
    lead: np.ndarray
    fs: np.ndarray
    start: np.ndarray
    length: np.ndarray
    y_true: np.ndarray
    y_pred: np.ndarray
    classes: tuple[str, ...]


# ------------------------------------------------------------------------------------------------ inputs

def read_test_run(run_dir: Path) -> tuple[dict[str, Any], pd.DataFrame, tuple[str, ...]]:
    """``run.json``, its ``fold-00/predictions.parquet`` and the label scheme's classes, checked.

    Raises
    ------
    DataError
        Naming the file: no ``run.json``, more than one fold (each test beat must come from the model
        classified again here), labels without the AAMI classes, missing or malformed predictions.
    """
    run = read_run_info(run_dir, run_dir.name)
    where = str(run_dir / "run.json")
    try:
        k, _ = int(run["k"]), int(run["params"]["input_size"])
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(where, f"not a run.json of training.train (no {exc})") from None
    if k != 1:
        raise DataError(where, f"{run['k']} folds: digitise-then-classify needs a one-fold run (folds: ds1ds2), "
                               "whose every test beat was predicted by the one model classified again here")
    classes = tuple(run.get("label_classes") or run["classes"])
    if not is_ec57_run(classes):
        raise DataError(where, f"classes {list(classes)}: EC57 scoring needs the AAMI classes N, S, V, F")
    path = run_dir / "fold-00" / "predictions.parquet"
    return run, read_predictions(path, 0, tuple(run["classes"])), classes


def find_test_beats(preds: pd.DataFrame, beats: Any, beats_path: Path, pred_path: Path,
                    classes: tuple[str, ...]) -> RunBeats:
    """The predicted beats found in the beats table (all of them, or :class:`DataError` naming the table)."""
    meta = beats.meta
    ids = preds["beat_id"].to_numpy(dtype=object)
    row = pd.Index(meta.column("beat_id").to_numpy(zero_copy_only=False)).get_indexer(ids)
    if (row < 0).any():
        raise DataError(str(beats_path), f"{int((row < 0).sum()):,} test beat(s) of {pred_path} are not in the "
                                         f"beats table (e.g. {ids[row < 0][0]}): not the run's segmentation?")
    try:
        y_true = encode_labels(preds["y_true"].to_numpy(dtype=object), classes)
        y_pred = encode_labels(preds["y_pred"].to_numpy(dtype=object), classes)
    except ValueError as exc:
        raise DataError(str(pred_path), f"y_true/y_pred: {exc}") from None
    order = np.argsort(row, kind="stable")
    row = row[order]
    col = {c: meta.column(c).to_numpy(zero_copy_only=False)[row] for c in ("beat_id", "record", "fs", "start")}
    return RunBeats(row=row, beat_id=col["beat_id"].astype(object), record=col["record"].astype(str),
                     lead=read_leads(beats_path, col["beat_id"]), fs=col["fs"].astype(np.float64),
                     start=col["start"].astype(np.int64), length=np.diff(beats.offsets)[row].astype(np.int64),
                     y_true=y_true[order], y_pred=y_pred[order], classes=classes)


def read_leads(path: Path, beat_ids: np.ndarray) -> np.ndarray:
    """The ``lead`` column of the beats table for ``beat_ids`` (:func:`pipelines.read_beats` leaves it out)."""
    try:
        table = pq.read_table(path, columns=["beat_id", "lead"])
    except Exception as exc:  # pyarrow raises several types for a missing column or a corrupt file
        raise DataError(str(path), f"cannot read the column 'lead' ({exc})") from None
    pos = pd.Index(table.column("beat_id").to_numpy(zero_copy_only=False)).get_indexer(beat_ids)
    return table.column("lead").to_numpy(zero_copy_only=False)[pos].astype(str)


def read_strips(path: Path, seconds: float) -> dict[str, Any]:
    """Per-record digitised signals (:func:`pipelines.record_signals`) of a digitised table."""
    if not path.is_file():
        raise DataError(str(path), "digitised table not found (run the digitize stage)")
    try:
        table = read_digitized(path)
    except Exception as exc:  # pyarrow: unreadable file, other columns or types
        raise DataError(str(path), f"not a digitised table ({exc})") from None
    if table.num_rows == 0:
        raise DataError(str(path), "no digitised strips")
    try:
        return record_signals(table, seconds)
    except (ValueError, TypeError, AttributeError) as exc:
        raise DataError(str(path), f"strip ids must be '<record>-<start_sample>' ({exc})") from None


# ------------------------------------------------------------------------------------------------ windows

def _gather(flat: np.ndarray, first: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Samples ``flat[first[i]:first[i] + lengths[i]]`` of every window, in ListArray layout."""
    offsets = np.zeros(len(first) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    take = np.repeat(first - offsets[:-1], lengths) + np.arange(offsets[-1])
    return flat[take], offsets


def cut_windows(signals: Mapping[str, Any], beats: RunBeats, where: str) -> tuple[np.ndarray, np.ndarray,
                                                                                    np.ndarray]:
    """Cut each test beat's window from the digitised strips.

    Returns
    -------
    code : int8 (n,)
        0 for a beat cut, else ``1 + EXCLUSIONS.index(reason)``.
    values, offsets : ndarray
        The cut beats' digitised samples (float32) in ListArray layout, in beat order.

    One NumPy pass per record; a record with no digitised strip is ``outside_strips``.
    """
    n = len(beats.record)
    code = np.zeros(n, np.int8)
    values, lengths = [], []
    edges = np.flatnonzero(np.concatenate([[True], beats.record[1:] != beats.record[:-1], [True]])) if n else [0]
    for a, b in zip(edges[:-1], edges[1:]):  # one record at a time
        rec, c = beats.record[a], code[a:b]
        sig = signals.get(rec)
        if sig is None:
            c[:] = _OUTSIDE
            continue
        if not np.allclose(beats.fs[a:b], sig.fs):
            raise DataError(where, f"record {rec} digitised at {sig.fs:g} Hz, its beats are at {beats.fs[a]:g} Hz")
        names, inverse = np.unique(beats.lead[a:b], return_inverse=True)
        k = np.array([sig.leads.index(x) if x in sig.leads else -1 for x in names], np.int64)[inverse.ravel()]
        width = sig.signal.shape[1]
        n_strip = width // max(len(sig.starts), 1)
        start, length = beats.start[a:b], beats.length[a:b]
        j = np.maximum(np.searchsorted(sig.starts, start, side="right") - 1, 0)
        inside = (start >= sig.starts[j]) & (start + length <= sig.starts[j] + n_strip)
        c[k < 0] = _LEAD
        c[(k >= 0) & ~inside] = _OUTSIDE
        ok = np.flatnonzero(c == 0)
        first = k[ok] * width + sig.offsets[j[ok]] + (start[ok] - sig.starts[j[ok]])
        flat = sig.signal.reshape(-1)
        vals, offs = _gather(flat, first, length[ok])
        bad_count = np.concatenate([[0], np.cumsum(~np.isfinite(vals))])
        bad = (bad_count[offs[1:]] - bad_count[offs[:-1]]) > 0
        if bad.any():
            c[ok[bad]] = _NAN
            vals = vals[np.repeat(~bad, length[ok])]
            ok = ok[~bad]
        values.append(vals)
        lengths.append(length[ok])
    kept = np.concatenate(lengths) if lengths else np.zeros(0, np.int64)
    offsets = np.zeros(len(kept) + 1, dtype=np.int64)
    np.cumsum(kept, out=offsets[1:])
    flat_values = np.concatenate(values).astype(np.float32) if values else np.zeros(0, np.float32)
    digitised = np.isin(beats.record, list(signals))
    if digitised.any() and (code[digitised] == _LEAD).all():
        have = sorted({lead for s in signals.values() for lead in s.leads})
        raise DataError(where, f"no strip of the test beats' lead(s) {sorted(set(beats.lead[digitised].tolist()))}; "
                               f"digitised leads: {have}")
    return code, flat_values, offsets


# ------------------------------------------------------------------------------------------------ report

def side_scores(y_true: np.ndarray, y_pred: np.ndarray, record: np.ndarray, classes: Sequence[str]) -> dict:
    """EC57 figures (:func:`ec57_scores`) of one side, with the beats EC57 leaves out (paced, Q)."""
    scores = ec57_scores(ec57_confusion(y_true, y_pred, record, classes))
    scores["excluded"] = ec57_exclusions(y_true, record, classes)
    return scores


def changed_classes(original: np.ndarray, digitized: np.ndarray, classes: Sequence[str]) -> dict[str, Any]:
    """How many beats the digitised side puts in another class: ``{"beats", "fraction", "pairs": {"N->V": n}}``."""
    moved = original != digitized
    k = len(classes)
    counts = np.bincount(original[moved] * k + digitized[moved], minlength=k * k)
    pairs = {f"{classes[i // k]}->{classes[i % k]}": int(counts[i]) for i in np.flatnonzero(counts)}
    return {"beats": int(moved.sum()), "fraction": float(moved.mean()) if moved.size else float("nan"),
            "pairs": pairs}


def per_record(beats: RunBeats, code: np.ndarray) -> dict[str, dict[str, int]]:
    """Per record: test beats, beats classified again, and beats left out per reason."""
    names, group = np.unique(beats.record, return_inverse=True)
    counts = np.zeros((len(names), 1 + len(EXCLUSIONS)), np.int64)
    np.add.at(counts, (group, code.astype(np.int64)), 1)
    return {str(rec): {"test_beats": int(row.sum()), "beats": int(row[0]),
                       **{r: int(row[1 + i]) for i, r in enumerate(EXCLUSIONS)}}
            for rec, row in zip(names, counts)}


def run_classify(params_path: str | Path, digitized_path: str | Path, beats_path: str | Path,
                 run_dir: str | Path, out: str | Path, *, stream: TextIO | None = None) -> dict[str, Any]:
    """The whole stage: read and check everything, classify, write ``out``; return the report."""
    from training.predict import classify_drawn, drawn_geometry, load_folds, render_config

    digitized_path, beats_path, run_dir = Path(digitized_path), Path(beats_path), Path(run_dir)
    seconds = float(load_params(params_path, "paper")["seconds"])
    run, preds, classes = read_test_run(run_dir)
    cfg = render_config(params_path, run, str(run_dir / "run.json"))
    beats = read_beats(beats_path)
    test = find_test_beats(preds, beats, beats_path, run_dir / "fold-00" / "predictions.parquet", classes)
    code, values, offsets = cut_windows(read_strips(digitized_path, seconds), test, str(digitized_path))
    cut = np.flatnonzero(code == 0)
    if cut.size == 0:
        raise DataError(str(digitized_path), f"no test beat of {run_dir} lies wholly inside a digitised strip "
                                             "of its lead with every sample recovered")
    rows = test.row[cut]
    geometry = drawn_geometry(beats, rows, cfg, str(beats_path))
    names = branch_names(run["params"])
    features = rhythm_from_beats(beats, rows, names) if run.get("rhythm") else None
    del beats  # the samples of every beat: no longer needed

    progress = Progress(STAGE, total=int(cut.size), unit="beats", stream=stream)
    folds = load_folds(run_dir, run)
    probs = classify_drawn(folds, values, offsets, cfg, int(run["params"]["input_size"]), geometry=geometry,
                           features=features, progress=progress, chunk=CHUNK_BEATS)
    to_label = np.array([classes.index(c) for c in run["classes"]], np.int64)
    y_true, original, record = test.y_true[cut], test.y_pred[cut], test.record[cut]
    digitized = to_label[probs.argmax(axis=1)]
    excluded = {r: int((code == 1 + i).sum()) for i, r in enumerate(EXCLUSIONS)}
    report = {
        "run": str(run.get("run") or run_dir.name),
        "inputs": {"digitized": str(digitized_path), "beats": str(beats_path), "run": str(run_dir)},
        "strip_seconds": seconds,
        "rhythm_features": names if run.get("rhythm") else None,
        "test_beats": int(len(code)),
        "beats": int(cut.size),
        "excluded": excluded,
        "records": per_record(test, code),
        "original": side_scores(y_true, original, record, classes),
        "digitized": side_scores(y_true, digitized, record, classes),
        "changed": changed_classes(original, digitized, classes),
    }
    write_text(out, to_json(report))
    o, d = report["original"], report["digitized"]
    progress.done(f"{cut.size:,} of {len(code):,} test beats inside digitised strips ({excluded}); EC57 accuracy "
                  f"{o['accuracy']:.4f} original, {d['accuracy']:.4f} digitised; {report['changed']['beats']:,} "
                  f"changed class -> {out}")
    return report


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m evaluation.digitized_classify", description=__doc__.split("\n")[0])
    ap.add_argument("--params", default="params.yaml", help="params file (sections 'render', 'paper')")
    ap.add_argument("--digitized", required=True, help="digitised strips, datasets/digitized/clean.parquet")
    ap.add_argument("--beats", required=True, help="the run's beats table, datasets/beats/annotations.parquet")
    ap.add_argument("--run", required=True, help="a one-fold trained run, models/small_cnn-ds1ds2")
    ap.add_argument("--out", required=True, help="report, reports/digitized_classify.json")
    args = ap.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return run_stage(STAGE, lambda: run_classify(args.params, args.digitized, args.beats, args.run, args.out))


if __name__ == "__main__":
    sys.exit(main())
