"""benchmarks/bench_repro.py: which outputs of a rebuilt dvc.lock match the committed one."""
from __future__ import annotations

import subprocess

import yaml

from tests._scripts import load_benchmark


def _lock(**outs):
    return {"schema": "2.0", "stages": {stage: {"cmd": "x", "outs": [{"path": p, "md5": m} for p, m in items]}
                                        for stage, items in outs.items()}}


def test_compare_outputs_marks_same_and_changed_hashes_and_new_stages():
    bench = load_benchmark("bench_repro")
    committed = _lock(ingest=[("datasets/raw", "a.dir")], train=[("models/m", "b.dir")])
    rebuilt = _lock(ingest=[("datasets/raw", "a.dir")], train=[("models/m", "c.dir")], new=[("out", "d")])
    assert bench.compare_outputs(committed, rebuilt) == [
        ("ingest", "datasets/raw", True), ("train", "models/m", False), ("new", "out", False)]


def test_report_outputs_reads_the_clones_committed_lock(tmp_path, capsys):
    bench = load_benchmark("bench_repro")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(tmp_path)]
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "dvc.lock").write_text(yaml.safe_dump(_lock(a=[("x", "1")], b=[("y", "2")])))
    subprocess.run([*git, "add", "dvc.lock"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "lock"], check=True)
    (tmp_path / "dvc.lock").write_text(yaml.safe_dump(_lock(a=[("x", "1")], b=[("y", "3")])))
    bench.report_outputs(tmp_path)
    out = capsys.readouterr().out
    assert "| `a` | `x` | same |" in out and "| `b` | `y` | changed |" in out
    assert "1 of 2 outputs identical to the committed ones" in out
