"""``reports/benchmark.md``: our runs beside the published figures, with provenance (pure text).

Sections: the classification table (one row per run, then the published rows), the fold means and
standard deviations, per-class figures of each run, the de Chazal et al. (2004) table for AAMI
inter-patient runs, the R-peak detector report, and the provenance of every row.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

from .metrics import DE_CHAZAL_CLASSES
from .published import Published
from .summary import is_aami_inter_patient

DASH = "—"

#: Column heads of the macro figures, with their key in ``metrics["pooled"]["macro"]``.
MACRO_COLUMNS: tuple[tuple[str, str], ...] = (
    ("macro Se", "sensitivity"), ("macro Sp", "specificity"), ("macro +P", "ppv"),
    ("macro F1", "f1"), ("macro AUC", "auc"),
)

LEAK_NOTE = (
    "**Beat-level folds leak patients.** With `folds: beat` (and in Jun et al. 2018's 10-fold cross-validation "
    "over beats) beats of the same patient, often consecutive and nearly identical, fall in both the training and "
    "the test sets: this is an *intra-patient* evaluation, and it overstates how well a model classifies the beats "
    "of a patient it has never seen. `record` folds (whole records, i.e. patients, on one side) and the DS1/DS2 "
    "split of de Chazal et al. 2004 are *inter-patient*; their figures are the honest ones, and are not comparable "
    "with intra-patient figures."
)


@dataclass(frozen=True)
class RunReport:
    """What the benchmark needs of one run: its name, ``run.json`` and its ``metrics.json`` entry."""

    name: str
    info: dict[str, Any]
    metrics: dict[str, Any]


def _undefined(x: Any) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def pct(x: Any, digits: int = 2) -> str:
    """A fraction as a percentage with ``digits`` decimals, ``—`` when undefined.

    Examples
    --------
    >>> pct(0.99051), pct(float("nan")), pct(None)
    ('99.05', '—', '—')
    """
    return DASH if _undefined(x) else f"{100 * x:.{digits}f}"


def dec(x: Any, digits: int = 4) -> str:
    """A number with ``digits`` decimals, ``—`` when undefined."""
    return DASH if _undefined(x) else f"{x:.{digits}f}"


def pct_pm(mean: Any, std: Any) -> str:
    """``mean ± std`` in percent (``± —`` when the std is undefined, e.g. a single fold)."""
    return DASH if _undefined(mean) else f"{pct(mean)} ± {pct(std)}"


def dec_pm(mean: Any, std: Any) -> str:
    """``mean ± std`` with four decimals (AUC)."""
    return DASH if _undefined(mean) else f"{dec(mean)} ± {dec(std)}"


def _fig(key: str, value: Any) -> str:
    """AUC as a fraction, every other figure in percent."""
    return dec(value) if key == "auc" else pct(value)


def _table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return lines


def _folds_label(info: dict[str, Any], n_folds: int) -> str:
    scheme = info.get("folds")
    mark = " †" if scheme == "beat" else ""
    return f"{scheme} ({n_folds}){mark}"


def classification_section(runs: Sequence[RunReport], published: Sequence[Published], revision: str) -> list[str]:
    """The main table: our runs (pooled figures and provenance), then the published rows."""
    head = ["run", "model", "segmentation", "folds (n)", "labels", "test beats", "accuracy",
            *[h for h, _ in MACRO_COLUMNS], "compare with", "git revision", "params hash", "data hash"]
    rows = []
    for r in runs:
        p = r.metrics["pooled"]
        refs = [f"[{i + 1}]" for i, pub in enumerate(published) if pub.compares_with(r.info)]
        rows.append([
            f"`{r.name}`", str(r.info.get("model")), str(r.info.get("method")),
            _folds_label(r.info, r.metrics["n_folds"]), str(r.info.get("labels")), f"{r.metrics['n_test_beats']:,}",
            pct(p["accuracy"]), *[_fig(k, p["macro"][k]) for _, k in MACRO_COLUMNS],
            " ".join(refs) or DASH, f"`{revision}`", f"`{r.info.get('params_hash')}`",
            f"`{str(r.info.get('data_hash'))[:12]}`",
        ])
    for i, pub in enumerate(published):
        f = pub.figures
        rows.append([
            f"*{pub.source}* [{i + 1}]", DASH, DASH, str(pub.folds or DASH), str(pub.labels or DASH), DASH,
            pct(f.get("accuracy")), *[_fig(k, f.get(k)) for _, k in MACRO_COLUMNS],
            DASH, DASH, DASH, DASH,
        ])
    lines = ["## Beat classification", ""]
    if not runs:
        lines += ["No run in `train.runs`.", ""]
    lines += _table(head, rows)
    lines += ["", "Percentages, pooled over all test folds (each test beat predicted once, by the model of its fold). "
              "Macro figures average the classes where the figure is defined (a class with no test beat has no "
              "sensitivity; one never predicted has no +P); AUC is one-vs-rest on the `p_<class>` scores. "
              "Se = sensitivity (recall), Sp = specificity, +P = positive predictivity (precision). "
              "† intra-patient folds (see the note below)."]
    if published:
        lines += ["", "Published figures (reported, not recomputed; a published *sensitivity* is the paper's average "
                  "over its classes):", ""]
        for i, pub in enumerate(published):
            scheme = ", ".join(x for x in (pub.labels and f"labels {pub.labels}",
                                           pub.folds and f"folds {pub.folds}") if x)
            lines.append(f"{i + 1}. {pub.source}" + (f" ({scheme})" if scheme else "")
                         + (f". {pub.note}" if pub.note else ""))
    lines += ["", LEAK_NOTE, ""]
    return lines


def folds_section(runs: Sequence[RunReport]) -> list[str]:
    """Mean ± sample standard deviation over the test folds."""
    head = ["run", "folds (n)", "accuracy", *[h for h, _ in MACRO_COLUMNS]]
    rows = []
    for r in runs:
        m, s = r.metrics["fold_mean"], r.metrics["fold_std"]
        rows.append([f"`{r.name}`", _folds_label(r.info, r.metrics["n_folds"]),
                     pct_pm(m["accuracy"], s["accuracy"]),
                     *[(dec_pm if k == "auc" else pct_pm)(m["macro"][k], s["macro"][k]) for _, k in MACRO_COLUMNS]])
    return ["## Across folds", "",
            "Mean ± sample standard deviation over the test folds (percent; AUC as a fraction), each over the "
            "folds where the figure is defined; `± —` with a single fold.", "", *_table(head, rows), ""]


def per_class_section(runs: Sequence[RunReport]) -> list[str]:
    """Per-class pooled figures of every run."""
    lines = ["## Per class", "",
             "Pooled over the test folds, one class against the rest (percent; AUC as a fraction).", ""]
    for r in runs:
        rows = []
        for cls, v in r.metrics["pooled"]["per_class"].items():
            rows.append([cls, f"{v['support']:,}", pct(v["sensitivity"]), pct(v["specificity"]), pct(v["ppv"]),
                         pct(v["f1"]), dec(v["auc"])])
        lines += [f"### `{r.name}`", "", *_table(["class", "test beats", "Se", "Sp", "+P", "F1", "AUC"], rows), ""]
    return lines


def de_chazal_section(runs: Sequence[RunReport], published: Sequence[Published]) -> list[str]:
    """Se and +P of N, S, V, F and accuracy: AAMI inter-patient runs and the published rows with those figures."""
    head = (["run", "folds (n)", "test beats"] + [f"{c} {m}" for c in DE_CHAZAL_CLASSES for m in ("Se", "+P")]
            + ["accuracy"])
    rows = []
    for r in runs:
        t = r.metrics.get("de_chazal")
        if t is None:
            continue
        rows.append([f"`{r.name}`", _folds_label(r.info, r.metrics["n_folds"]), f"{r.metrics['n_test_beats']:,}",
                     *[pct(t[f"{c}_{m}"], 1) for c in DE_CHAZAL_CLASSES for m in ("se", "ppv")],
                     pct(t["accuracy"], 1)])
    for i, pub in enumerate(published):
        if pub.labels not in (None, "aami") or not any(c in pub.classes for c in DE_CHAZAL_CLASSES):
            continue
        rows.append([f"*{pub.source}* [{i + 1}]", str(pub.folds or DASH), DASH,
                     *[pct(pub.classes.get(c, {}).get(k), 1)
                       for c in DE_CHAZAL_CLASSES for k in ("sensitivity", "ppv")],
                     pct(pub.figures.get("accuracy"), 1)])
    lines = ["## AAMI inter-patient classes (de Chazal et al. 2004 table)", ""]
    if not any(is_aami_inter_patient(r.info) for r in runs):
        lines += ["No run with AAMI labels and `record` or `ds1ds2` folds in `train.runs`.", ""]
    lines += _table(head, rows)
    lines += ["", "Sensitivity (Se) and positive predictivity (+P) of the AAMI classes N, S (SVEB), V (VEB) and F, "
              "and the accuracy over every test beat (Q included), in percent, pooled over the test folds. de Chazal "
              "et al. trained on DS1 and tested on DS2 (paced records excluded): `ds1ds2` runs repeat that split; "
              "`record` runs are K-fold by record, inter-patient too, but over a different test set.", ""]
    return lines


def detector_section(detector: dict[str, Any] | None) -> list[str]:
    """The R-peak detector against the reference annotations: per record and in total."""
    lines = ["## R-peak detector", ""]
    if detector is None:
        return lines + ["No detector report.", ""]
    tol = detector["tolerance_ms"]
    t = detector["total"]
    lines += [f"Christov detections matched one-to-one to the reference beats within "
              f"{DASH if tol is None else f'{tol:g}'} ms (`reports/detector.json`). "
              f"Total: TP {t['tp']:,}, FP {t['fp']:,}, FN {t['fn']:,}, Se {pct(t['sensitivity'])}%, "
              f"+P {pct(t['ppv'])}%.", ""]
    rows = [[name, f"{v['tp']:,}", f"{v['fp']:,}", f"{v['fn']:,}", pct(v["sensitivity"]), pct(v["ppv"])]
            for name, v in detector["records"].items()]
    rows.append(["**total**", f"{t['tp']:,}", f"{t['fp']:,}", f"{t['fn']:,}", pct(t["sensitivity"]), pct(t["ppv"])])
    return lines + _table(["record", "TP", "FP", "FN", "Se %", "+P %"], rows) + [""]


def provenance_section(runs: Sequence[RunReport], revision: str) -> list[str]:
    """Full hashes and counts behind every row."""
    head = ["run", "git revision", "params hash", "data hash (SHA-256 of the images manifest)", "test beats",
            "folds", "k", "train images/s"]
    rows = []
    for r in runs:
        ips = r.info.get("train_images_per_s")
        rows.append([f"`{r.name}`", f"`{revision}`", f"`{r.info.get('params_hash')}`", f"`{r.info.get('data_hash')}`",
                     f"{r.metrics['n_test_beats']:,}", str(r.metrics["n_folds"]), str(r.info.get("k", DASH)),
                     DASH if not isinstance(ips, (int, float)) else f"{ips:,.1f}"])
    return ["## Provenance", "", *_table(head, rows), ""]


def render_benchmark(runs: Sequence[RunReport], published: Sequence[Published],
                     detector: dict[str, Any] | None, revision: str) -> str:
    """The whole ``benchmark.md`` text.

    Examples
    --------
    >>> text = render_benchmark([], [], None, "unknown")
    >>> text.splitlines()[0]
    '# Benchmark'
    """
    lines = ["# Benchmark", "",
             f"Written by `python -m evaluation.evaluate` from `models/<run>/` and `reports/detector.json`, at git "
             f"revision `{revision}`. Metric definitions: `docs/evaluation.md`; every number is also in "
             "`reports/metrics.json`.", ""]
    lines += classification_section(runs, published, revision)
    lines += folds_section(runs)
    lines += de_chazal_section(runs, published)
    lines += per_class_section(runs)
    lines += detector_section(detector)
    lines += provenance_section(runs, revision)
    return "\n".join(lines).rstrip("\n") + "\n"
