"""Share and trust the dataset: DVC remote round trip, byte-identical rebuilds, faults.

These tests build a real DVC repository from this working tree on a tiny profile (two records,
up to the render stage) and drive `dvc` the way a user does. They need the MIT-BIH copy
(MITDB_DIR) and take about two minutes together.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from pipelines import read_manifest, sha256_file, shard_paths, verify_shards
from pipelines.core.params import deep_merge

ROOT = Path(__file__).resolve().parents[1]
MITDB_DIR = os.environ.get("MITDB_DIR")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.integration,
    pytest.mark.skipif(not MITDB_DIR, reason="MITDB_DIR is not set"),
]

TINY = {
    "ingest": {"records": ["100", "119"]},
    "render": {"shard_mb": 1, "workers": 2},
}
STAGE = "render@annotations"
IMAGES = Path("datasets/images/annotations")
#: Where an image set keeps its shards (the Hugging Face layout: data/<config>/<split>-i-of-N.parquet).
SHARD_GLOB = "data/*/*.parquet"
#: A shard still being written (``ShardWriter``: ``.<split>-00000.tmp``, renamed when the set is complete).
SHARD_TEMP_GLOB = "data/*/.*.tmp"


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONHASHSEED"] = "0"
    env.pop("DVC_REMOTE", None)
    return env


def run(cmd: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, env=_env(), capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def dvc(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    return run([sys.executable, "-m", "dvc", *args], cwd=cwd, check=check)


def git(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return run(["git", "-c", "user.name=test", "-c", "user.email=test@localhost", *args], cwd=cwd)


def changed(repo: Path) -> dict:
    """``dvc status --json --with-deps`` of the stage, less the ``source`` stage's ``always changed``
    (it fingerprints records outside the repository, so DVC runs it on every repro by design)."""
    status = json.loads(dvc("status", "--json", "--with-deps", STAGE, cwd=repo).stdout or "{}")
    if status.get("source") == ["always changed"]:
        del status["source"]
    return status


def image_files(repo: Path) -> dict[str, bytes]:
    """Every file of the image directory (shards under data/, manifest, card, croissant), by relative path."""
    root = repo / IMAGES
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def origin(tmp_path_factory) -> Path:
    """A git + DVC repository made from this working tree on the tiny profile, built and pushed."""
    repo = tmp_path_factory.mktemp("origin")
    files = subprocess.run(["git", "ls-files", "-z", "-co", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, files):
        src = ROOT / name
        if src.is_file() and not name.startswith(("datasets/", "build/")):
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, repo / name)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    (repo / "params.yaml").write_text(yaml.safe_dump(deep_merge(params, TINY), sort_keys=False))
    remote = tmp_path_factory.mktemp("remote")
    git("init", "-q", cwd=repo)
    dvc("remote", "add", "-f", "-d", "local", str(remote), cwd=repo)
    git("add", "-A", cwd=repo)
    git("commit", "-qm", "tiny profile", cwd=repo)
    dvc("repro", STAGE, cwd=repo)
    git("add", "-A", cwd=repo)
    git("commit", "-qm", "built", cwd=repo)
    dvc("push", "--with-deps", STAGE, cwd=repo)
    return repo


def test_push_clone_pull_gives_the_same_dataset(origin, tmp_path):
    clone = tmp_path / "clone"
    git("clone", "-q", str(origin), str(clone), cwd=tmp_path)
    dvc("pull", "--with-deps", STAGE, cwd=clone)
    assert changed(clone) == {}
    manifest = verify_shards(clone / IMAGES)        # re-hashes every shard against manifest.json; raises if not
    assert manifest == read_manifest(origin / IMAGES)
    shards = shard_paths(clone / IMAGES)
    assert len(shards) >= 2 and len(shards) == len(manifest["shards"])
    listed = {s["file"]: s["sha256"] for s in manifest["shards"]}
    for shard in shards:
        assert shard.relative_to(clone / IMAGES).parts[0] == "data"
        assert sha256_file(shard) == listed[shard.relative_to(clone / IMAGES).as_posix()]
    files = image_files(clone)
    assert files == image_files(origin)
    assert {"manifest.json", "README.md", "croissant.json"} <= set(files)
    assert sum(name.startswith("data/") for name in files) == len(shards)


def test_rebuild_from_a_fresh_clone_is_byte_identical(origin, tmp_path):
    clone = tmp_path / "rebuild"
    git("clone", "-q", str(origin), str(clone), cwd=tmp_path)
    dvc("repro", "--force", STAGE, cwd=clone)       # rebuild everything, trust nothing from the cache
    assert image_files(clone) == image_files(origin)
    assert changed(clone) == {}


def test_render_killed_halfway_leaves_no_partial_shard(origin, tmp_path):
    clone = tmp_path / "killed"
    git("clone", "-q", str(origin), str(clone), cwd=tmp_path)
    dvc("pull", "segment@annotations", cwd=clone)
    out = clone / IMAGES
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipelines.render", "--method", "annotations", "--params", "params.yaml",
         "--beats", "datasets/beats/annotations.parquet", "--out", str(IMAGES)],
        cwd=clone, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    killed_mid_write = False
    while time.monotonic() < deadline and proc.poll() is None:
        temps = [p for p in out.parent.glob(f".{out.name}*") if p.is_dir()]
        # a second shard being written (".train-00001.tmp": the first is finished, not all are; close() names
        # them only at the end, for the last moments before the directory's rename, too short to poll for)
        written = [p for t in temps for p in (*t.glob(SHARD_TEMP_GLOB), *t.glob(SHARD_GLOB))]
        if any(p.suffix == ".parquet" or not p.name.endswith("-00000.tmp") for p in written):
            os.killpg(proc.pid, signal.SIGKILL)
            killed_mid_write = True
            break
        time.sleep(0.05)
    proc.wait()
    assert killed_mid_write, "render finished before it could be killed; make the profile larger"
    assert not out.exists() or not (list(out.glob(SHARD_GLOB)) or list(out.glob(SHARD_TEMP_GLOB))), \
        "a partial shard is visible to readers"
    dvc("repro", STAGE, cwd=clone)
    assert image_files(clone) == image_files(origin)


def test_a_flipped_byte_is_caught(origin, tmp_path):
    clone = tmp_path / "corrupt"
    git("clone", "-q", str(origin), str(clone), cwd=tmp_path)
    dvc("pull", "--with-deps", STAGE, cwd=clone)
    shard = shard_paths(clone / IMAGES)[1]
    shard.chmod(0o644)
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF
    shard.write_bytes(bytes(data))
    status = dvc("status", "--with-deps", STAGE, cwd=clone)
    assert "modified" in status.stdout and str(IMAGES) in status.stdout, status.stdout
    check = run([sys.executable, "-m", "pipelines.shards", "verify", str(IMAGES)], cwd=clone, check=False)
    assert check.returncode != 0
    assert shard.name in check.stderr + check.stdout


def test_a_corrupted_cache_object_is_caught_by_the_manifest_check(origin, tmp_path):
    clone = tmp_path / "cache"
    git("clone", "-q", str(origin), str(clone), cwd=tmp_path)
    dvc("pull", "--with-deps", STAGE, cwd=clone)
    shard = shard_paths(clone / IMAGES)[0]
    digest = run(["md5sum", str(shard)], cwd=clone).stdout.split()[0]
    cached = clone / ".dvc" / "cache" / "files" / "md5" / digest[:2] / digest[2:]
    assert cached.is_file()
    cached.chmod(0o644)
    data = bytearray(cached.read_bytes())
    data[100] ^= 0x01
    cached.write_bytes(bytes(data))
    shutil.rmtree(clone / IMAGES)
    dvc("checkout", "--force", STAGE, cwd=clone, check=False)
    check = run([sys.executable, "-m", "pipelines.shards", "verify", str(IMAGES)], cwd=clone, check=False)
    assert check.returncode != 0
    assert shard.name in check.stderr + check.stdout
