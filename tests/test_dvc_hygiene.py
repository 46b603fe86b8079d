"""DVC hygiene: what DVC hashes and compares is exactly what can change a stage's outputs.

* bytecode written by importing the code (``__pycache__/*.pyc``) never enters a folder dep's hash
  (``train`` depends on ``training/``, ``evaluate`` on ``evaluation/``) nor ``dvc.lock``, and neither
  do the temporaries and locks a killed writer leaves;
* execution params (``workers``, ``scheduler``: where a stage runs) are not stage params, while
  every other key of their sections is.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
#: Keys that choose where and how fast a stage runs; the outputs are byte-identical for every value.
EXECUTION_KEYS = frozenset({"workers", "scheduler"})
FOLDER_DEPS = ("training", "evaluation")


# ------------------------------------------------------------------------------------------------
# bytecode and .dvcignore
# ------------------------------------------------------------------------------------------------

def _repo_files() -> list[str]:
    """Files git tracks or would track (untracked, not ignored), as a fresh clone plus local edits has them."""
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                         capture_output=True, check=True).stdout.decode()
    return [f for f in out.split("\0") if f and (REPO / f).is_file()]


@pytest.fixture(scope="module")
def scratch_repo(tmp_path_factory) -> Path:
    """A copy of the repository's files (no bytecode, no data) in a fresh git repository."""
    root = tmp_path_factory.mktemp("repo")
    archive = root.parent / f"{root.name}.tar"
    with tarfile.open(archive, "w") as tar:
        for name in _repo_files():
            tar.add(REPO / name, arcname=name, recursive=False)
    with tarfile.open(archive) as tar:
        tar.extractall(root, filter="data")
    archive.unlink()
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    subprocess.run(git + ["init", "-q"], cwd=root, check=True)
    subprocess.run(git + ["add", "-A"], cwd=root, check=True)
    subprocess.run(git + ["commit", "-q", "-m", "copy"], cwd=root, check=True)
    assert not list(root.rglob("*.pyc"))
    return root


def _folder_dep_hashes(root: Path) -> dict[str, str]:
    """DVC's hash (``<md5>.dir``) of each folder dep of the stages, as ``dvc status`` computes it."""
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        return {dep.def_path: dep.get_hash().value for stage in repo.index.stages for dep in stage.deps
                if dep.def_path in FOLDER_DEPS}


