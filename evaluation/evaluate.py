"""The ``evaluate`` stage: metrics, plot data, figures and the benchmark table of every trained run.

Usage::

    python -m evaluation.evaluate --params params.yaml --models models \\
        --detector reports/detector.json --out reports

Reads ``train.runs`` (every run listed there must have its ``models/<run>/`` folder) and
``evaluate.published`` from the params file, and writes, each file atomically and byte-identical
for identical inputs:

* ``<out>/metrics.json``: per run, pooled, fold-mean and fold-std figures (macro and per class),
  the AAMI EC57 figures (``bxb`` scoring) for AAMI runs, and the same for the run's baselines
  (``fold-XX/baselines.parquet``: majority class, rhythm only, RR + template features) when it has them (DVC metrics);
* ``<out>/plots/confusion.json``, ``roc.json``, ``history.json``: DVC plot data
  (templates in ``evaluation/templates/``);
* ``<out>/figures/evaluation/confusion_<run>.png`` and ``roc_<run>.png``;
* ``<out>/benchmark.md``: our runs, each with its baseline rows, beside the published figures,
  with provenance, the EC57 table, the R-peak detector report and the paper-ECG reports
  (``--digitize``, default ``<out>/digitize.json``; ``--digitized-classify``, default
  ``<out>/digitized_classify.json``; a section says so when its file is absent).
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from typing import Any, Sequence, TextIO

from pipelines import ConfigError, DataError, Progress, atomic_dir, load_params, read_json, run_stage

from .benchmark import PaperReports, RunReport, render_benchmark
from .detector import read_detector
from .figures import confusion_png, roc_png
from .output import to_json, to_json_rows, write_text
from .published import parse_published
from .runs import load_run
from .summary import (confusion_rows, history_rows, pooled_confusion, roc_curves, roc_rows, run_metrics)

#: Points per ROC curve drawn in the PNG figures (the JSON plot data keeps 200).
FIGURE_ROC_POINTS = 2000


def git_revision(cwd: str | Path | None = None) -> str:
    """``git rev-parse --short HEAD`` in ``cwd``, or ``"unknown"`` outside a repository or without git."""
    try:
        done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=cwd, capture_output=True,
                              text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    rev = done.stdout.strip()
    return rev if done.returncode == 0 and rev else "unknown"


def run_names(params: dict[str, Any], params_path: str | Path) -> list[str]:
    """The run names of ``train.runs``, sorted."""
    runs = (params.get("train") or {}).get("runs")
    if not isinstance(runs, dict) or not runs:
        raise ConfigError(f"{params_path}: train.runs must map run names to their settings")
    return sorted(str(name) for name in runs)


#: Keys the benchmark reads from ``reports/digitize.json`` (``*``: every entry of a mapping).
DIGITIZE_KEYS: tuple[str, ...] = (
    "variants", "variants.*.strips", "variants.*.status", "variants.*.snr_db", "variants.*.snr_aligned_db",
    "variants.*.recovered", "variants.*.rpeak.digitized.sensitivity", "variants.*.rpeak.digitized.ppv",
    "variants.*.rpeak.truth.sensitivity", "variants.*.rpeak.truth.ppv")

#: Keys the benchmark reads from ``reports/digitized_classify.json``.
CLASSIFY_KEYS: tuple[str, ...] = (
    "run", "test_beats", "beats", "excluded.outside_strips", "excluded.lead_not_digitised", "excluded.not_recovered",
    *(f"{side}.{key}" for side in ("original", "digitized")
      for key in ("n", "accuracy", "sensitivity.S", "ppv.S", "sensitivity.V", "ppv.V")),
    "changed.beats", "changed.fraction", "changed.pairs")


def check_keys(doc: Any, paths: Sequence[str], where: str) -> None:
    """Raise :class:`DataError` naming ``where`` and the first dotted key path of ``paths`` missing in ``doc``.

    Examples
    --------
    >>> check_keys({"a": {"x": {"b": 1}, "y": {}}}, ["a.*.b"], "r.json")
    Traceback (most recent call last):
    ...
    pipelines.core.errors.DataError: r.json: missing key 'a.y.b'
    """
    def walk(node: Any, keys: list[str], done: list[str]) -> None:
        if not keys:
            return
        if not isinstance(node, dict):
            raise DataError(where, f"'{'.'.join(done)}' is not an object")
        head, rest = keys[0], keys[1:]
        for name in (list(node) if head == "*" else [head]):
            if name not in node:
                raise DataError(where, f"missing key {'.'.join([*done, name])!r}")
            walk(node[name], rest, [*done, str(name)])

    for path in paths:
        walk(doc, path.split("."), [])


def read_paper_reports(digitize_path: str | Path, classify_path: str | Path) -> PaperReports:
    """The two paper-ECG reports, each None when its file is absent; :class:`DataError` naming a file that is
    not JSON or lacks a key the benchmark shows."""
    docs = []
    for path, keys in ((Path(digitize_path), DIGITIZE_KEYS), (Path(classify_path), CLASSIFY_KEYS)):
        doc = read_json(path, "not found") if path.is_file() else None
        if doc is not None:
            check_keys(doc, keys, str(path))
        docs.append(doc)
    return PaperReports(*docs)


def evaluate(params_path: str | Path, models_dir: str | Path, detector_path: str | Path, out_dir: str | Path,
             *, digitize_path: str | Path | None = None, classify_path: str | Path | None = None,
             revision: str | None = None, stream: TextIO | None = None) -> str:
    """Run the whole stage; return its one-line summary.

    Every input is read and checked, and every output computed, before anything is written.
    ``digitize_path`` and ``classify_path`` (default ``<out_dir>/digitize.json`` and
    ``<out_dir>/digitized_classify.json``) may be absent: their benchmark sections then say so.

    Raises
    ------
    ConfigError
        Bad ``train.runs`` or ``evaluate.published``.
    DataError
        A run folder listed in ``train.runs`` is missing (all missing ones are named), or an input
        file is malformed (named).
    """
    params = load_params(params_path)
    names = run_names(params, params_path)
    published = parse_published((params.get("evaluate") or {}).get("published"))
    models_dir, out_dir = Path(models_dir), Path(out_dir)
    missing = [n for n in names if not (models_dir / n).is_dir()]
    if missing:
        raise DataError(str(models_dir), f"no run directory for {', '.join(missing)} (listed in train.runs "
                                         f"of {params_path}; run `dvc repro train` first)")
    detector = read_detector(detector_path)
    paper = read_paper_reports(out_dir / "digitize.json" if digitize_path is None else digitize_path,
                               out_dir / "digitized_classify.json" if classify_path is None else classify_path)
    revision = git_revision() if revision is None else revision

    progress = Progress("evaluate", total=len(names), unit="runs", stream=stream, interval=0)
    metrics: dict[str, Any] = {}
    reports, confusion, roc, history = [], [], [], []
    figures: dict[str, bytes] = {}
    n_beats = 0
    for name in names:
        run = load_run(models_dir, name)
        m = run_metrics(run)
        cm = pooled_confusion(run)
        metrics[name] = m
        reports.append(RunReport(name, run.info, m))
        confusion += confusion_rows(run, cm)
        roc += roc_rows(run, roc_curves(run))
        history += history_rows(run)
        pc = m["pooled"]["per_class"]
        figures[f"confusion_{name}.png"] = confusion_png(name, run.info, run.classes, cm, m["n_folds"])
        figures[f"roc_{name}.png"] = roc_png(
            name, run.info, roc_curves(run, FIGURE_ROC_POINTS), {c: pc[c]["auc"] for c in run.classes},
            {c: pc[c]["support"] for c in run.classes}, run.n)
        n_beats += run.n
        progress.update(1, note=f"{name}: {run.n:,} test beats, accuracy {m['pooled']['accuracy']:.4f}")
    benchmark = render_benchmark(reports, published, detector, revision, paper)

    write_text(out_dir / "metrics.json", to_json(metrics))
    with atomic_dir(out_dir / "plots") as tmp:
        tmp.chmod(0o755)  # mkdtemp makes it 0700
        (tmp / "confusion.json").write_text(to_json_rows(confusion), encoding="utf-8")
        (tmp / "roc.json").write_text(to_json_rows(roc), encoding="utf-8")
        (tmp / "history.json").write_text(to_json_rows(history), encoding="utf-8")
    with atomic_dir(out_dir / "figures" / "evaluation") as tmp:
        tmp.chmod(0o755)
        for fname, png in figures.items():
            (tmp / fname).write_bytes(png)
    write_text(out_dir / "benchmark.md", benchmark)
    return progress.done(f"{len(names)} runs, {n_beats:,} test beats, git revision {revision}; "
                         f"wrote {out_dir / 'metrics.json'}, {out_dir / 'benchmark.md'}, plots and figures")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evaluation.evaluate", description=__doc__.split("\n")[0])
    parser.add_argument("--params", default="params.yaml", help="params file (train.runs, evaluate.published)")
    parser.add_argument("--models", required=True, help="folder of the run folders, e.g. models")
    parser.add_argument("--detector", required=True, help="R-peak detector report, e.g. reports/detector.json")
    parser.add_argument("--digitize", default=None,
                        help="digitiser report (optional; default <out>/digitize.json)")
    parser.add_argument("--digitized-classify", default=None,
                        help="digitise-then-classify report (optional; default <out>/digitized_classify.json)")
    parser.add_argument("--out", required=True, help="reports folder, e.g. reports")
    args = parser.parse_args(argv)
    return run_stage("evaluate", lambda: evaluate(args.params, args.models, args.detector, args.out,
                                                  digitize_path=args.digitize,
                                                  classify_path=args.digitized_classify))


if __name__ == "__main__":
    sys.exit(main())
