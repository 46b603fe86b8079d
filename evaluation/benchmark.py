"""``reports/benchmark.md``: our runs beside their baselines and the published figures, with provenance.

Sections: the classification table (one row per run, its baseline rows under it, then the
published rows), the fold means and standard deviations, the AAMI EC57 table (``bxb`` scoring, see
:mod:`evaluation.ec57`), per-class figures of each run, the R-peak detector report, the paper-ECG
digitiser and digitise-then-classify reports, and the provenance of every row. Pure text from the
metrics; nothing is recomputed here.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

from .ec57 import EC57_CLASSES
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


#: Row labels of the baselines (``baselines.parquet``, column ``model``).
BASELINE_NAMES: dict[str, str] = {"majority": "majority class", "rhythm": "rhythm only",
                                  "features": "RR + template features"}
BASELINE_LABEL = "↳ baselines"
NO_BASELINES = "none: this run has no `fold-XX/baselines.parquet` (trained before baselines were added)"

BASELINE_NOTE = (
    "Under each run, baselines scored on the same test beats, fitted on the same training side of each fold: "
    "**majority class** (every beat called the most frequent training class), **rhythm only** (gradient boosting "
    "on the beat's RR-interval ratios, no image; `training/baselines.py`) and **RR + template features** (the same "
    "classifier on the RR ratios and the run's template columns: the beat measured against its record's median "
    "beat and, where the run's `template_features` name them, its absolute morphology, "
    "`pipelines/signal/template.py`: "
    "everything a rhythm run's second input holds, no image). A model row below "
    "its majority-class row does worse than calling every beat normal; below its RR + template row, its image "
    "adds nothing."
)

#: EC57 table columns after the accuracy: head, (class, figure key in the ec57 metrics).
EC57_COLUMNS: tuple[tuple[str, tuple[str, str]], ...] = (
    *((f"{c} {h}", (c, k)) for c in EC57_CLASSES for h, k in (("Se", "sensitivity"), ("+P", "ppv"))),
    ("S FPR", ("S", "fpr")), ("V FPR", ("V", "fpr")), ("S F1", ("S", "f1")), ("V F1", ("V", "f1")),
)
EC57_COLUMN_KEYS: tuple[tuple[str, str], ...] = tuple(key for _, key in EC57_COLUMNS)
#: Published per-class figures that fill EC57 columns (published entries give no FPR).
PUBLISHED_KEYS: dict[str, str] = {"sensitivity": "sensitivity", "ppv": "ppv", "f1": "f1"}

EC57_NOTE = (
    "AAMI EC57 scoring as PhysioNet's `bxb` does it (`evaluation/ec57.py`, `docs/evaluation.md`), in percent: "
    "records with paced beats (102, 104, 107, 217) left out; reference Q beats not scored; a beat predicted Q is "
    "a miss of its class; **an F beat called V is not a V false positive** (V +P = Vv / (Vv + Nv + Sv)), and "
    "V FPR leaves it out too; F Se still counts it as missed. Accuracy = (Nn + Ss + Vv + Ff) / scored beats. "
    "Whole records are scored (`bxb` starts at 5:00 by default; we do not). K-fold rows (`record`, `beat`): "
    "mean ± sample sd over the folds, each over the folds where the figure is defined (a fold without S beats has "
    "no S Se); single-fold rows (`ds1ds2`): the figures of that fold. Only DS1 -> DS2 rows are comparable with the "
    "published rows (trained on DS1, tested on DS2); `record` folds are inter-patient over other test sets; "
    "`beat` folds are intra-patient. Published rows show only figures found in their source (`—` otherwise)."
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


def pct_pm(mean: Any, std: Any, digits: int = 2) -> str:
    """``mean ± std`` in percent (``± —`` when the std is undefined, e.g. a single fold).

    Examples
    --------
    >>> pct_pm(0.5, 0.01234, 1), pct_pm(0.5, None)
    ('50.0 ± 1.2', '50.00 ± —')
    """
    return DASH if _undefined(mean) else f"{pct(mean, digits)} ± {pct(std, digits)}"


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


def _protocol(folds: Any) -> str:
    """``intra-patient`` for beat-level folds, ``inter-patient`` for record folds and DS1 -> DS2."""
    return "intra-patient" if folds == "beat" else "inter-patient" if folds in ("record", "ds1ds2") else DASH


def _beats_cell(m: dict[str, Any]) -> str:
    """Number of test beats scored, with the beats of untrained classes (left out) when there are any.

    Examples
    --------
    >>> _beats_cell({"n_test_beats": 49661, "untrained_beats": {"Q": 7}})
    '49,661 (+7 Q, untrained)'
    """
    extra = ", ".join(f"{n:,} {c}" for c, n in (m.get("untrained_beats") or {}).items())
    return f"{m['n_test_beats']:,}" + (f" (+{extra}, untrained)" if extra else "")


def _baseline_rows(r: RunReport, width: int, cells) -> list[list[str]]:
    """The baseline rows under a run's row (``cells(metrics)`` gives the cells after the first two), or
    one row saying that the run has none. ``width`` is the number of columns of the table."""
    base = r.metrics.get("baselines")
    if not base:
        return [[BASELINE_LABEL, NO_BASELINES, *[""] * (width - 2)]]
    return [[f"↳ {BASELINE_NAMES.get(name, name)}", f"baseline of `{r.name}`", *cells(base[name])]
            for name in base]


def _ref_list(published: Sequence[Published]) -> list[str]:
    """The numbered list of published entries: label, scheme, citation, how checked, note."""
    lines = []
    for i, pub in enumerate(published):
        scheme = ", ".join(x for x in (pub.labels and f"labels {pub.labels}", pub.folds and f"folds {pub.folds}",
                                       pub.folds and _protocol(pub.folds)) if x)
        text = f"{i + 1}. **{pub.label}**" + (f" ({scheme})" if scheme else "")
        if pub.name:
            text += f". {pub.source}"
        text += f". Checked: {pub.checked or 'not stated'}." + (f" {pub.note}." if pub.note else "")
        lines.append(text)
    return lines


def classification_section(runs: Sequence[RunReport], published: Sequence[Published], revision: str) -> list[str]:
    """The main table: each run (pooled figures and provenance) with its baselines, then the published rows."""
    head = ["run", "model", "segmentation", "folds (n)", "protocol", "labels", "test beats", "accuracy",
            *[h for h, _ in MACRO_COLUMNS], "compare with", "git revision", "params hash", "data hash"]

    def figures(m: dict[str, Any]) -> list[str]:
        p = m["pooled"]
        return [pct(p["accuracy"]), *[_fig(k, p["macro"][k]) for _, k in MACRO_COLUMNS]]

    rows = []
    for r in runs:
        refs = [f"[{i + 1}]" for i, pub in enumerate(published) if pub.compares_with(r.info)]
        rows.append([
            f"`{r.name}`", str(r.info.get("model")), str(r.info.get("method")),
            _folds_label(r.info, r.metrics["n_folds"]), _protocol(r.info.get("folds")), str(r.info.get("labels")),
            _beats_cell(r.metrics), *figures(r.metrics),
            " ".join(refs) or DASH, f"`{revision}`", f"`{r.info.get('params_hash')}`",
            f"`{str(r.info.get('data_hash'))[:12]}`",
        ])
        rows += _baseline_rows(r, len(head), lambda m: [
            DASH, _folds_label(r.info, m["n_folds"]), _protocol(r.info.get("folds")), str(r.info.get("labels")),
            _beats_cell(m), *figures(m), DASH, f"`{revision}`", DASH, DASH])
    for i, pub in enumerate(published):
        f = pub.figures
        rows.append([
            f"*{pub.label}* [{i + 1}]", DASH, DASH, str(pub.folds or DASH), _protocol(pub.folds),
            str(pub.labels or DASH), DASH, pct(f.get("accuracy")), *[_fig(k, f.get(k)) for _, k in MACRO_COLUMNS],
            DASH, DASH, DASH, DASH,
        ])
    lines = ["## Beat classification", ""]
    if not runs:
        lines += ["No run in `train.runs`.", ""]
    lines += _table(head, rows)
    lines += ["", "Percentages, pooled over all test folds (each test beat predicted once, by the model of its fold), "
              "over every test beat of the run's classes (paced records and Q included; the EC57 table below "
              "scores AAMI runs the standard way). Macro figures average the classes where the figure is defined "
              "(a class with no test beat has no sensitivity; one never predicted has no +P); AUC is one-vs-rest "
              "on the `p_<class>` scores. Se = sensitivity (recall), Sp = specificity, +P = positive predictivity "
              "(precision). Beats of classes a run does not train (AAMI Q by default) are left out of these figures and "
              "counted in the test-beats column (`+n Q, untrained`); EC57 leaves Q out anyway. "
              "† intra-patient folds (see the note below).", "", BASELINE_NOTE]
    if published:
        lines += ["", "Published figures (reported, not recomputed; a published *sensitivity* is the paper's average "
                  "over its classes; sources and how each figure was checked in `docs/evaluation.md`):", ""]
        lines += _ref_list(published)
    lines += ["", LEAK_NOTE, ""]
    return lines


def folds_section(runs: Sequence[RunReport]) -> list[str]:
    """Mean ± sample standard deviation over the test folds, for each run and its baselines."""
    head = ["run", "folds (n)", "accuracy", *[h for h, _ in MACRO_COLUMNS]]

    def figures(m: dict[str, Any]) -> list[str]:
        mean, std = m["fold_mean"], m["fold_std"]
        return [pct_pm(mean["accuracy"], std["accuracy"]),
                *[(dec_pm if k == "auc" else pct_pm)(mean["macro"][k], std["macro"][k]) for _, k in MACRO_COLUMNS]]

    rows = []
    for r in runs:
        rows.append([f"`{r.name}`", _folds_label(r.info, r.metrics["n_folds"]), *figures(r.metrics)])
        base = r.metrics.get("baselines")
        if not base:
            rows.append([BASELINE_LABEL, NO_BASELINES, *[""] * (len(head) - 2)])
        else:
            rows += [[f"↳ {BASELINE_NAMES.get(n, n)}", _folds_label(r.info, m["n_folds"]), *figures(m)]
                     for n, m in base.items()]
    return ["## Across folds", "",
            "Mean ± sample standard deviation over the test folds (percent; AUC as a fraction), each over the "
            "folds where the figure is defined; `± —` with a single fold. Baselines on the same test beats.", "",
            *_table(head, rows), ""]


def _ec57_cells(e: dict[str, Any], k_fold: bool) -> list[str]:
    """Accuracy and the EC57 columns: pooled (one fold) or mean ± sd over folds (K-fold)."""
    def one(value_of) -> str:
        if k_fold:
            return pct_pm(value_of(e["fold_mean"]), value_of(e["fold_std"]), 1)
        return pct(value_of(e["pooled"]), 1)
    return [one(lambda s: s["accuracy"]),
            *[one(lambda s, c=c, f=f: s[f][c]) for c, f in EC57_COLUMN_KEYS]]


def ec57_section(runs: Sequence[RunReport], published: Sequence[Published]) -> list[str]:
    """The AAMI EC57 table: every AAMI run with its baselines, then the published AAMI rows."""
    head = ["run", "folds (n)", "protocol", "scored beats", "accuracy", *[h for h, _ in EC57_COLUMNS]]
    rows = []
    for r in runs:
        e = r.metrics.get("ec57")
        if e is None:
            continue
        k_fold = r.metrics["n_folds"] > 1
        rows.append([f"`{r.name}`", _folds_label(r.info, r.metrics["n_folds"]), _protocol(r.info.get("folds")),
                     f"{e['pooled']['n']:,}", *_ec57_cells(e, k_fold)])
        base = r.metrics.get("baselines")
        if not base:
            rows.append([BASELINE_LABEL, NO_BASELINES, *[""] * (len(head) - 2)])
        else:
            rows += [[f"↳ {BASELINE_NAMES.get(n, n)}", _folds_label(r.info, m["n_folds"]),
                      _protocol(r.info.get("folds")), f"{m['ec57']['pooled']['n']:,}", *_ec57_cells(m["ec57"], k_fold)]
                     for n, m in base.items()]
    for i, pub in enumerate(published):
        if pub.labels != "aami" or not (pub.classes or "accuracy" in pub.figures):
            continue
        rows.append([f"*{pub.label}* [{i + 1}]", str(pub.folds or DASH), _protocol(pub.folds), DASH,
                     pct(pub.figures.get("accuracy"), 1),
                     *[pct(pub.classes.get(c, {}).get(PUBLISHED_KEYS[f]), 1) if f in PUBLISHED_KEYS else DASH
                       for c, f in EC57_COLUMN_KEYS]])
    lines = ["## AAMI EC57 classes", ""]
    if not any(r.metrics.get("ec57") is not None for r in runs):
        lines += ["No run with AAMI labels in `train.runs`.", ""]
    if not any(is_aami_inter_patient(r.info) for r in runs):
        lines += ["No run with AAMI labels and `record` or `ds1ds2` folds in `train.runs`.", ""]
    lines += _table(head, rows)
    lines += ["", EC57_NOTE, ""]
    return lines


def per_class_section(runs: Sequence[RunReport]) -> list[str]:
    """Per-class pooled figures of every run, each class followed by the baselines' figures for it."""
    lines = ["## Per class", "",
             "Pooled over the test folds, one class against the rest, over the test beats of the classes the run "
             "trains (percent; AUC as a fraction); under each class, the baselines on the same test beats.", ""]
    for r in runs:
        base = r.metrics.get("baselines") or {}
        rows = []
        for cls, v in r.metrics["pooled"]["per_class"].items():
            rows.append([cls, "model", f"{v['support']:,}", *_class_cells(v)])
            rows += [[cls, f"↳ {BASELINE_NAMES.get(n, n)}", f"{v['support']:,}",
                      *_class_cells(m["pooled"]["per_class"][cls])] for n, m in base.items()]
        lines += [f"### `{r.name}`", ""]
        if not base:
            lines += [f"{NO_BASELINES}.", ""]
        lines += [*_table(["class", "row", "test beats", "Se", "Sp", "+P", "F1", "AUC"], rows), ""]
    return lines


