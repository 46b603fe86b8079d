"""The web app's JSON API and pages (FastAPI TestClient): every endpoint, and every bad input of the Safety list."""
from __future__ import annotations

import io
import json
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import require
from tests._wfdb_records import synthetic_ecg, write_record
from tests._webapp import CLASSES, beat_png, settings, write_run

require("tensorflow")
from fastapi.testclient import TestClient  # noqa: E402

from webapp.app import create_app  # noqa: E402


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("models")
    write_run(d, "beat", rhythm=False)
    write_run(d, "rec", rhythm=True)
    return d


@pytest.fixture(scope="module")
def client(models, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("app")
    with TestClient(create_app(settings(tmp, models)), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture(scope="module")
def record_files(tmp_path_factory) -> dict[str, bytes]:
    """A synthetic 2-lead WFDB record (40 beats, two of them premature) with reference annotations."""
    d = tmp_path_factory.mktemp("rec")
    sig, r = synthetic_ecg(n_beats=40, seed=1)
    symbols = ["N"] * 40
    symbols[10] = symbols[25] = "V"
    write_record(d, "r1", sig, ann_sample=r, ann_symbol=symbols)
    return {k: (d / f"r1.{k}").read_bytes() for k in ("hea", "dat", "atr")}


def _wfdb(files: dict[str, bytes], **over) -> dict:
    parts = {**files, **over}
    return {k: (f"../../{k}.{k}", v) for k, v in parts.items() if v is not None}


# ----------------------------------------------------------------------------------- health, model, openapi

def test_health_model_and_openapi(client):
    h = client.get("/api/health").json()
    assert h["status"] == "ok" and h["models"]["beat"]["present"] and h["models"]["record"]["run"] == "rec"
    m = client.get("/api/model").json()
    assert m["beat"]["run"] == "beat" and m["beat"]["rhythm"] is False and m["record"]["rhythm"] is True
    assert m["beat"]["classes"] == CLASSES and m["beat"]["data_hash"] == "d" * 64 and m["beat"]["folds"] == "ds1ds2"
    paths = set(client.get("/openapi.json").json()["paths"])
    assert paths == {"/api/beat", "/api/record", "/api/health", "/api/model"}     # no model upload, nothing else
    page = client.get("/api-docs").text                                         # local page, not CDN Swagger UI
    assert "POST /api/record" in page and "<td>atr</td>" in page and "cdn" not in page.lower()
    assert client.get("/docs").status_code == 404


def test_without_models_every_page_says_how_to_get_one(tmp_path):
    with TestClient(create_app(settings(tmp_path, tmp_path / "none"))) as c:
        assert "dvc repro" in c.get("/").text and "dvc pull" in c.get("/").text
        r = c.post("/api/beat", files={"file": ("b.png", beat_png(), "image/png")})
        assert r.status_code == 503 and "dvc repro train@beat" in r.json()["detail"]
        assert c.get("/api/model").json()["record"]["present"] is False
        assert "dvc repro render" in c.get("/dataset").text
        assert "No benchmark yet" in c.get("/benchmark").text


# --------------------------------------------------------------------------------------------- beat image

def test_beat_image_gets_every_class_probability_the_model_view_and_card(client, models):
    from webapp.services.beatcheck import check_beat_image, normalise_beat
    from webapp.services.uploads import decode_image

    data = beat_png(size=48)
    r = client.post("/api/beat", files={"file": ("../../etc/passwd.png", data, "image/png")})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["beat_image"] and set(body["probabilities"]) == set(CLASSES)
    assert abs(sum(body["probabilities"].values()) - 1) < 1e-4 and body["class"] == max(body["probabilities"],
                                                                                          key=body["probabilities"].get)
    seen = Image.open(io.BytesIO(__import__("base64").b64decode(body["model_input"].split(",")[1])))
    assert seen.size == (16, 16) and seen.mode == "L"                              # the run's input size
    assert body["model"]["run"] == "beat"
    gray = decode_image(data, 10 ** 6)                                             # same answer as the run itself
    image = normalise_beat(gray, check_beat_image(gray).ink, size=32, margin=0.05)
    import cv2
    import keras

    from training.selection import adjust

    model = keras.models.load_model(models / "beat" / "fold-00" / "model.keras", compile=False)
    x = cv2.resize(image, (16, 16), interpolation=cv2.INTER_AREA)[None, ..., None].astype(np.float32) / 255
    expected = adjust(model.predict(x, verbose=0), np.array([0.0, 0.1, 0.2, 0.3]))[0]    # the prior of write_run
    np.testing.assert_allclose([body["probabilities"][c] for c in CLASSES], expected, atol=1e-5)


def test_jpeg_beat_is_accepted_and_a_photo_is_not_a_beat(client):
    img = Image.open(io.BytesIO(beat_png(size=64))).convert("RGB")
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=80)
    assert client.post("/api/beat", files={"file": ("b.jpg", buf.getvalue(), "image/jpeg")}).status_code == 200
    rng = np.random.default_rng(0)
    photo = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)).save(photo, format="PNG")
    r = client.post("/api/beat", files={"file": ("cat.png", photo.getvalue(), "image/png")})
    assert r.status_code == 422 and r.json()["beat_image"] is False
    assert r.json()["detail"].startswith("not a beat image") and "class" not in r.json()


