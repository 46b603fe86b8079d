"""The render stage: beats table -> image shards, manifest, card (tiny synthetic beat tables)."""
from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import yaml

from pipelines import render

from pipelines.formats import shards
from pipelines.core.errors import ConfigError, DataError
from pipelines.signal.labels import map_symbols
from pipelines.signal.rhythm import RR_COLUMNS, rr_intervals
from pipelines.signal.template import FEATURE_COLUMNS, TEMPLATE_COLUMNS
from pipelines.render import RenderConfig, run_render
from pipelines.formats import beats as beats_format
from pipelines.imaging import draw
from tests.test_parallel import cluster  # noqa: F401  (the 2-worker LocalCluster fixture)

REPO = Path(__file__).resolve().parents[1]

# the public schema, with nullable signals so that tests can write the faults the reader must catch
BEATS_SCHEMA = pa.schema([f.with_nullable(True) for f in beats_format.BEATS_SCHEMA])


def synthetic_beat(length: int, rng: np.random.Generator) -> np.ndarray:
    """A QRS-like spike plus a T wave and noise, in mV."""
    t = np.arange(length, dtype=np.float64)
    sig = rng.uniform(0.6, 1.8) * np.exp(-0.5 * ((t - length * 0.45) / max(length * 0.02, 1.0)) ** 2)
    sig += 0.25 * np.exp(-0.5 * ((t - length * 0.75) / (length * 0.06)) ** 2) + 0.01 * rng.standard_normal(length)
    return sig.astype(np.float32)


