"""Parse and validate the fields of a WFDB ``.hea`` header that the pipeline relies on.

``wfdb.rdheader`` matches each header line with a permissive regular expression: a field it
cannot read silently takes the WFDB default (a sampling rate of ``abc`` or ``-360`` becomes
250 Hz) or surfaces later as a Python error (``list index out of range`` for a missing signal
line). :func:`check_header_text` reads the same lines (``header(5)`` of the WFDB library) with
strict per-field rules first, so a corrupt header is refused with a message naming the field:
``DataError("<db>/<record>.hea", "<field>: <problem>")``.

Checked: the record line (record name, number of segments, number of signals, sampling rate,
number of samples) and, per signal line, the file name, format (with samples per frame, skew
and byte offset), ADC gain, baseline, units, ADC resolution, ADC zero, initial value, checksum
and block size. The description (signal name) is free text.

Examples
--------
>>> h = check_header_text("100 2 360 650000\\n100.dat 212 200 11 1024 995 -22131 0 MLII\\n"
...                       "100.dat 212 200 11 1024 1011 20052 0 V5\\n", "mitdb/100.hea", "100")
>>> h.fs, h.n_sig, h.sig_len, h.fmt, h.sig_name
(360.0, 2, 650000, ('212', '212'), ('MLII', 'V5'))
>>> check_header_text("100 2 abc 650000\\n", "mitdb/100.hea", "100")
Traceback (most recent call last):
...
pipelines.core.errors.DataError: mitdb/100.hea: sampling rate: 'abc' is not a positive number of Hz
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

from wfdb.io import _signal

from ..core.errors import DataError

_INT = re.compile(r"[+-]?\d+")
_UINT = re.compile(r"\d+")
_FS = re.compile(r"(?P<fs>[^/]*)(?:/(?P<counter>[^(]*)(?:\((?P<base>[^)]*)\))?)?")
_FORMAT = re.compile(r"(?P<fmt>\d+)(?:x(?P<spf>\d+))?(?::(?P<skew>\d+))?(?:\+(?P<offset>\d+))?")
_GAIN = re.compile(r"(?P<gain>[^(/]*)(?:\((?P<baseline>[^)]*)\))?(?:/(?P<units>.*))?")
_FLOAT = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_DECIMAL = re.compile(r"\d+\.?\d*|\.\d+")  # a sampling rate as WFDB writes it: no sign, no exponent


@dataclass(frozen=True)
class HeaderFields:
    """The validated fields of a single-segment header (``None``: field absent, WFDB default)."""

    n_sig: int
    fs: float
    sig_len: int | None
    file_name: tuple[str, ...]
    fmt: tuple[str, ...]
    adc_gain: tuple[float, ...]
    baseline: tuple[int | None, ...]
    units: tuple[str | None, ...]
    adc_res: tuple[int | None, ...]
    adc_zero: tuple[int | None, ...]
    sig_name: tuple[str, ...]


def _lines(text: str) -> list[str]:
    """Header lines, less comment lines (starting with ``#``) and blank lines."""
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def _int_field(where: str, field: str, token: str, *, unsigned: bool = False) -> int:
    if not (_UINT if unsigned else _INT).fullmatch(token):
        kind = "a non-negative integer" if unsigned else "an integer"
        raise DataError(where, f"{field}: {token!r} is not {kind}")
    return int(token)


def parse_sampling_rate(where: str, token: str) -> float:
    """The sampling frequency of ``fs[/counter_freq[(base_counter)]]``, finite and > 0.

    >>> parse_sampling_rate("x.hea", "360"), parse_sampling_rate("x.hea", "128/1000(0)")
    (360.0, 128.0)
    >>> parse_sampling_rate("x.hea", "-360")
    Traceback (most recent call last):
    ...
    pipelines.core.errors.DataError: x.hea: sampling rate: '-360' is not a positive number of Hz
    """
    match = _FS.fullmatch(token)
    fs_text = match.group("fs") if match else token
    if not _DECIMAL.fullmatch(fs_text) or not math.isfinite(float(fs_text)) or float(fs_text) <= 0:
        raise DataError(where, f"sampling rate: {fs_text!r} is not a positive number of Hz")
    for part in ("counter", "base"):
        value = match.group(part)
        if value is not None and not _FLOAT.fullmatch(value):
            raise DataError(where, f"sampling rate: counter frequency field {token!r} is not numeric")
    return float(fs_text)


def _record_line(where: str, line: str, record: str) -> tuple[int, float, int | None]:
    tokens = line.split()
    name, _, n_seg = tokens[0].partition("/")
    if name != record:
        raise DataError(where, f"record name: the header names record {name!r}, the file is {record}.hea")
    if n_seg:
        raise DataError(where, "number of segments: multi-segment records are not supported")
    if len(tokens) < 2:
        raise DataError(where, "number of signals: missing from the record line")
    n_sig = _int_field(where, "number of signals", tokens[1], unsigned=True)
    if len(tokens) < 3:
        raise DataError(where, "sampling rate: missing from the record line (WFDB would assume 250 Hz)")
    fs = parse_sampling_rate(where, tokens[2])
    sig_len = None
    if len(tokens) > 3:
        sig_len = _int_field(where, "number of samples", tokens[3], unsigned=True)
    return n_sig, fs, sig_len


def _signal_line(where: str, line: str, i: int) -> tuple:
    tokens = line.split(maxsplit=8)
    label = f"signal {i}"
    if len(tokens) < 2:
        raise DataError(where, f"{label} format: missing (the line names only {tokens[0]!r})")
    fname = tokens[0]
    fmt_match = _FORMAT.fullmatch(tokens[1])
    if not fmt_match:
        raise DataError(where, f"{label} format: {tokens[1]!r} is not '<format>[x<spf>][:<skew>][+<offset>]'")
    fmt = fmt_match.group("fmt")
    if fmt not in _signal.DAT_FMTS:
        raise DataError(where, f"{label} format: {fmt!r} is not a WFDB signal format ({', '.join(_signal.DAT_FMTS)})")
    if fmt_match.group("spf") not in (None, "1"):
        raise DataError(where, f"{label} format: {fmt_match.group('spf')} samples per frame are not supported")
    if fmt_match.group("skew") not in (None, "0"):
        raise DataError(where, f"{label} format: skewed signals are not supported")
    gain, baseline, units = 0.0, None, None
    if len(tokens) > 2:
        parts = _GAIN.fullmatch(tokens[2])
        gain_text = parts.group("gain") if parts else tokens[2]
        if not _FLOAT.fullmatch(gain_text) or not math.isfinite(float(gain_text)):
            raise DataError(where, f"{label} ADC gain: {gain_text!r} is not a number")
        gain = float(gain_text)
        if parts.group("baseline") is not None:
            baseline = _int_field(where, f"{label} baseline", parts.group("baseline"))
        units = parts.group("units")
        if units is not None and not units.strip():
            raise DataError(where, f"{label} units: empty after '/'")
    adc_res = _int_field(where, f"{label} ADC resolution", tokens[3], unsigned=True) if len(tokens) > 3 else None
    adc_zero = _int_field(where, f"{label} ADC zero", tokens[4]) if len(tokens) > 4 else None
    if len(tokens) > 5:
        _int_field(where, f"{label} initial value", tokens[5])
    if len(tokens) > 6:
        _int_field(where, f"{label} checksum", tokens[6])
    if len(tokens) > 7:
        _int_field(where, f"{label} block size", tokens[7], unsigned=True)
    if baseline is None:
        baseline = adc_zero  # WFDB: the baseline defaults to the ADC zero
    name = tokens[8].strip() if len(tokens) > 8 else ""
    if not name:
        raise DataError(where, f"{label} name: missing (the line has no description naming the lead)")
    return fname, fmt, gain, baseline, units, adc_res, adc_zero, name


def check_header_text(text: str, where: str, record: str) -> HeaderFields:
    """Validate the text of ``<record>.hea``; return the fields the pipeline uses.

    Parameters
    ----------
    text : str
        The header file's content.
    where : str
        Name used in errors, ``"<db>/<record>.hea"``.
    record : str
        The record name the file is stored under (the header must name the same record).

    Raises
    ------
    DataError
        ``(where, "<field>: <problem>")`` for the first field that is missing or malformed.
    """
    lines = _lines(text)
    if not lines:
        raise DataError(where, "record line: the header is empty")
    n_sig, fs, sig_len = _record_line(where, lines[0], record)
    signal_lines = lines[1:]
    if n_sig == 0:
        raise DataError(where, "number of signals: 0 (empty record: the header declares no signals)")
    if len(signal_lines) != n_sig:
        raise DataError(where, f"number of signals: the record line declares {n_sig}, the header has "
                               f"{len(signal_lines)} signal line(s)")
    if sig_len == 0:
        raise DataError(where, "number of samples: 0 (empty record)")
    rows = [_signal_line(where, line, i) for i, line in enumerate(signal_lines[:n_sig])]
    cols = list(zip(*rows))
    return HeaderFields(n_sig=n_sig, fs=fs, sig_len=sig_len, file_name=tuple(cols[0]), fmt=tuple(cols[1]),
                        adc_gain=tuple(cols[2]), baseline=tuple(cols[3]), units=tuple(cols[4]),
                        adc_res=tuple(cols[5]), adc_zero=tuple(cols[6]), sig_name=tuple(cols[7]))


def adc_limits(fields: HeaderFields, ch: int) -> tuple[int, int]:
    """Lowest and highest valid digital value of signal ``ch``: the ADC range, within the format's.

    The ADC range is ``adc_zero +- 2**(adc_res - 1)`` when the header gives a resolution; the
    format's range (less its invalid-sample code) bounds it either way.

    >>> f = check_header_text("r 1 360\\nr.dat 212 200 11 1024 0 0 0 MLII\\n", "r.hea", "r")
    >>> adc_limits(f, 0)
    (0, 2047)
    >>> adc_limits(check_header_text("r 1 360\\nr.dat 16 200 0 0 0 0 0 II\\n", "r.hea", "r"), 0)
    (-32767, 32767)
    """
    fmt = fields.fmt[ch]
    lo, hi = _signal.SAMPLE_VALUE_RANGE[fmt]
    nan_value = _signal.INVALID_SAMPLE_VALUE.get(fmt)
    if nan_value == lo:
        lo += 1
    res, zero = fields.adc_res[ch], fields.adc_zero[ch] or 0
    if res:
        lo, hi = max(lo, zero - 2 ** (res - 1)), min(hi, zero + 2 ** (res - 1) - 1)
    return int(lo), int(hi)


__all__ = ["HeaderFields", "adc_limits", "check_header_text", "parse_sampling_rate"]