def test_bad_images(client):
    r = client.post("/api/beat", files={"file": ("x.png", b"MZ\x90\x00 an executable, not a PNG", "image/png")})
    assert r.status_code == 415 and "not a PNG or JPEG" in r.json()["detail"]
    r = client.post("/api/beat", files={"file": ("x.png", beat_png()[:60], "image/png")})
    assert r.status_code == 400 and "truncated or corrupt" in r.json()["detail"]
    bomb = io.BytesIO()
    Image.new("1", (6000, 6000), 1).save(bomb, format="PNG")                        # 36 Mpx in a few kB
    assert len(bomb.getvalue()) < 100_000
    r = client.post("/api/beat", files={"file": ("bomb.png", bomb.getvalue(), "image/png")})
    assert r.status_code == 413 and "36,000,000 pixels" in r.json()["detail"]
    assert client.post("/api/beat", files={}).status_code == 400                   # no file field


def test_size_limits_answer_413_before_reading_the_body(client):
    big = b"\x89PNG" + b"\0" * 6_000_000
    r = client.post("/api/beat", files={"file": ("big.png", big, "image/png")})
    assert r.status_code == 413 and "limit of 5" in r.json()["detail"]
    def chunks():                                       # no Content-Length: counted while streaming
        yield (b'--b\r\nContent-Disposition: form-data; name="file"; filename="x.png"\r\n'
               b"Content-Type: image/png\r\n\r\n")
        for _ in range(200):
            yield b"x" * 100_000

    r = client.post("/api/beat", content=chunks(), headers={"content-type": "multipart/form-data; boundary=b"})
    assert r.status_code == 413


def test_a_real_server_answers_413_without_waiting_for_the_body(models, tmp_path):
    import socket

    from tests._webapp import LiveServer

    with LiveServer(create_app(settings(tmp_path, models))) as url:
        host, port = url.removeprefix("http://").split(":")
        for headers in (b"Content-Length: 50000000\r\n", b"Transfer-Encoding: chunked\r\n"):
            with socket.create_connection((host, int(port)), timeout=20) as s:
                s.sendall(b"POST /api/beat HTTP/1.1\r\nHost: x\r\n" + headers +
                          b"Content-Type: multipart/form-data; boundary=b\r\n\r\n")
                if b"chunked" in headers:                       # 6 MB sent of a body that never ends
                    part = b'--b\r\nContent-Disposition: form-data; name="file"; filename="x.png"\r\n\r\n'
                    s.sendall(b"%x\r\n" % len(part) + part + b"\r\n")
                    chunk = b"x" * 1_000_000
                    for _ in range(6):
                        s.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
                reply = s.recv(4096)                            # the rest of the body is never sent
            assert reply.startswith(b"HTTP/1.1 413"), reply[:200]


# ------------------------------------------------------------------------------------------------- record

