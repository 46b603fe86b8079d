"""A real browser uses the page: headless Debian ``chromium`` driven by Playwright (no browser download).

It uploads a beat image and a record, sees the class, the probabilities, the coloured strip plot, the
counts, the EC57 table and the CSV download, browses the dataset and reads the benchmark. Screenshots
go to ``$WEBAPP_SCREENSHOTS`` when set (``docs/img`` for the docs: ``make screenshots``), else to a
temporary directory.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import mitdb_path, require

require("tensorflow")
require("playwright")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
if not Path(CHROMIUM).is_file():
    pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)", allow_module_level=True)

from tests._shards import write_shards  # noqa: E402
from tests._webapp import LiveServer, beat_png, settings, write_run  # noqa: E402
from tests._wfdb_records import synthetic_ecg, write_record  # noqa: E402
from webapp.app import create_app  # noqa: E402


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("site")
    write_run(tmp / "models", "beat", rhythm=False)
    write_run(tmp / "models", "rec", rhythm=True)
    write_shards(tmp / "images" / "annotations", {"100": {"N": 30, "V": 6}, "119": {"N": 10, "V": 8, "A": 2}},
                 size=32, rr=True)
    (tmp / "reports" / "figures").mkdir(parents=True)
    (tmp / "reports" / "benchmark.md").write_text("# Benchmark\n\n| run | accuracy |\n|---|---|\n| `beat` | 50.00 |\n")
    (tmp / "beat.png").write_bytes(beat_png(size=128))
    rec = tmp / "record"
    mitdb = mitdb_path()
    if mitdb is not None:                                   # a real record: MIT-BIH 100, first 2 minutes
        import wfdb

        r = wfdb.rdrecord(str(mitdb / "100"), sampto=360 * 120, physical=False)
        a = wfdb.rdann(str(mitdb / "100"), "atr", sampto=360 * 120)
        rec.mkdir()
        wfdb.wrsamp("100", fs=r.fs, units=r.units, sig_name=r.sig_name, d_signal=r.d_signal, fmt=r.fmt,
                    adc_gain=r.adc_gain, baseline=r.baseline, write_dir=str(rec))
        wfdb.wrann("100", "atr", a.sample, symbol=a.symbol, write_dir=str(rec))
    else:
        sig, peaks = synthetic_ecg(n_beats=60, seed=3)
        write_record(rec, "100", sig, ann_sample=peaks, ann_symbol=["N"] * 60)
    with LiveServer(create_app(settings(tmp, tmp / "models"))) as url:
        yield url, tmp


@pytest.fixture(scope="module")
def page():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": 1200, "height": 900}, accept_downloads=True)
        yield context.new_page()
        browser.close()


def _shots(tmp_path: Path) -> Path:
    out = Path(os.environ.get("WEBAPP_SCREENSHOTS") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    return out


def test_upload_a_beat_image_and_a_record(site, page, tmp_path):
    url, tmp = site
    shots = _shots(tmp_path)
    external = []
    page.on("request", lambda req: external.append(req.url) if not req.url.startswith((url, "data:", "blob:")) else None)
    page.goto(url + "/")
    page.set_input_files("#beat-file", str(tmp / "beat.png"))
    page.click("#beat-form button")
    page.wait_for_selector("#beat-class", timeout=60_000)
    assert page.inner_text("#beat-class").startswith("Class ")
    assert page.locator("table.probs tr").count() == 5 and page.locator("#model-input").is_visible()
    assert "run beat" in page.inner_text("#beat-result")

    rec = tmp / "record"
    page.set_input_files("#rec-hea", str(rec / "100.hea"))
    page.set_input_files("#rec-dat", str(rec / "100.dat"))
    page.set_input_files("#rec-atr", str(rec / "100.atr"))
    page.click("#record-form button")
    page.wait_for_selector("#strip svg polyline.beat", timeout=120_000)
    coloured = page.eval_on_selector_all("#strip polyline.beat", "els => new Set(els.map(e => e.getAttribute('stroke'))).size")
    assert page.locator("#strip polyline.beat").count() >= 5 and coloured >= 1
    assert "beats in" in page.inner_text("#record-summary") and page.locator("#counts td").count() == 5
    assert "EC57 agreement" in page.inner_text("#agreement")
    with page.expect_download() as download:
        page.click("#csv-download")
    lines = Path(download.value.path()).read_text().splitlines()
    assert lines[0].startswith("sample,time_s,class,p_N") and len(lines) > 10
    page.select_option("#strip-seconds", "5")
    page.screenshot(path=str(shots / "webapp-classify.png"), full_page=True)
    assert external == []                                               # offline: nothing but the app itself


def test_not_a_beat_image_is_said_so(site, page, tmp_path):
    import numpy as np
    from PIL import Image

    url, tmp = site
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (100, 140), dtype=np.uint8)).save(tmp / "noise.png")
    page.goto(url + "/")
    page.set_input_files("#beat-file", str(tmp / "noise.png"))
    page.click("#beat-form button")
    page.wait_for_selector("#not-beat", timeout=60_000)
    assert page.inner_text("#not-beat").startswith("not a beat image")


def test_dataset_and_benchmark_pages(site, page, tmp_path):
    url, _ = site
    shots = _shots(tmp_path)
    page.goto(url + "/dataset?class=V")
    assert "14 images" in page.inner_text("#dataset-total") and page.locator(".grid img").count() == 14
    page.screenshot(path=str(shots / "webapp-dataset.png"), full_page=True)
    page.goto(url + "/benchmark")
    assert page.locator("table td").first.inner_text() == "beat"
    page.screenshot(path=str(shots / "webapp-benchmark.png"), full_page=True)
