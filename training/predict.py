"""Classify any image set built by this pipeline with a trained run's models.

Usage::

    python -m training.predict --run models/<run> --images datasets/images/<method> --out predictions.parquet

Every original beat image (crop 0) of ``--images`` is scored by each fold model of the run (its
``fold-XX/model.keras``), each fold's probabilities corrected by its stored prior correction
(``fold-XX/prior.json``, :mod:`training.selection`), and the folds averaged (an ensemble; a
``ds1ds2`` run has the one DS1 model). The output has the columns of ``fold-XX/predictions.parquet``:
``beat_id``, ``record``, ``fold`` (the fold for a one-fold run, -1 for an ensemble), ``y_true`` (the
class under the run's labels, null where the beat has none: unlabelled, paced records under AAMI),
``y_pred`` and ``p_<class>`` for the run's trained classes; rows in image-set order.

Checked before any prediction (exit status 2, naming the file): the run directory (``run.json``,
every fold's model and prior correction; a model file that cannot be loaded, e.g. truncated), and
the image set (its shards and checksums, the run's method and image size, the RR columns for a
rhythm model).

Rendering a beats table first (``--beats``) is not offered: the render stage's recipe (engine,
window, crops, shard layout) is not exposed as one public ``pipelines`` function yet; render the
beats with ``python -m pipelines.render`` and pass the image set.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from pipelines import ConfigError, DataError, atomic_path

from .data import Selection, make_dataset, rhythm_inputs
from .meta import ImageSet, label_rows, open_images
from .selection import PRIOR_FILE, adjust, read_prior

#: Batch size of inference.
BATCH = 256


def read_run(run_dir: Path) -> dict[str, Any]:
    """``run.json`` of a run directory; :class:`DataError` naming it when missing or unreadable."""
    path = Path(run_dir) / "run.json"
    if not path.is_file():
        raise DataError(str(path), "missing: not a trained run directory (models/<run>)")
    try:
        doc = json.loads(path.read_text())
        _ = (doc["classes"], doc["k"], doc["method"], doc["labels"], doc["params"]["input_size"])
    except (ValueError, KeyError, TypeError) as exc:
        raise DataError(str(path), f"not a run.json of training.train ({exc!r})") from None
    return doc


def load_folds(run_dir: Path, run: dict[str, Any]) -> list[tuple[Any, np.ndarray]]:
    """``(model, prior bias)`` of every fold; :class:`DataError` naming a missing or unloadable file."""
    import keras

    classes = tuple(run["classes"])
    folds = []
    for i in range(int(run["k"])):
        fold = Path(run_dir) / f"fold-{i:02d}"
        path = fold / "model.keras"
        if not path.is_file():
            raise DataError(str(path), f"missing: the run has {run['k']} fold(s) (incomplete copy? retrain)")
        bias = read_prior(fold / PRIOR_FILE, classes)
        try:
            model = keras.models.load_model(path, compile=False)
        except Exception as exc:        # a truncated zip, a foreign file: name it
            raise DataError(str(path), f"cannot load the model ({type(exc).__name__}: {exc})") from None
        if model.output_shape[-1] != len(classes):
            raise DataError(str(path), f"{model.output_shape[-1]} outputs, run.json has classes {list(classes)}")
        folds.append((model, bias))
    return folds


def check_images(images: ImageSet, run: dict[str, Any], where: str) -> None:
    """Raise :class:`DataError` when the image set is of another method or image size than the run's."""
    method = images.manifest.get("method")
    if method is not None and method != run["method"]:
        raise DataError(where, f"images of method {method!r}, the run was trained on {run['method']!r}")
    size = run.get("image_size")
    if size is not None and images.image_size != size:
        raise DataError(where, f"{images.image_size} px images, the run was trained on {size} px images")