def write_beats_table(path: str | Path, records: dict[str, Sequence[str | None]], *, seed: int = 0,
                      signals: dict[str, np.ndarray | None] | None = None, shuffle: bool = False,
                      lengths: tuple[int, int] = (60, 140)) -> Path:
    """Write a beats table with the public schema: ``records = {"100": ["N", "V", None, ...]}``.

    ``signals`` overrides the samples of given beat ids (None: a null signal).
    """
    rng = np.random.default_rng(seed)
    rows: dict[str, list] = {f.name: [] for f in BEATS_SCHEMA}
    for rec, symbols in records.items():
        for i, sym in enumerate(symbols):
            r = 400 + 300 * i
            beat_id = f"{rec}-{r}"
            sig = synthetic_beat(int(rng.integers(*lengths)), rng)
            if signals and beat_id in signals:
                sig = signals[beat_id]
            n = 0 if sig is None else len(sig)
            rows["beat_id"].append(beat_id); rows["record"].append(rec); rows["lead"].append("MLII")
            rows["fs"].append(360.0); rows["r_sample"].append(r); rows["symbol"].append(sym)
            rows["start"].append(r - n // 2); rows["end"].append(r - n // 2 + n)
            rows["signal"].append(None if sig is None else sig.tolist())
    rows["aami"] = list(map_symbols(rows["symbol"], "aami"))
    rows["jun8"] = list(map_symbols(rows["symbol"], "jun8"))
    rr = rr_intervals(np.array(rows["r_sample"]), np.array(rows["record"]), 360.0)
    rows.update({c: [None if np.isnan(v) else float(v) for v in rr[c]] for c in RR_COLUMNS})
    # template columns: distinct per beat and column (the render stage copies them), null at each record's first
    rows.update({c: [None if r == 400 else (r % 1000) / 1000.0 + j for r in rows["r_sample"]]
                 for j, c in enumerate(TEMPLATE_COLUMNS)})
    table = pa.Table.from_pydict(rows, schema=BEATS_SCHEMA)
    if shuffle:
        table = table.take(np.random.default_rng(seed + 1).permutation(table.num_rows))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return path


#: A small mixed table: N (skipped), V, L, A, /, E, and unlabelled (None) beats in three records.
RECORDS = {
    "100": ["N", "N", "V", "N", "A", "N", None, "N"],
    "101": ["L", "L", "N", "E", "/", "N"],
    "207": ["!", "R", "N", "V", None],
}


def config(**overrides) -> RenderConfig:
    """Serial (in-process) config unless overridden."""
    params = {"workers": 1}
    crops = overrides.pop("crops", None)
    params.update(overrides)
    if crops:
        params["crops"] = crops
    return RenderConfig.from_params(params)


def read_all(out: Path) -> pa.Table:
    return pa.concat_tables([pq.read_table(p) for p in shards.shard_paths(out)])


def dir_bytes(path: Path) -> dict[str, bytes]:
    """Every file under ``path`` (shards sit in ``data/<config>/``) by relative path."""
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


@pytest.fixture()
def beats(tmp_path) -> Path:
    return write_beats_table(tmp_path / "beats" / "annotations.parquet", RECORDS)


# ------------------------------------------------------------------------------------------------
# config and CLI
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("params, match", [
    ({"engine": "svg"}, "render.engine"),
    ({"crops": {"interpolation": "bicubic"}}, "render.crops.interpolation"),
    ({"crops": {"offsets": [0, 16]}}, "render.crops.offsets"),
    ({"crops": {"size": 96, "offsets": [0, 16, 40]}}, "render.crops.offsets"),
    ({"compression": "lzma"}, "render.compression"),
    ({"shard_mb": 0}, "render.shard_mb"),
    ({"row_group_rows": 0}, "render.row_group_rows"),
    ({"workers": -1}, "render.workers"),
    ({"size": "big"}, "render.size: expected an integer, got 'big'"),
    ({"size": 128.9}, "render.size: expected an integer"),
    ({"crops": {"materialise": "false"}}, "render.crops.materialise: expected a boolean"),
    ({"scale": {"time": "warp"}}, "render.scale.time"),
    ({"scale": {"mv_range": [2.0, 1.0]}}, "render.scale.mv_range"),
    ({"engine": "matplotlib", "scale": {"time": "fixed"}}, "render.scale: the matplotlib engine"),
])
def test_bad_params_raise_config_error(params, match):
    with pytest.raises(ConfigError, match=match):
        RenderConfig.from_params(params)


def test_params_yaml_section_is_valid():
    from pipelines.core.params import load_params

    cfg = RenderConfig.from_params(load_params(REPO / "params.yaml", "render"))
    assert cfg.engine in draw.ENGINES and cfg.interpolation in draw.INTERPOLATIONS
    assert cfg.skip_symbols == ("N",) and cfg.materialise


def test_scheduler_from_env(monkeypatch):
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", "tcp://10.0.0.1:8786")
    assert config().scheduler_address() == "tcp://10.0.0.1:8786"
    assert config(scheduler="tcp://h:1").scheduler_address() == "tcp://h:1"
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS")
    assert config().scheduler_address() is None
    assert RenderConfig.from_params({"workers": 0}).n_workers() == (os.cpu_count() or 1)


def write_params(path: Path, **render_params) -> Path:
    base = yaml.safe_load((REPO / "params.yaml").read_text())
    base["render"].update(render_params)
    path.write_text(yaml.safe_dump(base))
    return path


def test_cli_as_in_dvc_yaml(tmp_path, beats, capsys):
    """The dvc.yaml command line (with the repo's params.yaml knobs, one worker) writes the dataset."""
    stage = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]["render"]["do"]["cmd"]
    assert "python -m pipelines.render --method ${item} --params params.yaml" in stage
    params = write_params(tmp_path / "params.yaml", workers=1)
    out = tmp_path / "images" / "annotations"
    rc = render.main(["--method", "annotations", "--params", str(params), "--beats", str(beats), "--out", str(out)])
    assert rc == 0
    err = capsys.readouterr().err
    assert "render: " in err and "done in" in err and "images/s" in err  # progress + one-line summary
    assert {p.name for p in out.iterdir()} == {"data", "manifest.json", "README.md", "croissant.json"}
    files = [s["file"] for s in json.loads((out / "manifest.json").read_text())["shards"]]
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*.parquet")) == sorted(files)
    shards.verify_shards(out)
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o777 & ~umask  # not the private mode of a temporary directory


