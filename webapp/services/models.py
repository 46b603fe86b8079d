"""The served models: trained runs of ``models/<run>/``, loaded once per process, and their model cards.

Only run directories written by ``python -m training.train`` are loaded, through
:func:`training.predict.read_run` and :func:`training.predict.load_folds` (Keras ``.keras`` files,
loaded with ``compile=False``; no pickle, nothing uploaded). A missing run is not an error of the
app: :meth:`ModelStore.get` returns None and :func:`missing_message` says how to get one.
"""
from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

#: Keys of ``run.json`` copied into the model card.
CARD_KEYS = ("run", "model", "method", "folds", "labels", "classes", "untrained_classes", "rhythm", "image_size",
             "input_size", "k", "data_hash", "params_hash", "code_hash", "n_test_beats", "accuracy",
             "balanced_accuracy", "decision_prior", "selection")


@dataclass
class LoadedRun:
    """A loaded run: its name, directory, ``run.json``, ``(model, prior bias)`` per fold and model card."""

    name: str
    directory: Path
    run: dict[str, Any]
    folds: list
    card: dict[str, Any]

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(self.run["classes"])

    def predict(self, images: np.ndarray, features: np.ndarray | None = None) -> np.ndarray:
        """Class probabilities ``(n, classes)`` of uint8 images at the run's image size (:func:`training.predict.predict_arrays`)."""
        from training.predict import predict_arrays

        if len(images) == 0:
            return np.zeros((0, len(self.classes)), np.float32)
        return predict_arrays(self.folds, images, int(self.run["params"]["input_size"]),
                              self.rhythm_inputs(features) if self.run.get("rhythm") else None)

    def rhythm_inputs(self, features: np.ndarray) -> np.ndarray:
        """The columns the run was trained on (:func:`training.data.branch_names` of its ``run.json``) of a
        full feature matrix, whose columns are :func:`training.data.model_feature_names` (RR ratios, then
        template features)."""
        from training.data import branch_names, select_features, model_feature_names

        return select_features(np.asarray(features, np.float32), branch_names(self.run["params"]),
                               model_feature_names())


def benchmark_metrics(reports_dir: Path, run_name: str) -> dict[str, Any] | None:
    """The run's pooled test figures from ``reports/metrics.json`` (the benchmark), None when absent."""
    path = Path(reports_dir) / "metrics.json"
    try:
        doc = json.loads(path.read_text())
        entry = doc[run_name]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    pooled = entry.get("pooled", {}) if isinstance(entry, dict) else {}
    return {"accuracy": pooled.get("accuracy"), "macro": pooled.get("macro"), "n_test_beats": entry.get("n_test_beats"),
            "source": "reports/metrics.json"}


def model_card(name: str, run: dict[str, Any], reports_dir: Path) -> dict[str, Any]:
    """The facts shown beside every answer: run, protocol, data version, test metrics."""
    card = {k: run.get(k) for k in CARD_KEYS}
    card["run"] = run.get("run", name)
    card["benchmark"] = benchmark_metrics(reports_dir, name)
    return card


class GraphModel:
    """A Keras model called through one ``tf.function`` (traced once, shapes relaxed): a single image
    costs ~7 ms instead of ~65 ms eagerly (benchmarks/bench_webapp.py). Called as the model is."""

    def __init__(self, model):
        import tensorflow as tf

        self.model = model
        self._fn = tf.function(lambda x: model(x, training=False), reduce_retracing=True)

    @property
    def output_shape(self):
        return self.model.output_shape

    def __call__(self, inputs, training: bool = False):
        return self._fn(inputs)


def load_run(directory: Path, reports_dir: Path) -> LoadedRun:
    """Load ``models/<run>`` (every fold, its prior correction) and warm it up; :class:`pipelines.DataError`
    naming a bad file."""
    from training.data import model_feature_names
    from training.predict import load_folds, read_run

    run = read_run(directory)
    folds = [(GraphModel(model), bias) for model, bias in load_folds(directory, run)]
    loaded = LoadedRun(directory.name, directory, run, folds, model_card(directory.name, run, reports_dir))
    size = int(run.get("image_size") or run["params"]["input_size"])
    for n in (1, 3):                                    # trace now, not on the first request
        loaded.predict(np.full((n, size, size), 255, np.uint8), np.zeros((n, len(model_feature_names())), np.float32))
    return loaded


def missing_message(directory: Path) -> str:
    """What to do when a served run is not on disk."""
    return (f"no trained model at {directory}: build it with `dvc repro train@{directory.name}` "
            f"(or fetch it with `dvc pull`), or name another run in params.yaml's webapp section")


class ModelStore:
    """Runs loaded once per process (thread-safe), by role: ``beat`` (image-only) and ``record`` (rhythm)."""

    def __init__(self, models_dir: Path, runs: dict[str, str], reports_dir: Path):
        self.models_dir, self.runs, self.reports_dir = Path(models_dir), dict(runs), Path(reports_dir)
        self._loaded: dict[str, LoadedRun] = {}
        self._lock = threading.Lock()

    def directory(self, role: str) -> Path:
        return self.models_dir / self.runs[role]

    def get(self, role: str) -> LoadedRun | None:
        """The run serving ``role``, loaded on first use; None when its directory has no ``run.json``."""
        with self._lock:
            if role not in self._loaded:
                directory = self.directory(role)
                if not (directory / "run.json").is_file():
                    return None
                self._loaded[role] = load_run(directory, self.reports_dir)
            return self._loaded[role]

    def preload(self) -> list[str]:
        """Load (and trace) every run that is on disk now, so that the first request does not wait; their roles."""
        return [role for role in self.runs if self.get(role) is not None]

    def status(self) -> dict[str, Any]:
        """Per role: the run name, whether it is on disk, and the message when not."""
        out = {}
        for role in self.runs:
            d = self.directory(role)
            present = (d / "run.json").is_file()
            out[role] = {"run": self.runs[role], "present": present, "loaded": role in self._loaded,
                         **({} if present else {"message": missing_message(d)})}
        return out