def true_labels(images: ImageSet, rows: np.ndarray, labels: str) -> np.ndarray:
    """Class name under ``labels`` per row, None where the scheme gives none."""
    y, classes, _ = label_rows(images.rows, labels)
    names = np.array([*classes, None], dtype=object)
    return names[np.where(y[rows] >= 0, y[rows], len(classes))]


def predict(run_dir: str | os.PathLike, images_dir: str | os.PathLike) -> Any:
    """The ``predictions.parquet`` table (pyarrow) of every original beat of ``images_dir``."""
    from .train import predictions_table

    run_dir = Path(run_dir)
    run = read_run(run_dir)
    folds = load_folds(run_dir, run)
    images = open_images(images_dir)
    check_images(images, run, str(images_dir))
    rows = np.flatnonzero(images.rows["crop"].to_numpy() == 0)
    extra = ({"features": rhythm_inputs(images, rows, run["params"].get("rhythm_features") or None)}
             if run.get("rhythm") else {})
    y_true = true_labels(images, rows, run["labels"])
    sel = Selection(rows.astype(np.int64), np.zeros(rows.size, np.int8), np.zeros(rows.size, np.int32))
    probs = np.zeros((rows.size, len(run["classes"])), np.float64)
    for model, bias in folds:
        ds = make_dataset(images, sel, input_size=int(run["params"]["input_size"]), batch_size=BATCH,
                          shuffle=False, seed=0, **extra)
        probs += adjust(np.asarray(model.predict(ds, verbose=0), np.float32), bias)
    probs = (probs / len(folds)).astype(np.float32)
    meta = images.rows
    return predictions_table(meta["beat_id"].to_numpy(dtype=object)[rows], meta["record"].to_numpy(dtype=object)[rows],
                             0 if len(folds) == 1 else -1, y_true, probs, tuple(run["classes"]))


def predict_arrays(folds: list[tuple[Any, np.ndarray]], images: np.ndarray, input_size: int,
                   features: np.ndarray | None = None) -> np.ndarray:
    """Prior-corrected, fold-averaged class probabilities of in-memory beat images (float32 ``(n, classes)``).

    ``images``: uint8 ``(n, size, size)`` as the render stage stores them (255 background); resized to
    ``input_size`` as :func:`training.data.make_dataset` does (OpenCV, area when shrinking, bilinear when
    growing) and scaled to [0, 1]. ``features``: ``(n, F)`` rhythm features of a rhythm run, else None.
    ``folds``: :func:`load_folds`. Used by the web app (``webapp``) to score uploads without shards.
    """
    import cv2
    import keras

    images = np.asarray(images, np.uint8)
    n, size = images.shape[0], images.shape[1]
    interp = cv2.INTER_AREA if input_size < size else cv2.INTER_LINEAR
    x = images if size == input_size else np.stack(
        [cv2.resize(img, (input_size, input_size), interpolation=interp) for img in images]) if n else \
        np.zeros((0, input_size, input_size), np.uint8)
    x = (x.astype(np.float32) * (1.0 / 255.0))[..., None]
    probs = np.zeros((n, len(folds[0][1])), np.float64)
    for model, bias in folds:
        for lo in range(0, n, BATCH):
            batch = x[lo:lo + BATCH]
            inputs = batch if features is None else {"image": batch, "rhythm": np.asarray(features[lo:lo + BATCH],
                                                                                          np.float32)}
            out = keras.ops.convert_to_numpy(model(inputs, training=False))
            probs[lo:lo + BATCH] += adjust(out.astype(np.float32), bias)
    return (probs / len(folds)).astype(np.float32)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.predict", description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True, help="trained run directory, models/<run>")
    ap.add_argument("--images", required=True, help="image-shard directory built by the render stage")
    ap.add_argument("--out", required=True, help="output Parquet file")
    args = ap.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        table = predict(args.run, args.images)
        with atomic_path(args.out) as tmp:
            pq.write_table(table, tmp, compression="zstd")
    except (ConfigError, DataError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"predict: {table.num_rows:,} beats -> {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