def test_wfdb_record_with_annotations(client, record_files):
    r = client.post("/api/record?signal=true", files=_wfdb(record_files))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["fs"] == 360.0 and body["lead"] == "MLII" and len(body["signal"]) == body["n_samples"]
    n = len(body["beats"]["sample"])
    assert 35 <= n <= 40 and sum(body["counts"].values()) == n and set(body["beats"]["class"]) <= set(CLASSES)
    ag = body["agreement"]
    assert ag["detection"]["sensitivity"] > 0.9 and ag["reference_beats"] == 40
    assert ag["ec57"]["rows"] == ["N", "S", "V", "F"] and ag["ec57"]["n"] == ag["matched_beats"]
    assert sum(map(sum, ag["ec57"]["matrix"])) == ag["matched_beats"]
    csv = client.post("/api/record?format=csv", files=_wfdb(record_files)).text.splitlines()
    assert csv[0] == "sample,time_s,class,p_N,p_S,p_V,p_F,reference" and len(csv) == n + 1


def test_record_without_annotations_and_csv_signal(client, record_files):
    r = client.post("/api/record", files=_wfdb(record_files, atr=None))
    assert r.status_code == 200 and r.json()["agreement"] is None
    sig, _ = synthetic_ecg(n_beats=30, seed=2, fs=250.0)
    text = "MLII\n" + "\n".join(f"{v:.4f}" for v in sig)
    r = client.post("/api/record", files={"csv": ("../s.csv", text.encode())}, data={"fs": "250"})
    assert r.status_code == 200, r.text
    assert r.json()["fs"] == 250.0 and r.json()["lead"] == "MLII" and 25 <= len(r.json()["beats"]["sample"]) <= 30


def test_header_names_never_reach_a_path(client, record_files, tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))             # the per-request directories land here
    hea = record_files["hea"].decode()
    evil = hea.replace("r1.dat", "../../../evil.dat").replace("r1 ", "evil ", 1)
    r = client.post("/api/record", files=_wfdb(record_files, hea=evil.encode()))
    assert r.status_code == 200, r.text                                  # read as upload.hea / upload.dat
    assert list(tmp_path.iterdir()) == []                                # removed after the request
    assert not list(tmp_path.parent.rglob("evil*"))
    r = client.post("/api/record", files=_wfdb(record_files, hea=hea.replace("r1 ", "../../evil ", 1).encode()))
    assert r.status_code == 400 and "multi-segment" in r.json()["detail"]   # '/' in a record name: segments
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("edit, problem", [
    (lambda h: h.replace(" 360 ", " abc ", 1), "sampling rate"),
    (lambda h: h.replace("r1 2 ", "r1 3 ", 1), "signal"),
    (lambda h: "\x00\xff".join(h.split(" ", 1)), "header"),
])
def test_malformed_headers_are_400_naming_the_problem(client, record_files, edit, problem):
    hea = edit(record_files["hea"].decode("latin-1")).encode("latin-1")
    r = client.post("/api/record", files=_wfdb(record_files, hea=hea))
    assert r.status_code == 400 and problem in r.json()["detail"].lower(), r.text
    assert "Traceback" not in r.text


def test_short_dat_and_missing_parts(client, record_files):
    r = client.post("/api/record", files=_wfdb(record_files, dat=record_files["dat"][:1000]))
    assert r.status_code == 400 and "upload" in r.json()["detail"], r.text
    r = client.post("/api/record", files=_wfdb(record_files, dat=None))
    assert r.status_code == 400 and "'dat'" in r.json()["detail"]
    assert client.post("/api/record", files={}).status_code == 400


@pytest.mark.parametrize("text, fs, problem", [
    ("0.1\n0.2\nhello\n0.3\n", "360", "line 3, column 1: 'hello' is not a number"),
    ("0.1\n0.2\nnan\n0.3\n", "360", "line 3, column 1: nan or infinite value"),
    ("0.1,1\n,2\n0.3,3\n", "360", "line 2, column 1: missing value"),
    ("\n".join(["0.1"] * 5000), "10", "sampling rate 10.0 hz out of range"),
    ("\n".join(["0.1"] * 5000), "1e9", "out of range"),
    ("\n".join(["0.1"] * 5000), "fast", "is not a number"),
    ("\n".join(["0.1"] * 100), "360", "shorter than"),
])
def test_bad_csv_signals_are_400_naming_the_problem(client, text, fs, problem):
    r = client.post("/api/record", files={"csv": ("s.csv", text.encode())}, data={"fs": fs})
    assert r.status_code == 400 and problem in r.json()["detail"].lower(), r.text


