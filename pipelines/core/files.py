"""Atomic file output and hashing helpers.

Every stage writes through :func:`atomic_path` or :func:`atomic_dir` so that a crash or a
SIGKILL never leaves a half-written output where readers (or DVC) would take it as complete.

Both take an exclusive lock per output (:func:`output_lock`, ``fcntl.flock`` on ``.<name>.lock``
beside it): a second process writing the same output is refused with a
:class:`~pipelines.core.errors.DataError` naming the writer's PID instead of destroying its
temporary files. Under the lock, temporaries of the same output left by a killed writer
(``.<name>.<pid>.<random>.tmp``, see :func:`stale_temps`) are removed before the new one is made,
and an interrupted directory swap (``.<name>.old`` left without ``<name>``) is undone.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

from .errors import DataError

_CHUNK = 1 << 20


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


# --------------------------------------------------------------------------------------------
# Temporaries and locks
# --------------------------------------------------------------------------------------------

def temp_prefix(path: str | os.PathLike) -> str:
    """Name prefix of the temporaries of ``path``: ``.<name>.<pid>.`` (a random part and ``.tmp`` follow).

    >>> temp_prefix("out/images")[:8]
    '.images.'
    """
    return f".{Path(path).name}.{os.getpid()}."


def temp_owner(path: str | os.PathLike, candidate: str | os.PathLike) -> int | None:
    """PID embedded in ``candidate`` if it is a temporary of ``path`` (0 for one without a PID), else None.

    Temporaries made before PIDs were embedded (``.<name>.<random>.tmp``) give 0; files of other
    outputs (``.<name>.b.<pid>.<random>.tmp`` is a temporary of ``<name>.b``) give None.

    >>> temp_owner("d/out", "d/.out.4242.k3j_x9ab.tmp")
    4242
    >>> temp_owner("d/out", "d/.out.k3j_x9ab.tmp")
    0
    >>> temp_owner("d/out", "d/.out.b.4242.k3j_x9ab.tmp") is None
    True
    """
    pattern = rf"\.{re.escape(Path(path).name)}\.(?:(\d+)\.)?[A-Za-z0-9_]+\.tmp"
    match = re.fullmatch(pattern, Path(candidate).name)
    if match is None:
        return None
    return int(match.group(1) or 0)


def pid_alive(pid: int) -> bool:
    """Whether a process with this PID exists on this machine.

    >>> pid_alive(os.getpid())
    True
    """
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


def stale_temps(path: str | os.PathLike) -> list[Path]:
    """Temporaries of ``path`` whose writer is gone, sorted.

    A temporary is stale when its PID is not alive, when it has no PID (an older run), or when its
    PID is this process's own (a PID reused after a kill: this process has made none yet). Call it
    while holding :func:`output_lock`, which guarantees that no live writer uses them.
    """
    path = Path(path)
    if not path.parent.is_dir():
        return []
    found = []
    for candidate in path.parent.glob(f".{_glob_escape(path.name)}.*.tmp"):
        pid = temp_owner(path, candidate)
        if pid is not None and (pid == 0 or pid == os.getpid() or not pid_alive(pid)):
            found.append(candidate)
    return sorted(found)


def _glob_escape(name: str) -> str:
    """``name`` with glob metacharacters escaped (``glob.escape`` for a single name).

    >>> _glob_escape("a[1]*")
    'a[[]1[]][*]'
    """
    return re.sub(r"([*?\[\]])", r"[\1]", name)


def remove_stale_temps(path: str | os.PathLike) -> list[Path]:
    """Remove :func:`stale_temps` of ``path`` (files or directories); return what was removed."""
    removed = stale_temps(path)
    for tmp in removed:
        if tmp.is_dir() and not tmp.is_symlink():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
    return removed


def lock_path(path: str | os.PathLike) -> Path:
    """The lock file of an output: ``.<name>.lock`` beside it.

    >>> lock_path("datasets/images/annotations").as_posix()
    'datasets/images/.annotations.lock'
    """
    path = Path(path)
    return path.with_name(f".{path.name}.lock")


def _lock_holder(lock: Path) -> str:
    try:
        text = lock.read_text().strip()
    except OSError:
        text = ""
    return text if text.isdigit() else "unknown"


@contextlib.contextmanager
def output_lock(path: str | os.PathLike) -> Iterator[Path]:
    """Hold an exclusive, non-blocking lock on output ``path`` for the ``with`` block.

    The lock file ``.<name>.lock`` holds the writer's PID and is removed on exit; the kernel
    releases the lock of a killed writer, so a stale lock file never blocks.

    Raises
    ------
    DataError
        Another process (or another ``with`` block of this one) holds the lock.
    """
    path = Path(path)
    lock = lock_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            holder = _lock_holder(lock)
            who = "this process" if holder == str(os.getpid()) else "another process"
            raise DataError(str(path), f"{who} is writing it (pid {holder}); wait for it to finish, "
                                       f"or stop it") from None
        try:
            same = os.stat(lock).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:  # the previous holder removed it between our open and flock
            same = False
        if same:
            break
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield lock
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(lock)
        os.close(fd)


def _recover_swap(path: Path) -> None:
    """Undo a directory swap of :func:`atomic_dir` that a kill interrupted (call under the lock)."""
    old = path.with_name(f".{path.name}.old")
    if not old.exists():
        return
    if path.exists():  # killed after the new output went in: the old one is garbage
        shutil.rmtree(old)
    else:  # killed between the two renames: the previous output is in .old
        os.replace(old, path)


# --------------------------------------------------------------------------------------------
# Atomic outputs
# --------------------------------------------------------------------------------------------

@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success.

    Holds :func:`output_lock` on ``path`` and removes :func:`stale_temps` first.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "out.txt"
    >>> with atomic_path(target) as tmp:
    ...     _ = tmp.write_text("done")
    >>> target.read_text()
    'done'
    """
    path = Path(path)
    with output_lock(path):
        remove_stale_temps(path)
        fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path), suffix=".tmp", dir=path.parent)
        os.close(fd)
        tmp_path = Path(tmp)
        try:
            yield tmp_path
            os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; outputs are for sharing
            os.replace(tmp_path, path)
        finally:
            if tmp_path.exists():
                tmp_path.unlink()


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary directory beside ``path``; swap it in for ``path`` only on success.

    A previous ``path`` is replaced as a whole, so readers never see a mix of old and new files.
    Holds :func:`output_lock` on ``path``, removes :func:`stale_temps` first and undoes a swap that
    a kill interrupted.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "out"
    >>> with atomic_dir(target) as tmp:
    ...     _ = (tmp / "a.txt").write_text("done")
    >>> sorted(p.name for p in target.iterdir())
    ['a.txt']
    """
    path = Path(path)
    with output_lock(path):
        _recover_swap(path)
        remove_stale_temps(path)
        tmp = Path(tempfile.mkdtemp(prefix=temp_prefix(path), suffix=".tmp", dir=path.parent))
        try:
            yield tmp
            os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700
            if path.exists():
                old = path.with_name(f".{path.name}.old")
                os.replace(path, old)
                os.replace(tmp, path)
                shutil.rmtree(old)
            else:
                os.replace(tmp, path)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp)


def read_json(path: str | os.PathLike, missing: str) -> dict[str, Any]:
    """A JSON object file, parsed; :class:`DataError` naming the file when it is absent (``missing``
    says what to run), not JSON or not an object.

    Examples
    --------
    >>> read_json("/nonexistent/run.json", "run the train stage")
    Traceback (most recent call last):
    ...
    pipelines.core.errors.DataError: /nonexistent/run.json: run the train stage
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(str(path), missing)
    try:
        doc = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(str(path), f"not valid JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise DataError(str(path), "not a JSON object")
    return doc


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as sorted, indented JSON, atomically (stable bytes for DVC)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def _json_default(obj: Any) -> Any:
    import numpy as np

    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
