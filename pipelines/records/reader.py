"""Read and verify WFDB records: one ECG lead in millivolts plus every reference annotation.

This is the only module that opens raw WFDB files. Every check a record must pass before any
stage uses it happens here, in :func:`load_record`, so that ``ingest`` (which verifies a whole
database) and ``segment`` (which reads one record at a time) apply exactly the same rules:

* the ``.hea`` header exists and every field the pipeline uses is well formed
  (:func:`pipelines.records.header.check_header_text`: single-segment records, one sample per
  frame, a positive sampling rate, numeric gains ...); a bad field is refused as
  ``DataError("<db>/<record>.hea", "<field>: <problem>")``;
* the signal files named by the header and the ``<name>.<annotator>`` file exist;
* their SHA-256 match ``expected_sha256`` when given (:class:`~pipelines.core.errors.ChecksumError`);
* each signal file has exactly the size its header implies (format 212: 3 bytes per 2 samples),
  so a truncated download is caught before decoding;
* each signal's 16-bit checksum and initial value match the header;
* the chosen lead has no invalid samples (the WFDB "NaN" value, e.g. -2048 in format 212);
* the signal is in mV, uV or V (converted to mV);
* the annotation file is non-empty and uses only symbols of WFDB's label table
  (``wfdb.io.annotation.ann_label_table``).

Annotations that are usable in no stage are not fatal: annotations outside the signal and
duplicate or conflicting beat annotations at one sample are excluded, one reason each
(:mod:`pipelines.records.annotations`), and counted in ``EcgRecord.excluded_annotations`` and
the manifest entry.

Any failure raises :class:`~pipelines.core.errors.DataError` naming ``"<db>/<record>"`` (or
``"<db>/<file>"`` for a checksum mismatch) and the problem.

Examples
--------
>>> import os
>>> from pipelines.records.reader import read_record
>>> rec = read_record(os.environ["MITDB_DIR"], "114")          # doctest: +SKIP
>>> rec.lead, rec.fs, rec.signal.dtype, len(rec.signal)        # doctest: +SKIP
('MLII', 360.0, dtype('float32'), 650000)
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import wfdb
from wfdb.io import _signal
from wfdb.io.record import MultiRecord

from ..core.errors import ChecksumError, DataError
from ..core.files import read_json, sha256_file
from ..signal.labels import BEAT_SYMBOLS
from .annotations import ANNOTATION_SYMBOLS, read_annotations
from .header import HeaderFields, adc_limits, check_header_text

#: Unit spellings accepted for a signal, with the factor that converts them to millivolts.
#: A header without units means millivolts (WFDB default).
UNIT_TO_MV: dict[str, float] = {"mv": 1.0, "uv": 1e-3, "µv": 1e-3, "μv": 1e-3, "v": 1e3}

#: ADC gain WFDB assumes when a header gives 0 (``DEFGAIN`` in the WFDB library).
DEFAULT_ADC_GAIN = 200.0

MANIFEST_NAME = "manifest.json"
DOWNLOAD_SUBDIR = "files"


@dataclass(frozen=True)
class EcgRecord:
    """One record, ready for segmentation: a single lead in mV and every reference annotation.

    Attributes
    ----------
    name : str
        Record name, e.g. ``"100"``.
    fs : float
        Sampling rate in Hz, from the header.
    lead : str
        Name of the lead in ``signal`` (``"MLII"``, or the first channel's name when absent).
    signal : ndarray, float32, shape (n_samples,)
        The chosen lead in millivolts.
    ann_sample : ndarray, int64
        Sample index of every annotation (beats and non-beats), sorted.
    ann_symbol : ndarray, object
        Annotation symbols (str), aligned with ``ann_sample``.
    adc_limits_mv : tuple of float, optional
        The lowest and highest value the lead's ADC can record, in mV (a sample there may be
        clipped); None when unknown.
    excluded_annotations : dict
        Annotations left out of ``ann_sample``, per reason and symbol
        (:data:`pipelines.records.annotations.ANNOTATION_REASONS`); ``{}`` when none.
    """

    name: str
    fs: float
    lead: str
    signal: np.ndarray
    ann_sample: np.ndarray
    ann_symbol: np.ndarray
    adc_limits_mv: tuple[float, float] | None = None
    excluded_annotations: dict[str, dict[str, int]] = field(default_factory=dict)


@dataclass(frozen=True)
class RecordInfo:
    """What ``ingest`` writes to the manifest about one verified record.

    ``files`` maps each file read (header, signal files, annotation file), and any other pinned
    file of the record, to its SHA-256. ``excluded_annotations`` counts the annotations left
    out, per reason and symbol; it appears in the manifest only when there are some.
    """

    name: str
    fs: float
    n_samples: int
    sig_names: tuple[str, ...]
    lead: str
    n_annotations: int
    n_beats: int
    files: dict[str, str] = field(default_factory=dict)
    excluded_annotations: dict[str, dict[str, int]] = field(default_factory=dict)

    def to_manifest(self) -> dict:
        """The record's entry in ``manifest.json`` (JSON types only, no paths)."""
        entry = {
            "fs": self.fs,
            "n_samples": self.n_samples,
            "sig_names": list(self.sig_names),
            "lead": self.lead,
            "n_annotations": self.n_annotations,
            "n_beats": self.n_beats,
            "files": dict(sorted(self.files.items())),
        }
        if self.excluded_annotations:
            entry["excluded_annotations"] = self.excluded_annotations
        return entry