def test_cli_bad_engine_is_an_error_and_writes_nothing(tmp_path, beats, capsys):
    params = write_params(tmp_path / "params.yaml", engine="svg")
    out = tmp_path / "images" / "annotations"
    rc = render.main(["--method", "annotations", "--params", str(params), "--beats", str(beats), "--out", str(out)])
    assert rc == 2
    assert "render.engine" in capsys.readouterr().err
    assert not out.exists()


# ------------------------------------------------------------------------------------------------
# output format
# ------------------------------------------------------------------------------------------------

def test_feature_columns_are_the_beats_tables(tmp_path, beats):
    """Every image row (originals and crops) carries its beat's RR and template columns, nulls included."""
    out = tmp_path / "out"
    run_render("annotations", beats, out, config())
    images = pq.read_table(out / "data", columns=["beat_id", "crop", *FEATURE_COLUMNS]).to_pandas()
    table = pq.read_table(beats, columns=["beat_id", *FEATURE_COLUMNS]).to_pandas().set_index("beat_id")
    assert (images["crop"] > 0).any()
    expected = table.loc[images["beat_id"], list(FEATURE_COLUMNS)].to_numpy(np.float32)
    np.testing.assert_array_equal(images[list(FEATURE_COLUMNS)].to_numpy(np.float32), expected)
    assert np.isnan(expected[:, len(RR_COLUMNS)]).any() and np.isfinite(expected[:, -1]).any()


def test_schema_and_huggingface_metadata(tmp_path, beats):
    out = tmp_path / "out"
    manifest = run_render("annotations", beats, out, config())
    schema = pq.read_schema(out / manifest["shards"][0]["file"])
    assert schema.names == ["beat_id", "record", "r_sample", "symbol", "aami", "jun8", *FEATURE_COLUMNS, "crop",
                            "image"]
    assert [str(t) for t in schema.types] == ["string", "string", "int64", "string", "string", "string",
                                              *["float"] * len(FEATURE_COLUMNS), "int8",
                                              "struct<bytes: binary, path: string>"]
    hf = json.loads(schema.metadata[b"huggingface"])
    assert hf == {"info": {"features": {
        "beat_id": {"dtype": "string", "_type": "Value"}, "record": {"dtype": "string", "_type": "Value"},
        "r_sample": {"dtype": "int64", "_type": "Value"}, "symbol": {"dtype": "string", "_type": "Value"},
        "aami": {"dtype": "string", "_type": "Value"}, "jun8": {"dtype": "string", "_type": "Value"},
        **{c: {"dtype": "float32", "_type": "Value"} for c in FEATURE_COLUMNS},
        "crop": {"dtype": "int8", "_type": "Value"}, "image": {"_type": "Image"}}}}
    ours = json.loads(schema.metadata[b"ecg_images"])
    assert ours["classes"] == {"aami": ["N", "S", "V", "F", "Q"],
                               "jun8": ["NOR", "PVC", "PAB", "RBB", "LBB", "APC", "VFW", "VEB"]}
    assert manifest["classes"] == ours["classes"]
    assert manifest["schema"] == shards.schema_fields(schema)
    meta = pq.ParquetFile(out / manifest["shards"][0]["file"]).metadata
    assert meta.row_group(0).column(0).compression == "ZSTD"
    table = read_all(out)
    assert table.column("image").combine_chunks().field("path").null_count == table.num_rows


