"""Build tiny WFDB records for tests (wfdb.wrsamp / wfdb.wrann), with edge cases no real record has."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import wfdb


def synthetic_ecg(n_beats: int = 12, fs: float = 360.0, rr_s: float = 0.8, seed: int = 0,
                  amplitude_mv: float = 1.2) -> tuple[np.ndarray, np.ndarray]:
    """A clean synthetic ECG-like signal (mV) with Gaussian QRS spikes, and its R-peak samples.

    Returns
    -------
    signal : ndarray, float64, shape (n,)
    r_peaks : ndarray, int64
    """
    rng = np.random.default_rng(seed)
    rr = int(round(rr_s * fs))
    n = rr * (n_beats + 1)
    t = np.arange(n)
    r_peaks = (np.arange(1, n_beats + 1) * rr + rng.integers(-5, 6, n_beats)).astype(np.int64)
    sig = np.zeros(n)
    width = 0.012 * fs
    for r in r_peaks:
        sig += amplitude_mv * np.exp(-0.5 * ((t - r) / width) ** 2)
        sig += 0.25 * np.exp(-0.5 * ((t - r - 0.25 * fs) / (0.04 * fs)) ** 2)  # T wave
    sig += 0.01 * rng.standard_normal(n)
    return sig, r_peaks


def write_record(directory: str | Path, name: str, signals: np.ndarray, *, fs: float = 360.0,
                 sig_names: Sequence[str] = ("MLII", "V5"), ann_sample: Sequence[int] | None = None,
                 ann_symbol: Sequence[str] | None = None, fmt: str = "212", annotator: str = "atr") -> Path:
    """Write ``<directory>/<name>.hea/.dat`` (+ ``.atr`` when annotations are given); return the directory.

    ``signals`` is (n,) or (n, channels) in millivolts; a 1-D signal is duplicated over ``sig_names``.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    sig = np.asarray(signals, dtype=np.float64)
    if sig.ndim == 1:
        sig = np.repeat(sig[:, None], len(sig_names), axis=1)
    wfdb.wrsamp(name, fs=fs, units=["mV"] * sig.shape[1], sig_name=list(sig_names), p_signal=sig,
                fmt=[fmt] * sig.shape[1], adc_gain=[200.0] * sig.shape[1], baseline=[1024] * sig.shape[1],
                write_dir=str(directory))
    if ann_sample is not None:
        wfdb.wrann(name, annotator, np.asarray(ann_sample, dtype=np.int64), np.asarray(list(ann_symbol)),
                   write_dir=str(directory))
    return directory


def set_annotation_code(path: str | Path, index: int, code: int) -> None:
    """Overwrite the annotation type code of the ``index``-th annotation in a MIT-format file.

    ``wfdb.wrann`` refuses (or silently remaps) symbols outside WFDB's label table, so tests of
    unknown symbols patch the raw bytes instead. Each annotation starts with a 16-bit
    little-endian word: the top 6 bits are the code, the low 10 bits the time step. Words with
    codes 59-63 (SKIP, NUM, SUB, CHN, AUX) are modifiers and are stepped over.
    """
    path = Path(path)
    data = bytearray(path.read_bytes())
    pos, seen = 0, -1
    while pos + 1 < len(data):
        word = int.from_bytes(data[pos:pos + 2], "little")
        word_code, value = word >> 10, word & 0x3FF
        if word == 0:
            break
        if word_code == 59:  # SKIP: a 4-byte interval follows
            pos += 6
        elif word_code == 63:  # AUX: ``value`` bytes follow, padded to an even count
            pos += 2 + value + (value & 1)
        elif word_code in (60, 61, 62):
            pos += 2
        else:
            seen += 1
            if seen == index:
                data[pos:pos + 2] = ((code << 10) | value).to_bytes(2, "little")
                path.write_bytes(bytes(data))
                return
            pos += 2
    raise IndexError(f"{path} has no annotation number {index}")


def edit_header(path: str | Path, line: int, field: int, value: str | None) -> None:
    """Replace (or, with ``value=None``, cut from there on) a whitespace-separated field of a ``.hea`` line.

    ``line`` 0 is the record line, ``1 + i`` the line of signal ``i``. Tests of corrupt headers edit the
    text ``wfdb.wrsamp`` wrote, since wrsamp refuses to write a malformed field.
    """
    path = Path(path)
    lines = path.read_text().splitlines()
    parts = lines[line].split()
    if value is None:
        del parts[field:]
    else:
        parts[field] = value
    lines[line] = " ".join(parts)
    path.write_text("\n".join(lines) + "\n")
