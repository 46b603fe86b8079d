"""Where a database's records come from: the records to take, a local copy, or a PhysioNet download."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import wfdb

from ..core.errors import ConfigError, DataError

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
