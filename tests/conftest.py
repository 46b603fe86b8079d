"""Shared test configuration: under ``CI=true`` nothing skips silently.

Locally a test whose optional dependency or data is missing is skipped (with the reason in the
``-ra`` summary). Under ``CI=true`` (set by GitHub Actions, GitLab CI and most CI systems) the same
test fails instead: a broken install or an unset ``MITDB_DIR`` must not turn the suite green.

* :func:`require` replaces ``pytest.importorskip`` for third-party modules (the project's own
  modules are imported plainly: they must never be skipped);
* the ``mitdb_dir`` fixture gives the MIT-BIH copy named by ``MITDB_DIR``, and a test marked
  ``integration`` needs it too;
* as a safety net, every skip (of a test, of its setup, or of a whole module at collection) is
  turned into a failure under ``CI=true``, except doctest examples marked ``+SKIP`` and tests marked
  ``@pytest.mark.ci_may_skip(reason)``.
"""
from __future__ import annotations

import importlib
import os
from pathlib import Path
from types import ModuleType

import pytest

#: Values of ``CI`` that mean "not in CI".
_FALSE = {"", "0", "false", "no", "off"}


def in_ci() -> bool:
    """Whether the environment variable ``CI`` is set to a true value (``true``, ``1``, ``yes`` ...)."""
    return os.environ.get("CI", "").strip().lower() not in _FALSE


def missing(what: str) -> None:
    """Skip the current test (or module) because ``what`` is missing; fail instead under ``CI=true``."""
    if in_ci():
        pytest.fail(f"CI=true and {what}: CI must run every test (install the dev extras: "
                    f"pip install -e '.[dev]'; set MITDB_DIR to the MIT-BIH copy)", pytrace=False)
    pytest.skip(what, allow_module_level=True)


def require(module: str) -> ModuleType:
    """Import ``module`` and return it; when it cannot be imported, skip locally and fail under ``CI=true``.

    Use it for third-party modules only, at module level (``tf = require("tensorflow")``) or in a
    test, instead of ``pytest.importorskip``.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        missing(f"{module} cannot be imported ({exc})")
        raise  # not reached: missing() skips or fails


def mitdb_path() -> Path | None:
    """The MIT-BIH copy named by ``MITDB_DIR``, or None when unset or not a directory."""
    value = os.environ.get("MITDB_DIR")
    return Path(value) if value and Path(value).is_dir() else None


@pytest.fixture(scope="session")
def mitdb_dir() -> Path:
    """``Path($MITDB_DIR)``; skips the test when unset locally, fails it under ``CI=true``."""
    path = mitdb_path()
    if path is None:
        value = os.environ.get("MITDB_DIR")
        missing(f"MITDB_DIR={value} is not a directory" if value else "MITDB_DIR is not set")
    return path


def pytest_runtest_setup(item: pytest.Item) -> None:
    """A test marked ``integration`` needs ``MITDB_DIR``: skipped without it locally, failed under ``CI=true``."""
    if item.get_closest_marker("integration") is not None and mitdb_path() is None:
        value = os.environ.get("MITDB_DIR")
        missing(f"MITDB_DIR={value} is not a directory" if value else "MITDB_DIR is not set")


def _skip_reason(report: pytest.TestReport | pytest.CollectReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2])
    return str(longrepr)


def _may_skip(item: pytest.Item) -> bool:
    return isinstance(item, pytest.DoctestItem) or item.get_closest_marker("ci_may_skip") is not None


def _fail_skip(report, where: str) -> None:
    report.outcome = "failed"
    report.longrepr = (f"{where} was skipped under CI=true ({_skip_reason(report)}): CI must run every test; "
                       f"install what it needs or mark it @pytest.mark.ci_may_skip(reason)")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Under ``CI=true``, a skipped test (not an xfail) becomes a failure."""
    outcome = yield
    report = outcome.get_result()
    if in_ci() and report.skipped and not hasattr(report, "wasxfail") and not _may_skip(item):
        _fail_skip(report, item.nodeid)


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector):
    """Under ``CI=true``, a module skipped at collection (``pytest.importorskip`` at module level) fails."""
    outcome = yield
    report = outcome.get_result()
    if in_ci() and report.outcome == "skipped":
        _fail_skip(report, collector.nodeid)
