"""The ``evaluate`` stage: metrics, plot data, figures and the benchmark table of every trained run.

Usage::

    python -m evaluation.evaluate --params params.yaml --models models \\
        --detector reports/detector.json --out reports

Reads ``train.runs`` (every run listed there must have its ``models/<run>/`` folder) and
``evaluate.published`` from the params file, and writes, each file atomically and byte-identical
for identical inputs:

* ``<out>/metrics.json``: per run, pooled, fold-mean and fold-std figures (macro and per class),
  the AAMI EC57 figures (``bxb`` scoring) for AAMI runs, and the same for the run's baselines
  (``fold-XX/baselines.parquet``: majority class, rhythm only) when it has them (DVC metrics);
* ``<out>/plots/confusion.json``, ``roc.json``, ``history.json``: DVC plot data
  (templates in ``evaluation/templates/``);
* ``<out>/figures/evaluation/confusion_<run>.png`` and ``roc_<run>.png``;
* ``<out>/benchmark.md``: our runs, each with its two baseline rows, beside the published figures,
  with provenance, the EC57 table and the R-peak detector report.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from typing import Any, Sequence, TextIO

from pipelines import ConfigError, DataError, Progress, atomic_dir, load_params, run_stage

from .benchmark import RunReport, render_benchmark
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


def evaluate(params_path: str | Path, models_dir: str | Path, detector_path: str | Path, out_dir: str | Path,
             *, revision: str | None = None, stream: TextIO | None = None) -> str:
    """Run the whole stage; return its one-line summary.

    Every input is read and checked, and every output computed, before anything is written.

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
    benchmark = render_benchmark(reports, published, detector, revision)

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
    parser.add_argument("--out", required=True, help="reports folder, e.g. reports")
    args = parser.parse_args(argv)
    return run_stage("evaluate", lambda: evaluate(args.params, args.models, args.detector, args.out))


if __name__ == "__main__":
    sys.exit(main())
