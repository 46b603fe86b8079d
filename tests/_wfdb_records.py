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
