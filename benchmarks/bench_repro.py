"""Wall time of the whole pipeline, stage by stage, on a fresh clone: ``dvc repro`` from nothing.

Clones this repository's committed ``HEAD`` into a scratch directory with ``../shared`` beside it (a
symlink to this checkout's ``../shared``), runs ``dvc repro`` there with the default ``params.yaml`` and
times every stage from DVC's ``Running stage '<name>':`` lines (a stage's time runs from its line to the
next stage's, so it includes DVC's hashing of its outputs). Prints one line per stage as it ends, then a
table sorted by time, and the total; then, for every output in the rebuilt ``dvc.lock``, whether its hash
equals the one in the committed ``dvc.lock`` (``same``) or not (``changed``): data outputs must come out
byte-identical on any CPU, trained models need not.

The virtual environment is this checkout's ``.venv`` (symlinked), so the figure leaves out ``make
install`` (a few minutes of downloads, once per machine): it is the time of ``make repro`` on a machine
where ``make test`` or ``make repro`` has already installed the requirements.

Run: ``.venv/bin/python benchmarks/bench_repro.py [--dir /tmp/repro-clone] [--keep]``.
Needs the shared MIT-BIH copy at ``../shared/data/mitdb`` (or ``MITDB_DIR``).
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STAGE_LINE = re.compile(r"Running stage '([^']+)'")


def clone(dest: Path) -> Path:
    """A fresh clone of ``HEAD`` at ``dest/main``, with ``dest/shared`` -> this checkout's ``../shared``."""
    shared = (ROOT.parent / "shared").resolve()
    if not (shared / "data" / "mitdb").is_dir() and "MITDB_DIR" not in os.environ:
        sys.exit(f"bench_repro: no MIT-BIH copy at {shared / 'data' / 'mitdb'} and MITDB_DIR unset")
    dest.mkdir(parents=True, exist_ok=True)
    repo = dest / "main"
    if repo.exists():
        shutil.rmtree(repo)
    subprocess.run(["git", "clone", "-q", str(ROOT), str(repo)], check=True)
    link = dest / "shared"
    if not link.exists():
        link.symlink_to(shared)
    (repo / ".venv").symlink_to(ROOT / ".venv")
    return repo


def repro(repo: Path) -> tuple[list[tuple[str, float]], float, int]:
    """Run ``dvc repro`` in ``repo``; return (stage, seconds) in run order, the total and the exit code."""
    env = dict(os.environ, PATH=f"{ROOT / '.venv' / 'bin'}:{os.environ['PATH']}", PYTHONHASHSEED="0",
               TF_CPP_MIN_LOG_LEVEL="2")
    env.setdefault("MITDB_DIR", str((repo.parent / "shared" / "data" / "mitdb").resolve()))
    t0 = time.perf_counter()
    stages: list[tuple[str, float]] = []
    current, since = None, t0
    proc = subprocess.Popen([str(ROOT / ".venv" / "bin" / "dvc"), "repro"], cwd=repo, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, bufsize=1)
    assert proc.stdout is not None
    for line in proc.stdout:
        m = STAGE_LINE.search(line)
        if m:
            now = time.perf_counter()
            if current is not None:
                stages.append((current, now - since))
                print(f"bench_repro: {current} {now - since:,.1f} s (at {now - t0:,.0f} s)", flush=True)
            current, since = m.group(1), now
    rc = proc.wait()
    end = time.perf_counter()
    if current is not None:
        stages.append((current, end - since))
        print(f"bench_repro: {current} {end - since:,.1f} s (at {end - t0:,.0f} s)", flush=True)
    return stages, end - t0, rc


def compare_outputs(committed: dict, rebuilt: dict) -> list[tuple[str, str, bool]]:
    """``(stage, path, same)`` for every output of the ``rebuilt`` ``dvc.lock`` (parsed YAML): ``same`` when the
    ``committed`` lock has that stage and path with the same ``md5``.

    >>> old = {"stages": {"a": {"outs": [{"path": "x", "md5": "1"}, {"path": "y", "md5": "2"}]}}}
    >>> new = {"stages": {"a": {"outs": [{"path": "x", "md5": "1"}, {"path": "y", "md5": "3"}]},
    ...                   "b": {"outs": [{"path": "z", "md5": "4"}]}}}
    >>> compare_outputs(old, new)
    [('a', 'x', True), ('a', 'y', False), ('b', 'z', False)]
    """
    before = {(stage, out["path"]): out.get("md5") for stage, spec in (committed.get("stages") or {}).items()
              for out in spec.get("outs", [])}
    return [(stage, out["path"], before.get((stage, out["path"])) == out.get("md5"))
            for stage, spec in (rebuilt.get("stages") or {}).items() for out in spec.get("outs", [])]


def report_outputs(repo: Path) -> None:
    """Print :func:`compare_outputs` of the clone's committed and rebuilt ``dvc.lock``."""
    import yaml

    shown = subprocess.run(["git", "show", "HEAD:dvc.lock"], cwd=repo, text=True, capture_output=True)
    if shown.returncode or not (repo / "dvc.lock").exists():
        print("bench_repro: no committed or rebuilt dvc.lock to compare outputs with")
        return
    rows = compare_outputs(yaml.safe_load(shown.stdout), yaml.safe_load((repo / "dvc.lock").read_text()))
    print("\n| stage | output | against the committed dvc.lock |\n|---|---|---|")
    for stage, path, same in rows:
        print(f"| `{stage}` | `{path}` | {'same' if same else 'changed'} |")
    print(f"bench_repro: {sum(same for *_, same in rows)} of {len(rows)} outputs identical to the committed ones")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", type=Path, default=None, help="scratch directory (default: a temporary one)")
    ap.add_argument("--keep", action="store_true", help="keep the clone (its models/ and reports/)")
    args = ap.parse_args(argv)
    dest = args.dir or Path(tempfile.mkdtemp(prefix="bench-repro-"))
    repo = clone(dest)
    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=repo, text=True,
                         capture_output=True).stdout.strip()
    print(f"bench_repro: dvc repro in a fresh clone of {rev} at {repo} on {os.cpu_count()} CPUs", flush=True)
    stages, total, rc = repro(repo)
    print("\n| stage | wall s | share |\n|---|---:|---:|")
    for name, s in sorted(stages, key=lambda x: -x[1]):
        print(f"| `{name}` | {s:,.1f} | {100 * s / max(total, 1e-9):.1f} % |")
    print(f"| **total** (`dvc repro`, {len(stages)} stages) | **{total:,.1f}** ({total / 60:.1f} min) | |")
    print(f"bench_repro: {'ok' if rc == 0 else f'dvc repro FAILED (exit {rc})'}: {len(stages)} stages in "
          f"{total / 60:.1f} min; target <= 60 min: {'met' if rc == 0 and total <= 3600 else 'NOT met'}")
    if rc == 0:
        report_outputs(repo)
    if not args.keep and args.dir is None:
        shutil.rmtree(dest, ignore_errors=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
