"""The PhysioNet Challenge 2024 signal-to-noise ratio of a digitised signal, without and with alignment.

:func:`compute_snr` is ``helper_code.compute_snr`` of physionetchallenges/evaluation-2024 (the
version with ``label_signal[np.isnan(label_signal)] = 0``): the output is zero-padded or truncated
to the label's length (``trim_signal``), NaN counts as 0 in both, and

    SNR = 10 log10( sum(x^2) / sum((x_hat - x)^2) )   (inf when the error is 0)

:func:`align` is the alignment step described for the Challenge's scoring: the output is shifted in
time by at most ``max_shift_s`` (0.5 s) and in amplitude by at most ``max_offset_mv`` (1.0 mV); the
time shift maximises the cross-correlation of the two signals, the offset is the mean difference
over the overlap (clipped to the bound). Samples shifted in from outside count as NaN (0).

Examples
--------
>>> x = np.array([1.0, -1.0, 2.0, 0.0]); xh = np.array([1.0, -1.0, 1.0, np.nan])
>>> round(compute_snr(x, xh), 4)        # 10 log10(6 / (1 + 0))
7.7815
>>> compute_snr(x, x)
inf
"""
from __future__ import annotations

import numpy as np


def trim_signal(signal: np.ndarray, n: int) -> np.ndarray:
    """``signal`` zero-padded or truncated to ``n`` samples (float64).

    >>> trim_signal(np.array([1.0, 2.0]), 3).tolist(), trim_signal(np.array([1.0, 2.0]), 1).tolist()
    ([1.0, 2.0, 0.0], [1.0])
    """
    s = np.asarray(signal, dtype=np.float64)
    out = np.zeros(int(n), dtype=np.float64)
    m = min(len(s), int(n))
    out[:m] = s[:m]
    return out


def compute_snr(label: np.ndarray, output: np.ndarray) -> float:
    """The Challenge SNR (dB) of ``output`` against ``label`` (see the module doc)."""
    x = np.nan_to_num(np.asarray(label, dtype=np.float64), nan=0.0)
    y = np.nan_to_num(trim_signal(output, len(x)), nan=0.0)
    noise = float(np.sum((y - x) ** 2))
    power = float(np.sum(x ** 2))
    if noise > 0:
        return float(10.0 * np.log10(power / noise)) if power > 0 else float("-inf")
    return float("inf")


def shift(signal: np.ndarray, lag: int) -> np.ndarray:
    """``signal`` delayed by ``lag`` samples (advanced if negative), NaN shifted in.

    >>> shift(np.array([1.0, 2.0, 3.0]), 1).tolist(), shift(np.array([1.0, 2.0, 3.0]), -1).tolist()
    ([nan, 1.0, 2.0], [2.0, 3.0, nan])
    """
    s = np.asarray(signal, dtype=np.float64)
    out = np.full(len(s), np.nan)
    if lag >= 0:
        out[lag:] = s[:len(s) - lag]
    else:
        out[:lag] = s[-lag:]
    return out


def align(label: np.ndarray, output: np.ndarray, fs: float, max_shift_s: float = 0.5,
          max_offset_mv: float = 1.0) -> tuple[np.ndarray, int, float]:
    """``(aligned output, lag in samples, offset in mV)`` (see the module doc).

    >>> x = np.sin(np.arange(200) / 5.0); xh = shift(x, 3) + 0.2
    >>> _, lag, off = align(x, xh, fs=100.0)
    >>> lag, round(off, 6)
    (-3, -0.2)
    """
    x = np.nan_to_num(np.asarray(label, dtype=np.float64), nan=0.0)
    y = trim_signal(output, len(x))
    y0 = np.nan_to_num(y, nan=0.0)
    n = len(x)
    max_lag = min(int(round(max_shift_s * fs)), n - 1)
    if n == 0 or max_lag < 0:
        return y, 0, 0.0
    size = 1 << int(np.ceil(np.log2(2 * n)))
    corr = np.fft.irfft(np.fft.rfft(x, size) * np.conj(np.fft.rfft(y0, size)), size)
    lags = np.arange(-max_lag, max_lag + 1)
    lag = int(lags[int(np.argmax(corr[lags % size]))])  # y shifted by lag best matches x
    moved = shift(y, lag)
    both = np.isfinite(moved)
    offset = float(np.clip(np.mean(x[both] - moved[both]), -max_offset_mv, max_offset_mv)) if both.any() else 0.0
    return moved + offset, lag, offset
