"""Ingest stage: locate or download a WFDB database, verify every record, write its manifest.

Usage (the ``ingest`` stage of ``dvc.yaml``)::

    python -m pipelines.ingest --params params.yaml --out datasets/raw/mitdb

Source
    The local directory named by ``$MITDB_DIR`` when set (``$<DATABASE>_DIR`` in general, see
    :func:`pipelines.records.reader.source_env_var`); the files stay there and are not copied.
    Otherwise the database is downloaded from PhysioNet with ``wfdb.dl_database`` into
    ``<out>/files/``. The download lands in a temporary directory beside ``<out>`` and is only
    renamed into place after every record has been verified.

Verification
    Every record goes through :func:`pipelines.records.reader.load_record`: header parse, file
    presence, SHA-256, exact signal-file sizes, per-signal checksums and initial values, invalid
    (NaN) samples in the default lead (MLII, else the first channel), units, and the annotation
    file (readable, non-empty, known symbols, inside the signal).

Params (section ``ingest`` of ``params.yaml``)
    ``database``
        PhysioNet slug (``mitdb``). Any WFDB database with beat annotations works, at its own
        sampling rate.
    ``version``
        Database version (recorded in the manifest; for a download it must be the version
        PhysioNet serves, the only one ``wfdb.dl_database`` can fetch).
    ``records``
        ``all`` or a list of record names (quote names with leading zeros). ``all`` means every
        record (``.hea``) in the checksum file, or, with ``checksums: null``, every ``.hea`` in
        the source directory.
    ``annotator``
        Annotation file extension (``atr``).
    ``checksums``
        Path (relative to the params file) of a ``sha256sum``-format file pinning the SHA-256 of
        every file (``pipelines/checksums/mitdb.sha256``). A mismatch stops the stage with a
        :class:`~pipelines.core.errors.ChecksumError` naming the file. ``null`` means "no pinned
        hashes": the records are still fully verified against their headers and the hashes
        computed are recorded in the manifest (``"checksums": "computed"``), so a later run can
        be pinned with ``sha256sum *.hea *.dat *.atr | LC_ALL=C sort -k2``.
    ``fs`` (optional)
        Expected sampling rate in Hz; when set, a record at another rate is refused.

Output
    ``<out>/manifest.json`` (sorted keys, no absolute paths, byte-identical across machines)::

        {"database": "mitdb", "version": "1.0.0", "source": "local" | "download",
         "annotator": "atr", "checksums": "pinned" | "computed",
         "records": {"100": {"fs": 360.0, "n_samples": 650000, "sig_names": ["MLII", "V5"],
                             "lead": "MLII", "n_annotations": 2274, "n_beats": 2273,
                             "files": {"100.atr": "<sha256>", "100.dat": ..., "100.hea": ...}}, ...}}

    plus ``<out>/files/`` for a download. ``<out>`` is written with
    :func:`~pipelines.core.files.atomic_dir`: a failed ingest leaves no new output behind.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path
from typing import Any, Mapping, Sequence, TextIO

import wfdb

from .core.errors import ConfigError, DataError
from .core.files import atomic_dir, write_json
from .core.progress import Progress
from .records.reader import DOWNLOAD_SUBDIR, MANIFEST_NAME, RecordInfo, load_record, source_env_var
from .core.params import load_params

_PIN_LINE = re.compile(r"^([0-9a-fA-F]{64}) [ *](\S(?:.*\S)?)$")


def read_checksum_file(path: str | os.PathLike) -> dict[str, str]:
    """Parse a ``sha256sum``-format file (``"<hex>  <file>"`` per line) into ``{file: hex}``.

    Raises
    ------
    ConfigError
        The file is missing, a line is malformed, or a file is listed twice.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: checksum file not found (set ingest.checksums: null to ingest a database "
                          f"without pinned hashes)")
    pins: dict[str, str] = {}
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        match = _PIN_LINE.match(line.rstrip("\r"))
        if not match:
            raise ConfigError(f"{path}:{lineno}: not a '<sha256>  <file>' line: {line!r}")
        digest, fname = match.group(1).lower(), match.group(2)
        if fname in pins:
            raise ConfigError(f"{path}:{lineno}: {fname} is listed twice")
        pins[fname] = digest
    if not pins:
        raise ConfigError(f"{path}: checksum file lists no files")
    return pins


