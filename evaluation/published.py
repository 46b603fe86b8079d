"""Published reference figures (``evaluate.published`` in ``params.yaml``), checked.

Each entry::

    - source: "de Chazal et al. 2004 (linear discriminants, AAMI, DS1 -> DS2)"   # required
      labels: aami          # optional: label scheme the figures are for (aami | jun8 | binary)
      folds: ds1ds2         # optional: evaluation scheme (beat | record | ds1ds2)
      accuracy: 0.862       # optional overall figures, fractions in [0, 1]:
      sensitivity: ...      #   accuracy, sensitivity, specificity, ppv, f1, auc
      classes:              # optional per-class figures (sensitivity, specificity, ppv, f1, auc)
        N: {sensitivity: 0.869, ppv: 0.992}
      note: "..."           # optional free text, shown under the table

Examples
--------
>>> entries = parse_published([{"source": "X 2020", "accuracy": 0.9, "labels": "aami"}])
>>> entries[0].source, entries[0].figures
('X 2020', {'accuracy': 0.9})
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pipelines import SCHEMES, ConfigError

#: Overall figures an entry may give.
OVERALL_FIGURES: tuple[str, ...] = ("accuracy", "sensitivity", "specificity", "ppv", "f1", "auc")
#: Per-class figures an entry may give.
CLASS_FIGURES: tuple[str, ...] = ("sensitivity", "specificity", "ppv", "f1", "auc")
#: Evaluation schemes (``train.runs.<run>.folds``).
FOLD_SCHEMES: tuple[str, ...] = ("beat", "record", "ds1ds2")

_KEYS = {"source", "labels", "folds", "classes", "note", *OVERALL_FIGURES}


@dataclass(frozen=True)
class Published:
    """One published result to show beside ours."""

    source: str
    labels: str | None = None
    folds: str | None = None
    figures: dict[str, float] = field(default_factory=dict)
    classes: dict[str, dict[str, float]] = field(default_factory=dict)
    note: str | None = None

    def compares_with(self, info: dict[str, Any]) -> bool:
        """True when this entry gives a label and/or fold scheme and they are those of a run (``run.json``).

        An entry that gives neither is shown, but linked to no run.
        """
        if self.labels is None and self.folds is None:
            return False
        return ((self.labels is None or self.labels == info.get("labels"))
                and (self.folds is None or self.folds == info.get("folds")))


def _fraction(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"evaluate.published: {where} must be a number, got {value!r}")
    if not 0.0 <= float(value) <= 1.0:
        raise ConfigError(f"evaluate.published: {where} = {value} is not a fraction in [0, 1] "
                          "(write 0.9905, not 99.05)")
    return float(value)


def parse_published(entries: Any) -> list[Published]:
    """Check ``evaluate.published`` and return its entries (an absent list is empty).

    Raises
    ------
    ConfigError
        Naming the entry and key at fault: unknown keys, schemes or figures, values outside [0, 1].
    """
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise ConfigError("evaluate.published must be a list of entries")
    out = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("source"), str) or not entry["source"]:
            raise ConfigError(f"evaluate.published[{i}]: each entry needs a 'source' string")
        name = f"[{i}] ({entry['source']})"
        unknown = sorted(set(entry) - _KEYS)
        if unknown:
            raise ConfigError(f"evaluate.published{name}: unknown keys {unknown}; expected {sorted(_KEYS)}")
        labels, folds = entry.get("labels"), entry.get("folds")
        if labels is not None and labels not in SCHEMES:
            raise ConfigError(f"evaluate.published{name}: labels {labels!r} not in {sorted(SCHEMES)}")
        if folds is not None and folds not in FOLD_SCHEMES:
            raise ConfigError(f"evaluate.published{name}: folds {folds!r} not in {list(FOLD_SCHEMES)}")
        figures = {k: _fraction(entry[k], f"{name}.{k}") for k in OVERALL_FIGURES if k in entry}
        classes = {}
        raw_classes = entry.get("classes") or {}
        if not isinstance(raw_classes, dict):
            raise ConfigError(f"evaluate.published{name}: 'classes' must map class names to figures")
        for cls, figs in raw_classes.items():
            if not isinstance(figs, dict) or not figs or set(figs) - set(CLASS_FIGURES):
                raise ConfigError(f"evaluate.published{name}.classes.{cls}: expected a mapping of "
                                  f"{list(CLASS_FIGURES)}, got {figs!r}")
            classes[str(cls)] = {k: _fraction(v, f"{name}.classes.{cls}.{k}") for k, v in figs.items()}
        note = entry.get("note")
        if note is not None and not isinstance(note, str):
            raise ConfigError(f"evaluate.published{name}: 'note' must be text")
        out.append(Published(entry["source"], labels, folds, figures, classes, note))
    return out
