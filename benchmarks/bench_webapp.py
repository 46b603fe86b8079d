"""Speed of the web app through HTTP, against a local uvicorn on 127.0.0.1 (docs/benchmarks/webapp.md).

Usage::

    python benchmarks/bench_webapp.py [--requests 200] [--record 100] [--clients 8]

Starts ``python -m webapp``-equivalent uvicorn in a subprocess (one process, the app of
:func:`webapp.app.create_app`) and measures, with ``httpx`` clients:

* one beat image (a 128 px beat rendered by the project): latency p50/p95 over ``--requests``
  sequential requests with the model warm;
* a 30-minute MIT-BIH record (``$MITDB_DIR/<record>``, .hea + .dat + .atr) end to end: upload,
  Christov detection, rendering, rhythm features, classification, EC57 agreement;
* throughput with ``--clients`` concurrent clients posting beat images.

Models: the runs named in ``params.yaml``'s ``webapp`` section when ``models/`` holds them; otherwise
untrained models of the same architecture and sizes (small CNN, 128 px images, 64 px input) written
to a temporary directory: inference costs the same whatever the weights.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stand_in_models(directory: Path, beat_run: str, record_run: str) -> None:
    """Untrained small CNN runs (128 px images, 64 px input) in the layout training.predict loads."""
    import keras

    from training.models import build_model

    classes = ["N", "S", "V", "F"]
    for name, rhythm in ((beat_run, False), (record_run, True)):
        keras.utils.set_random_seed(0)
        d = directory / name / "fold-00"
        d.mkdir(parents=True)
        build_model("small_cnn", 4, input_size=64, rhythm_features=6 if rhythm else 0).save(d / "model.keras")
        (d / "prior.json").write_text(json.dumps({"classes": classes, "tau": 1.0, "bias": [0.0] * 4}))
        (directory / name / "run.json").write_text(json.dumps({
            "run": name, "model": "small_cnn", "method": "annotations", "folds": "ds1ds2", "labels": "aami",
            "classes": classes, "rhythm": rhythm, "image_size": 128, "input_size": 64, "k": 1,
            "params": {"input_size": 64}, "data_hash": "stand-in (untrained)"}))


def serve(models_dir: str, port: int) -> None:
    """The server process: the repository's params, ``models_dir``, uvicorn on 127.0.0.1:``port``."""
    import uvicorn

    from webapp.app import create_app
    from webapp.config import Settings

    settings = Settings.from_params(ROOT / "params.yaml", models_dir=Path(models_dir))
    app = create_app(settings)
    app.state.models.preload()                          # as python -m webapp does
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


def beat_png() -> bytes:
    from pipelines import encode_png, render_beats

    t = np.linspace(-1, 1, 250)
    beat = (np.exp(-0.5 * (t / 0.04) ** 2) + 0.25 * np.exp(-0.5 * ((t - 0.5) / 0.1) ** 2)).astype(np.float32)
    data, _ = encode_png(render_beats(beat, np.array([0, beat.size]), size=128))
    return data.tobytes()


def pct(values, q) -> float:
    return float(np.percentile(np.asarray(values) * 1000, q))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--record", default="100")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--serve", nargs=2, metavar=("MODELS", "PORT"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.serve:
        serve(args.serve[0], int(args.serve[1]))
        return 0
    import httpx

    from pipelines import load_params

    web = load_params(ROOT / "params.yaml", "webapp")
    models = ROOT / "models"
    tmp = tempfile.TemporaryDirectory()
    real = (models / web["beat_run"] / "run.json").is_file() and (models / web["record_run"] / "run.json").is_file()
    if not real:
        models = Path(tmp.name)
        stand_in_models(models, web["beat_run"], web["record_run"])
    port = free_port()
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(ROOT)}
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(models), str(port)], env=env)
    url = f"http://127.0.0.1:{port}"
    import psutil

    proc = psutil.Process(server.pid)
    try:
        with httpx.Client(base_url=url, timeout=120) as c:
            for _ in range(3000):
                try:
                    if c.get("/api/health").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            print(f"models: {'models/ (trained runs)' if real else 'stand-in untrained small CNNs (same sizes)'}; "
                  f"server: uvicorn, 1 process, {url}; CPUs: {os.cpu_count()}; load: {os.getloadavg()[0]:.1f}")
            png = beat_png()
            t0 = time.perf_counter()
            first = c.post("/api/beat", files={"file": ("b.png", png, "image/png")})
            print(f"first beat request (models preloaded at start): {time.perf_counter() - t0:.2f} s, "
                  f"status {first.status_code}")
            for _ in range(10):
                c.post("/api/beat", files={"file": ("b.png", png, "image/png")})
            lat = []
            for _ in range(args.requests):
                t = time.perf_counter()
                r = c.post("/api/beat", files={"file": ("b.png", png, "image/png")})
                lat.append(time.perf_counter() - t)
                assert r.status_code == 200, r.text
            print(f"beat image, {args.requests} sequential requests: p50 {pct(lat, 50):.1f} ms, p95 {pct(lat, 95):.1f} ms, "
                  f"max {max(lat) * 1000:.1f} ms")

            src = Path(os.environ.get("MITDB_DIR", ROOT.parent / "shared/data/mitdb"))
            if (src / f"{args.record}.hea").is_file():
                files = {k: (f"r.{k}", (src / f"{args.record}.{k}").read_bytes()) for k in ("hea", "dat", "atr")}
                times, cpu = [], []
                for i in range(3):
                    t, c0 = time.perf_counter(), proc.cpu_times()
                    r = c.post("/api/record", files=files)
                    times.append(time.perf_counter() - t)
                    c1 = proc.cpu_times()
                    cpu.append(c1.user + c1.system - c0.user - c0.system)
                    assert r.status_code == 200, r.text
                body = r.json()
                print(f"record {args.record} ({body['seconds'] / 60:.1f} min, {len(body['beats']['sample']):,} beats, "
                      f"detector Se {body['agreement']['detection']['sensitivity']:.4f}): end to end "
                      f"{', '.join(f'{x:.2f}' for x in times)} s wall ; "
                      f"server CPU {', '.join(f'{x:.1f}' for x in cpu)} CPU-s; load {os.getloadavg()[0]:.1f}")
                t = time.perf_counter()
                r = c.post("/api/record?signal=true", files=files)
                print(f"  with the signal for the strip plot (page): {time.perf_counter() - t:.2f} s, "
                      f"{len(r.content) / 1e6:.1f} MB JSON")
            else:
                print(f"record {args.record}: no MIT-BIH copy at {src} (set MITDB_DIR)")

        n = max(args.requests * 2, args.clients * 20)
        per = n // args.clients
        lat_c: list[float] = []
        lock = threading.Lock()

        def client():
            with httpx.Client(base_url=url, timeout=120) as cc:
                for _ in range(per):
                    t = time.perf_counter()
                    r = cc.post("/api/beat", files={"file": ("b.png", png, "image/png")})
                    with lock:
                        lat_c.append(time.perf_counter() - t)
                    assert r.status_code == 200

        threads = [threading.Thread(target=client) for _ in range(args.clients)]
        t = time.perf_counter()
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        wall = time.perf_counter() - t
        print(f"{args.clients} concurrent clients, {per * args.clients} beat requests: {per * args.clients / wall:.1f} "
              f"requests/s; latency p50 {pct(lat_c, 50):.1f} ms, p95 {pct(lat_c, 95):.1f} ms")
    finally:
        server.terminate()
        server.wait(timeout=30)
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
