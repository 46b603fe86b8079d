"""Compare settings of one training run on its first fold, by the validation figure the run selects on.

Trains fold 1 of ``train.runs.<run>`` once per variant (each variant a set of ``params.yaml`` keys changed
from the file's values) and prints, per variant, the best validation macro F1 (the figure that picks the
run's epoch and decision prior, :class:`training.selection.MacroF1Selection`), the epoch and tau it chose,
and the fold's wall time. The test side of the fold is predicted (``train_fold`` writes its predictions
into a scratch directory) but never read or printed: settings are chosen on validation beats only.

Usage::

    python benchmarks/compare_fold.py --run small_cnn-beat-jun8 \\
        --variant default \\
        --variant b128 train.small_cnn.batch_size=128 train.runs.small_cnn-beat-jun8.learning_rate=0.008

Values are YAML (``true``, ``0.008``, ``[S]``). A variant's keys are applied to a copy of the params and
checked by the params schema as a whole, exactly as ``dvc repro`` would.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from pipelines.core.params import load_params  # noqa: E402


def apply(params: dict[str, Any], assignments: list[str]) -> dict[str, Any]:
    """``params`` with each ``dotted.key=yaml-value`` set (a copy; missing mappings are created).

    >>> apply({"a": {"b": 1}}, ["a.b=2", "a.c=[S]"])
    {'a': {'b': 2, 'c': ['S']}}
    """
    out = copy.deepcopy(params)
    for item in assignments:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"compare_fold: {item!r}: expected dotted.key=value")
        *parents, leaf = key.split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = yaml.safe_load(value)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True, help="run name under train.runs")
    ap.add_argument("--params", default=str(ROOT / "params.yaml"))
    ap.add_argument("--images", default=None, help="image shards (default datasets/images/<the run's method>)")
    ap.add_argument("--variant", nargs="+", action="append", required=True, metavar=("NAME", "KEY=VALUE"),
                    help="a variant: its name, then the keys it changes (none: the params as they are)")
    args = ap.parse_args(argv)

    from training import models
    from training.config import run_config
    from training.meta import open_images
    from training.runtime import configure
    from training.train import Prepared, train_fold

    base = yaml.safe_load(Path(args.params).read_text())
    rows = []
    for name, *assignments in args.variant:
        params = apply(base, assignments)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "params.yaml"
            path.write_text(yaml.safe_dump(params, sort_keys=False))
            train = load_params(path, "train")          # validated as a whole, as a stage would
            cfg = run_config(train, args.run)
            images = open_images(args.images or ROOT / "datasets" / "images" / cfg.method)
            t0 = time.perf_counter()
            prep = Prepared(cfg, images)
            configure(cfg.seed)
            summary = train_fold(prep, 0, Path(tmp) / "work", precision=models.resolve_precision(cfg.mixed_precision),
                                 stream=sys.stderr)
        row = {"variant": name, "changes": assignments, "val_macro_f1": summary["best_val_macro_f1"],
               "best_epoch": summary["best_epoch"], "tau": summary["decision_tau"],
               "train_images": summary["train_images"], "seconds": round(time.perf_counter() - t0, 1)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    print(f"\n{args.run}, fold 1, validation macro F1 (the run's selection figure):")
    for r in rows:
        f1 = "n/a" if r["val_macro_f1"] is None else f"{r['val_macro_f1']:.4f}"
        print(f"  {r['variant']:<20} {f1:>8}  epoch {r['best_epoch']}  tau {r['tau']:.1f}  {r['seconds']:7.1f} s  "
              + " ".join(r["changes"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