def _class_cells(v: dict[str, Any]) -> list[str]:
    return [pct(v["sensitivity"]), pct(v["specificity"]), pct(v["ppv"]), pct(v["f1"]), dec(v["auc"])]


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


@dataclass(frozen=True)
class PaperReports:
    """The paper-ECG reports shown in the benchmark, as read (None: the file is absent).

    ``digitize``: ``reports/digitize.json`` (:mod:`evaluation.digitize`); ``classify``:
    ``reports/digitized_classify.json`` (:mod:`evaluation.digitized_classify`).
    """

    digitize: dict[str, Any] | None = None
    classify: dict[str, Any] | None = None


DIGITIZER_NOTE = (
    "The classical digitiser on the paper strips of each variant (`docs/digitize.md`): strips it digitised "
    "(`ok`) of those printed; mean SNR per strip and lead (PhysioNet Challenge 2024's `compute_snr`; a failed "
    "strip scores 0 dB, a perfect lead 100 dB), raw and after the bounded time/offset alignment; samples "
    "recovered; the project's R-peak detector on the first lead of the digitised strips against the reference "
    "beats (Se, +P), and the same detector on the printed (ground-truth) signal; +P leaves out the detections "
    "that match no beat of their strip but a beat of the record just outside it (its QRS reaches in; read from "
    "the record's annotations), which the `edge` column counts and `+P edges as FP` counts as false positives. "
    "Synthetic "
    "strips of two leads: not comparable with the Challenge's scanned 12-lead printouts."
)

