"""``sha256sum``-format checksum files: parse, format, group the pinned hashes by record.

The pinned hashes of a database (``pipelines/checksums/mitdb.sha256``) are one ``"<sha256>  <file>"``
line per file, sorted by file name, as ``sha256sum *.hea *.dat *.atr | LC_ALL=C sort -k2`` prints them.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Mapping

from ..core.errors import ConfigError

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