def format_checksum_file(hashes: Mapping[str, str]) -> str:
    """``sha256sum`` text for ``{file: hex}``, sorted by file name (the pinned-file format).

    >>> print(format_checksum_file({"b.dat": "1" * 64, "a.hea": "2" * 64}), end="")
    2222222222222222222222222222222222222222222222222222222222222222  a.hea
    1111111111111111111111111111111111111111111111111111111111111111  b.dat
    """
    return "".join(f"{hashes[f]}  {f}\n" for f in sorted(hashes))


def record_of(fname: str) -> str:
    """Record a file belongs to: its name without the last extension (``"100.dat"`` -> ``"100"``)."""
    return fname.rsplit(".", 1)[0]


def group_by_record(pins: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """``{file: hex}`` -> ``{record: {file: hex}}``, for records that have a pinned ``.hea``."""
    records = {record_of(f) for f in pins if f.endswith(".hea")}
    grouped: dict[str, dict[str, str]] = {r: {} for r in sorted(records)}
    for fname, digest in pins.items():
        if record_of(fname) in grouped:
            grouped[record_of(fname)][fname] = digest
    return grouped


def select_records(requested: Any, available: Sequence[str], *, where: str) -> list[str]:
    """Resolve ``ingest.records`` (``"all"`` or a list) against the records ``available``; sorted names.

    >>> select_records("all", ["101", "100"], where="pins")
    ['100', '101']
    >>> select_records([101, "100"], ["100", "101"], where="pins")
    ['100', '101']
    """
    if requested == "all":
        names = sorted(available)
    elif isinstance(requested, (list, tuple)) and requested:
        names = sorted(str(r) for r in requested)
    else:
        raise ConfigError(f"ingest.records must be 'all' or a non-empty list of record names, not {requested!r}")
    unknown = [n for n in names if n not in set(available)]
    if unknown:
        raise ConfigError(f"ingest.records: unknown record(s) {', '.join(unknown)} (not in {where})")
    if len(set(names)) != len(names):
        raise ConfigError(f"ingest.records lists a record twice: {names}")
    if not names:
        raise ConfigError(f"ingest.records: no records found in {where}")
    return names


def local_records(source_dir: Path) -> list[str]:
    """Names of the records (``*.hea`` files) directly in ``source_dir``."""
    return sorted(p.name[: -len(".hea")] for p in source_dir.glob("*.hea"))


def download_database(database: str, version: str, dest: Path, *, records: Sequence[str] | str = "all",
                      annotator: str = "atr") -> Path:
    """Download ``database`` from PhysioNet into ``dest`` with ``wfdb.dl_database``.

    ``wfdb.dl_database`` always fetches the latest version, so the version PhysioNet serves is
    checked against ``version`` first. The caller verifies the files afterwards.

    Raises
    ------
    DataError
        The served version differs, or the download fails (network, unknown database).
    """
    try:
        served = wfdb.io.download.get_version(database)
    except Exception as exc:  # network errors come in many types
        raise DataError(database, f"cannot reach PhysioNet to download: {exc}") from None
    if str(served) != str(version):
        raise DataError(database, f"PhysioNet serves version {served}, ingest.version asks for {version}; "
                                  f"wfdb.dl_database can only download the latest version")
    dest.mkdir(parents=True, exist_ok=True)
    recs = records if isinstance(records, str) else list(records)
    try:
        wfdb.dl_database(database, str(dest), records=recs, annotators=[annotator], keep_subdirs=True,
                         overwrite=True)
    except Exception as exc:
        raise DataError(database, f"download from PhysioNet failed: {exc}") from None
    return dest


def _check_params(params: Mapping[str, Any]) -> None:
    for key in ("database", "version", "records", "annotator"):
        if params.get(key) in (None, ""):
            raise ConfigError(f"ingest.{key} is missing from params")
    if "checksums" not in params:
        raise ConfigError("ingest.checksums is missing from params (a path, or null for no pinned hashes)")
    fs = params.get("fs")
    if fs is not None and (not isinstance(fs, (int, float)) or fs <= 0):
        raise ConfigError(f"ingest.fs must be null or a positive rate in Hz, not {fs!r}")


def ingest(params: Mapping[str, Any], out: str | os.PathLike, *, params_dir: str | os.PathLike = ".",
           environ: Mapping[str, str] | None = None, stream: TextIO | None = None) -> dict:
    """Verify the database named by ``params`` and write ``<out>/manifest.json`` atomically.

    Parameters
    ----------
    params : mapping
        The ``ingest`` section of ``params.yaml`` (see the module docstring).
    out : path
        Output directory (``datasets/raw/mitdb``); replaced as a whole on success only.
    params_dir : path
        Directory that a relative ``checksums`` path is resolved against.
    environ : mapping, optional
        Environment to read ``$<DATABASE>_DIR`` from (default ``os.environ``).
    stream : text stream, optional
        Where progress lines go (default stderr).

    Returns
    -------
    dict
        The manifest written.
    """
    _check_params(params)
    environ = os.environ if environ is None else environ
    database, version = str(params["database"]), str(params["version"])
    annotator, expected_fs = str(params["annotator"]), params.get("fs")
    pins = None
    if params["checksums"] is not None:
        pin_path = Path(params_dir) / str(params["checksums"])
        pins = group_by_record(read_checksum_file(pin_path))
    env_var = source_env_var(database)
    local = environ.get(env_var)
    if local and not Path(local).is_dir():
        raise ConfigError(f"{env_var}={local} is not a directory")

    out = Path(out)
    with atomic_dir(out) as tmp:
        if local:
            source, kind = Path(local), "local"
            available = list(pins) if pins is not None else local_records(source)
            names = select_records(params["records"], available,
                                   where=str(params["checksums"]) if pins is not None else f"{env_var}={local}")
        else:
            source, kind = tmp / DOWNLOAD_SUBDIR, "download"
            if pins is not None:
                names = select_records(params["records"], list(pins), where=str(params["checksums"]))
                wanted: Sequence[str] | str = names
            else:
                wanted = "all" if params["records"] == "all" else [str(r) for r in params["records"]]
            download_database(database, version, source, records=wanted, annotator=annotator)
            if pins is None:
                names = select_records(params["records"], local_records(source),
                                       where=f"the {database} download")

        progress = Progress("ingest", total=len(names), unit="records", stream=stream, interval=0)
        infos: list[RecordInfo] = []
        for name in names:
            _, info = load_record(source, name, annotator=annotator, database=database,
                                  expected_sha256=None if pins is None else pins[name])
            if expected_fs is not None and abs(info.fs - float(expected_fs)) > 1e-9:
                raise DataError(f"{database}/{name}", f"sampling rate {info.fs:g} Hz differs from "
                                                      f"ingest.fs = {float(expected_fs):g} Hz")
            infos.append(info)
            progress.update(1, note=f"{name} ok: {info.n_samples:,} samples x {len(info.sig_names)} signals at "
                                    f"{info.fs:g} Hz, lead {info.lead}, {info.n_beats:,} beats")
        manifest = {
            "database": database,
            "version": version,
            "source": kind,
            "annotator": annotator,
            "checksums": "pinned" if pins is not None else "computed",
            "records": {info.name: info.to_manifest() for info in infos},
        }
        write_json(tmp / MANIFEST_NAME, manifest)
        progress.done(f"{len(infos)} records verified ({kind}, {manifest['checksums']} SHA-256), "
                      f"{sum(i.n_beats for i in infos):,} beats, {sum(i.n_annotations for i in infos):,} "
                      f"annotations -> {out / MANIFEST_NAME}")
    return manifest


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; returns the exit status (1 on bad data or params)."""
    parser = argparse.ArgumentParser(prog="python -m pipelines.ingest", description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml", help="params file (section 'ingest')")
    parser.add_argument("--out", required=True, help="output directory, e.g. datasets/raw/mitdb")
    args = parser.parse_args(argv)
    try:
        params = load_params(args.params, "ingest")
        ingest(params, args.out, params_dir=Path(args.params).parent)
    except (DataError, ConfigError) as exc:
        print(f"ingest failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
