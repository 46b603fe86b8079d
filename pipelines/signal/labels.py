"""Beat label maps: MIT-BIH annotation symbols to AAMI EC57, Jun et al. 2018 and binary classes.

Every map lives here, in one module, so that segmentation, rendering, training and
evaluation agree on what a class is.

Examples
--------
>>> from pipelines.signal.labels import aami_class, jun8_class
>>> aami_class("L"), jun8_class("L")
('N', 'LBB')
>>> aami_class("~") is None
True
"""
from __future__ import annotations

from typing import Iterable

import numpy as np
import pandas as pd

#: WFDB beat annotation symbols (``wfdb`` / PhysioBank convention). Everything else in an
#: annotation file (rhythm changes ``+``, noise ``~``, flutter waves ``!``, comments ``"`` ...)
#: is not a beat.
BEAT_SYMBOLS: tuple[str, ...] = (
    "N", "L", "R", "B", "A", "a", "J", "S", "V", "r", "F", "e", "j", "n", "E", "/", "f", "Q", "?",
)

#: AAMI EC57 classes, in their conventional order.
AAMI_CLASSES: tuple[str, ...] = ("N", "S", "V", "F", "Q")

#: AAMI EC57 grouping. The core table (N: N L R e j; S: A a J S; V: V E; F: F; Q: / f Q) is the
#: one of de Chazal et al. 2004; ``B`` (bundle branch block, unspecified), ``n`` (supraventricular
#: escape), ``r`` (R-on-T PVC) and ``?`` (unclassifiable) follow EC57 too. MIT-BIH has none of
#: those four, other WFDB databases do.
AAMI_MAP: dict[str, str] = {
    "N": "N", "L": "N", "R": "N", "e": "N", "j": "N", "B": "N",
    "A": "S", "a": "S", "J": "S", "S": "S", "n": "S",
    "V": "V", "E": "V", "r": "V",
    "F": "F",
    "/": "Q", "f": "Q", "Q": "Q", "?": "Q",
}

#: The eight classes of Jun et al. 2018 (arXiv:1804.06812), in the paper's order.
JUN8_CLASSES: tuple[str, ...] = ("NOR", "PVC", "PAB", "RBB", "LBB", "APC", "VFW", "VEB")

#: Jun et al. 2018 map. ``!`` (ventricular flutter wave) is a beat label in their scheme although
#: it is not a beat annotation in WFDB; see ``segment.extra_symbols`` in ``params.yaml``.
JUN8_MAP: dict[str, str] = {
    "N": "NOR", "V": "PVC", "/": "PAB", "R": "RBB", "L": "LBB", "A": "APC", "!": "VFW", "E": "VEB",
}

#: Binary scheme: AAMI class N is ``normal``, every other AAMI class ``abnormal``.
BINARY_CLASSES: tuple[str, ...] = ("normal", "abnormal")

#: Label schemes by name, with their class order (the order of model outputs).
SCHEMES: dict[str, tuple[str, ...]] = {
    "aami": AAMI_CLASSES,
    "jun8": JUN8_CLASSES,
    "binary": BINARY_CLASSES,
}

#: Paced records, excluded from AAMI EC57 evaluations.
PACED_RECORDS: tuple[str, ...] = ("102", "104", "107", "217")

#: de Chazal et al. 2004 inter-patient split of MIT-BIH.
DS1: tuple[str, ...] = (
    "101", "106", "108", "109", "112", "114", "115", "116", "118", "119", "122", "124",
    "201", "203", "205", "207", "208", "209", "215", "220", "223", "230",
)
DS2: tuple[str, ...] = (
    "100", "103", "105", "111", "113", "117", "121", "123", "200", "202", "210", "212",
    "213", "214", "219", "221", "222", "228", "231", "232", "233", "234",
)


def is_beat(symbol: str) -> bool:
    """Return True when ``symbol`` is a WFDB beat annotation symbol."""
    return symbol in BEAT_SYMBOLS


def aami_class(symbol: str) -> str | None:
    """AAMI EC57 class (N, S, V, F or Q) of a beat symbol, or None for a non-beat symbol."""
    return AAMI_MAP.get(symbol)


def jun8_class(symbol: str) -> str | None:
    """Jun et al. 2018 class of a symbol, or None when the paper has no class for it."""
    return JUN8_MAP.get(symbol)


def binary_class(symbol: str) -> str | None:
    """``normal`` for AAMI N beats, ``abnormal`` for other beats, None for non-beats."""
    aami = AAMI_MAP.get(symbol)
    if aami is None:
        return None
    return "normal" if aami == "N" else "abnormal"


_MAPS = {
    "aami": AAMI_MAP,
    "jun8": JUN8_MAP,
    "binary": {s: ("normal" if c == "N" else "abnormal") for s, c in AAMI_MAP.items()},
}


def class_names(scheme: str) -> tuple[str, ...]:
    """Class names of a label scheme (``aami``, ``jun8`` or ``binary``), in output order."""
    try:
        return SCHEMES[scheme]
    except KeyError:
        raise ValueError(f"unknown label scheme {scheme!r}; expected one of {sorted(SCHEMES)}") from None


def map_symbols(symbols: Iterable[str | None], scheme: str) -> np.ndarray:
    """Map annotation symbols to class names of ``scheme`` (object array, None where unmapped).

    Examples
    --------
    >>> map_symbols(["N", "V", "+", None], "aami").tolist()
    ['N', 'V', None, None]
    """
    class_names(scheme)
    mapped = pd.Series(list(symbols), dtype=object).map(_MAPS[scheme])
    return mapped.astype(object).where(mapped.notna(), None).to_numpy()


def class_indices(symbols: Iterable[str | None], scheme: str) -> np.ndarray:
    """Integer class index of each symbol under ``scheme`` (-1 where the scheme has no class)."""
    names = class_names(scheme)
    lookup = {s: names.index(c) for s, c in _MAPS[scheme].items()}
    return pd.Series(list(symbols), dtype=object).map(lookup).fillna(-1).astype(np.int64).to_numpy()
