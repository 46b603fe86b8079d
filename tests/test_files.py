"""pipelines.core.files: atomic outputs, their per-output lock and the removal of a killed writer's temporaries."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipelines.core.errors import DataError
from pipelines.core.files import (atomic_dir, atomic_path, lock_path, output_lock, remove_stale_temps,
                                  stale_temps, temp_owner, write_json)

REPO = Path(__file__).resolve().parents[1]


def _dead_pid() -> int:
    """PID of a process that has exited (and been reaped)."""
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    return int(proc.stdout)


def _writer(target: Path, kind: str, ready: Path) -> subprocess.Popen:
    """A process that starts writing ``target`` (atomic_path or atomic_dir), signals ``ready``, then hangs."""
    code = f"""
import sys, time, pathlib
from pipelines.core.files import atomic_dir, atomic_path
target, ready = pathlib.Path({str(target)!r}), pathlib.Path({str(ready)!r})
if {kind!r} == "dir":
    with atomic_dir(target) as tmp:
        (tmp / "part.txt").write_text("half")
        ready.write_text(str(tmp))
        time.sleep(120)
else:
    with atomic_path(target) as tmp:
        tmp.write_text("half")
        ready.write_text(str(tmp))
        time.sleep(120)
"""
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO)
    deadline = time.monotonic() + 60
    while not ready.exists() or not ready.read_text():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("the writer process did not start writing")
        time.sleep(0.05)
    return proc


def _kill(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)


def test_temp_owner_parses_only_temporaries_of_that_output():
    assert temp_owner("d/out.json", "d/.out.json.123.ab_c9.tmp") == 123
    assert temp_owner("d/out.json", "d/.out.json.ab_c9xyz.tmp") == 0  # made before PIDs were embedded
    assert temp_owner("d/out", "d/.out.json.123.ab_c9.tmp") is None  # another output's temporary
    assert temp_owner("d/out", "d/.out.lock") is None
    assert temp_owner("d/out", "d/.out.old") is None


def test_temporary_names_embed_the_pid(tmp_path):
    with atomic_path(tmp_path / "a.txt") as tmp:
        assert temp_owner(tmp_path / "a.txt", tmp) == os.getpid()
    with atomic_dir(tmp_path / "d") as tmp:
        assert temp_owner(tmp_path / "d", tmp) == os.getpid()


@pytest.mark.parametrize("kind", ["file", "dir"])
def test_temporaries_of_a_dead_writer_are_removed(tmp_path, kind):
    target = tmp_path / "beats.parquet"
    dead = tmp_path / f".beats.parquet.{_dead_pid()}.k3j_x9ab.tmp"
    legacy = tmp_path / ".beats.parquet.q1w2e3r4.tmp"
    live = tmp_path / f".beats.parquet.{os.getppid()}.zzzzzzzz.tmp"  # a live process other than us
    other = tmp_path / f".beats.parquet.x.{_dead_pid()}.k3j_x9ab.tmp"  # belongs to output "beats.parquet.x"
    for p in (dead, legacy, live, other):
        if kind == "dir":
            p.mkdir()
            (p / "f").write_text("stale")
        else:
            p.write_text("stale")
    assert stale_temps(target) == sorted([dead, legacy])
    writer = atomic_dir if kind == "dir" else atomic_path
    with writer(target) as tmp:
        assert not dead.exists() and not legacy.exists()
        (tmp / "x").write_text("new") if kind == "dir" else tmp.write_text("new")
    assert live.exists() and other.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["beats.parquet", live.name, other.name])


def test_remove_stale_temps_reports_what_it_removed(tmp_path):
    dead = tmp_path / f".out.{_dead_pid()}.abcdefgh.tmp"
    dead.write_text("x")
    assert remove_stale_temps(tmp_path / "out") == [dead]
    assert not dead.exists() and remove_stale_temps(tmp_path / "out") == []


@pytest.mark.parametrize("kind", ["file", "dir"])
def test_a_second_writer_is_refused_with_the_first_writers_pid(tmp_path, kind):
    target = tmp_path / "images"
    proc = _writer(target, kind, tmp_path / "ready")
    try:
        writer = atomic_dir if kind == "dir" else atomic_path
        with pytest.raises(DataError, match=rf"images: another process is writing it \(pid {proc.pid}\)"):
            with writer(target):
                pass
        with pytest.raises(DataError, match="another process is writing it"):
            write_json(target, {})
        started = Path((tmp_path / "ready").read_text())
        assert started.exists(), "the refused writer must not touch the first writer's temporary"
    finally:
        _kill(proc)


def test_nested_writers_of_one_output_in_one_process_are_refused(tmp_path):
    with atomic_path(tmp_path / "a.json"):
        with pytest.raises(DataError, match=r"this process is writing it"):
            with atomic_path(tmp_path / "a.json"):
                pass


@pytest.mark.parametrize("kind", ["file", "dir"])
def test_sigkill_mid_write_leaves_the_previous_output(tmp_path, kind):
    target = tmp_path / "out"
    if kind == "dir":
        with atomic_dir(target) as tmp:
            (tmp / "part.txt").write_text("previous")
    else:
        write_json(target, {"v": "previous"})
    before = (target / "part.txt").read_text() if kind == "dir" else target.read_text()
    proc = _writer(target, kind, tmp_path / "ready")
    left = Path((tmp_path / "ready").read_text())
    _kill(proc)
    assert left.exists() and lock_path(target).exists()  # what a killed writer leaves
    assert ((target / "part.txt").read_text() if kind == "dir" else target.read_text()) == before
    # the next writer is not blocked by the dead one's lock file and cleans up after it
    if kind == "dir":
        with atomic_dir(target) as tmp:
            (tmp / "part.txt").write_text("next")
    else:
        write_json(target, {"v": "next"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "ready"]


def test_an_interrupted_directory_swap_is_undone(tmp_path):
    target = tmp_path / "out"
    old = tmp_path / ".out.old"
    old.mkdir()
    (old / "a.txt").write_text("previous")  # killed between the two renames: the previous output is here
    with output_lock(target):
        pass
    with pytest.raises(RuntimeError):
        with atomic_dir(target):
            raise RuntimeError("fails before the swap")
    assert (target / "a.txt").read_text() == "previous" and not old.exists()
    old.mkdir()  # killed after the new output went in: .old is garbage
    with atomic_dir(target) as tmp:
        (tmp / "b.txt").write_text("new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_the_lock_file_is_removed_after_a_write(tmp_path):
    write_json(tmp_path / "m.json", {"a": 1})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json"]
