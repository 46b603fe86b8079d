"""Annotations no stage can use: found, given a reason each, and counted instead of failing a record.

A real database can hold an annotation at (or past) the end of its signal, or the same beat
annotated twice at one sample. Such annotations are excluded from the record, one reason per
annotation (:data:`ANNOTATION_REASONS`), and counted per reason and symbol: ``ingest`` writes the
counts to the manifest and ``segment`` to its report, with the record named. The rest of the
record is used as usual. :func:`read_annotations` reads an annotation file and applies this to
the WFDB beat symbols; ``segment`` applies :func:`annotation_exclusions` again to its own beat
sequence (``extra_symbols`` included).

Examples
--------
>>> import numpy as np
>>> sample = np.array([10, 10, 20, 20, 30, 40])
>>> symbol = np.array(["N", "N", "N", "V", "+", "N"], dtype=object)
>>> codes = annotation_exclusions(sample, symbol, n_samples=40, beat_symbols=("N", "V"))
>>> [ANNOTATION_REASONS[c - 1] if c else "" for c in codes]
['', 'duplicate_beat', 'conflicting_beats', 'conflicting_beats', '', 'outside_signal']
>>> excluded_counts(codes, symbol)
{'conflicting_beats': {'N': 1, 'V': 1}, 'duplicate_beat': {'N': 1}, 'outside_signal': {'N': 1}}
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import wfdb
from wfdb.io.annotation import ann_label_table

from ..core.errors import DataError
from ..signal.labels import BEAT_SYMBOLS

#: Every annotation symbol WFDB defines (beats and non-beats). Anything else is refused.
ANNOTATION_SYMBOLS: frozenset[str] = frozenset(
    s for s in ann_label_table["symbol"].astype(str).str.strip() if s
)

#: Why an annotation is excluded; code ``i + 1`` in :func:`annotation_exclusions` (0: kept).
#: ``outside_signal``: its sample is before 0 or at/after the number of samples;
#: ``duplicate_beat``: a beat annotation repeating an earlier one (same sample, same symbol);
#: ``conflicting_beats``: beat annotations sharing a sample with different symbols (all of them
#: are excluded: the label is unknown).
ANNOTATION_REASONS: tuple[str, ...] = ("outside_signal", "duplicate_beat", "conflicting_beats")

_OUTSIDE, _DUPLICATE, _CONFLICT = 1, 2, 3


def annotation_exclusions(sample: np.ndarray, symbol: np.ndarray, n_samples: int,
                          beat_symbols: Sequence[str]) -> np.ndarray:
    """Reason code of every annotation: 0 kept, else ``1 + ANNOTATION_REASONS.index(reason)``.

    Parameters
    ----------
    sample : array of int
        Annotation samples, in any order.
    symbol : array of str
        Symbols aligned with ``sample``.
    n_samples : int
        Length of the signal; samples outside ``[0, n_samples)`` are ``outside_signal``.
    beat_symbols : sequence of str
        Symbols that are beats. Only beat annotations can be duplicates: a rhythm or noise mark
        may share a beat's sample.

    Returns
    -------
    ndarray of uint8, aligned with ``sample``. Of the beat annotations at one sample (inside
    the signal), the first in ``sample`` order (then input order) is kept when all have the same
    symbol and the rest are ``duplicate_beat``; when their symbols differ, all are
    ``conflicting_beats``.
    """
    sample = np.asarray(sample, dtype=np.int64)
    symbol = np.asarray(symbol, dtype=object)
    codes = np.zeros(sample.size, dtype=np.uint8)
    outside = (sample < 0) | (sample >= int(n_samples))
    codes[outside] = _OUTSIDE
    beat = ~outside & pd.Series(symbol, dtype=object).isin(list(beat_symbols)).to_numpy()
    idx = np.flatnonzero(beat)
    if idx.size < 2:
        return codes
    idx = idx[np.argsort(sample[idx], kind="stable")]
    s, y = sample[idx], symbol[idx].astype(str)
    first = np.r_[True, s[1:] != s[:-1]]            # first beat annotation at its sample
    group = np.cumsum(first) - 1
    differs = y != y[np.flatnonzero(first)][group]  # symbol differs from the group's first
    conflict = np.bincount(group, weights=differs, minlength=group[-1] + 1)[group] > 0
    codes[idx[~first & ~conflict]] = _DUPLICATE
    codes[idx[conflict]] = _CONFLICT
    return codes


def excluded_counts(codes: np.ndarray, symbol: np.ndarray) -> dict[str, dict[str, int]]:
    """Excluded annotations per reason and symbol (reasons and symbols sorted; none: ``{}``)."""
    codes = np.asarray(codes)
    symbol = np.asarray(symbol, dtype=object)
    out: dict[str, dict[str, int]] = {}
    for i, reason in enumerate(ANNOTATION_REASONS):
        hit = codes == i + 1
        if hit.any():
            counts = pd.Series(symbol[hit].astype(str)).value_counts()
            out[reason] = {str(k): int(v) for k, v in sorted(counts.items())}
    return dict(sorted(out.items()))


def merge_counts(*parts: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    """Add per-reason, per-symbol counts (sorted result).

    >>> merge_counts({"duplicate_beat": {"N": 1}}, {"duplicate_beat": {"N": 2, "V": 1}})
    {'duplicate_beat': {'N': 3, 'V': 1}}
    """
    total: dict[str, dict[str, int]] = {}
    for part in parts:
        for reason, by_symbol in part.items():
            into = total.setdefault(reason, {})
            for sym, n in by_symbol.items():
                into[sym] = into.get(sym, 0) + int(n)
    return {r: dict(sorted(s.items())) for r, s in sorted(total.items())}


def describe_exclusions(counts: dict[str, dict[str, int]]) -> str:
    """One line for logs: ``"1 outside_signal, 2 duplicate_beat"`` (``""`` when none).

    >>> describe_exclusions({"outside_signal": {"N": 1, "+": 1}})
    '2 outside_signal'
    """
    return ", ".join(f"{sum(by.values())} {reason}" for reason, by in counts.items())


def read_annotations(where: str, source_dir: Path, name: str, annotator: str,
                      n_samples: int) -> tuple[np.ndarray, np.ndarray, dict[str, dict[str, int]]]:
    """Read ``<name>.<annotator>``: usable annotations sorted by sample, and the excluded ones' counts.

    Raises
    ------
    DataError
        ``(where, ...)``: an unreadable or empty file, or a symbol outside WFDB's label table.
        Annotations outside ``[0, n_samples)`` and duplicate/conflicting beats are not errors:
        they are left out and counted per reason and symbol (:func:`annotation_exclusions`).
    """
    try:
        ann = wfdb.rdann(str(source_dir / name), annotator)
    except Exception as exc:
        raise DataError(where, f"unreadable annotation file {name}.{annotator}: {exc}") from None
    sample = np.asarray(ann.sample, dtype=np.int64)
    symbol = np.empty(len(ann.symbol), dtype=object)
    symbol[:] = list(ann.symbol)
    if sample.size == 0:
        raise DataError(where, f"empty record: no annotations in {name}.{annotator}")
    # wfdb gives NaN (not a str) for a label code missing from its table; astype(str) makes it "nan"
    known = np.isin(symbol.astype(str), sorted(ANNOTATION_SYMBOLS))
    if not known.all():
        bad = np.flatnonzero(~known)
        shown = sorted({repr(s) if isinstance(s, str) else "<undefined label code>" for s in symbol[bad]})
        raise DataError(where, f"{bad.size} annotation(s) with unknown symbol {', '.join(shown)} (not in WFDB's "
                               f"label table), first at sample {int(sample[bad[0]])}")
    codes = annotation_exclusions(sample, symbol, n_samples, BEAT_SYMBOLS)
    excluded = excluded_counts(codes, symbol)
    keep = codes == 0
    sample, symbol = sample[keep], symbol[keep]
    order = np.argsort(sample, kind="stable")
    return sample[order], symbol[order], excluded


def read_rhythms(source_dir: str | Path, name: str, annotator: str = "atr") -> tuple[np.ndarray, np.ndarray]:
    """The rhythm changes of ``<name>.<annotator>``: samples and labels (``"(N"``, ``"(AFIB"`` ...), sorted.

    A rhythm change is a ``+`` annotation with an auxiliary text (NUL bytes stripped). Call it after
    the record was verified (:func:`pipelines.records.reader.read_record`); used by the paper stage.

    Raises
    ------
    DataError
        ``("<name>.<annotator>", ...)``: an unreadable file.
    """
    try:
        ann = wfdb.rdann(str(Path(source_dir) / name), annotator)
    except Exception as exc:
        raise DataError(f"{name}.{annotator}", f"unreadable annotation file: {exc}") from None
    aux = [str(a or "").replace("\x00", "").strip() for a in (ann.aux_note or [""] * len(ann.symbol))]
    keep = np.array([s == "+" and bool(a) for s, a in zip(ann.symbol, aux)], dtype=bool)
    sample = np.asarray(ann.sample, dtype=np.int64)[keep] if keep.size else np.zeros(0, np.int64)
    label = np.array([a for a, k in zip(aux, keep) if k], dtype=object)
    order = np.argsort(sample, kind="stable")
    return sample[order], label[order]


__all__ = ["ANNOTATION_REASONS", "ANNOTATION_SYMBOLS", "annotation_exclusions", "describe_exclusions",
           "excluded_counts", "merge_counts", "read_annotations", "read_rhythms"]