def source_env_var(database: str = "mitdb") -> str:
    """Environment variable naming a local copy of ``database``: ``MITDB_DIR`` for ``mitdb``.

    >>> source_env_var("mitdb"), source_env_var("incartdb")
    ('MITDB_DIR', 'INCARTDB_DIR')
    """
    return "".join(c if c.isalnum() else "_" for c in database.upper()) + "_DIR"


def load_manifest(raw_dir: str | os.PathLike) -> dict:
    """Load ``<raw_dir>/manifest.json`` written by ``python -m pipelines.ingest``.

    Raises
    ------
    DataError
        When the manifest is missing or not valid JSON (run the ingest stage first).
    """
    path = Path(raw_dir) / MANIFEST_NAME
    manifest = read_json(path, "manifest not found; run `python -m pipelines.ingest` (dvc repro ingest) first")
    if not isinstance(manifest.get("records"), dict):
        raise DataError(str(path), "manifest has no 'records' mapping")
    return manifest


def resolve_source(raw_dir: str | os.PathLike, database: str | None = None) -> Path:
    """Directory holding the raw WFDB files: ``$MITDB_DIR`` when set, else ``<raw_dir>/files``.

    The variable is :func:`source_env_var` of ``database`` (default: the manifest's
    ``database``, else ``"mitdb"``), so ``MITDB_DIR`` for MIT-BIH.
    """
    raw_dir = Path(raw_dir)
    if database is None:
        try:
            database = str(load_manifest(raw_dir).get("database", "mitdb"))
        except DataError:
            database = "mitdb"
    local = os.environ.get(source_env_var(database))
    if local:
        path = Path(local)
        if not path.is_dir():
            raise DataError(source_env_var(database), f"{local} is not a directory")
        return path
    return raw_dir / DOWNLOAD_SUBDIR


def expected_dat_bytes(fmt: str, n_samples: int, n_signals: int, byte_offset: int = 0) -> int | None:
    """Size in bytes of a WFDB signal file holding ``n_signals`` interleaved signals.

    Returns None for the compressed formats (508/516/524), whose size depends on the data.

    >>> expected_dat_bytes("212", 650000, 2)
    1950000
    >>> expected_dat_bytes("16", 10, 3, byte_offset=4)
    64
    """
    if fmt in _signal.COMPRESSED_FMTS:
        return None
    return int(byte_offset) + _signal._required_byte_num("read", fmt, int(n_samples) * int(n_signals))


