"""Beat morphology: each beat measured against its own record's median beat, and its own band-passed samples.

Patients differ more from each other than a patient's normal beats differ from its ectopic ones, which is
what makes the inter-patient split (DS1 -> DS2) hard: a CNN trained on DS1 calls every beat of a DS2 record
with an unusual normal morphology (record 117, 233) ventricular. A beat *relative to its own record* does
not have that problem: in almost every record most beats are of the dominant (normal) morphology, so the
median beat of the record is a template of it, and a ventricular beat is the one that differs from it.
The template is computed from the record's signal and beat times alone, never from labels, so it is as
available on a test record as on a training record.

Per record, the lead is band-passed (:attr:`TemplateSpec.band_hz`, zero-phase), every beat of the sequence
is cut in a fixed window around its R-peak (:attr:`TemplateSpec.before_ms`, :attr:`TemplateSpec.after_ms`)
less its own baseline (the median of the window's first 100 ms), and the sample-wise median of those
windows is the template. Per beat, over the QRS part (``qrs_before_ms`` .. ``qrs_after_ms`` around R)
or the whole window, all amplitudes in units of the template's QRS peak-to-peak:

================ =================================================================================
column           meaning
================ =================================================================================
tpl_corr_qrs     Pearson correlation of the beat's QRS with the template's
tpl_corr         Pearson correlation over the whole window
tpl_rms          RMS of (beat - template) over the window
tpl_rms_qrs      RMS of (beat - template) over the QRS
tpl_ptp          log of the QRS peak-to-peak ratio, beat / template
tpl_slope        log of the steepest QRS slope ratio, beat / template
tpl_width        QRS width ratio (samples steeper than 20 % of the own steepest slope), beat / template
tpl_area         QRS absolute area ratio, beat / template
tpl_max          the beat's QRS maximum
tpl_min          the beat's QRS minimum
tpl_twave        mean of (beat - template) after the QRS
================ =================================================================================

Beside these record-relative columns, the beat's own morphology in absolute units (de Chazal et al. 2004's
morphology features, "mor" columns): the band-passed, baseline-corrected beat sampled at
:data:`MORPHOLOGY_QRS_SAMPLES` evenly spaced times over ``morph_qrs_ms`` around R and
:data:`MORPHOLOGY_T_SAMPLES` over ``morph_t_ms`` (mV), and the QRS width in ms (the same slope rule as
``tpl_width``, not divided by the template's). They describe a patient's beats as they are, so they serve
intra-patient protocols (a left bundle branch block beat *is* its record's normal morphology, which the
record-relative columns cannot see); across patients they carry each patient's own shape:

================ =================================================================================
mor_q0..mor_q9   the beat at 10 times from ``morph_qrs_ms[0]`` to ``morph_qrs_ms[1]`` around R (mV)
mor_t0..mor_t8   the beat at 9 times from ``morph_t_ms[0]`` to ``morph_t_ms[1]`` after R (mV)
mor_qrs_ms       QRS width (ms): samples steeper than 20 % of the beat's own steepest QRS slope
================ =================================================================================

A beat whose window runs off the record, and every beat of a record with fewer than
:data:`MIN_BEATS` beats or a flat template, gets nulls (counted by the segment stage). Unrecovered
samples (NaN, as in a digitised signal) are filled by linear interpolation before filtering.

Measured (``python benchmarks/bench_template.py``, docs/benchmarks.md): a gradient-boosting classifier
trained on DS1 with these columns and the RR ratios reaches 93.9 % EC57 accuracy on DS2 against 83.1 % with
the RR ratios alone.

Examples
--------
>>> import numpy as np
>>> fs = 360.0
>>> t = np.arange(int(60 * fs)) / fs
>>> r = np.arange(1, 59) * int(fs)                          # one beat a second
>>> x = np.zeros(t.size)
>>> for k, p in enumerate(r):                               # narrow beats; every 10th beat wide and tall
...     w = 0.05 if k % 10 == 5 else 0.01
...     x += (3.0 if k % 10 == 5 else 1.0) * np.exp(-0.5 * ((t - p / fs) / w) ** 2)
>>> f = template_features(x, r, fs)
>>> sorted(f) == sorted(TEMPLATE_COLUMNS)
True
>>> bool(f["tpl_corr_qrs"][5] < 0.9 < f["tpl_corr_qrs"][4])
True
>>> bool(f["tpl_width"][5] > 2 * f["tpl_width"][4])
True
>>> bool(f["mor_qrs_ms"][5] > 2 * f["mor_qrs_ms"][4]), bool(abs(f["mor_q3"][4] - 1.0) < 0.1)
(True, True)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from .rhythm import RR_COLUMNS

#: Samples of the QRS part and of the T part in the absolute morphology columns (de Chazal et al. 2004).
MORPHOLOGY_QRS_SAMPLES = 10
MORPHOLOGY_T_SAMPLES = 9

#: The record-relative columns: the beat against its record's median beat.
RELATIVE_COLUMNS: tuple[str, ...] = (
    "tpl_corr_qrs", "tpl_corr", "tpl_rms", "tpl_rms_qrs", "tpl_ptp", "tpl_slope", "tpl_width", "tpl_area",
    "tpl_max", "tpl_min", "tpl_twave")

#: The absolute morphology columns: the beat's own band-passed samples (mV) and QRS width (ms).
MORPHOLOGY_COLUMNS: tuple[str, ...] = (
    *(f"mor_q{i}" for i in range(MORPHOLOGY_QRS_SAMPLES)), *(f"mor_t{i}" for i in range(MORPHOLOGY_T_SAMPLES)),
    "mor_qrs_ms")

#: The template columns of the beats table and of the image shards (float32, null where undefined):
#: record-relative, then absolute morphology.
TEMPLATE_COLUMNS: tuple[str, ...] = RELATIVE_COLUMNS + MORPHOLOGY_COLUMNS

#: The per-beat feature columns carried from the beats table into the image shards: RR, then template.
FEATURE_COLUMNS: tuple[str, ...] = RR_COLUMNS + TEMPLATE_COLUMNS

#: A record needs this many beats for a template (a median of fewer is not a dominant morphology).
MIN_BEATS = 3

#: Milliseconds at the window's start whose median is the beat's baseline.
BASELINE_MS = 100.0

#: A template QRS peak-to-peak below this (mV) is a flat lead: no template.
FLAT_MV = 1e-3

#: Share of the own steepest QRS slope above which a sample counts toward the QRS width.
WIDTH_SLOPE_FRACTION = 0.2


@dataclass(frozen=True)
class TemplateSpec:
    """Where the template and the features are measured (``segment.template`` of ``params.yaml``).

    Examples
    --------
    >>> TemplateSpec.from_params({"before_ms": 200}).before_ms
    200.0
    >>> TemplateSpec(qrs_before_ms=300.0)
    Traceback (most recent call last):
    ...
    ValueError: segment.template: the QRS part (-300.0..120.0 ms) must lie inside the window (-250.0..400.0 ms), 50 ms clear of its start (the baseline)
    >>> TemplateSpec(morph_t_ms=(150.0, 400.0))
    Traceback (most recent call last):
    ...
    ValueError: segment.template.morph_t_ms: need -200.0 <= start < end < 400.0 (inside the window, 50 ms clear of its start), got [150.0, 400.0]
    """

    before_ms: float = 250.0
    after_ms: float = 400.0
    qrs_before_ms: float = 80.0
    qrs_after_ms: float = 120.0
    band_hz: tuple[float, float] = (0.5, 40.0)
    morph_qrs_ms: tuple[float, float] = (-50.0, 100.0)
    morph_t_ms: tuple[float, float] = (150.0, 380.0)

    def __post_init__(self) -> None:
        if not (0 < self.qrs_before_ms <= self.before_ms - BASELINE_MS / 2 and 0 < self.qrs_after_ms < self.after_ms):
            raise ValueError(f"segment.template: the QRS part (-{self.qrs_before_ms}..{self.qrs_after_ms} ms) must "
                             f"lie inside the window (-{self.before_ms}..{self.after_ms} ms), {BASELINE_MS / 2:g} ms clear of its "
                             f"start (the baseline)")
        low, high = self.band_hz
        if not 0 < low < high:
            raise ValueError(f"segment.template.band_hz: need 0 < low < high, got {list(self.band_hz)}")
        for key in ("morph_qrs_ms", "morph_t_ms"):
            start, end = getattr(self, key)
            if not -(self.before_ms - BASELINE_MS / 2) <= start < end < self.after_ms:
                raise ValueError(f"segment.template.{key}: need {-(self.before_ms - BASELINE_MS / 2)} <= start < end < "
                                 f"{self.after_ms} "
                                 f"(inside the window, {BASELINE_MS / 2:g} ms clear of its start), got "
                                 f"{[start, end]}")

    @classmethod
    def from_params(cls, section: Mapping[str, Any] | None) -> "TemplateSpec":
        """From the ``segment.template`` mapping (missing keys keep their defaults)."""
        section = dict(section or {})
        pairs = ("band_hz", "morph_qrs_ms", "morph_t_ms")
        return cls(**{k: (tuple(float(x) for x in v) if k in pairs else float(v)) for k, v in section.items()})

    def to_json(self) -> dict[str, Any]:
        """JSON-ready provenance."""
        return {"before_ms": self.before_ms, "after_ms": self.after_ms, "qrs_before_ms": self.qrs_before_ms,
                "qrs_after_ms": self.qrs_after_ms, "band_hz": list(self.band_hz),
                "morph_qrs_ms": list(self.morph_qrs_ms), "morph_t_ms": list(self.morph_t_ms)}


def _band(signal: np.ndarray, fs: float, band_hz: tuple[float, float]) -> np.ndarray:
    """Zero-phase band-pass (2nd-order Butterworth, forward and backward); NaN filled linearly first."""
    from scipy.signal import butter, sosfiltfilt

    x = np.asarray(signal, dtype=np.float64)
    bad = ~np.isfinite(x)
    if bad.any():
        good = np.flatnonzero(~bad)
        if good.size == 0:
            return np.zeros_like(x)
        x = x.copy()
        x[bad] = np.interp(np.flatnonzero(bad), good, x[good])
    high = min(band_hz[1], 0.45 * fs)
    sos = butter(2, [band_hz[0], high], btype="band", fs=fs, output="sos")
    if x.size <= 3 * (2 * sos.shape[0] + 1):
        return x - np.median(x) if x.size else x
    return sosfiltfilt(sos, x)


def _corr(a: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Pearson correlation of each row of ``a`` with ``t`` (elementwise sums, no BLAS: byte-stable)."""
    a = a - a.mean(axis=1, keepdims=True)
    t = t - t.mean()
    den = np.sqrt((a * a).sum(axis=1) * (t * t).sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (a * t).sum(axis=1) / np.where(den > 0, den, 1.0), 0.0)


