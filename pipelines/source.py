"""Source stage: a fingerprint of the records ``ingest`` reads, so DVC reruns ingest exactly when they change.

Usage (the ``source`` stage of ``dvc.yaml``, ``always_changed``)::

    python -m pipelines.source --params params.yaml --out datasets/raw/source.json

The source database lives outside the repository (``$MITDB_DIR``, or PhysioNet), so DVC cannot
hash it as a dep of ``ingest``. This stage runs on every ``dvc repro`` and writes a small JSON file
that ``ingest`` depends on; its bytes change exactly when the content ingest would verify changes:

``checksums: pinned`` (``ingest.checksums`` names a checksum file)
    The pinned SHA-256 of every file of the selected records, from the checksum file: the source
    is not read (ingest refuses any file that differs from its pin).
``checksums: computed`` (``ingest.checksums: null`` with ``$MITDB_DIR`` set)
    The SHA-256 of every file of the selected records in ``$MITDB_DIR``, computed now: the header,
    the signal files it names and the annotation file (a file missing is ``null``).
``checksums: none`` (``ingest.checksums: null``, no local copy)
    Nothing to hash before the download: the content is PhysioNet's ``database``/``version``.

Output (sorted keys, no paths, byte-identical across machines for the same content)::

    {"annotator": "atr", "checksums": "pinned" | "computed" | "none", "database": "mitdb",
     "files": {"100.atr": "<sha256>", ...}, "records": ["100", ...], "version": "1.0.0"}
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any, Mapping, Sequence

import wfdb

from .core.errors import ConfigError, DataError
from .core.files import sha256_file, write_json
from .core.params import load_params
from .records.checksums import group_by_record, read_checksum_file
from .records.reader import source_env_var
from .records.source import local_records, select_records


def record_files(source_dir: Path, name: str, annotator: str) -> list[str]:
    """Files ingest reads for record ``name``: header, the signal files it names, annotation file; sorted.

    A header that wfdb cannot parse contributes only itself (ingest then reports it).
    """
    files = {f"{name}.hea", f"{name}.{annotator}"}
    try:
        files.update(str(f) for f in wfdb.rdheader(str(source_dir / name)).file_name or [])
    except Exception:  # a missing or malformed header: its own hash (or null) marks the change
        pass
    return sorted(files)


def hash_files(source_dir: Path, names: Sequence[str]) -> dict[str, str | None]:
    """``{file: sha256}`` of the files ``names`` in ``source_dir``; ``None`` for a missing file."""
    return {f: sha256_file(source_dir / f) if (source_dir / f).is_file() else None for f in names}


def fingerprint(params: Mapping[str, Any], *, params_dir: str | os.PathLike = ".",
                environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The fingerprint of the source content that ``ingest`` with ``params`` would verify.

    Parameters are those of :func:`pipelines.ingest.ingest` (``params``: the ``ingest`` section).

    Raises
    ------
    ConfigError
        A key is missing, the checksum file is unreadable, ``$<DATABASE>_DIR`` is not a directory,
        or ``ingest.records`` names unknown records.
    """
    for key in ("database", "version", "records", "annotator", "checksums"):
        if key not in params:
            raise ConfigError(f"ingest.{key} is missing from params")
    environ = os.environ if environ is None else environ
    database, annotator = str(params["database"]), str(params["annotator"])
    out: dict[str, Any] = {"database": database, "version": str(params["version"]), "annotator": annotator}
    if params["checksums"] is not None:
        pins = group_by_record(read_checksum_file(Path(params_dir) / str(params["checksums"])))
        names = select_records(params["records"], list(pins), where=str(params["checksums"]))
        files: dict[str, str | None] = {f: h for name in names for f, h in pins[name].items()}
        return {**out, "checksums": "pinned", "records": names, "files": dict(sorted(files.items()))}
    env_var = source_env_var(database)
    local = environ.get(env_var)
    if not local:
        names = [] if params["records"] == "all" else sorted(str(r) for r in params["records"])
        return {**out, "checksums": "none", "records": names, "files": {}}
    source = Path(local)
    if not source.is_dir():
        raise ConfigError(f"{env_var}={local} is not a directory")
    names = select_records(params["records"], local_records(source), where=f"{env_var}={local}")
    wanted = [f for name in names for f in record_files(source, name, annotator)]
    files = dict(sorted(hash_files(source, wanted).items()))
    return {**out, "checksums": "computed", "records": names, "files": files}


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; returns the exit status (1 on bad params or an unreadable source)."""
    parser = argparse.ArgumentParser(prog="python -m pipelines.source", description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml", help="params file (section 'ingest')")
    parser.add_argument("--out", required=True, help="output file, e.g. datasets/raw/source.json")
    args = parser.parse_args(argv)
    try:
        params = load_params(args.params, "ingest")
        found = fingerprint(params, params_dir=Path(args.params).parent)
        write_json(args.out, found)
    except (DataError, ConfigError, OSError) as exc:
        print(f"source failed: {exc}", file=sys.stderr)
        return 1
    print(f"source: {len(found['records'])} records, {len(found['files'])} files ({found['checksums']} SHA-256) "
          f"-> {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
