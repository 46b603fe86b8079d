"""Ingest stage: locate or download a WFDB database, verify every record, write its manifest.

Usage (the ``ingest`` stage of ``dvc.yaml``)::

    python -m pipelines.ingest --params params.yaml --out datasets/raw/mitdb

Source
    The local directory named by ``$MITDB_DIR`` when set (``$<DATABASE>_DIR`` in general, see
    :func:`pipelines.records.reader.source_env_var`); the files stay there and are not copied.
    Otherwise the database is downloaded from PhysioNet with ``wfdb.dl_database`` into
    ``<out>/files/``. The download lands in a temporary directory beside ``<out>`` and is only
    renamed into place after every record has been verified. The source is outside the
    repository: in ``dvc.yaml`` the ``source`` stage (:mod:`pipelines.source`) writes its
    fingerprint, a dep of ``ingest``, so that DVC reruns ingest when the source content changes.

Verification
    Every record goes through :func:`pipelines.records.reader.load_record`: header fields (a bad
    one is named, e.g. ``mitdb/100.hea: sampling rate: 'abc' is not a positive number of Hz``), file
    presence, SHA-256, exact signal-file sizes, per-signal checksums and initial values, invalid
    (NaN) samples in the default lead (MLII, else the first channel), units, and the annotation
    file (readable, non-empty, known symbols). Annotations outside the signal and duplicate or
    conflicting beat annotations are not fatal: they are excluded and counted per record
    (``excluded_annotations`` in the record's manifest entry, present only when there are some).

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
                             "files": {"100.atr": "<sha256>", "100.dat": ..., "100.hea": ...}}, ...,
                     "x1": {..., "excluded_annotations": {"outside_signal": {"N": 1}}}}}

    plus ``<out>/files/`` for a download. ``<out>`` is written with
    :func:`~pipelines.core.files.atomic_dir`: a failed ingest leaves no new output behind.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any, Mapping, Sequence, TextIO

from .core.errors import ConfigError, DataError
from .core.files import atomic_dir, write_json
from .core.progress import Progress
from .core.params import load_params, validate_section
from .core.stage import run_stage
from .records.annotations import describe_exclusions
from .records.checksums import group_by_record, read_checksum_file
from .records.reader import DOWNLOAD_SUBDIR, MANIFEST_NAME, RecordInfo, load_record, source_env_var
from .records.source import download_database, local_records, select_records

def _check_params(params: Mapping[str, Any]) -> None:
    """Check the ``ingest`` section against the params schema (docs/params.md)."""
    validate_section("ingest", dict(params))


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
            excluded = describe_exclusions(info.excluded_annotations)
            progress.update(1, note=f"{name} ok: {info.n_samples:,} samples x {len(info.sig_names)} signals at "
                                    f"{info.fs:g} Hz, lead {info.lead}, {info.n_beats:,} beats"
                                    + (f"; excluded annotations: {excluded}" if excluded else ""))
        manifest = {
            "database": database,
            "version": version,
            "source": kind,
            "annotator": annotator,
            "checksums": "pinned" if pins is not None else "computed",
            "records": {info.name: info.to_manifest() for info in infos},
        }
        write_json(tmp / MANIFEST_NAME, manifest)
        with_exclusions = [i.name for i in infos if i.excluded_annotations]
        progress.done(f"{len(infos)} records verified ({kind}, {manifest['checksums']} SHA-256), "
                      f"{sum(i.n_beats for i in infos):,} beats, {sum(i.n_annotations for i in infos):,} "
                      f"annotations" + (f" (annotations excluded in {', '.join(with_exclusions)})"
                                        if with_exclusions else "") + f" -> {out / MANIFEST_NAME}")
    return manifest


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; returns the exit status (2 on bad data or params, see :mod:`pipelines.core.stage`)."""
    parser = argparse.ArgumentParser(prog="python -m pipelines.ingest", description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml", help="params file (section 'ingest')")
    parser.add_argument("--out", required=True, help="output directory, e.g. datasets/raw/mitdb")
    args = parser.parse_args(argv)
    return run_stage("ingest", lambda: ingest(load_params(args.params, "ingest"), args.out,
                                              params_dir=Path(args.params).parent))


if __name__ == "__main__":
    sys.exit(main())