def test_rows_sorted_and_png_decodes_to_engine_output(tmp_path):
    beats = write_beats_table(tmp_path / "b.parquet", RECORDS, shuffle=True)
    out = tmp_path / "out"
    run_render("annotations", beats, out, config())
    for path in shards.shard_paths(out):  # each shard's rows are sorted
        part = pq.read_table(path).to_pandas()
        key = list(zip(part["record"], part["r_sample"], part["crop"]))
        assert key == sorted(key)
    t = read_all(out).to_pandas()
    assert (t["beat_id"] == t["record"] + "-" + t["r_sample"].astype(str)).all()
    # Every PNG is 8-bit grayscale 128 x 128 and decodes exactly to what the engine drew.
    pngs = [img["bytes"] for img in t["image"]]
    assert all(p[:8] == b"\x89PNG\r\n\x1a\n" and p[24] == 8 and p[25] == 0 for p in pngs)  # bit depth 8, grey
    decoded = shards.decode_images(pngs)
    assert decoded.shape == (len(t), 128, 128) and decoded.dtype == np.uint8
    order = t.sort_values(["record", "r_sample", "crop"], kind="stable").index.to_numpy()
    t, decoded = t.loc[order].reset_index(drop=True), decoded[order]  # shards go by config and split
    src = beats_format.read_beats(beats)
    from pipelines.imaging.raster import render_beats
    originals = render_beats(src.values, src.offsets, size=128, margin=0.05, line_width=1.5)
    assert np.array_equal(decoded[(t["crop"] == 0).to_numpy()], originals)
    from pipelines.imaging.crops import nine_crops
    aug = draw.augment_mask(src.meta.column("symbol"), ["N"], True)
    crops = nine_crops(originals[aug], crop=96, offsets=(0, 16, 32), interpolation="linear")
    got = decoded[(t["crop"] > 0).to_numpy()].reshape(crops.shape)
    assert np.array_equal(got, crops)


def test_crop_rows_only_for_non_skipped_labelled_beats(tmp_path, beats):
    out = tmp_path / "out"
    manifest = run_render("annotations", beats, out, config())
    t = read_all(out).to_pandas()
    per_beat = t.groupby("beat_id").agg(symbol=("symbol", "first"), crops=("crop", lambda c: sorted(c)))
    for _, row in per_beat.iterrows():
        if pd.isna(row.symbol) or row.symbol == "N":
            assert row.crops == [0]
        else:
            assert row.crops == list(range(10))
    n_beats = sum(len(v) for v in RECORDS.values())
    n_aug = sum(s not in ("N", None) for v in RECORDS.values() for s in v)
    assert manifest["rows"] == len(t) == n_beats + 9 * n_aug and manifest["beats"] == n_beats
    counts = manifest["counts"]["classes"]
    assert counts["symbol"]["N"] == {**{str(c): 0 for c in range(1, 10)}, "0": 8, "total": 8}
    assert counts["symbol"]["V"]["0"] == 2 and counts["symbol"]["V"]["9"] == 2 and counts["symbol"]["V"]["total"] == 20
    assert counts["symbol"]["unlabelled"]["total"] == 2
    assert counts["jun8"]["VFW"]["total"] == 10  # "!" has a jun8 class but no AAMI class
    assert counts["aami"]["unlabelled"]["0"] == 3 and counts["aami"]["unlabelled"]["1"] == 1
    assert manifest["counts"]["crops"]["0"] == n_beats and manifest["counts"]["crops"]["5"] == n_aug
    assert manifest["records"]["101"] == {"beats": 6, "rows": 6 + 9 * 4, "excluded": 0,
                                          "aami": {"N": 4, "Q": 1, "V": 1}}


def test_skip_symbols_param(tmp_path, beats):
    out = tmp_path / "out"
    manifest = run_render("annotations", beats, out, config(crops={"skip_symbols": ["N", "L", "R"]}))
    assert manifest["counts"]["classes"]["symbol"]["L"]["total"] == 2
    assert manifest["counts"]["classes"]["symbol"]["V"]["total"] == 20


def test_materialise_false_writes_originals_only(tmp_path, beats):
    out = tmp_path / "out"
    manifest = run_render("annotations", beats, out, config(crops={"materialise": False}))
    t = read_all(out)
    assert set(t.column("crop").to_pylist()) == {0}
    assert manifest["rows"] == manifest["beats"] == sum(len(v) for v in RECORDS.values())
    assert manifest["counts"]["crops"] == {"0": manifest["rows"]}
    assert manifest["params"]["crops"]["materialise"] is False


