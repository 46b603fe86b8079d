"""Helpers of the web-app tests: tiny run directories in the layout ``training.predict`` loads, settings, images."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

CLASSES = ["N", "S", "V", "F"]
#: The rhythm features of the test record run (a subset, as ``train.rhythm_features`` picks).
FEATURES = ["log_pre_local", "log_post_local", "rr_missing"]


def write_run(models_dir: Path, name: str, *, rhythm: bool, input_size: int = 16, image_size: int = 32,
              seed: int = 0) -> Path:
    """``models_dir/name``: run.json and one fold (an untrained small_cnn from ``training.models``, a prior file)."""
    import keras

    from training.models import build_model

    keras.utils.set_random_seed(seed)
    run_dir = Path(models_dir) / name
    (run_dir / "fold-00").mkdir(parents=True)
    model = build_model("small_cnn", len(CLASSES), input_size=input_size, rhythm_features=len(FEATURES) if rhythm else 0)
    model.save(run_dir / "fold-00" / "model.keras")
    prior = {"classes": CLASSES, "tau": 1.0, "bias": [0.0, 0.1, 0.2, 0.3], "rule": "test"}
    (run_dir / "fold-00" / "prior.json").write_text(json.dumps(prior))
    doc = {"run": name, "model": "small_cnn", "method": "annotations", "folds": "ds1ds2", "labels": "aami",
           "classes": CLASSES, "untrained_classes": ["Q"], "rhythm": rhythm, "image_size": image_size,
           "input_size": input_size, "k": 1, "data_hash": "d" * 64, "params_hash": "p" * 12,
           "params": {"input_size": input_size, "rhythm_features": FEATURES}, "accuracy": 0.5,
           "balanced_accuracy": 0.25}
    (run_dir / "run.json").write_text(json.dumps(doc))
    return run_dir


def settings(tmp: Path, models_dir: Path, **webapp):
    """Settings of a test app: the repository's params, models and reports under ``tmp``."""
    from webapp.config import ROOT, Settings

    base = Settings.from_params(ROOT / "params.yaml", models_dir=models_dir, images_dir=tmp / "images",
                                reports_dir=tmp / "reports")
    return Settings(root=base.root, models_dir=models_dir, images_dir=tmp / "images", reports_dir=tmp / "reports",
                    webapp={**base.webapp, "beat_run": "beat", "record_run": "rec", **webapp},
                    segment=base.segment, render={**base.render, "size": 32})


def beat_png(seed: int = 0, size: int = 32) -> bytes:
    """A beat drawn by the project's renderer (a synthetic QRS), as PNG bytes."""
    from pipelines import encode_png, render_beats

    t = np.linspace(-1, 1, 200)
    beat = np.exp(-0.5 * (t / 0.05) ** 2) + 0.2 * np.exp(-0.5 * ((t - 0.5) / 0.1) ** 2) + 0.01 * seed * t
    data, _ = encode_png(render_beats(beat.astype(np.float32), np.array([0, 200]), size=size))
    return data.tobytes()


class LiveServer:
    """The app on a real uvicorn server in a thread, on 127.0.0.1 and a free port (``with LiveServer(app) as url``)."""

    def __init__(self, app):
        import uvicorn

        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))

    def __enter__(self) -> str:
        import threading
        import time

        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        host, port = self.server.servers[0].sockets[0].getsockname()[:2]
        return f"http://{host}:{port}"

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
