"""benchmarks/seed_spread.py: one whole run on tiny shards (its summary, `compare_fold.summarise`, is tested there)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines import DS1, DS2
from tests._shards import train_params, write_params, write_shards

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_two_seeds_train_and_are_scored_with_ec57(tmp_path):
    records = {r: {"N": 14, "A": 3, "V": 4, "F": 2, "Q": 2} for r in (DS1[0], DS1[1], DS2[0], DS2[1])}
    write_shards(tmp_path / "images", records, size=16, n_shards=1, row_group_rows=32, rr=True)
    write_params(tmp_path / "params.yaml", train_params(runs={
        "tiny-ds": {"model": "small_cnn", "method": "annotations", "folds": "ds1ds2", "labels": "aami"}}))
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "seed_spread.py"), "--run", "tiny-ds",
                           "--seeds", "3", "4", "--params", str(tmp_path / "params.yaml"),
                           "--images", str(tmp_path / "images")],
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert [r["seed"] for r in rows] == [3, 4]
    for r in rows:
        assert r["beats"] == 2 * 23                  # the two DS2 records' N, S, V, F beats (Q is not scored)
        assert 0 <= r["accuracy"] <= 100 and len(r["tau"]) == len(r["epoch"]) == 1
    assert "mean" in proc.stdout and "sd" in proc.stdout