CLASSIFY_HEAD: tuple[tuple[str, tuple[str, str] | None], ...] = (
    ("accuracy", None), ("S Se", ("S", "sensitivity")), ("S +P", ("S", "ppv")),
    ("V Se", ("V", "sensitivity")), ("V +P", ("V", "ppv")),
)


def digitizer_section(report: dict[str, Any] | None) -> list[str]:
    """Per paper variant: strips ok, mean SNR (raw, aligned), recovered, R-peak Se/+P (``reports/digitize.json``)."""
    lines = ["## Paper ECG: digitiser", ""]
    if report is None:
        return lines + ["No digitiser report: `reports/digitize.json` is absent (`dvc repro score_digitize` "
                        "writes it).", ""]
    head = ["variant", "strips ok", "mean SNR dB", "aligned SNR dB", "recovered %", "R-peak Se %", "R-peak +P %",
            "edge", "+P edges as FP %", "truth Se %", "truth +P %"]
    rows = []
    for name, v in report["variants"].items():
        det, truth = v["rpeak"]["digitized"], v["rpeak"]["truth"]
        edges_as_fp = det.get("ppv_edges_as_fp")
        rows.append([name, f"{(v.get('status') or {}).get('ok', 0):,} / {v['strips']:,}", dec(v["snr_db"], 2),
                     dec(v["snr_aligned_db"], 2), pct(v["recovered"]), pct(det["sensitivity"]), pct(det["ppv"]),
                     f"{det['edge']:,}" if "edge" in det else "—", "—" if edges_as_fp is None else pct(edges_as_fp),
                     pct(truth["sensitivity"]), pct(truth["ppv"])])
    return lines + [DIGITIZER_NOTE, ""] + _table(head, rows) + [""]


