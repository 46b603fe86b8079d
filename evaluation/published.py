"""Published reference figures (``evaluate.published`` in ``params.yaml``), checked by the params schema.

Each entry::

    - source: "P. de Chazal et al., IEEE Trans. Biomed. Eng. 51(7):1196-1206, 2004"   # required: the citation
      name: "de Chazal et al. 2004"   # optional short label shown in the tables (default: source)
      checked: "two secondary tables (e.g. Garcia et al. 2017, Sci Rep, Table 2)"   # required: how checked
      labels: aami          # optional: label scheme the figures are for (aami | jun8 | binary)
      folds: ds1ds2         # optional: evaluation scheme (beat | record | ds1ds2)
      accuracy: 0.9         # optional overall figures, fractions in [0, 1]:
      sensitivity: ...      #   accuracy, sensitivity, specificity, ppv, f1, auc
      classes:              # optional per-class figures (sensitivity, specificity, ppv, f1, auc)
        N: {sensitivity: 0.869, ppv: 0.992}
      note: "..."           # optional free text, shown under the table

Examples
--------
>>> entries = parse_published([{"source": "X 2020", "checked": "abstract", "accuracy": 0.9, "labels": "aami"}])
>>> entries[0].label, entries[0].checked, entries[0].figures
('X 2020', 'abstract', {'accuracy': 0.9})
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pipelines import ConfigError, validate_section

#: Overall figures an entry may give.
OVERALL_FIGURES: tuple[str, ...] = ("accuracy", "sensitivity", "specificity", "ppv", "f1", "auc")
#: Per-class figures an entry may give.
CLASS_FIGURES: tuple[str, ...] = ("sensitivity", "specificity", "ppv", "f1", "auc")


@dataclass(frozen=True)
class Published:
    """One published result to show beside ours."""

    source: str
    labels: str | None = None
    folds: str | None = None
    figures: dict[str, float] = field(default_factory=dict)
    classes: dict[str, dict[str, float]] = field(default_factory=dict)
    note: str | None = None
    name: str | None = None
    checked: str | None = None

    @property
    def label(self) -> str:
        """The short name shown in the tables (the citation when no name is given)."""
        return self.name or self.source

    def compares_with(self, info: dict[str, Any]) -> bool:
        """True when this entry gives a label and/or fold scheme and they are those of a run (``run.json``).

        An entry that gives neither is shown, but linked to no run.
        """
        if self.labels is None and self.folds is None:
            return False
        return ((self.labels is None or self.labels == info.get("labels"))
                and (self.folds is None or self.folds == info.get("folds")))


def parse_published(entries: Any) -> list[Published]:
    """Check ``evaluate.published`` against the params schema and return its entries (absent: empty).

    Raises
    ------
    ConfigError
        Naming the entry and key at fault (``evaluate.published[1].classes.N.se: unknown key``):
        unknown keys, schemes or figures, values outside [0, 1], an entry without ``source``.
    """
    if entries is None:
        return []
    checked = validate_section("evaluate", {"published": entries}).published
    out = []
    for entry in checked:
        figures = {k: float(getattr(entry, k)) for k in OVERALL_FIGURES if getattr(entry, k) is not None}
        classes = {str(cls): {k: float(getattr(figs, k)) for k in CLASS_FIGURES if getattr(figs, k) is not None}
                   for cls, figs in entry.classes.items()}
        if entry.checked is None:
            raise ConfigError(f"evaluate.published[{len(out)}] ({entry.source}): 'checked' is missing: say how "
                              "the figures were checked (abstract, paper table, secondary table, ...)")
        out.append(Published(entry.source, entry.labels, entry.folds, figures, classes, entry.note,
                             entry.name, entry.checked))
    return out