def checksum16(digital: np.ndarray) -> np.ndarray:
    """WFDB signal checksums: the sum of each column's samples modulo 2**16, as signed 16-bit.

    >>> checksum16(np.array([[30000], [30000]])).tolist()
    [-5536]
    """
    digital = np.asarray(digital)
    # one contiguous-enough 1-D sum per column: much faster than sum(axis=0) on an (n, 2) array
    total = np.array([column.sum(dtype=np.int64) for column in digital.T], dtype=np.int64)
    return (total + 32768) % 65536 - 32768


def _database_name(source_dir: Path) -> str:
    return source_dir.parent.name if source_dir.name == DOWNLOAD_SUBDIR else source_dir.name


def _read_header(where: str, source_dir: Path, name: str):
    """The wfdb header object and the strictly validated fields of ``<name>.hea``."""
    hea = source_dir / f"{name}.hea"
    if not hea.is_file():
        raise DataError(where, f"missing header file {hea.name}")
    try:
        text = hea.read_text(encoding="latin-1")
    except OSError as exc:
        raise DataError(where, f"unreadable header {hea.name}: {exc}") from None
    fields = check_header_text(text, f"{where}.hea", name)
    try:
        header = wfdb.rdheader(str(source_dir / name))
    except Exception as exc:  # wfdb raises many types for a malformed header
        raise DataError(where, f"corrupt header {hea.name}: {exc}") from None
    if isinstance(header, MultiRecord) or not header.n_sig or header.n_sig != fields.n_sig \
            or list(header.file_name) != list(fields.file_name) or float(header.fs) != fields.fs:
        raise DataError(where, f"corrupt header {hea.name}: wfdb reads it differently "
                               f"({header.n_sig} signals at {header.fs} Hz)")
    return header, fields


#: How a checksum error names the expected hashes: pinned in a checksum file, or computed by ingest
#: (``ingest.checksums: null``) and recorded in its manifest. Values: (unlisted file, mismatch).
EXPECTED_FROM = {
    "pins": ("no pinned SHA-256 for this file", "differs from the pinned {want}"),
    "manifest": ("ingest's manifest records no SHA-256 for this file",
                 "differs from {want}, recorded by ingest (the source changed since: rerun ingest)"),
}


def _check_hashes(database: str, files: dict[str, Path], expected: dict[str, str] | None,
                  expected_from: str = "pins") -> dict[str, str]:
    """SHA-256 of each file; refuse any mismatch with ``expected`` and any file it does not list."""
    hashes = {fname: sha256_file(path) for fname, path in files.items()}
    if expected is None:
        return hashes
    unlisted, mismatch = EXPECTED_FROM[expected_from]
    for fname in sorted(set(hashes) - set(expected)):
        raise ChecksumError(f"{database}/{fname}", unlisted)
    for fname, want in sorted(expected.items()):
        got = hashes[fname]
        if got != want.lower():
            raise ChecksumError(f"{database}/{fname}", f"SHA-256 {got} " + mismatch.format(want=want))
    return hashes


def _check_sizes(where: str, source_dir: Path, header) -> None:
    groups: dict[str, list[int]] = {}
    for i, fname in enumerate(header.file_name):
        groups.setdefault(fname, []).append(i)
    for fname, idx in groups.items():
        fmt = header.fmt[idx[0]]
        if fmt not in _signal.DAT_FMTS:
            raise DataError(where, f"{fname}: unknown WFDB signal format {fmt!r}")
        if header.sig_len is None:
            continue
        offset = (header.byte_offset or [None] * header.n_sig)[idx[0]] or 0
        want = expected_dat_bytes(fmt, header.sig_len, len(idx), offset)
        if want is None:
            continue
        have = (source_dir / fname).stat().st_size
        if have != want:
            kind = "truncated" if have < want else "longer than its header says"
            raise DataError(where, f"{fname} has {have:,} bytes, expected {want:,} ({header.sig_len:,} samples x "
                                   f"{len(idx)} signals, format {fmt}): {kind}")