def _log_ratio(a: np.ndarray, b: float) -> np.ndarray:
    return np.log(np.maximum(a / b, 1e-3))


def _samples(w: np.ndarray, before: int, fs: float, span_ms: tuple[float, float], n: int,
             prefix: str) -> dict[str, np.ndarray]:
    """Columns ``<prefix>0..<prefix>{n-1}``: the windows ``w`` (R at column ``before``) at ``n`` evenly spaced
    times over ``span_ms`` around R, each at its nearest sample."""
    cols = before + np.round(np.linspace(span_ms[0], span_ms[1], n) * fs / 1000.0).astype(np.int64)
    cols = np.clip(cols, 0, w.shape[1] - 1)
    return {f"{prefix}{i}": w[:, c] for i, c in enumerate(cols)}


def template_features(signal: np.ndarray, r_sample: np.ndarray, fs: float,
                      spec: TemplateSpec = TemplateSpec()) -> dict[str, np.ndarray]:
    """The :data:`TEMPLATE_COLUMNS` of every beat of one record's beat sequence.

    Parameters
    ----------
    signal : array of float, shape (n_samples,)
        The lead the beats are cut from, in mV (NaN where unrecovered).
    r_sample : array of int, shape (n_beats,)
        R-peak samples of the record's beat sequence (the template is the median over all of them).
    fs : float
        Sampling rate (Hz).
    spec : TemplateSpec

    Returns
    -------
    dict of str -> ndarray of float64, shape (n_beats,)
        One array per :data:`TEMPLATE_COLUMNS` entry, NaN where undefined (see the module doc).
    """
    r = np.asarray(r_sample, dtype=np.int64)
    n = r.size
    out = {c: np.full(n, np.nan) for c in TEMPLATE_COLUMNS}
    x = np.asarray(signal)
    before = int(round(spec.before_ms * fs / 1000.0))
    after = int(round(spec.after_ms * fs / 1000.0))
    inside = (r - before >= 0) & (r + after <= x.shape[0])
    if inside.sum() < MIN_BEATS:
        return out
    y = _band(x, float(fs), spec.band_hz)
    w = y[r[inside, None] + np.arange(-before, after)[None, :]]
    base = max(1, int(round(BASELINE_MS * fs / 1000.0)))
    w = w - np.median(w[:, :base], axis=1, keepdims=True)
    tpl = np.median(w, axis=0)
    q0 = before - int(round(spec.qrs_before_ms * fs / 1000.0))
    q1 = before + int(round(spec.qrs_after_ms * fs / 1000.0))
    wq, tq = w[:, q0:q1], tpl[q0:q1]
    ptp = float(tq.max() - tq.min())
    if ptp < FLAT_MV:
        return out
    dw, dt = np.abs(np.diff(wq, axis=1)), np.abs(np.diff(tq))
    width = (dw > WIDTH_SLOPE_FRACTION * dw.max(axis=1, keepdims=True)).sum(axis=1)
    width_t = max(int((dt > WIDTH_SLOPE_FRACTION * dt.max()).sum()), 1)
    area_t = float(np.abs(tq).sum())
    values = {
        "tpl_corr_qrs": _corr(wq, tq),
        "tpl_corr": _corr(w, tpl),
        "tpl_rms": np.sqrt(((w - tpl) ** 2).mean(axis=1)) / ptp,
        "tpl_rms_qrs": np.sqrt(((wq - tq) ** 2).mean(axis=1)) / ptp,
        "tpl_ptp": _log_ratio(wq.max(axis=1) - wq.min(axis=1), ptp),
        "tpl_slope": _log_ratio(dw.max(axis=1), max(float(dt.max()), 1e-12)),
        "tpl_width": width / width_t,
        "tpl_area": np.abs(wq).sum(axis=1) / max(area_t, 1e-12),
        "tpl_max": wq.max(axis=1) / ptp,
        "tpl_min": wq.min(axis=1) / ptp,
        "tpl_twave": (w[:, q1:] - tpl[q1:]).mean(axis=1) / ptp,
        "mor_qrs_ms": width * (1000.0 / fs),
        **_samples(w, before, fs, spec.morph_qrs_ms, MORPHOLOGY_QRS_SAMPLES, "mor_q"),
        **_samples(w, before, fs, spec.morph_t_ms, MORPHOLOGY_T_SAMPLES, "mor_t"),
    }
    for c in TEMPLATE_COLUMNS:
        out[c][inside] = values[c]
    return out


def template_matrix(table: Mapping[str, Any], names: tuple[str, ...] = TEMPLATE_COLUMNS) -> np.ndarray:
    """The template columns ``names`` of a table-like mapping as float32 (n, len(names)), NaN -> 0.

    Raises
    ------
    KeyError
        Naming the missing columns (an image set or beats table made before template features).

    Examples
    --------
    >>> template_matrix({"tpl_corr": [0.5, None]}, ("tpl_corr",)).tolist()
    [[0.5], [0.0]]
    """
    missing = [c for c in names if c not in table]
    if missing:
        raise KeyError(f"no template columns {missing}: the image set or beats table predates template features")
    cols = [np.asarray(table[c], dtype=np.float64) for c in names]
    m = np.stack(cols, axis=1) if cols else np.zeros((0, 0))
    return np.nan_to_num(m, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)
