"""pipelines.core.system.usable_cpus: affinity mask and cgroup v2 quota, not the host's CPU count."""
from __future__ import annotations

import os

import pytest

import pipelines
from pipelines.core import system as _system


@pytest.mark.parametrize("cpu_max, cap", [("max 100000", None), ("100000 100000", 1), ("150000 100000", 2),
                                          ("50000 100000", 1), ("garbage", None)])
def test_cgroup_quota_caps_the_affinity_mask(tmp_path, monkeypatch, cpu_max, cap):
    f = tmp_path / "cpu.max"
    f.write_text(cpu_max + "\n")
    monkeypatch.setattr(_system, "CGROUP_CPU_MAX", f)
    affinity = len(os.sched_getaffinity(0))
    assert _system.usable_cpus() == (affinity if cap is None else min(affinity, cap))


def test_no_cgroup_file_means_the_affinity_mask(tmp_path, monkeypatch):
    monkeypatch.setattr(_system, "CGROUP_CPU_MAX", tmp_path / "absent")
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2})
    assert _system.usable_cpus() == 3


def _openblas_cores(env: dict, first: str = "pipelines") -> list[str]:
    import json
    import subprocess
    import sys

    code = ("import {first}, numpy, scipy.linalg, threadpoolctl, json; print(json.dumps([i.get('architecture') "
            "for i in threadpoolctl.threadpool_info() if i['internal_api'] == 'openblas']))").format(first=first)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not pipelines._avx2_x86(), reason="an x86-64 CPU with AVX2 and FMA")
def test_importing_pipelines_first_pins_openblas_to_its_avx2_kernels():
    """numpy's and scipy's OpenBLAS both run the same kernels on every such CPU (byte-identical data outputs)."""
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_CORETYPE"}
    for first in ("pipelines", "evaluation", "training"):                  # what every stage imports first
        cores = _openblas_cores(env, first)
        assert len(cores) >= 2 and set(cores) == {"Haswell"}, (first, cores)  # numpy's, scipy's (and others)
    assert set(_openblas_cores({**env, "OPENBLAS_CORETYPE": "Sandybridge"})) == {"Sandybridge"}  # a choice is kept
