"""pipelines.core.stage: one exit code (2) and one stderr line for bad input, in every stage's main()."""
from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.core.errors import ChecksumError, ConfigError, DataError
from pipelines.core.stage import BAD_INPUT, error_line, run_stage, stage_main

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("exc", [ConfigError("render.size: 7 is not in [8, 4096]"),
                                 DataError("mitdb/100", "100.dat is truncated"),
                                 ChecksumError("100.dat", "sha256 abc differs")])
def test_bad_input_is_exit_2_and_one_line(exc):
    def body():
        raise exc

    err = io.StringIO()
    assert run_stage("segment", body, stream=err) == BAD_INPUT == 2
    assert err.getvalue() == f"segment: error: {exc}\n"


def test_success_and_explicit_status():
    err = io.StringIO()
    assert run_stage("x", lambda: None, stream=err) == 0
    assert run_stage("x", lambda: {"rows": 3}, stream=err) == 0  # a stage's result is not a status
    assert run_stage("x", lambda: True, stream=err) == 0
    assert run_stage("x", lambda: 1, stream=err) == 1
    assert err.getvalue() == ""


def test_other_exceptions_are_bugs_and_propagate():
    def body():
        raise KeyError("oops")

    with pytest.raises(KeyError):
        run_stage("x", body)


def test_multiline_messages_are_folded_into_one_line():
    assert error_line("render", DataError("a.parquet", "bad\n  footer")) == "render: error: a.parquet: bad footer"


def test_decorator(capsys):
    @stage_main("gallery")
    def main(argv=None):
        """Docs kept."""
        if argv:
            raise ConfigError(f"gallery.per_class: {argv[0]}")
        return 0

    assert main.__doc__ == "Docs kept."
    assert main([]) == 0
    assert main(["-1"]) == 2
    assert capsys.readouterr().err == "gallery: error: gallery.per_class: -1\n"


@pytest.mark.parametrize("module, args", [
    ("pipelines.ingest", ["--out", "{tmp}/raw"]),
    ("pipelines.segment", ["--method", "annotations", "--raw", "{tmp}/raw", "--out", "{tmp}/b.parquet",
                           "--report", "{tmp}/r.json"]),
    ("pipelines.render", ["--method", "annotations", "--beats", "{tmp}/b.parquet", "--out", "{tmp}/img"]),
    ("pipelines.gallery", ["--images", "{tmp}/img", "--out", "{tmp}/g.png"]),
])
def test_every_stage_cli_reports_bad_input_the_same_way(tmp_path, module, args):
    """A missing params file (a ConfigError) or missing input (a DataError): exit 2, one 'stage: error:' line."""
    stage = module.rsplit(".", 1)[1]
    argv = [a.format(tmp=tmp_path) for a in args]
    if stage != "gallery":
        argv += ["--params", str(tmp_path / "missing.yaml")]
    proc = subprocess.run([sys.executable, "-m", module, *argv], cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{stage}: error: "), proc.stderr
    assert "missing.yaml" in lines[0] or "img" in lines[0]
