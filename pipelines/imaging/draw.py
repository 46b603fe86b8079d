"""Draw one chunk of beats: images, their nine crops, PNG rows; and the render settings.

The render stage (:mod:`pipelines.render`) cuts the beats of a beats table into chunks
(:func:`chunk_edges`) and runs :func:`render_chunk` on each as one task
(:func:`pipelines.core.parallel.run_tasks`). Everything here is a pure function of arrays and a
:class:`RenderConfig` (the ``render`` section of ``params.yaml``).

Beats that cannot be drawn are excluded (:func:`exclusions`): fewer than 2 samples (``too_short``)
or a NaN or infinite sample (``non_finite``).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Mapping, Sequence

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..core.parallel import in_dask_worker, local_workers, scheduler_address
from ..formats import shards
from ..formats.beats import Beats, gather_signals
from .crops import INTERPOLATIONS as crop_interpolations
from .crops import nine_crops
from .scale import ImageScale, record_amplitude

#: Drawing engines (``render.engine``).
ENGINES: tuple[str, ...] = ("raster", "matplotlib")

#: Crop resize interpolations (``render.crops.interpolation``), as :mod:`pipelines.imaging.crops` knows them.
INTERPOLATIONS: tuple[str, ...] = tuple(crop_interpolations)

#: Parquet codecs accepted for ``render.compression``.
COMPRESSIONS: tuple[str, ...] = ("zstd", "snappy", "gzip", "brotli", "lz4", "none")

#: Images per task (a chunk ends at the beat that reaches this many rows). About 64 MB of
#: pixels at 128 x 128, under half a second of work on one core.
CHUNK_ROWS = 4096

#: Exclusion reasons, in the manifest's order.
EXCLUSION_REASONS: tuple[str, ...] = ("too_short", "non_finite")

#: Parameters that change how the work runs but never the output (kept out of the manifest).
EXECUTION_PARAMS: tuple[str, ...] = ("scheduler", "workers")



# --------------------------------------------------------------------------------------------- config

@dataclass(frozen=True)
class RenderConfig:
    """The ``render`` section of ``params.yaml``, validated.

    Examples
    --------
    >>> cfg = RenderConfig.from_params({"engine": "raster", "crops": {"interpolation": "linear"}})
    >>> cfg.size, cfg.crop_offsets, cfg.skip_symbols
    (128, (0, 16, 32), ('N',))
    >>> RenderConfig.from_params({"engine": "svg"})
    Traceback (most recent call last):
    ...
    pipelines.core.errors.ConfigError: params.yaml: render.engine: expected 'raster' or 'matplotlib', got 'svg'
    """

    engine: str = "raster"
    size: int = 128
    margin: float = 0.05
    line_width: float = 1.5
    scale: ImageScale = field(default_factory=ImageScale)
    materialise: bool = True
    crop_size: int = 96
    crop_offsets: tuple[int, ...] = (0, 16, 32)
    interpolation: str = "linear"
    skip_symbols: tuple[str, ...] = ("N",)
    shard_mb: float = 100.0
    row_group_rows: int = 4096
    compression: str = "zstd"
    png_level: int = shards.DEFAULT_PNG_LEVEL
    scheduler: str | None = None
    workers: int = 0

    @classmethod
    def from_params(cls, render: Mapping[str, Any]) -> "RenderConfig":
        """Build from the ``render`` params section, checked by the params schema (defaults filled in).

        Raises :class:`ConfigError` naming the key of each bad value.
        """
        from ..core.params import validate_section

        r = validate_section("render", render)
        return cls(engine=r.engine, size=r.size, margin=r.margin, line_width=r.line_width,
                   scale=ImageScale(**{k: (tuple(v) if isinstance(v, list) else v)
                                       for k, v in r.scale.model_dump().items()}),
                   materialise=r.crops.materialise, crop_size=r.crops.size, crop_offsets=tuple(r.crops.offsets),
                   interpolation=r.crops.interpolation, skip_symbols=tuple(r.crops.skip_symbols),
                   shard_mb=r.shard_mb, row_group_rows=r.row_group_rows, compression=r.compression,
                   png_level=r.png_level, scheduler=r.scheduler, workers=r.workers)

    @property
    def n_crops(self) -> int:
        """Crops per augmented beat (9)."""
        return len(self.crop_offsets) ** 2

    @property
    def target_bytes(self) -> int:
        """Shard payload target in bytes (``shard_mb`` x 10^6)."""
        return max(1, int(self.shard_mb * 1_000_000))

    def output_params(self) -> dict[str, Any]:
        """The params that determine the output (all but :data:`EXECUTION_PARAMS`), as in params.yaml."""
        out: dict[str, Any] = {
            "engine": self.engine, "size": self.size, "margin": self.margin, "line_width": self.line_width,
            "crops": {"materialise": self.materialise, "size": self.crop_size, "offsets": list(self.crop_offsets),
                      "interpolation": self.interpolation, "skip_symbols": list(self.skip_symbols)},
            "shard_mb": self.shard_mb, "row_group_rows": self.row_group_rows, "compression": self.compression,
            "png_level": self.png_level,
        }
        if not self.scale.is_recipe:  # the recipe's scales are left out: older image sets keep their hash
            out["scale"] = {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self.scale).items()}
        return out

    def scheduler_address(self) -> str | None:
        """``scheduler``, else the ``DASK_SCHEDULER_ADDRESS`` environment variable, else None (local)."""
        return scheduler_address(self.scheduler)

    def n_workers(self) -> int:
        """Local worker processes: ``workers``, or the usable CPUs when 0 (:func:`local_workers`)."""
        return local_workers(self.workers)


# ---------------------------------------------------------------------------------------------- chunks

def exclusions(beats: Beats) -> np.ndarray:
    """Exclusion reason code of each beat: 0 kept, ``1 + EXCLUSION_REASONS.index(reason)`` otherwise.

    A beat with fewer than 2 samples is ``too_short`` (nothing to draw a line with); a beat with a
    NaN or infinite sample is ``non_finite``. Vectorised over all samples.
    """
    code = np.zeros(len(beats.offsets) - 1, dtype=np.int8)
    bad = np.flatnonzero(~np.isfinite(beats.values))
    if bad.size:
        code[np.unique(np.searchsorted(beats.offsets, bad, side="right") - 1)] = 2
    code[beats.lengths < 2] = 1
    return code


def augment_mask(symbols: pa.ChunkedArray | pa.Array, skip_symbols: Sequence[str], materialise: bool) -> np.ndarray:
    """True for beats that get the nine crops: materialised, symbol known and not skipped.

    Examples
    --------
    >>> import pyarrow as pa
    >>> augment_mask(pa.array(["N", "V", None]), ["N"], True).tolist()
    [False, True, False]
    """
    if not materialise:
        return np.zeros(len(symbols), dtype=bool)
    skipped = pc.is_in(symbols, value_set=pa.array(list(skip_symbols), pa.string()))
    aug = pc.and_(pc.invert(skipped), pc.is_valid(symbols))
    return aug.to_numpy(zero_copy_only=False).astype(bool)


def chunk_edges(rows_per_beat: np.ndarray, chunk_rows: int | None = None) -> np.ndarray:
    """Beat indices where chunks start (and the end): a chunk closes at the beat reaching ``chunk_rows``.

    Examples
    --------
    >>> chunk_edges(np.array([1, 10, 1, 10, 1]), chunk_rows=11).tolist()
    [0, 2, 4, 5]
    """
    chunk_rows = chunk_rows or CHUNK_ROWS
    n = len(rows_per_beat)
    if n == 0:
        return np.zeros(1, dtype=np.int64)
    before = np.concatenate([[0], np.cumsum(rows_per_beat)[:-1]])
    chunk_id = before // chunk_rows
    return np.concatenate([[0], np.flatnonzero(np.diff(chunk_id)) + 1, [n]]).astype(np.int64)


# ----------------------------------------------------------------------------------------------- task

@dataclass
class EncodedChunk:
    """Encoded rows of one chunk, beat-major: each beat's crop 0 then its crops 1..9 (if any).

    ``beat`` is the row's beat index within the chunk; image ``i`` is ``data[offsets[i]:offsets[i+1]]``.
    """

    beat: np.ndarray
    crop: np.ndarray
    data: np.ndarray
    offsets: np.ndarray
    image_shape: tuple[int, int]

    @property
    def row_bytes(self) -> np.ndarray:
        return np.diff(self.offsets)


@dataclass
class BeatGeometry:
    """Per-beat inputs of the fixed scales: R index in the window, sampling rate, record amplitude."""

    r_index: np.ndarray
    fs: np.ndarray
    amp: np.ndarray | None = None

    def take(self, a: int, b: int) -> "BeatGeometry":
        return BeatGeometry(self.r_index[a:b], self.fs[a:b], None if self.amp is None else self.amp[a:b])


def beat_geometry(beats: Beats, keep: np.ndarray, cfg: RenderConfig) -> BeatGeometry:
    """R index, sampling rate and (``amplitude: record``) record amplitude of the beats ``keep`` of a
    beats table, as the render stage draws them.

    The record amplitude is computed once over all the kept beats of a record, before chunking, so that
    a record cut across two chunks has one unit.
    """
    meta = beats.meta
    r_index = (meta.column("r_sample").to_numpy() - meta.column("start").to_numpy())[keep]
    fs = meta.column("fs").to_numpy()[keep]
    amp = None
    if cfg.scale.amplitude == "record":
        values, offsets = gather_signals(beats.values, beats.offsets, keep)
        amp = record_amplitude(meta.column("record").to_numpy(zero_copy_only=False)[keep], values, offsets, r_index)
    return BeatGeometry(r_index=r_index.astype(np.int64), fs=fs.astype(np.float64), amp=amp)


def draw(values: np.ndarray, offsets: np.ndarray, cfg: RenderConfig, geometry: BeatGeometry | None = None
         ) -> np.ndarray:
    """Draw beats with the configured engine and scales: uint8 (n, size, size)."""
    if cfg.engine == "raster":
        if cfg.scale.is_recipe:
            from .raster import render_beats
            return render_beats(values, offsets, size=cfg.size, margin=cfg.margin, line_width=cfg.line_width)
        from .scale import render_beats_scaled
        g = geometry or BeatGeometry(np.zeros(0, np.int64), np.zeros(0))
        return render_beats_scaled(values, offsets, scale=cfg.scale, r_index=g.r_index, fs=g.fs, amp=g.amp,
                                   size=cfg.size, margin=cfg.margin, line_width=cfg.line_width)
    from .recipe import render_beats as recipe_render
    return recipe_render(values, offsets, size=cfg.size)


#: Public names of what the render stage draws and drops (``pipelines.draw_beats``,
#: ``pipelines.beat_exclusions``), for callers that draw beat windows in memory exactly as the stage
#: does (``evaluation.digitized_classify``).
draw_beats = draw
beat_exclusions = exclusions


def render_chunk(values: np.ndarray, offsets: np.ndarray, augment: np.ndarray, cfg: RenderConfig,
                 geometry: BeatGeometry | None = None) -> EncodedChunk:
    """Draw a chunk of beats, add the nine crops of the ``augment`` beats, PNG-encode every row.

    Parameters
    ----------
    values, offsets : ndarray
        The chunk's samples in ListArray layout (float32 values, int64 offsets from 0).
    augment : ndarray of bool
        Beats that get crop rows 1..9.
    cfg : RenderConfig
    geometry : BeatGeometry, optional
        The chunk's beats' R index, sampling rate (and record amplitude): needed by fixed scales.

    Returns
    -------
    EncodedChunk
        Rows in output order (beat, then crop).
    """
    if in_dask_worker():
        cv2.setNumThreads(1)  # one task per worker thread: no OpenCV thread pool on top
    n = len(offsets) - 1
    images = np.asarray(draw(values, offsets, cfg, geometry))
    if images.shape != (n, cfg.size, cfg.size) or images.dtype != np.uint8:
        raise RuntimeError(f"render engine {cfg.engine!r} returned {images.dtype} {images.shape}, "
                           f"expected uint8 {(n, cfg.size, cfg.size)}")
    k = 1 + cfg.n_crops * augment.astype(np.int64)
    first = np.zeros(n, dtype=np.int64)
    np.cumsum(k[:-1], out=first[1:])
    total = int(k.sum())
    # Row j of the output is views[source[j]]: originals first, then the crops (no pixel copies).
    source = np.empty(total, dtype=np.int64)
    source[first] = np.arange(n)
    crop = np.zeros(total, dtype=np.int8)
    views = list(images)
    m = int(augment.sum())
    if m:
        crops = np.asarray(nine_crops(images[augment], crop=cfg.crop_size, offsets=cfg.crop_offsets,
                                      interpolation=cfg.interpolation))
        if crops.shape != (m, cfg.n_crops) + images.shape[1:]:
            raise RuntimeError(f"nine_crops returned {crops.shape}, expected {(m, cfg.n_crops) + images.shape[1:]}")
        pos = (first[augment][:, None] + np.arange(1, cfg.n_crops + 1)).ravel()
        source[pos] = n + np.arange(m * cfg.n_crops)
        crop[pos] = np.tile(np.arange(1, cfg.n_crops + 1, dtype=np.int8), m)
        views += list(crops.reshape((-1,) + images.shape[1:]))
    data, offs = shards.encode_png([views[j] for j in source.tolist()], cfg.png_level)
    beat = np.repeat(np.arange(n, dtype=np.int64), k)
    return EncodedChunk(beat=beat, crop=crop, data=data, offsets=offs, image_shape=tuple(images.shape[1:]))
