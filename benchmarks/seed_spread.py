"""How much of a run's result is its training seed: the run trained once per ``train.seed``, EC57 on its test beats.

Trains ``train.runs.<run>`` (every fold, exactly as its DVC stage does, ``python -m training.train``) once per
seed into a scratch directory, with only ``train.seed`` changed in a copy of ``params.yaml``, and prints per seed
the EC57 accuracy, S and V Se / +P of the pooled test predictions, the tau and epoch each fold chose, then the
mean and sample standard deviation over the seeds. A reading of the spread, not a way to choose a seed: the
committed run keeps ``train.seed`` as ``params.yaml`` sets it.

Usage::

    python benchmarks/seed_spread.py --run small_cnn-ds1ds2 --seeds 42 1 2 [--images datasets/images/annotations]

The seed also seeds the fold plan: the validation records (and for ``record`` and ``beat`` folds the test
folds) can change with it. AAMI runs only (EC57 figures).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from compare_fold import FIGURES, apply, ec57_figures, summarise  # noqa: E402
from diagnose_run import read_predictions  # noqa: E402


def train_seed(run: str, params: dict[str, Any], seed: int, images: str, work: Path) -> dict[str, Any]:
    """Train ``run`` with ``train.seed = seed`` into ``work``; return its EC57 figures, taus and epochs."""
    path = work / f"params-seed{seed}.yaml"
    path.write_text(yaml.safe_dump(apply(params, [f"train.seed={seed}"]), sort_keys=False))
    out = work / f"seed{seed}" / run
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    subprocess.run([sys.executable, "-m", "training.train", "--run", run, "--params", str(path), "--images", images,
                    "--out", str(out), "--cache", str(work / f"cache{seed}")], check=True, env=env, cwd=ROOT)
    doc = json.loads((out / "run.json").read_text())
    if doc["labels"] != "aami":
        raise SystemExit(f"seed_spread: {run} has labels {doc['labels']!r}; EC57 figures need aami")
    fig = ec57_figures(read_predictions(out), tuple(doc["label_classes"]))
    return {"seed": seed, **fig, "tau": [f["decision_tau"] for f in doc["fold_summaries"]],
            "epoch": [f["best_epoch"] for f in doc["fold_summaries"]]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True, help="run name under train.runs (AAMI labels)")
    ap.add_argument("--seeds", type=int, nargs="+", required=True)
    ap.add_argument("--params", default=str(ROOT / "params.yaml"))
    ap.add_argument("--images", default=None, help="image shards (default datasets/images/<the run's method>)")
    args = ap.parse_args(argv)
    params = yaml.safe_load(Path(args.params).read_text())
    spec = params["train"]["runs"].get(args.run)
    if spec is None:
        raise SystemExit(f"seed_spread: no run {args.run!r} under train.runs of {args.params}")
    images = str(Path(args.images).resolve()) if args.images else str(ROOT / "datasets" / "images" / spec["method"])
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            row = train_seed(args.run, params, seed, images, Path(tmp))
            rows.append(row)
            print(json.dumps(row), flush=True)
    print(f"\n{args.run}: EC57 on its test beats per train.seed (percent)")
    print(f"  {'seed':>6} " + " ".join(f"{k:>9}" for k in FIGURES) + "  tau / epoch per fold")
    for r in rows:
        print(f"  {r['seed']:>6} " + " ".join(f"{'-' if r[k] is None else r[k]:>9}" for k in FIGURES)
              + f"  {r['tau']} / {r['epoch']}")
    stats = summarise(rows)
    print(f"  {'mean':>6} " + " ".join(f"{stats[k][0]:>9}" for k in FIGURES))
    print(f"  {'sd':>6} " + " ".join(f"{stats[k][1]:>9}" for k in FIGURES))
    return 0


if __name__ == "__main__":
    sys.exit(main())
