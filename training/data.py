"""The input pipeline: which rows a fold trains and scores on, their class weights, and a tf.data stream.

The image set is never all in memory. A Python generator reads the PNG bytes of the selected rows
one Parquet row group at a time (only the ``image.bytes`` column; when shuffling, a window of
``train.shuffle_buffer`` rows from row groups in a seeded order that changes every epoch, permuted).
The PNGs are then decoded in parallel, resized to the model's input size, scaled to [0, 1], batched
and prefetched: by OpenCV in a thread pool (the default, ``decoder="cv2"``) or by
``tf.io.decode_png`` in a ``map(num_parallel_calls=AUTOTUNE)`` after a seeded tf.data shuffle
buffer (``decoder="tf"``). Only a few windows of encoded bytes (~1.6 KB an image) and a few decoded
batches are in memory at a time, unless ``cache=True``: then the selection is decoded once, when the
dataset is made, at the model's input size (``input_size**2`` bytes an image: 10 MB for 10,000 images
at 32 px), and every epoch gathers its batches from memory in TensorFlow, in the same seeded order,
with no Python generator (which, feeding one batch at a time, halved the training rate on 2 cores).
The batches are the same either way. The train stage holds each side of a fold this way when it fits
``train.image_cache_mb``.

With ``train.crops: all`` the training side also gets the nine crops of each beat: the stored crop
rows when the shards have them, else crops made at load time from the originals with
:func:`pipelines.imaging.crops.nine_crops` (for the symbols the render stage would have augmented). Validation
and test sides are always originals (crop 0) only.

Examples
--------
>>> import numpy as np
>>> [round(float(w), 3) for w in class_weights(np.array([0, 0, 0, 1]), 2, "balanced")]
[0.667, 2.0]
>>> cap_per_class(np.array([0] * 8 + [1] * 2), 6, np.random.default_rng(0)).size
6
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipelines import ConfigError, DataError, decode_png, usable_cpus

from .folds import Fold
from .meta import ImageSet


@dataclass(frozen=True)
class Selection:
    """Rows to stream, sorted by (row, crop).

    Attributes
    ----------
    rows : ndarray of int64
        Row indices into :attr:`ImageSet.rows`.
    crop : ndarray of int8
        0: the row's image as stored; 1..9: make that crop at load time from the row's original.
    y : ndarray of int32
        Class index per entry.
    """

    rows: np.ndarray
    crop: np.ndarray
    y: np.ndarray

    def __len__(self) -> int:
        return int(self.rows.size)

    def take(self, index: np.ndarray) -> "Selection":
        index = np.sort(np.asarray(index, dtype=np.int64))
        return Selection(self.rows[index], self.crop[index], self.y[index])

    @staticmethod
    def of(rows: np.ndarray, crop: np.ndarray, y: np.ndarray) -> "Selection":
        order = np.lexsort((crop, rows))
        return Selection(np.asarray(rows, np.int64)[order], np.asarray(crop, np.int8)[order],
                         np.asarray(y, np.int32)[order])


def beat_positions(rows: pd.DataFrame, beat_rows: np.ndarray) -> np.ndarray:
    """For every image row, the position of its beat in ``beat_rows`` (-1 when the beat is not there)."""
    index = pd.Index(rows["beat_id"].to_numpy(dtype=object)[beat_rows])
    return index.get_indexer(rows["beat_id"].to_numpy(dtype=object)).astype(np.int64)


def fold_selections(images: ImageSet, y_rows: np.ndarray, beat_rows: np.ndarray, beat_pos: np.ndarray,
                    fold: Fold, *, crops: str) -> dict[str, Selection]:
    """Rows of each side of a fold: ``{"train": ..., "val": ..., "test": ...}``.

    Parameters
    ----------
    images : ImageSet
    y_rows : ndarray
        Class index per image row (-1: left out).
    beat_rows : ndarray
        Row index of each beat's original (the beats the fold plan indexes).
    beat_pos : ndarray
        :func:`beat_positions` of every row.
    fold : Fold
    crops : {"originals", "all"}
        ``all``: the training side gets every crop of its beats.
    """
    if crops not in ("originals", "all"):
        raise ConfigError(f"train.crops must be 'originals' or 'all', got {crops!r}")
    crop = images.rows["crop"].to_numpy()
    out = {}
    for side in ("val", "test"):
        rows = beat_rows[getattr(fold, side)]
        out[side] = Selection.of(rows, np.zeros(rows.size, np.int8), y_rows[rows])
    side_of_beat = np.zeros(len(beat_rows), bool)
    side_of_beat[fold.train] = True
    in_train = (beat_pos >= 0) & side_of_beat[np.maximum(beat_pos, 0)]
    if crops == "originals":
        rows = np.flatnonzero(in_train & (crop == 0))
        out["train"] = Selection.of(rows, np.zeros(rows.size, np.int8), y_rows[rows])
    elif images.crops_materialised:
        rows = np.flatnonzero(in_train)
        out["train"] = Selection.of(rows, np.zeros(rows.size, np.int8), y_rows[rows])
    else:
        _nine_crops()                                   # fail early when the module is missing
        originals = beat_rows[fold.train]
        skip = set(images.crop_params.get("skip_symbols") or [])
        symbols = images.rows["symbol"].to_numpy(dtype=object)[originals]
        augment = originals[~pd.Series(symbols, dtype=object).isin(skip).to_numpy()]
        rows = np.concatenate([originals, np.repeat(augment, 9)])
        virtual = np.concatenate([np.zeros(originals.size, np.int8), np.tile(np.arange(1, 10, dtype=np.int8), augment.size)])
        out["train"] = Selection.of(rows, virtual, y_rows[rows])
    return out


def _nine_crops():
    try:
        from pipelines import nine_crops
    except ImportError as exc:
        raise ConfigError("train.crops: all, but the shards hold originals only and pipelines.imaging.crops "
                          f"cannot be imported to make the crops at load time ({exc}); render with "
                          "render.crops.materialise: true or use train.crops: originals") from None
    return nine_crops


def class_weights(y: np.ndarray, n_classes: int, mode: str, max_ratio: float = 0.0) -> np.ndarray:
    """Weight per class: ``balanced`` = n / (n_classes * n_c) over the training rows; ``none`` = 1.

    ``max_ratio`` > 0 caps every weight at ``max_ratio`` times the smallest one: MIT-BIH's AAMI ``Q``
    class has ~30 beats against ~90,000 ``N``, so its uncapped weight (~600x ``N``'s) lets a few
    images dominate the loss. A class without training rows gets weight 0 (the fold guard makes
    that impossible in training).

    >>> [round(float(w), 2) for w in class_weights(np.array([0] * 98 + [1, 2]), 3, "balanced", max_ratio=10)]
    [0.34, 3.4, 3.4]
    """
    if mode == "none":
        return np.ones(n_classes, np.float32)
    if mode != "balanced":
        raise ConfigError(f"train.class_weight must be 'balanced' or 'none', got {mode!r}")
    counts = np.bincount(np.asarray(y, np.int64), minlength=n_classes).astype(np.float64)
    with np.errstate(divide="ignore"):
        w = np.where(counts > 0, counts.sum() / (n_classes * counts), 0.0)
    if max_ratio > 0 and (w > 0).any():
        w = np.minimum(w, max_ratio * w[w > 0].min())
    return w.astype(np.float32)


def cap_per_class(y: np.ndarray, cap: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of at most ``cap`` entries, split over classes by water-filling.

    Classes smaller than their share are kept whole; what they leave is split evenly among the
    others, each sampled without replacement (seeded). ``cap <= 0`` keeps everything. Sorted.
    """
    y = np.asarray(y)
    if cap <= 0 or y.size <= cap:
        return np.arange(y.size)
    classes, counts = np.unique(y, return_counts=True)
    take = np.zeros(classes.size, np.int64)
    budget, left = cap, classes.size
    for i in np.argsort(counts, kind="stable"):
        take[i] = min(counts[i], budget // left)
        budget -= take[i]
        left -= 1
    for i in np.argsort(-counts, kind="stable")[:budget]:    # remainder of the integer division
        take[i] += 1 if take[i] < counts[i] else 0
    picked = [rng.permutation(np.flatnonzero(y == c))[:n] for c, n in zip(classes, take)]
    return np.sort(np.concatenate(picked))


#: Image decoders of :func:`make_dataset`.
DECODERS: tuple[str, ...] = ("cv2", "tf")


def model_feature_names() -> tuple[str, ...]:
    """Every name the second input of a rhythm run can take: :data:`pipelines.RHYTHM_FEATURES` (RR ratios),
    then :data:`pipelines.TEMPLATE_COLUMNS` (beat morphology: against the record's median beat, and absolute).

    >>> model_feature_names()[0], model_feature_names()[-1]
    ('log_pre_local', 'mor_qrs_ms')
    """
    from pipelines import RHYTHM_FEATURES, TEMPLATE_COLUMNS

    return tuple(RHYTHM_FEATURES) + tuple(TEMPLATE_COLUMNS)


def branch_names(params: Mapping[str, Any]) -> list[str]:
    """The second input's feature names of a run, from its ``run.json`` ``params``: ``rhythm_features``
    (all of :data:`pipelines.RHYTHM_FEATURES` when absent), then ``template_features`` (none when absent).

    >>> branch_names({"rhythm_features": ["log_pre_local"], "template_features": ["tpl_corr"]})
    ['log_pre_local', 'tpl_corr']
    """
    from pipelines import RHYTHM_FEATURES

    return list(params.get("rhythm_features") or RHYTHM_FEATURES) + list(params.get("template_features") or ())


def _template_names(names: Sequence[str] | None) -> tuple[str, ...]:
    """The template columns among ``names``, in their order."""
    from pipelines import TEMPLATE_COLUMNS

    return tuple(n for n in (names or ()) if n in TEMPLATE_COLUMNS)


def _needed_columns(names: Sequence[str] | None) -> tuple[str, ...]:
    """Table columns the features ``names`` are made from: the RR columns, and the template columns named."""
    from pipelines import RR_COLUMNS

    return tuple(RR_COLUMNS) + _template_names(names)


def rr_columns(images: ImageSet, columns: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """Per-beat feature columns (float64, NaN where missing) of every image row: ``columns`` of
    :data:`pipelines.FEATURE_COLUMNS` (the RR columns, :data:`pipelines.RR_COLUMNS`, when None).

    From ``images.rows`` when it holds them, else read column-wise from the shards, in shard order.

    Raises
    ------
    DataError
        Naming the first shard without the columns (an image set that predates them).
    """
    from pipelines import RR_COLUMNS

    columns = tuple(columns or RR_COLUMNS)
    if all(c in images.rows.columns for c in columns):
        return {c: images.rows[c].to_numpy(np.float64, na_value=np.nan) for c in columns}
    parts: dict[str, list[np.ndarray]] = {c: [] for c in columns}
    for path in images.shards:
        pf = pq.ParquetFile(path)
        missing = [c for c in columns if c not in pf.schema_arrow.names]
        if missing:
            raise DataError(str(path), f"no column(s) {missing}: a rhythm model needs an image set rendered with "
                                       "the RR and template columns (rerun segment and render)")
        table = pf.read(columns=list(columns))
        for c in columns:
            parts[c].append(table.column(c).to_numpy(zero_copy_only=False).astype(np.float64))
    return {c: np.concatenate(v) for c, v in parts.items()}


def rhythm_inputs(images: ImageSet, rows: np.ndarray | None = None, names: Sequence[str] | None = None
                  ) -> np.ndarray:
    """The second input of a rhythm model for image rows ``rows`` (all when None), float32.

    ``names`` picks columns of :func:`model_feature_names` (all of :data:`pipelines.RHYTHM_FEATURES`
    when None), in that order: RR ratios (:func:`pipelines.rhythm_features`; missing intervals at record
    edges handled there) and template columns. Any NaN left becomes 0. Raises :class:`DataError` as
    :func:`rr_columns` does.
    """
    table = rr_columns(images, _needed_columns(names))
    pick = slice(None) if rows is None else np.asarray(rows, np.int64)
    return _model_features({c: v[pick] for c, v in table.items()}, names)


def rhythm_from_beats(beats: Any, rows: np.ndarray, names: Sequence[str] | None = None) -> np.ndarray:
    """The second input of beats-table rows ``rows``, float32, exactly as :func:`rhythm_inputs` makes it from
    the image shards (the render stage copies the RR and template columns there from the beats table).

    Parameters
    ----------
    beats : pipelines.formats.beats.Beats
        A beats table as :func:`pipelines.read_beats` reads it (its ``meta`` holds the feature columns).
    rows : ndarray of int
        Rows of ``beats.meta``, in the order wanted.
    names : sequence of str, optional
        Columns of :func:`model_feature_names`, as for :func:`rhythm_inputs`.
    """
    pick = np.asarray(rows, np.int64)
    return _model_features({c: beats.meta.column(c).to_numpy(zero_copy_only=False)[pick]
                            for c in _needed_columns(names)}, names)


def _model_features(table: dict[str, np.ndarray], names: Sequence[str] | None) -> np.ndarray:
    """The model's second input: :func:`pipelines.rhythm_columns` and the template columns named, then the
    columns ``names`` in that order, NaN -> 0."""
    from pipelines import RHYTHM_FEATURES, rhythm_columns, template_matrix

    template = _template_names(names)
    features = rhythm_columns(table)
    if template:
        features = select_features(np.concatenate([features, template_matrix(table, template)], axis=1), names,
                                   tuple(RHYTHM_FEATURES) + template)
    else:
        features = select_features(features, names, model_feature_names() if names else None)
    return np.nan_to_num(np.asarray(features, np.float32), nan=0.0, posinf=0.0, neginf=0.0)


def branch_scale(features: np.ndarray) -> tuple[list[float], list[float]]:
    """Per-column mean and sd of a second-input matrix (the training side's rows), for standardising it
    inside the model (``train.<model>.rhythm_standardize``); a constant column gets sd 1 (left as it is,
    less its mean).

    >>> branch_scale(np.array([[1.0, 5.0], [3.0, 5.0]], np.float32))
    ([2.0, 5.0], [1.0, 1.0])
    """
    x = np.asarray(features, np.float64)
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"branch_scale: need a non-empty (rows, features) matrix, got shape {x.shape}")
    mean, sd = x.mean(axis=0), x.std(axis=0)
    sd = np.where(sd > 1e-6 * np.maximum(np.abs(mean), 1.0), sd, 1.0)
    return [float(v) for v in mean], [float(v) for v in sd]


def select_features(features: np.ndarray, names: Sequence[str] | None,
                    available: Sequence[str] | None = None) -> np.ndarray:
    """Columns ``names`` of a feature matrix whose columns are ``available`` (all when ``names`` is None or
    empty); ``available`` defaults to :data:`pipelines.RHYTHM_FEATURES` (a :func:`pipelines.rhythm_features`
    matrix).

    >>> select_features(np.arange(6.0)[None], ["rr_missing", "log_pre_local"]).tolist()
    [[5.0, 0.0]]
    """
    from pipelines import RHYTHM_FEATURES

    available = tuple(available or RHYTHM_FEATURES)
    if not names:
        return features
    unknown = [n for n in names if n not in available]
    if unknown:
        raise ConfigError(f"train.rhythm_features / train.template_features: unknown {unknown}; expected names "
                          f"of {list(available)}")
    return features[:, [available.index(n) for n in names]]


class _Reader:
    """Seeded reader of row-group windows of encoded images (the Python half of the stream)."""

    def __init__(self, images: ImageSet, sel: Selection, weights: np.ndarray | None, *, shuffle: bool,
                 seed: int, window_rows: int, features: np.ndarray | None = None):
        self.images, self.sel, self.shuffle, self.seed = images, sel, shuffle, seed
        self.features = (np.zeros((len(sel), 0), np.float32) if features is None
                         else np.asarray(features, np.float32))
        self.window_rows = max(int(window_rows), 1)
        meta = images.rows
        self.shard = meta["shard"].to_numpy()[sel.rows]
        self.group = meta["row_group"].to_numpy()[sel.rows]
        self.offset = meta["offset"].to_numpy()[sel.rows]
        self.weights = (np.ones(len(sel), np.float32) if weights is None
                        else np.asarray(weights, np.float32)[sel.y])
        key = self.shard.astype(np.int64) << 32 | self.group.astype(np.int64)
        self.groups, self.group_of = np.unique(key, return_inverse=True)
        self.epoch = 0
        self.crop_params = images.crop_params

    def _group_entries(self) -> list[np.ndarray]:
        """Selection indices of each row group (``self.groups`` order), in selection order within a group."""
        by_group = np.argsort(self.group_of, kind="stable")
        starts = np.searchsorted(self.group_of[by_group], np.arange(self.groups.size + 1))
        return [by_group[starts[g]:starts[g + 1]] for g in range(self.groups.size)]

    def _entry_windows(self) -> Iterator[np.ndarray]:
        """One epoch of windows of selection indices, in the order they are streamed.

        Shuffled: row groups in a seeded order that changes every epoch, gathered until a window holds
        ``window_rows`` selected rows, then permuted. Not shuffled: one row group at a time, in order.
        """
        rng = np.random.default_rng([self.seed, self.epoch])
        self.epoch += 1
        order = rng.permutation(self.groups.size) if self.shuffle else np.arange(self.groups.size)
        of_group = self._group_entries()
        window: list[np.ndarray] = []
        n_window = 0
        for g in order:
            window.append(of_group[g])
            n_window += window[-1].size
            if n_window >= (self.window_rows if self.shuffle else 1):
                entries = np.concatenate(window)
                yield entries[rng.permutation(entries.size)] if self.shuffle else entries
                window, n_window = [], 0
        if window:
            entries = np.concatenate(window)
            yield entries[rng.permutation(entries.size)] if self.shuffle else entries

    def windows(self) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """One epoch of ``(entries, data, raw)``: selection indices, image bytes, raw-pixel flags
        (windows of :meth:`_entry_windows`)."""
        files: dict[int, pq.ParquetFile] = {}
        for entries in self._entry_windows():
            yield self._read(entries, files)

    def encoded(self) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
        """Generator for the ``tf`` decoder: windows of (bytes, y, weight, raw)."""
        for entries, data, raw in self.windows():
            yield data, self.sel.y[entries], self.weights[entries], raw

    def decoded(self, batch_size: int, input_size: int) -> Iterator[tuple[np.ndarray, ...]]:
        """Generator for the ``cv2`` decoder: batches of (uint8 images, rhythm features, y, weight),
        decoded in threads."""
        from concurrent.futures import ThreadPoolExecutor

        size = self.images.image_size
        carry = (np.zeros(0, np.int64), np.zeros(0, object), np.zeros(0, bool))
        with ThreadPoolExecutor(usable_cpus()) as pool, ThreadPoolExecutor(1) as ahead:
            def flush(entries, data, raw, final):
                n_full = entries.size if final else entries.size - entries.size % batch_size
                cuts = list(range(0, n_full, batch_size))
                jobs = [pool.submit(_decode, data[i:i + batch_size], raw[i:i + batch_size], size, input_size,
                                    self.where(entries[i:i + batch_size])) for i in cuts]
                for i, job in zip(cuts, jobs):
                    e = entries[i:i + batch_size]
                    yield job.result()[..., None], self.features[e], self.sel.y[e], self.weights[e]
                return n_full

            windows = self.windows()
            pending = ahead.submit(next, windows, None)      # read the next window while this one decodes
            while (window := pending.result()) is not None:
                pending = ahead.submit(next, windows, None)
                entries, data, raw = (np.concatenate([c, x]) for c, x in zip(carry, window))
                n_full = yield from flush(entries, data, raw, final=False)
                carry = (entries[n_full:], data[n_full:], raw[n_full:])
            if carry[0].size:
                yield from flush(*carry, final=True)

    def epoch_order(self) -> np.ndarray:
        """The next epoch's selection indices in streaming order (its batches are consecutive cuts)."""
        return np.concatenate(list(self._entry_windows()) or [np.zeros(0, np.int64)]).astype(np.int64)

    def decode_all(self, input_size: int) -> np.ndarray:
        """Every selected image, decoded and resized: ``(len(sel), input_size, input_size)`` uint8, in
        selection order (reads each needed row group once; does not advance the epoch)."""
        from concurrent.futures import ThreadPoolExecutor

        size = self.images.image_size
        out = np.empty((len(self.sel), input_size, input_size), np.uint8)
        files: dict[int, pq.ParquetFile] = {}
        with ThreadPoolExecutor(usable_cpus()) as pool:
            for group in self._group_entries():
                entries, data, raw = self._read(group, files)
                chunk = -(-entries.size // usable_cpus())
                cuts = range(0, entries.size, max(chunk, 1))
                jobs = [pool.submit(_decode, data[i:i + chunk], raw[i:i + chunk], size, input_size,
                                    self.where(entries[i:i + chunk])) for i in cuts]
                for i, job in zip(cuts, jobs):
                    out[entries[i:i + chunk]] = job.result()
        return out

    def _read(self, entries: np.ndarray, files: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(entries, data, raw)``: the image bytes of ``entries`` in their order (raw pixels for crops
        made here)."""
        data = np.empty(entries.size, dtype=object)
        keys = self.shard[entries].astype(np.int64) << 32 | self.group[entries].astype(np.int64)
        for key in np.unique(keys):
            s, g = int(key >> 32), int(key & 0xFFFFFFFF)
            pos = np.flatnonzero(keys == key)
            if s not in files:
                files[s] = pq.ParquetFile(self.images.shards[s])
            try:
                column = files[s].read_row_group(g, columns=["image.bytes"]).column("image").combine_chunks()
            except Exception as exc:  # corrupt file despite the checksum: name it
                raise DataError(str(self.images.shards[s]), f"cannot read row group {g}: {exc}") from None
            data[pos] = pc.take(column.field("bytes"), self.offset[entries[pos]]).to_numpy(zero_copy_only=False)
        raw = self.sel.crop[entries] > 0
        if raw.any():
            data[raw] = self._make_crops(data[raw], self.sel.crop[entries][raw], self.where(entries[raw]))
        return entries, data, raw

    def where(self, entries: np.ndarray) -> Callable[[int], str]:
        """``where(i)``: the shard and beat of ``entries[i]``, for error messages (computed on demand)."""
        def name(i: int) -> str:
            e = int(entries[i])
            beat = self.images.rows["beat_id"].iat[int(self.sel.rows[e])]
            return f"{self.images.shards[int(self.shard[e])]} beat {beat} crop {int(self.sel.crop[e])}"
        return name

    def _make_crops(self, pngs: np.ndarray, which: np.ndarray, where: Callable[[int], str]) -> np.ndarray:
        """Raw pixel bytes of crop ``which`` (1..9) of each PNG, made with pipelines.imaging.crops.nine_crops."""
        nine_crops = _nine_crops()
        unique, first, inverse = np.unique(pngs, return_index=True, return_inverse=True)
        imgs = np.stack([decode_png(b, where(int(k))) for b, k in zip(unique, first)])
        p = self.crop_params
        crops = nine_crops(imgs, crop=int(p["size"]), offsets=tuple(p["offsets"]), interpolation=p["interpolation"])
        picked = crops[inverse, which.astype(np.int64) - 1]
        return np.array([c.tobytes() for c in picked], dtype=object)


def _decode(data: np.ndarray, raw: np.ndarray, size: int, input_size: int,
            where: Callable[[int], str] | None = None) -> np.ndarray:
    """Decode a chunk of PNGs (or raw pixels) with OpenCV, resized to ``input_size`` (area when shrinking).

    One C call per image (PNG has no batch decoder); OpenCV releases the GIL, so chunks decode in
    parallel threads.
    """
    import cv2

    out = np.empty((len(data), input_size, input_size), np.uint8)
    interp = cv2.INTER_AREA if input_size < size else cv2.INTER_LINEAR
    for i in range(len(data)):
        buf = np.frombuffer(data[i], np.uint8)
        img = buf.reshape(size, size) if raw[i] else cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
        if img is None or img.shape != (size, size):
            raise DataError(where(i) if where is not None else "image shards",
                            f"not a {size}x{size} 8-bit grayscale PNG (truncated or corrupt? got "
                            f"{None if img is None else img.shape})")
        out[i] = img if input_size == size else cv2.resize(img, (input_size, input_size), interpolation=interp)
    return out


def make_dataset(images: ImageSet, sel: Selection, *, input_size: int, batch_size: int, shuffle: bool,
                 seed: int, shuffle_buffer: int = 8192, weights: np.ndarray | None = None,
                 decoder: str = "cv2", features: np.ndarray | None = None, cache: bool = False) -> Any:
    """A ``tf.data.Dataset`` of ``(x, y)`` (or ``(x, y, sample_weight)`` when ``weights`` is given) batches.

    ``x`` is float32 ``(batch, input_size, input_size, 1)`` in [0, 1], or with ``features`` the dict
    ``{"image": x, "rhythm": (batch, F) float32}`` of a rhythm model. Without ``shuffle`` the batches
    follow the selection's order (so predictions line up with ``sel.rows``).

    Parameters
    ----------
    images : ImageSet
    sel : Selection
    input_size : int
        Model input side; the stored images are resized (area when shrinking, bilinear when growing).
    batch_size : int
    shuffle : bool
        Seeded shuffling: row groups in a per-epoch seeded order, read in windows of
        ``shuffle_buffer`` rows that are permuted (and, with the ``tf`` decoder, a tf.data shuffle
        buffer of ``shuffle_buffer`` encoded images on top).
    seed : int
    shuffle_buffer : int
    weights : ndarray, optional
        Per-class weights (:func:`class_weights`); emitted as sample weights.
    decoder : {"cv2", "tf"}
        ``cv2`` (default): OpenCV decodes and resizes batches in a thread pool inside the reader;
        ``tf``: ``tf.io.decode_png`` in a parallel ``map`` (``AUTOTUNE``) and ``tf.image.resize``.
        Same pixels up to the resize's rounding; ``cv2`` costs about half the CPU time per image
        (benchmarks/bench_train.py).
    features : ndarray, optional
        ``(len(sel), F)`` rhythm features per entry (:func:`rhythm_inputs`), ``cv2`` decoder only.
    cache : bool
        ``cv2`` decoder only: decode the selection once, here, and hold it in memory (``len(sel) *
        input_size**2`` bytes); every pass (epoch) then takes its batches from memory, with no Parquet read,
        no PNG decode and no Python generator. The batches are the same as without.
    """
    import tensorflow as tf

    if decoder not in DECODERS:
        raise ConfigError(f"decoder must be one of {list(DECODERS)}, got {decoder!r}")
    size = images.image_size
    if features is not None and (decoder != "cv2" or len(features) != len(sel)):
        raise ConfigError(f"rhythm features need the cv2 decoder and one row per entry ({len(features)} for "
                          f"{len(sel)})")
    if cache and decoder != "cv2":
        raise ConfigError("cache=True needs the cv2 decoder")
    reader = _Reader(images, sel, weights, shuffle=shuffle, seed=seed, window_rows=shuffle_buffer,
                     features=features)

    def scale(x, y, w):
        x = tf.cast(x, tf.float32) * (1.0 / 255.0)
        return (x, y, w) if weights is not None else (x, y)

    def scale_with(x, f, y, w):
        x, *rest = scale(x, y, w)
        return ({"image": x, "rhythm": f}, *rest) if features is not None else (x, *rest)

    n_batches = -(-len(sel) // batch_size)
    if cache:
        # decoded once, here; every epoch then gathers its batches from memory in the reader's seeded order
        # (one Python call an epoch: a Python generator feeding each batch halves the training rate on 2 cores)
        stored = [tf.constant(a) for a in (reader.decode_all(input_size)[..., None], reader.features,
                                           np.asarray(sel.y, np.int32), reader.weights)]

        def batches(_):
            order = tf.ensure_shape(tf.numpy_function(reader.epoch_order, [], tf.int64, stateful=True), [len(sel)])
            return tf.data.Dataset.range(n_batches).map(lambda b: order[b * batch_size:(b + 1) * batch_size])

        ds = tf.data.Dataset.range(1).flat_map(batches)
        ds = ds.map(lambda i: scale_with(*(tf.gather(t, i) for t in stored)),
                    num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    elif decoder == "cv2":
        n_feat = 0 if features is None else features.shape[1]
        signature = (tf.TensorSpec([None, input_size, input_size, 1], tf.uint8),
                     tf.TensorSpec([None, n_feat], tf.float32), tf.TensorSpec([None], tf.int32),
                     tf.TensorSpec([None], tf.float32))
        ds = tf.data.Dataset.from_generator(lambda: reader.decoded(batch_size, input_size),
                                            output_signature=signature)
        ds = ds.map(scale_with, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    else:
        signature = (tf.TensorSpec([None], tf.string), tf.TensorSpec([None], tf.int32),
                     tf.TensorSpec([None], tf.float32), tf.TensorSpec([None], tf.bool))
        ds = tf.data.Dataset.from_generator(reader.encoded, output_signature=signature).unbatch()
        if shuffle and shuffle_buffer > 1:
            ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)

        def decode(data, y, w, raw):
            img = tf.cond(raw, lambda: tf.reshape(tf.io.decode_raw(data, tf.uint8), [size, size, 1]),
                          lambda: tf.io.decode_png(data, channels=1))
            return tf.ensure_shape(img, [size, size, 1]), y, w

        def finish(img, y, w):
            x = img
            if input_size != size:
                x = tf.image.resize(tf.cast(img, tf.float32), [input_size, input_size],
                                    method="area" if input_size < size else "bilinear")
            return scale(x, y, w)

        ds = ds.map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        ds = ds.batch(batch_size).map(finish, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.apply(tf.data.experimental.assert_cardinality(n_batches)).prefetch(tf.data.AUTOTUNE)