def _check_signals(where: str, header, digital: np.ndarray) -> None:
    if digital.shape[0] == 0:
        raise DataError(where, "empty record: 0 samples")
    sums = checksum16(digital)
    for i, signame in enumerate(header.sig_name):
        want = (header.checksum or [None] * header.n_sig)[i]
        if want is not None and int(sums[i]) != (int(want) + 32768) % 65536 - 32768:
            raise DataError(where, f"signal {i} ({signame}): checksum {int(sums[i])} differs from the header's "
                                   f"{int(want)} (corrupt signal file {header.file_name[i]})")
        init = (header.init_value or [None] * header.n_sig)[i]
        if init is not None and int(digital[0, i]) != int(init):
            raise DataError(where, f"signal {i} ({signame}): first sample {int(digital[0, i])} differs from the "
                                   f"header's initial value {int(init)}")


def _to_millivolts(where: str, header, fields: HeaderFields, digital: np.ndarray,
                   ch: int) -> tuple[np.ndarray, tuple[float, float]]:
    """Lead ``ch`` in mV, and the lead's ADC limits in mV (converted exactly like the samples)."""
    fmt = header.fmt[ch]
    nan_value = _signal.INVALID_SAMPLE_VALUE.get(fmt)
    column = digital[:, ch]
    if nan_value is not None:
        invalid = np.flatnonzero(column == nan_value)
        if invalid.size:
            raise DataError(where, f"lead {header.sig_name[ch]}: {invalid.size:,} invalid samples (NaN, digital "
                                   f"value {nan_value}), first at sample {int(invalid[0])}")
    unit = fields.units[ch] or "mV"
    factor = UNIT_TO_MV.get(unit.strip().lower())
    if factor is None:
        raise DataError(where, f"lead {header.sig_name[ch]}: units {unit!r} are not a voltage (mV, uV or V)")
    gain = fields.adc_gain[ch] or DEFAULT_ADC_GAIN
    baseline = float(fields.baseline[ch] if fields.baseline[ch] is not None else 0)
    limits = ((np.array(adc_limits(fields, ch)) - baseline) * (factor / gain)).astype(np.float32)
    lo, hi = sorted(float(v) for v in limits)
    return ((column - baseline) * (factor / gain)).astype(np.float32), (lo, hi)