def digitized_classify_section(report: dict[str, Any] | None) -> list[str]:
    """The model on digitised beats beside its own predictions of them (``reports/digitized_classify.json``)."""
    lines = ["## Digitise, then classify", ""]
    if report is None:
        return lines + ["No digitise-then-classify report: `reports/digitized_classify.json` is absent "
                        "(`dvc repro classify_digitized` writes it).", ""]
    ex, changed = report["excluded"], report["changed"]
    pairs = ", ".join(f"{k} {v:,}" for k, v in sorted(changed["pairs"].items(), key=lambda kv: (-kv[1], kv[0])))
    rows = [[label, f"{side['n']:,}", *[pct(side["accuracy"] if key is None else side[key[1]][key[0]], 1)
                                        for _, key in CLASSIFY_HEAD]]
            for label, side in (("original signals", report["original"]), ("digitised strips", report["digitized"]))]
    lines += [f"Run `{report['run']}` on the beats cut from the digitised clean strips (`classify_digitized`, "
              f"`docs/digitize.md`): {report['beats']:,} of its {report['test_beats']:,} test beats lie wholly inside "
              f"one digitised strip of their lead with every sample recovered ({ex['outside_strips']:,} outside the "
              f"strips, {ex['lead_not_digitised']:,} lead not digitised, {ex['not_recovered']:,} not recovered). "
              "Both rows score the same beats (EC57, percent; scored beats after EC57's exclusions); the original row "
              "is the run's own prediction. The digitised beats are drawn as the render stage draws them and get the "
              "same rhythm features (reference RR intervals): the difference is what digitisation does to the beat "
              f"images. {changed['beats']:,} beats ({pct(changed['fraction'])}%) change class"
              + (f" ({pairs})." if pairs else "."), ""]
    return lines + _table(["signals", "scored beats", *[h for h, _ in CLASSIFY_HEAD]], rows) + [""]


