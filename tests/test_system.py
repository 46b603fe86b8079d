"""pipelines.core.system.usable_cpus: affinity mask and cgroup v2 quota, not the host's CPU count."""
from __future__ import annotations

import os

import pytest

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