def load_record(source_dir: str | os.PathLike, name: str, *, lead: str | None = "MLII", annotator: str = "atr",
                expected_sha256: dict[str, str] | None = None,
                database: str | None = None, expected_from: str = "pins") -> tuple[EcgRecord, RecordInfo]:
    """Read and fully verify one record; return it and its manifest facts.

    Parameters are those of :func:`read_record`.

    Returns
    -------
    record : EcgRecord
    info : RecordInfo
        Sampling rate, length, signal names, annotation counts and the SHA-256 of every file read.
    """
    source_dir = Path(source_dir)
    name = str(name)
    database = database or _database_name(source_dir)
    where = f"{database}/{name}"
    hea = f"{name}.hea"
    if expected_sha256 and hea in expected_sha256 and (source_dir / hea).is_file():
        # a header that differs from its pin is reported as such, before any parse error
        _check_hashes(database, {hea: source_dir / hea}, {hea: expected_sha256[hea]}, expected_from)
    header, fields = _read_header(where, source_dir, name)

    files: dict[str, Path] = {f"{name}.hea": source_dir / f"{name}.hea"}
    for fname in dict.fromkeys(header.file_name):
        files[fname] = source_dir / fname
    files[f"{name}.{annotator}"] = source_dir / f"{name}.{annotator}"
    for fname in expected_sha256 or {}:  # other pinned files of the record (another annotator ...)
        files.setdefault(fname, source_dir / fname)
    for fname, path in files.items():
        if not path.is_file():
            raise DataError(where, f"missing file {fname}")
    hashes = _check_hashes(database, files, expected_sha256, expected_from)
    _check_sizes(where, source_dir, header)

    try:
        full = wfdb.rdrecord(str(source_dir / name), physical=False)
    except Exception as exc:
        raise DataError(where, f"unreadable signal file(s) {', '.join(dict.fromkeys(header.file_name))}: "
                               f"{exc}") from None
    digital = full.d_signal
    if digital is None or digital.ndim != 2 or digital.shape[1] != header.n_sig:
        raise DataError(where, "empty record: no samples decoded")
    _check_signals(where, header, digital)

    names = [str(s) for s in header.sig_name]
    ch = names.index(lead) if lead in names else 0
    signal, limits_mv = _to_millivolts(where, header, fields, digital, ch)
    ann_sample, ann_symbol, excluded = read_annotations(where, source_dir, name, annotator, digital.shape[0])

    record = EcgRecord(name=name, fs=float(header.fs), lead=names[ch], signal=signal,
                       ann_sample=ann_sample, ann_symbol=ann_symbol, adc_limits_mv=limits_mv,
                       excluded_annotations=excluded)
    n_beats = int(np.isin(ann_symbol.astype(str), BEAT_SYMBOLS).sum())
    info = RecordInfo(name=name, fs=float(header.fs), n_samples=int(digital.shape[0]), sig_names=tuple(names),
                      lead=names[ch], n_annotations=int(ann_sample.size), n_beats=n_beats, files=hashes,
                      excluded_annotations=excluded)
    return record, info


def read_record(source_dir: str | os.PathLike, name: str, *, lead: str | None = "MLII", annotator: str = "atr",
                expected_sha256: dict[str, str] | None = None, database: str | None = None,
                expected_from: str = "pins") -> EcgRecord:
    """Read one verified WFDB record: the ``lead`` channel in mV and all its annotations.

    Parameters
    ----------
    source_dir : path
        Directory with ``<name>.hea``, its signal files and ``<name>.<annotator>``
        (see :func:`resolve_source`).
    name : str
        Record name, e.g. ``"100"``.
    lead : str or None
        Preferred lead; the first channel is used when the record has no lead of that name
        (MIT-BIH 102 and 104 have no MLII and give V5; 114 stores MLII second).
    annotator : str
        Annotation file extension (``"atr"``: the reference annotations).
    expected_sha256 : dict, optional
        ``{"100.hea": "<hex>", ...}``, e.g. ``load_manifest(raw)["records"]["100"]["files"]``.
        Every file listed must exist and match, and every file read must be listed.
    expected_from : {"pins", "manifest"}
        Where ``expected_sha256`` comes from, for the error messages (:data:`EXPECTED_FROM`): a
        pinned checksum file, or ingest's manifest (whose hashes may have been computed, not pinned).
    database : str, optional
        Name used in error messages (default: the directory's name, or its parent's for a
        downloaded ``files/`` directory).

    Returns
    -------
    EcgRecord

    Raises
    ------
    DataError
        Missing/corrupt/truncated files, a malformed header field, checksum or initial-value
        mismatch, invalid (NaN) samples in the chosen lead, non-voltage units, unknown
        annotation symbols, or an empty record.
    ChecksumError
        A file's SHA-256 differs from ``expected_sha256``.
    """
    return load_record(source_dir, name, lead=lead, annotator=annotator, expected_sha256=expected_sha256,
                       database=database, expected_from=expected_from)[0]


__all__ = [
    "ANNOTATION_SYMBOLS", "EcgRecord", "RecordInfo", "checksum16", "expected_dat_bytes", "load_manifest",
    "load_record", "read_record", "resolve_source", "source_env_var",
]