def _number(value: Any, fmt: str) -> str:
    return fmt.format(value) if isinstance(value, (int, float)) else DASH


def provenance_section(runs: Sequence[RunReport], revision: str) -> list[str]:
    """Full hashes and counts behind every row."""
    head = ["run", "git revision", "params hash", "data hash (SHA-256 of the images manifest)", "test beats",
            "folds", "k", "train images/s", "wall s", "peak RSS MiB"]
    rows = []
    for r in runs:
        ips = r.info.get("train_images_per_s")
        resumed = len(r.info.get("resumed_folds") or ())
        mark = f" ({resumed} of {r.metrics['n_folds']} folds resumed)" if resumed else ""
        rows.append([f"`{r.name}`", f"`{revision}`", f"`{r.info.get('params_hash')}`", f"`{r.info.get('data_hash')}`",
                     f"{r.metrics['n_test_beats']:,}", str(r.metrics["n_folds"]), str(r.info.get("k", DASH)),
                     _number(ips, "{:,.1f}"), _number(r.info.get("seconds"), "{:,.0f}") + mark,
                     _number(r.info.get("peak_rss_mb"), "{:,.0f}")])
    note = ("Wall s and peak RSS are those of the process that wrote `run.json`. A fold taken from the fold cache "
            "(`.cache/train`, docs/training.md, *Resume*) adds neither: such rows say how many folds were resumed; "
            "each fold's own training time is in `run.json` (`fold_summaries[].train_seconds`).")
    return ["## Provenance", "", *_table(head, rows), "", note, ""]


def render_benchmark(runs: Sequence[RunReport], published: Sequence[Published],
                     detector: dict[str, Any] | None, revision: str, paper: PaperReports | None = None) -> str:
    """The whole ``benchmark.md`` text.

    ``paper``: the paper-ECG reports; when given, the sections "Paper ECG: digitiser" and "Digitise, then
    classify" follow the detector report (each saying so when its file is absent); None leaves both out.

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
    lines += ec57_section(runs, published)
    lines += per_class_section(runs)
    lines += detector_section(detector)
    if paper is not None:
        lines += digitizer_section(paper.digitize)
        lines += digitized_classify_section(paper.classify)
    lines += provenance_section(runs, revision)
    return "\n".join(lines).rstrip("\n") + "\n"
