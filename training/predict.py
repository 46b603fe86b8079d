"""Classify beats with a trained run's models: an image set built by this pipeline, or a beats table.

Usage::

    python -m training.predict --run models/<run> --images datasets/images/<method> --out predictions.parquet
    python -m training.predict --run models/<run> --beats datasets/beats/<method>.parquet --params params.yaml \\
        --out predictions.parquet

``--images``: every original beat image (crop 0) of the image set. ``--beats``: every beat of the beats
table, drawn in memory as the render stage draws it (:func:`pipelines.draw_beats` with the ``render``
section of ``--params`` and the stage's geometry, :func:`drawn_geometry`), :data:`CHUNK_BEATS` beats at
a time (no shards written); beats the render stage does not draw (fewer than 2 samples, a non-finite
sample: :func:`pipelines.beat_exclusions`) are left out and counted on stderr. Either way each beat is
scored by each fold model of the run (its ``fold-XX/model.keras``), each fold's probabilities corrected
by its stored prior correction (``fold-XX/prior.json``, :mod:`training.selection`), and the folds
averaged (an ensemble; a ``ds1ds2`` run has the one DS1 model). A rhythm run gets the RR (and, with ``template_features``, the
template) columns of the image set or of the beats table. The output has the columns of ``fold-XX/predictions.parquet``:
``beat_id``, ``record``, ``fold`` (the fold for a one-fold run, -1 for an ensemble), ``y_true`` (the
class under the run's labels, null where the beat has none: unlabelled, paced records under AAMI),
``y_pred`` and ``p_<class>`` for the run's trained classes; rows in image-set order (``--images``) or
beats-table order (``--beats``). It is written atomically: an error leaves no partial file.

Checked before any prediction (exit status 2, naming the file): the run directory (``run.json``,
every fold's model and prior correction; a model file that cannot be loaded, e.g. truncated), and
the image set (its shards and checksums, the run's method and image size, the RR and template columns
for a rhythm model), or, with ``--beats``, the params file (its ``render`` section; ``render.size`` the run's
image size) and the beats table (:func:`pipelines.verify_beats`: present, the beats-table schema and
``ecg_beats`` metadata, end to end; the run's method, as the metadata records it; the RR and template
columns for a rhythm model).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipelines import (FEATURE_COLUMNS, RR_COLUMNS, TEMPLATE_COLUMNS, BeatGeometry, ConfigError, DataError, Progress,
                       RenderConfig, atomic_path, beat_exclusions, beat_geometry, draw_beats, load_params, read_beats,
                       verify_beats)

from .data import Selection, branch_names, make_dataset, rhythm_from_beats, rhythm_inputs
from .meta import ImageSet, label_rows, open_images
from .selection import PRIOR_FILE, adjust, read_prior

#: Batch size of inference.
BATCH = 256

#: Beats drawn and classified at a time from a beats table (bounds the images in memory).
CHUNK_BEATS = 4096


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


def true_labels(rows: pd.DataFrame, labels: str) -> np.ndarray:
    """Class name under ``labels`` of every row of a label table (the columns :func:`training.meta.label_rows`
    reads), None where the scheme gives none."""
    y, classes, _ = label_rows(rows, labels)
    names = np.array([*classes, None], dtype=object)
    return names[np.where(y >= 0, y, len(classes))]


def _output(run: dict[str, Any], n_folds: int, rows: pd.DataFrame, probs: np.ndarray) -> pa.Table:
    """The ``predictions.parquet`` table of the beats ``rows`` (``beat_id``, ``record`` and the label columns)."""
    from .train import predictions_table

    return predictions_table(rows["beat_id"].to_numpy(dtype=object), rows["record"].to_numpy(dtype=object),
                             0 if n_folds == 1 else -1, true_labels(rows, run["labels"]), probs,
                             tuple(run["classes"]))


def predict(run_dir: str | os.PathLike, images_dir: str | os.PathLike) -> pa.Table:
    """The ``predictions.parquet`` table (pyarrow) of every original beat of ``images_dir``."""
    run_dir = Path(run_dir)
    run = read_run(run_dir)
    folds = load_folds(run_dir, run)
    images = open_images(images_dir)
    check_images(images, run, str(images_dir))
    rows = np.flatnonzero(images.rows["crop"].to_numpy() == 0)
    extra = ({"features": rhythm_inputs(images, rows, branch_names(run["params"]))}
             if run.get("rhythm") else {})
    sel = Selection(rows.astype(np.int64), np.zeros(rows.size, np.int8), np.zeros(rows.size, np.int32))
    probs = np.zeros((rows.size, len(run["classes"])), np.float64)
    for model, bias in folds:
        ds = make_dataset(images, sel, input_size=int(run["params"]["input_size"]), batch_size=BATCH,
                          shuffle=False, seed=0, **extra)
        probs += adjust(np.asarray(model.predict(ds, verbose=0), np.float32), bias)
    probs = (probs / len(folds)).astype(np.float32)
    return _output(run, len(folds), images.rows.iloc[rows], probs)


# ------------------------------------------------------------------------------------- from a beats table

def render_config(params_path: str | os.PathLike, run: dict[str, Any], where: str) -> RenderConfig:
    """The ``render`` section of ``params_path`` (:class:`pipelines.RenderConfig`), checked against the run.

    Parameters
    ----------
    params_path : path
        The params file.
    run : dict
        The run's ``run.json``; ``where`` names it in the error.

    Raises
    ------
    ConfigError
        The params file is missing, or its ``render`` section absent or invalid (naming the key).
    DataError
        Naming ``params_path``: ``render.size`` differs from the run's ``image_size``.
    """
    cfg = RenderConfig.from_params(load_params(params_path, "render"))
    size = run.get("image_size")
    if size is not None and size != cfg.size:
        raise DataError(str(params_path), f"render.size is {cfg.size}, the run ({where}: image_size) was trained "
                                          f"on {size} px images")
    return cfg


def check_beats(path: str | os.PathLike, run: dict[str, Any]) -> dict[str, Any]:
    """Check a beats table for the run; return its ``ecg_beats`` metadata.

    Raises
    ------
    DataError
        Naming the file: the RR or template columns missing for a rhythm run (``run.json`` ``rhythm``), anything
        :func:`pipelines.verify_beats` finds (missing, not a beats table, a corrupt page), beats of another
        segmentation method than the run's (the metadata's ``method``).
    """
    path = Path(path)
    if run.get("rhythm") and path.is_file():
        try:
            names = pq.read_schema(path).names
        except (OSError, ValueError):  # not Parquet: verify_beats names the fault
            names = list(FEATURE_COLUMNS)
        wanted = RR_COLUMNS + tuple(n for n in branch_names(run["params"]) if n in TEMPLATE_COLUMNS)
        missing = [c for c in wanted if c not in names]
        if missing:
            raise DataError(str(path), f"no column(s) {missing}: the run has a rhythm input (run.json rhythm, "
                                       "params.template_features); rerun the segment stage")
    meta = verify_beats(path)
    method = meta.get("method")
    if method is not None and method != run["method"]:
        raise DataError(str(path), f"beats of method {method!r} (its 'ecg_beats' metadata), the run was trained "
                                   f"on {run['method']!r}")
    return meta


def drawn_geometry(beats: Any, rows: np.ndarray, cfg: RenderConfig, where: str,
                   drawable: np.ndarray | None = None) -> BeatGeometry | None:
    """The render stage's geometry (:func:`pipelines.beat_geometry`) of beats-table rows ``rows``; None
    for the recipe's scales.

    With ``render.scale.amplitude: record`` the record amplitude comes, as in the render stage, from every
    beat of the record it draws (all the beats table's beats but those it excludes), original samples;
    :class:`DataError` naming ``where`` when a row is one the stage does not draw. ``drawable``: the rows
    the stage draws (:func:`pipelines.beat_exclusions` == 0), when the caller has them already.
    """
    if cfg.scale.is_recipe:
        return None
    if cfg.scale.amplitude != "record":
        return beat_geometry(beats, rows, cfg)
    keep = np.flatnonzero(beat_exclusions(beats) == 0) if drawable is None else np.asarray(drawable, np.int64)
    pos = np.minimum(np.searchsorted(keep, rows), max(len(keep) - 1, 0))
    if len(keep) == 0 or not np.array_equal(keep[pos], rows):
        raise DataError(where, "a beat has a window the render stage does not draw (NaN or too short)")
    g = beat_geometry(beats, keep, cfg)
    return BeatGeometry(r_index=g.r_index[pos], fs=g.fs[pos], amp=g.amp[pos])


def classify_drawn(folds: list[tuple[Any, np.ndarray]], values: np.ndarray, offsets: np.ndarray, cfg: RenderConfig,
                   input_size: int, *, geometry: BeatGeometry | None = None, features: np.ndarray | None = None,
                   progress: Progress | None = None, chunk: int | None = None) -> np.ndarray:
    """Draw beat windows as the render stage does and classify them, a chunk of beats at a time.

    Parameters
    ----------
    folds : list
        :func:`load_folds`.
    values, offsets : ndarray
        The beats' samples (float32) in ListArray layout (offsets from 0, ``n + 1`` of them).
    cfg : RenderConfig
        How to draw (:func:`pipelines.draw_beats`); ``geometry``: the beats' :func:`drawn_geometry`.
    input_size : int
        The run's ``params.input_size``.
    features : ndarray, optional
        ``(n, F)`` rhythm features of a rhythm run (:func:`training.data.rhythm_from_beats`).
    progress : Progress, optional
        Updated after each chunk.
    chunk : int, optional
        Beats drawn and classified at a time (:data:`CHUNK_BEATS` when None).

    Returns
    -------
    ndarray of float32, shape (n, classes)
        :func:`predict_arrays` of the drawn images: prior-corrected, fold-averaged probabilities.
    """
    n, chunk = len(offsets) - 1, chunk or CHUNK_BEATS
    probs = []
    for a in range(0, n, chunk):
        b = min(a + chunk, n)
        images = np.asarray(draw_beats(values[offsets[a]:offsets[b]], offsets[a:b + 1] - offsets[a], cfg,
                                       None if geometry is None else geometry.take(a, b)))
        probs.append(predict_arrays(folds, images, input_size, None if features is None else features[a:b]))
        if progress is not None:
            progress.update(b - a)
    return np.concatenate(probs) if probs else np.zeros((0, len(folds[0][1])), np.float32)


def predict_beats(run_dir: str | os.PathLike, beats_path: str | os.PathLike,
                  params_path: str | os.PathLike = "params.yaml", *, stream: Any = None) -> pa.Table:
    """The ``predictions.parquet`` table (pyarrow) of every beat of a beats table that the render stage draws.

    Parameters
    ----------
    run_dir : path
        The trained run, ``models/<run>``.
    beats_path : path
        A beats table of the segment stage, ``datasets/beats/<method>.parquet``.
    params_path : path
        The params file whose ``render`` section says how the beats are drawn.
    stream : text stream, optional
        Where the progress lines go (stderr by default).

    Raises
    ------
    ConfigError, DataError
        Naming the file (or key), before any prediction: :func:`read_run`, :func:`render_config`,
        :func:`check_beats`, :func:`load_folds`.
    """
    run_dir, beats_path = Path(run_dir), Path(beats_path)
    run = read_run(run_dir)
    cfg = render_config(params_path, run, str(run_dir / "run.json"))
    check_beats(beats_path, run)
    folds = load_folds(run_dir, run)
    beats = read_beats(beats_path)
    drawn = beat_exclusions(beats) == 0
    keep = np.flatnonzero(drawn)
    if keep.size == 0:
        raise DataError(str(beats_path), f"none of its {drawn.size:,} beats can be drawn (fewer than 2 samples, "
                                         "a non-finite sample)")
    geometry = drawn_geometry(beats, keep, cfg, str(beats_path), drawable=keep)
    features = (rhythm_from_beats(beats, keep, branch_names(run["params"]))
                if run.get("rhythm") else None)
    values, offsets = beats.values, beats.offsets
    if not drawn.all():  # the drawn beats' samples only
        values = values[np.repeat(drawn, beats.lengths)]
        offsets = np.concatenate([[0], np.cumsum(beats.lengths[keep])])
    rows = beats.meta.select(["beat_id", "record", "symbol", "aami", "jun8"]).take(keep).to_pandas().assign(crop=0)
    progress = Progress("predict", total=int(keep.size), unit="beats", stream=stream)
    probs = classify_drawn(folds, values, offsets, cfg, int(run["params"]["input_size"]), geometry=geometry,
                           features=features, progress=progress)
    progress.done(f"{drawn.size - keep.size:,} beat(s) the render stage does not draw left out "
                  "(fewer than 2 samples, a non-finite sample)")
    return _output(run, len(folds), rows, probs)


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
    source = ap.add_mutually_exclusive_group(required=True)
    source.add_argument("--images", help="image-shard directory built by the render stage")
    source.add_argument("--beats", help="beats table built by the segment stage, datasets/beats/<method>.parquet "
                                        "(drawn as the render stage draws it)")
    ap.add_argument("--params", help="with --beats: params file whose 'render' section draws the beats "
                                     "(default params.yaml)")
    ap.add_argument("--out", required=True, help="output Parquet file")
    args = ap.parse_args(argv)
    if args.params is not None and args.beats is None:
        ap.error("argument --params: only with --beats")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        table = (predict(args.run, args.images) if args.beats is None
                 else predict_beats(args.run, args.beats, args.params or "params.yaml"))
        with atomic_path(args.out) as tmp:
            pq.write_table(table, tmp, compression="zstd")
    except (ConfigError, DataError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"predict: {table.num_rows:,} beats -> {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