def test_unusable_beats_are_excluded_and_counted(tmp_path):
    nan = synthetic_beat(80, np.random.default_rng(1))
    nan[10] = np.nan
    inf = synthetic_beat(80, np.random.default_rng(2))
    inf[-1] = np.inf
    signals = {"100-400": nan, "100-700": np.array([0.5], np.float32), "100-1000": np.zeros(0, np.float32),
               "101-400": None, "101-700": inf, "101-1000": np.zeros(90, np.float32)}  # last: flat, kept
    beats = write_beats_table(tmp_path / "b.parquet", {"100": ["V", "N", "N", "N"], "101": ["N", "A", "N", "V"]},
                              signals=signals)
    out = tmp_path / "out"
    manifest = run_render("annotations", beats, out, config())
    ex = manifest["exclusions"]
    assert ex["non_finite"] == {"count": 2, "beat_ids": ["100-400", "101-700"], "listed_all": True}
    assert ex["too_short"] == {"count": 3, "beat_ids": ["100-700", "100-1000", "101-400"], "listed_all": True}
    assert manifest["records"]["100"]["excluded"] == 3 and manifest["records"]["101"]["excluded"] == 2
    t = read_all(out).to_pandas()
    assert sorted(set(t["beat_id"])) == ["100-1300", "101-1000", "101-1300"]
    flat = shards.decode_images(list(t.loc[t["beat_id"] == "101-1000", "image"]))[0]
    assert flat.min() < 128 and flat.max() == 255  # drawn: a line on a white background
    assert manifest["input"]["beats"] == 8


def test_all_beats_excluded_gives_one_empty_shard(tmp_path):
    beats = write_beats_table(tmp_path / "b.parquet", {"100": ["N"]},
                              signals={"100-400": np.array([np.nan, 1.0], np.float32)})
    out = tmp_path / "out"
    manifest = run_render("annotations", beats, out, config())
    assert manifest["rows"] == 0 and [s["file"] for s in manifest["shards"]] == [
        "data/originals/train-00000-of-00001.parquet"]
    shards.verify_shards(out)


def test_shard_splitting_naming_and_row_groups(tmp_path):
    records = {str(r): ["N", "V", "N", "A", "N", "L"] * 5 for r in (100, 101, 102)}
    beats = write_beats_table(tmp_path / "b.parquet", records)
    out = tmp_path / "out"
    manifest = run_render("annotations", beats, out, config(shard_mb=0.1, row_group_rows=50))
    files = [s["file"] for s in manifest["shards"]]
    assert len(files) >= 4
    groups: dict[str, list[str]] = {}
    for f in files:  # data/<config>/<split>-i-of-N.parquet
        groups.setdefault(f.rsplit("-", 3)[0], []).append(f)
    for prefix, group in groups.items():
        n = len(group)
        assert group == [f"{prefix}-{i:05d}-of-{n:05d}.parquet" for i in range(n)]
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*.parquet")) == sorted(files)
    last_of_group = {group[-1] for group in groups.values()}
    seen: dict[str, set[str]] = {}
    target = 100_000
    for entry in manifest["shards"]:
        pf = pq.ParquetFile(out / entry["file"])
        groups = [pf.metadata.row_group(i).num_rows for i in range(pf.metadata.num_row_groups)]
        assert all(g == 50 for g in groups[:-1]) and 0 < groups[-1] <= 50 and sum(groups) == entry["rows"]
        t = pf.read()
        ids = set(t.column("beat_id").to_pylist())
        cfg_name = entry["file"].split("/")[1]
        assert not ids & seen.get(cfg_name, set())  # a beat's rows of one config never straddle two shards
        seen.setdefault(cfg_name, set()).update(ids)
        payload = sum(len(b) for b in t.column("image").combine_chunks().field("bytes").to_pylist())
        if entry["file"] not in last_of_group:
            assert target <= payload < target + 10 * 4000  # closed by the beat that reached the target
        assert entry["first_beat_id"] == t.column("beat_id")[0].as_py()
    shards.verify_shards(out)