def _write_bytecode(root: Path) -> list[Path]:
    """Import the packages and byte-compile every module, with bytecode writing on; the .pyc files made."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")}
    subprocess.run([sys.executable, "-c", "import pipelines, training, evaluation"], cwd=root, env=env, check=True)
    subprocess.run([sys.executable, "-m", "compileall", "-q", *FOLDER_DEPS, "pipelines"], cwd=root, env=env,
                   check=True)  # the bytecode an import of every module writes
    return sorted(root.rglob("*.pyc"))


def test_bytecode_does_not_change_folder_deps(scratch_repo):
    before = _folder_dep_hashes(scratch_repo)
    assert set(before) == set(FOLDER_DEPS), "the train/evaluate stages no longer depend on these folders"
    pyc = _write_bytecode(scratch_repo)
    assert {p.relative_to(scratch_repo).parts[0] for p in pyc} >= set(FOLDER_DEPS)
    assert _folder_dep_hashes(scratch_repo) == before, ".dvcignore lets bytecode into a folder dep: full retrain"
    # control: without the .dvcignore rules the same bytecode does change the hashes (the check can fail)
    (scratch_repo / ".dvcignore").write_text("# DVC's empty template\n")
    try:
        assert all(v != before[k] for k, v in _folder_dep_hashes(scratch_repo).items())
    finally:
        shutil.copy(REPO / ".dvcignore", scratch_repo / ".dvcignore")


def test_a_killed_writers_leftovers_do_not_change_folder_deps(scratch_repo):
    """A temporary, lock or swap leftover of atomic_path/atomic_dir inside a folder dep (models/ for evaluate)."""
    before = _folder_dep_hashes(scratch_repo)
    made = [scratch_repo / "training" / ".fold-00.4242.k3j_x9ab.tmp", scratch_repo / "evaluation" / ".plots.lock",
            scratch_repo / "evaluation" / ".plots.old"]
    made[0].mkdir()
    (made[0] / "model.keras").write_bytes(b"half")
    made[1].write_text("4242\n")
    made[2].mkdir()
    try:
        assert _folder_dep_hashes(scratch_repo) == before
    finally:
        for path in made:
            shutil.rmtree(path) if path.is_dir() else path.unlink()


def test_dvc_lock_records_no_bytecode():
    lock = (REPO / "dvc.lock").read_text()
    assert "__pycache__" not in lock and ".pyc" not in lock


# ------------------------------------------------------------------------------------------------
# stage params
# ------------------------------------------------------------------------------------------------

def _params() -> dict:
    return yaml.safe_load((REPO / "params.yaml").read_text())


def _stage_params() -> dict[str, list[str]]:
    """Param keys each stage of dvc.yaml lists (``foreach`` stages once, with their template keys)."""
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    listed: dict[str, list[str]] = {}
    for name, stage in stages.items():
        keys: list[str] = []
        for entry in stage.get("do", stage).get("params", []):
            if isinstance(entry, dict):  # {params file: [keys]}
                for values in entry.values():
                    keys += list(values or [])
            else:
                keys.append(str(entry))
        listed[name] = keys
    return listed


def _sections_with_execution_keys() -> dict[str, set[str]]:
    return {name: set(body) for name, body in _params().items()
            if isinstance(body, dict) and EXECUTION_KEYS & set(body)}


def test_render_and_segment_sections_have_execution_keys():
    """The params this module guards exist (segment's may be added later: then it is checked too)."""
    assert "render" in _sections_with_execution_keys()


@pytest.mark.parametrize("stage", sorted(_stage_params()))
def test_execution_keys_are_not_stage_params(stage):
    for key in _stage_params()[stage]:
        section, _, rest = key.partition(".")
        execution = EXECUTION_KEYS & set(_params().get(section) or {})
        assert not (rest == "" and execution), (
            f"{stage}: param '{key}' takes the whole section, so changing {sorted(execution)} reruns the stage; "
            f"list the other keys of '{section}' one by one")
        assert rest.split(".")[0] not in EXECUTION_KEYS, f"{stage}: '{key}' cannot change an output"


#: Keys of a section a stage lists that its code never reads (so they are left out of its params, and
#: changing them does not rerun it), with the module that would read them: checked below to be absent there.
NOT_READ_BY: dict[str, tuple[str, set[str]]] = {
    # the digitiser's scoring keys: only score_digitize (evaluation/digitize.py) reads them
    "digitize": ("pipelines/digitize.py", {"snr_max_shift_s", "snr_max_offset_mv", "rpeak_tolerance_ms"}),
}


@pytest.mark.parametrize("stage", sorted(_stage_params()))
def test_every_other_key_of_those_sections_is_a_param(stage):
    listed = _stage_params()[stage]
    module, unread = NOT_READ_BY.get(stage, ("", set()))
    for section, keys in _sections_with_execution_keys().items():
        taken = {k.split(".")[1] for k in listed if k.startswith(section + ".")}
        if taken:
            missing = keys - EXECUTION_KEYS - taken - unread
            assert not missing, f"{stage}: {section}.{sorted(missing)} change outputs but are not params"
    source = (REPO / module).read_text() if module else ""
    assert not [k for k in unread if k in source], f"{stage}: {module} reads a key it does not list"


def test_segment_params_cover_the_section():
    """segment lists its section key by key, whether or not params.yaml has execution keys yet."""
    listed = {k.split(".")[1] for k in _stage_params()["segment"] if k.startswith("segment.")}
    assert listed == set(_params()["segment"]) - EXECUTION_KEYS


def test_train_params_cover_the_section():
    """Every key of ``train`` (the schema's fields, not only those params.yaml sets) reruns the training
    stages: listed one by one, the runs and the model sections through ``train.runs.${key}`` and
    ``train.${item.model}`` (a key left out, e.g. a new decision setting, would leave the models of the old
    value in place)."""
    from typing import get_args

    from pipelines.core.schema import ModelName, TrainParams

    listed = _stage_params()["train"]
    assert {"train.runs.${key}", "train.${item.model}"} <= set(listed)
    taken = {k.split(".")[1] for k in listed if k.startswith("train.") and "$" not in k}
    models = set(get_args(ModelName))
    assert models <= set(TrainParams.model_fields)                      # each model has its section
    missing = set(TrainParams.model_fields) - {"runs"} - models - taken
    assert not missing, f"train: {sorted(missing)} change the models but are not params of the train stage"