def test_csv_without_fs_and_record_limit(client, models, tmp_path):
    r = client.post("/api/record", files={"csv": ("s.csv", b"0.1\n")})
    assert r.status_code == 400 and "fs" in r.json()["detail"]
    with TestClient(create_app(settings(tmp_path, models, max_record_mb=0.01))) as small:
        r = small.post("/api/record", files={"csv": ("s.csv", b"0.1\n" * 100_000)}, data={"fs": "360"})
        assert r.status_code == 413


def test_an_internal_error_leaks_no_traceback(client, record_files, monkeypatch):
    import webapp.api as api

    def boom(*a, **k):
        raise RuntimeError("secret internal state /home/x")

    monkeypatch.setattr(api, "find_beats", boom)
    r = client.post("/api/record", files=_wfdb(record_files))
    assert r.status_code == 500 and r.json() == {"detail": "internal error (logged on the server)"}


def test_concurrent_clients_are_served(client):
    data = beat_png()
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda _: client.post("/api/beat", files={"file": ("b.png", data)}).status_code,
                              range(16)))
    assert codes == [200] * 16


# ------------------------------------------------------------------------------------------------- pages

def test_pages_use_only_local_assets(client):
    for path in ("/", "/dataset", "/benchmark", "/api-docs"):
        text = client.get(path).text
        assert "://" not in text.replace("http://127.0.0.1", ""), path
    page = client.get("/").text
    assert "/static/app.js" in page and "http://" not in page and "https://" not in page and "cdn" not in page.lower()
    assert client.get("/static/app.js").status_code == 200 and client.get("/static/app.css").status_code == 200
    assert client.get("/static/../app.py").status_code == 404


def test_dataset_browser_reads_the_shards(models, tmp_path):
    from tests._shards import write_shards

    write_shards(tmp_path / "images" / "annotations", {"100": {"N": 30, "V": 5}, "101": {"N": 12, "A": 3}}, size=16,
                 rr=True)
    with TestClient(create_app(settings(tmp_path, models))) as c:
        page = c.get("/dataset").text                       # originals (crop 0), every class, page 1
        assert "50 images; page 1 of 2" in page and page.count('alt="beat ') == 48
        assert ">N (42)<" in page and ">S (3)<" in page and ">V (5)<" in page
        v = c.get("/dataset?class=V&crop=all").text
        assert "5 images; page 1 of 1" in v and v.count('alt="beat ') == 5 and "V · 100 · crop 0" in v
        p2 = c.get("/dataset?crop=0&page=2").text
        assert "page 2 of 2" in p2 and p2.count('alt="beat ') == 2
        r101 = c.get("/dataset?record=101").text
        assert "15 images" in r101 and ">S (3)<" in r101 and ">V" not in r101
        assert c.get("/dataset?method=../../etc").status_code == 200          # unknown method: the first one


def test_benchmark_page_renders_the_report_and_its_figures(models, tmp_path):
    rep = tmp_path / "reports"
    (rep / "figures" / "evaluation").mkdir(parents=True)
    (rep / "benchmark.md").write_text("# Benchmark\n\n| run | accuracy |\n|---|---|\n| `r` | 90.0 |\n\n<script>x</script>\n")
    Image.new("L", (4, 4)).save(rep / "figures" / "evaluation" / "roc_r.png")
    (tmp_path / "secret.png").write_bytes(b"x")
    with TestClient(create_app(settings(tmp_path, models))) as c:
        page = c.get("/benchmark").text
        assert "<table>" in page and "<td>90.0</td>" in page and "<script>x</script>" not in page
        assert 'src="/figures/evaluation/roc_r.png"' in page
        assert c.get("/figures/evaluation/roc_r.png").headers["content-type"] == "image/png"
        assert c.get("/figures/..%2F..%2Fsecret.png").status_code == 404


def test_served_on_localhost_by_default(monkeypatch):
    import uvicorn

    from webapp.__main__ import main

    seen = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, host, port, **kw: seen.update(host=host, port=port))
    assert main([]) == 0
    assert seen == {"host": "127.0.0.1", "port": 8000}