def test_output_independent_of_chunking(tmp_path, beats, monkeypatch):
    a, b = tmp_path / "a", tmp_path / "b"
    run_render("annotations", beats, a, config(row_group_rows=16))
    monkeypatch.setattr(draw, "CHUNK_ROWS", 7)
    run_render("annotations", beats, b, config(row_group_rows=16))
    assert dir_bytes(a) == dir_bytes(b)


def test_deterministic_rebuild(tmp_path, beats):
    a, b = tmp_path / "a", tmp_path / "b"
    run_render("annotations", beats, a, config(shard_mb=0.1))
    run_render("annotations", beats, b, config(shard_mb=0.1))
    assert dir_bytes(a) == dir_bytes(b)
    manifest = json.loads((a / "manifest.json").read_text())
    text = (a / "manifest.json").read_text() + (a / "README.md").read_text() + (a / "croissant.json").read_text()
    assert str(tmp_path) not in text  # no absolute paths
    assert manifest["input"] == {"file": "annotations.parquet", "sha256": shards.sha256_file(beats), "beats": 19}
    assert "workers" not in manifest["params"] and "scheduler" not in manifest["params"]
    for entry in manifest["shards"]:
        assert shards.sha256_file(a / entry["file"]) == entry["sha256"]


def test_rebuild_replaces_previous_output(tmp_path, beats):
    out = tmp_path / "out"
    run_render("annotations", beats, out, config(shard_mb=0.05))
    assert len(list(out.rglob("*.parquet"))) > 1
    (out / "stray.txt").write_text("old")
    manifest = run_render("annotations", beats, out, config())
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "croissant.json", "data", "manifest.json"]
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*.parquet")) == \
        sorted(s["file"] for s in manifest["shards"])


# ------------------------------------------------------------------------------------------------
# atomicity
# ------------------------------------------------------------------------------------------------

def _fail_on_call(monkeypatch, n: int) -> None:
    real = shards.encode_png
    calls = {"n": 0}

    def flaky(images, level=shards.DEFAULT_PNG_LEVEL):
        calls["n"] += 1
        if calls["n"] == n:
            raise RuntimeError("encoder failed (test)")
        return real(images, level)

    monkeypatch.setattr(shards, "encode_png", flaky)


