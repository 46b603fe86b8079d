"""tests/conftest.py: a missing dependency or MITDB_DIR skips locally and fails under CI=true.

Each case runs pytest in a subprocess on a tiny suite that uses a copy of the conftest. The last
tests check pyproject.toml's filterwarnings: our DeprecationWarnings are errors, named third-party
ones are ignored, any other shows.
"""
from __future__ import annotations

import os
import subprocess
import sys
import warnings
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.conftest import in_ci, mitdb_path

HERE = Path(__file__).resolve().parent

TINY = '''
import pytest
from conftest import require

np = require("numpy")


def test_present():
    assert np.arange(3).sum() == 3


def test_missing_module():
    require("no_such_module_for_ci_test")


def test_data(mitdb_dir):
    assert mitdb_dir.is_dir()


@pytest.mark.skipif(True, reason="a plain skipif")
def test_skipif():
    pass


def test_skip_in_body():
    pytest.skip("skipped in the body")


@pytest.mark.ci_may_skip("documented: needs hardware CI lacks")
def test_allowed():
    pytest.skip("allowed")


@pytest.mark.integration
def test_marked_integration():
    pass


@pytest.mark.xfail(reason="known bug", strict=True)
def test_xfail():
    assert False
'''

MODULE_SKIP = '''
from conftest import require

require("no_such_module_for_ci_test")


def test_never_collected():
    pass
'''


def _outcomes(tmp_path: Path, ci: str | None, mitdb: str | None) -> dict[str, str]:
    """Run the tiny suite; ``{test name: passed|failed|error|skipped}`` from its JUnit XML."""
    suite = tmp_path / f"suite-{ci}-{mitdb is not None}"
    suite.mkdir()
    (suite / "conftest.py").write_text((HERE / "conftest.py").read_text())
    (suite / "pytest.ini").write_text("[pytest]\nmarkers =\n    ci_may_skip(reason): may skip under CI\n"
                                      "    integration: needs MITDB_DIR\n")
    (suite / "test_tiny.py").write_text(TINY)
    (suite / "test_module_skip.py").write_text(MODULE_SKIP)
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "MITDB_DIR", "PYTEST_ADDOPTS")}
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"  # the tiny suite needs no plugin: a faster start
    if ci is not None:
        env["CI"] = ci
    if mitdb is not None:
        env["MITDB_DIR"] = mitdb
    xml = suite / "junit.xml"
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--strict-markers",
                    "--continue-on-collection-errors", f"--junitxml={xml}", "."], cwd=suite, env=env,
                   capture_output=True, text=True, timeout=300)
    found: dict[str, str] = {}
    for case in ET.parse(xml).getroot().iter("testcase"):
        kinds = [child.tag for child in case if child.tag in ("failure", "error", "skipped")]
        found[case.get("name")] = {"failure": "failed", "error": "error", "skipped": "skipped"}.get(
            kinds[0] if kinds else "", "passed")
    return found


def test_outside_ci_missing_things_skip(tmp_path):
    assert _outcomes(tmp_path, None, None) == {
        "test_present": "passed", "test_missing_module": "skipped", "test_data": "skipped",
        "test_skipif": "skipped", "test_skip_in_body": "skipped", "test_allowed": "skipped",
        "test_marked_integration": "skipped",
        "test_xfail": "skipped",  # JUnit writes an xfail as skipped
        "test_module_skip": "skipped"}


def test_under_ci_missing_things_fail(tmp_path):
    assert _outcomes(tmp_path, "true", None) == {
        "test_present": "passed", "test_missing_module": "failed",
        "test_data": "error",  # the fixture fails: an error in setup
        "test_marked_integration": "error",
        "test_skipif": "error",  # skipif is evaluated in setup
        "test_skip_in_body": "failed",
        "test_allowed": "skipped", "test_xfail": "skipped",  # opted out / expected failure: untouched
        "test_module_skip": "error"}  # a collection error: the module's tests cannot be lost silently


def test_under_ci_mitdb_dir_set_runs_the_data_test(tmp_path):
    outcome = _outcomes(tmp_path, "true", str(tmp_path))
    assert outcome["test_data"] == outcome["test_marked_integration"] == "passed"
    assert outcome["test_missing_module"] == "failed"


@pytest.mark.parametrize("value, expected", [(None, False), ("", False), ("false", False), ("0", False),
                                             ("No", False), ("true", True), ("1", True), ("yes", True)])
def test_in_ci_reads_the_ci_variable(monkeypatch, value, expected):
    if value is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", value)
    assert in_ci() is expected


def test_mitdb_path_is_none_unless_a_directory(monkeypatch, tmp_path):
    monkeypatch.setenv("MITDB_DIR", str(tmp_path))
    assert mitdb_path() == tmp_path
    monkeypatch.setenv("MITDB_DIR", str(tmp_path / "nope"))
    assert mitdb_path() is None
    monkeypatch.delenv("MITDB_DIR")
    assert mitdb_path() is None


# ------------------------------------------------------------------------------------------------
# DeprecationWarnings (pyproject.toml filterwarnings)
# ------------------------------------------------------------------------------------------------

def _warn_from(module: str) -> list[warnings.WarningMessage]:
    """Raise a DeprecationWarning attributed to ``module``; the warnings that got through."""
    with warnings.catch_warnings(record=True) as seen:
        exec("import warnings\nwarnings.warn('old API', DeprecationWarning)", {"__name__": module})
    return list(seen)


def test_our_deprecation_warnings_are_errors():
    with pytest.raises(DeprecationWarning, match="old API"):
        warnings.warn("old API", DeprecationWarning)
    for module in ("pipelines.render", "training.train", "evaluation.metrics", "tests.test_x"):
        with pytest.raises(DeprecationWarning):
            _warn_from(module)


def test_only_named_third_party_deprecation_warnings_are_ignored():
    for module in ("wfdb.io.annotation", "dask.dataframe.io.parquet.arrow", "mlcroissant._src.x", "rdflib"):
        assert _warn_from(module) == []
    shown = _warn_from("some_other_library.io")
    assert [str(w.message) for w in shown] == ["old API"]
    assert _warn_from("pipelinesx") != []  # the module patterns are anchored: no prefix matches