def test_failure_mid_run_leaves_previous_output(tmp_path, beats, monkeypatch):
    out = tmp_path / "out"
    run_render("annotations", beats, out, config(row_group_rows=8, shard_mb=0.05))
    before = dir_bytes(out)
    monkeypatch.setattr(draw, "CHUNK_ROWS", 5)  # several chunks; fail on the second
    _fail_on_call(monkeypatch, 2)
    with pytest.raises(RuntimeError, match="encoder failed"):
        run_render("annotations", beats, out, config(crops={"materialise": False}, row_group_rows=8, shard_mb=0.01))
    assert dir_bytes(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["beats", "out"]  # no temporary directory left


def test_failure_mid_run_leaves_no_output(tmp_path, beats, monkeypatch):
    out = tmp_path / "out"
    monkeypatch.setattr(draw, "CHUNK_ROWS", 20)
    _fail_on_call(monkeypatch, 2)
    with pytest.raises(RuntimeError):
        run_render("annotations", beats, out, config(shard_mb=0.01))
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["beats"]


def test_sigkill_mid_run_leaves_previous_output(tmp_path):
    """Kill -9 the stage while it writes shards: the previous output stays as it was."""
    records = {str(r): ["V", "A", "L", "N"] * 60 for r in range(100, 104)}  # ~7,000 images
    beats = write_beats_table(tmp_path / "b.parquet", records)
    params = write_params(tmp_path / "params.yaml", workers=1, shard_mb=0.5)
    out = tmp_path / "out"
    small = write_beats_table(tmp_path / "small.parquet", RECORDS)
    run_render("annotations", small, out, config())
    before = dir_bytes(out)
    proc = subprocess.Popen([sys.executable, "-m", "pipelines.render", "--method", "annotations", "--params",
                             str(params), "--beats", str(beats), "--out", str(out)], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            temps = list(tmp_path.glob(".out.*.tmp/data/*/*.parquet"))
            if temps:
                break
            time.sleep(0.01)
        assert proc.poll() is None, "the stage finished before it could be killed"
        assert temps, "no shard appeared in the temporary directory"
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert dir_bytes(out) == before
    # The next run cleans the killed run's temporary directory and succeeds.
    run_render("annotations", small, out, config())
    assert not list(tmp_path.glob(".out.*"))


# ------------------------------------------------------------------------------------------------
# input errors, progress
# ------------------------------------------------------------------------------------------------

def test_missing_beats_table(tmp_path):
    with pytest.raises(DataError, match="beats table not found"):
        run_render("annotations", tmp_path / "nope.parquet", tmp_path / "out", config())
    assert not (tmp_path / "out").exists()


def test_beats_table_without_signal_column(tmp_path, beats):
    bad = tmp_path / "bad.parquet"
    pq.write_table(pq.read_table(beats).drop_columns(["signal"]), bad)
    with pytest.raises(DataError, match=r"bad.parquet: beats table lacks column\(s\) \['signal'\]"):
        run_render("annotations", bad, tmp_path / "out", config())


def test_duplicate_beat_ids(tmp_path, beats):
    bad = tmp_path / "dup.parquet"
    t = pq.read_table(beats)
    pq.write_table(pa.concat_tables([t, t.slice(0, 1)]), bad)
    with pytest.raises(DataError, match="duplicate beat_id"):
        run_render("annotations", bad, tmp_path / "out", config())


def test_progress_lines_and_summary(tmp_path, beats):
    stream = io.StringIO()
    run_render("annotations", beats, tmp_path / "out", config(), stream=stream)
    lines = stream.getvalue().strip().splitlines()
    assert lines[0].startswith("render: ") and "beats/s" in lines[0]
    assert "done in" in lines[-1] and "images" in lines[-1] and "images/s" in lines[-1] and "shard" in lines[-1]


def test_chunk_edges_and_gather():
    assert draw.chunk_edges(np.array([], np.int64)).tolist() == [0]
    edges = draw.chunk_edges(np.array([1, 10, 10, 1, 1, 10]), chunk_rows=10)
    assert edges.tolist() == [0, 2, 3, 6]  # chunks hold the beats starting in each 10-row window
    values = np.arange(10, dtype=np.float32)
    offsets = np.array([0, 3, 3, 7, 10])
    v, o = beats_format.gather_signals(values, offsets, np.array([1, 3]))
    assert v.tolist() == [7.0, 8.0, 9.0] and o.tolist() == [0, 0, 3]
    v, o = beats_format.gather_signals(values, offsets, np.array([2, 3]))
    assert v.tolist() == list(range(3, 10)) and o.tolist() == [0, 4, 7]


def test_matplotlib_engine(tmp_path):
    import pipelines.imaging.recipe  # noqa: F401  (our own module: fails, never skips)
    beats = write_beats_table(tmp_path / "b.parquet", {"100": ["N", "V", "N"]})
    out = tmp_path / "out"
    manifest = run_render("annotations", beats, out, config(engine="matplotlib"))
    assert manifest["params"]["engine"] == "matplotlib" and manifest["rows"] == 12
    img = shards.decode_images(read_all(out).column("image"))
    assert img.shape == (12, 128, 128)


# ------------------------------------------------------------------------------------------------
# dask.distributed
# ------------------------------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Port 8787 is already in use")
def test_local_cluster_output_identical_to_local_run(tmp_path, cluster, monkeypatch):
    records = {str(r): ["N", "V", "N", "A", "L", None] * 8 for r in (100, 101, 102, 103)}
    beats = write_beats_table(tmp_path / "b.parquet", records)
    serial, remote, local = tmp_path / "serial", tmp_path / "remote", tmp_path / "local"
    run_render("annotations", beats, serial, config(shard_mb=0.3, row_group_rows=64))
    monkeypatch.setattr(draw, "CHUNK_ROWS", 50)  # many tasks
    run_render("annotations", beats, remote, config(shard_mb=0.3, row_group_rows=64,
                                                    scheduler=cluster.scheduler_address))
    assert dir_bytes(serial) == dir_bytes(remote)
    # The default: a local cluster of `workers` processes started by the stage itself.
    run_render("annotations", beats, local, RenderConfig.from_params({"workers": 2, "shard_mb": 0.3,
                                                                      "row_group_rows": 64}))
    assert dir_bytes(serial) == dir_bytes(local)


@pytest.mark.slow
def test_worker_killed_mid_run_is_survived(tmp_path, cluster, monkeypatch):
    from distributed import Client

    records = {str(r): ["V", "A", "N", "L"] * 12 for r in (100, 101, 102)}
    beats = write_beats_table(tmp_path / "b.parquet", records)
    reference, out = tmp_path / "ref", tmp_path / "out"
    run_render("annotations", beats, reference, config())
    monkeypatch.setattr(draw, "CHUNK_ROWS", 40)
    with Client(cluster.scheduler_address, set_as_default=False) as client:
        pids = sorted(client.run(os.getpid).values())
        killed = []

        class KillingWriter(render.DatasetWriter):
            """Kills a worker once, after the driver has written the second chunk."""

            def add(self, table, row_bytes):
                super().add(table, row_bytes)
                self.chunks = getattr(self, "chunks", 0) + 1
                if self.chunks == 2 and not killed:
                    os.kill(pids[0], signal.SIGKILL)
                    killed.append(pids[0])

        monkeypatch.setattr(render, "DatasetWriter", KillingWriter)
        run_render("annotations", beats, out, config(scheduler=cluster.scheduler_address))
        assert killed
        client.wait_for_workers(2, timeout=60)  # the nanny restarted the killed worker
    assert dir_bytes(reference) == dir_bytes(out)


# ------------------------------------------------------------------------------------------------
# real records
# ------------------------------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.skipif(not os.environ.get("MITDB_DIR"), reason="needs MITDB_DIR (the MIT-BIH copy)")
def test_real_records_render(tmp_path):
    """Two real records (incl. 207, with ventricular flutter and bundle branch blocks) end to end."""
    from pipelines.formats.beats import beats_table
    from pipelines.segment import segment_records
    from pipelines.signal.beats import SegmentConfig

    params = yaml.safe_load((REPO / "params.yaml").read_text())
    seg = SegmentConfig.from_params(params["segment"], "annotations")
    results = segment_records(os.environ["MITDB_DIR"], ["119", "207"], seg, workers=1)
    table = beats_table(results)
    beats = tmp_path / "annotations.parquet"
    pq.write_table(table, beats)
    out = tmp_path / "images"
    manifest = run_render("annotations", beats, out, config(shard_mb=2))
    shards.verify_shards(out)
    symbols = table.column("symbol").to_pylist()
    n_aug = sum(s != "N" for s in symbols)
    assert manifest["beats"] == table.num_rows and manifest["rows"] == table.num_rows + 9 * n_aug
    assert manifest["exclusions"]["too_short"]["count"] == manifest["exclusions"]["non_finite"]["count"] == 0
    assert set(manifest["records"]) == {"119", "207"} and len(manifest["shards"]) > 1
    # the originals are exactly the engine's drawing of the beats table's windows
    first = pq.read_table(out / manifest["shards"][0]["file"])
    crop0 = first.filter(pc.equal(first.column("crop"), 0)).slice(0, 50)
    src = beats_format.read_beats(beats)
    from pipelines.imaging.raster import render_beats
    want = render_beats(src.values, src.offsets[:51], size=128, margin=0.05, line_width=1.5)
    assert np.array_equal(shards.decode_images(crop0.column("image")), want)
