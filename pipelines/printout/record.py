"""One record -> the rows of its paper strips, every variant (the paper stage's task).

:func:`strip_starts` picks the strips (consecutive ``seconds``-long strips from sample 0, optionally
an evenly spread subset), :func:`strip_annotations` the beats and rhythm of each, and
:func:`render_strips` draws them, clean and distorted, and returns one Arrow table per variant in
the :data:`pipelines.formats.paper.SCHEMA` columns. Everything a row holds depends only on the
record, the params and the strip, never on the worker that drew it.

Examples
--------
>>> strip_starts(10_000, 360.0, 10.0).tolist()
[0, 3600]
>>> strip_starts(650_000, 360.0, 10.0, per_record=3).tolist()
[0, 324000, 644400]
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import pyarrow as pa

from ..formats.paper import CLEAN, SCHEMA, encode_strip, image_column
from ..signal.labels import BEAT_SYMBOLS, map_symbols
from .distort import apply_distortions, grid_colour_of, plan_distortions, strip_rng
from .grid import PageGeometry, page_geometry
from .strip import draw_strip, plot_signals, remove_baseline


@dataclass(frozen=True)
class PaperConfig:
    """The ``paper`` params that shape the output (execution params excluded)."""

    seconds: float = 10.0
    mm_per_s: float = 25.0
    mm_per_mv: float = 10.0
    dpi: float = 200.0
    lead_mm: float = 30.0
    grid_colour: str = "#f08080"
    line_px: int = 2
    baseline: str = "median"
    leads: tuple[str, ...] | None = None
    strips_per_record: int = 0
    seed: int = 0
    variants: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    png_level: int = 1

    @classmethod
    def from_params(cls, paper: Mapping[str, Any]) -> "PaperConfig":
        """From the validated ``paper`` section (plain dicts; None distortions dropped)."""
        variants = {name: {k: dict(v) for k, v in spec.items() if v is not None}
                    for name, spec in (paper.get("variants") or {}).items()}
        return cls(seconds=float(paper["seconds"]), mm_per_s=float(paper["mm_per_s"]),
                   mm_per_mv=float(paper["mm_per_mv"]), dpi=float(paper["dpi"]), lead_mm=float(paper["lead_mm"]),
                   grid_colour=str(paper["grid_colour"]), line_px=int(paper["line_px"]),
                   baseline=str(paper["baseline"]),
                   leads=tuple(paper["leads"]) if paper.get("leads") else None,
                   strips_per_record=int(paper["strips_per_record"]), seed=int(paper["seed"]),
                   variants=variants, png_level=int(paper["png_level"]))

    @property
    def variant_names(self) -> tuple[str, ...]:
        """``clean`` then the distortion sets in params order."""
        return (CLEAN, *self.variants)

    def geometry(self, n_leads: int) -> PageGeometry:
        return page_geometry(seconds=self.seconds, n_leads=n_leads, dpi=self.dpi, mm_per_s=self.mm_per_s,
                             mm_per_mv=self.mm_per_mv, lead_mm=self.lead_mm)

    def strip_samples(self, fs: float) -> int:
        """Samples per strip at ``fs``."""
        return int(round(self.seconds * fs))


def strip_starts(n_samples: int, fs: float, seconds: float, per_record: int = 0) -> np.ndarray:
    """Start samples of the whole consecutive strips of a record (all, or ``per_record`` evenly spread).

    Returns an empty array for a record shorter than one strip.
    """
    n = int(round(seconds * fs))
    total = int(n_samples) // n if n > 0 else 0
    index = np.arange(total, dtype=np.int64)
    if 0 < per_record < total:
        index = np.unique(np.round(np.linspace(0, total - 1, per_record)).astype(np.int64))
    return index * n


def strip_annotations(ann_sample: np.ndarray, ann_symbol: np.ndarray, start: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Beats (sample, symbol) inside ``[start, start + n)``.

    >>> s, y = strip_annotations(np.array([5, 10, 20]), np.array(["N", "+", "V"], object), 0, 20)
    >>> s.tolist(), y.tolist()
    ([5], ['N'])
    """
    lo, hi = np.searchsorted(ann_sample, [start, start + n])
    sample, symbol = ann_sample[lo:hi], ann_symbol[lo:hi]
    beat = np.isin(symbol.astype(str), BEAT_SYMBOLS)
    return sample[beat], symbol[beat]


def strip_rhythm(rhythm_sample: np.ndarray, rhythm_label: np.ndarray, start: int,
                 n: int) -> tuple[str | None, list[int], list[str]]:
    """The rhythm in force at ``start`` (None before the first), and the changes inside the strip.

    >>> strip_rhythm(np.array([0, 50, 150]), np.array(["(N", "(AFIB", "(N"], object), 100, 100)
    ('(AFIB', [150], ['(N'])
    """
    before = int(np.searchsorted(rhythm_sample, start, side="right"))
    lo, hi = np.searchsorted(rhythm_sample, [start + 1, start + n])
    return (str(rhythm_label[before - 1]) if before else None, [int(s) for s in rhythm_sample[lo:hi]],
            [str(s) for s in rhythm_label[lo:hi]])


def render_strips(record: str, fs: float, signals: np.ndarray, leads: Sequence[str], starts: np.ndarray,
                  beats: tuple[np.ndarray, np.ndarray], rhythms: tuple[np.ndarray, np.ndarray],
                  cfg: PaperConfig) -> dict[str, pa.Table]:
    """Draw the strips of one record, every variant; one table per variant, rows in ``starts`` order.

    Parameters
    ----------
    record : str
    fs : float
    signals : ndarray, (n_leads, n_samples), mV
        The record's leads in ``leads`` order.
    leads : sequence of str
    starts : ndarray of int
        Strip start samples (:func:`strip_starts`).
    beats : (sample, symbol)
        The record's reference annotations (sorted by sample; non-beats are skipped).
    rhythms : (sample, label)
        The record's rhythm changes (:func:`pipelines.records.annotations.read_rhythms`).
    cfg : PaperConfig
    """
    geometry = cfg.geometry(len(leads))
    n = cfg.strip_samples(fs)
    cols: dict[str, dict[str, list]] = {v: {f.name: [] for f in SCHEMA} for v in cfg.variant_names}
    baseline_y = [float(y) for y in geometry.baseline_y()]
    pulse_box = [list(geometry.pulse_box(k)) for k in range(len(leads))]
    for start in np.asarray(starts, dtype=np.int64).tolist():
        strip_id = f"{record}-{start}"
        plotted = plot_signals(remove_baseline(signals[:, start:start + n], cfg.baseline), fs, geometry)
        b_sample, b_symbol = strip_annotations(beats[0], beats[1], start, n)
        rhythm, r_sample, r_label = strip_rhythm(rhythms[0], rhythms[1], start, n)
        shared = {
            "strip_id": strip_id, "record": record, "start_sample": start, "fs": float(fs), "leads": list(leads),
            "signal": plotted.signal, "clipped": plotted.clipped.tolist(), "px_per_mm": geometry.px_per_mm,
            "mm_per_s": geometry.mm_per_s, "mm_per_mv": geometry.mm_per_mv, "x_origin": geometry.x_origin,
            "baseline_y": baseline_y, "pulse_box": pulse_box, "beat_sample": b_sample.tolist(),
            "beat_symbol": [str(s) for s in b_symbol], "beat_aami": list(map_symbols(b_symbol, "aami")),
            "rhythm": rhythm, "rhythm_sample": r_sample, "rhythm_label": r_label,
            "width": geometry.width, "height": geometry.height,
        }
        pages: dict[str, np.ndarray] = {}  # one drawing per grid colour: distortions copy, never modify
        for variant in cfg.variant_names:
            spec = cfg.variants.get(variant, {})
            plan = plan_distortions(spec, strip_rng(cfg.seed, variant, strip_id), (geometry.height, geometry.width),
                                    geometry.px_per_mm) if spec else []
            colour = grid_colour_of(plan, cfg.grid_colour)
            if colour not in pages:
                pages[colour] = draw_strip(plotted, leads, geometry, grid_colour=colour, line_px=cfg.line_px)
            img = pages[colour]
            img, x, y = apply_distortions(img, plotted.x, plotted.y, plan) if plan else (img, plotted.x, plotted.y)
            row = cols[variant]
            for key, value in shared.items():
                row[key].append(value)
            row["variant"].append(variant)
            row["plotted_x"].append(x.astype(np.float32))
            row["plotted_y"].append(y.astype(np.float32))
            row["distortions"].append(json.dumps(plan, sort_keys=True))
            row["image"].append(encode_strip(img, cfg.png_level))
    return {v: _table(c) for v, c in cols.items()}


def _nested(arrays: list[np.ndarray], value_type: pa.DataType) -> pa.Array:
    """list<list<value_type>> from (n_leads, n) arrays, without a Python loop over samples."""
    if not arrays:
        return pa.array([], pa.list_(pa.list_(value_type)))
    flat = np.concatenate([a.ravel() for a in arrays])
    inner_len = np.concatenate([np.full(a.shape[0], a.shape[1], np.int64) for a in arrays])
    inner_off = np.concatenate([[0], np.cumsum(inner_len)]).astype(np.int32)
    outer_off = np.concatenate([[0], np.cumsum([a.shape[0] for a in arrays])]).astype(np.int32)
    inner = pa.ListArray.from_arrays(pa.array(inner_off), pa.array(flat, type=value_type))
    return pa.ListArray.from_arrays(pa.array(outer_off), inner)


def _table(cols: Mapping[str, list]) -> pa.Table:
    arrays = []
    for f in SCHEMA:
        values = cols[f.name]
        if f.name in ("signal", "plotted_x", "plotted_y"):
            arrays.append(_nested(values, pa.float32()))
        elif f.name == "image":
            arrays.append(image_column(values))
        else:
            arrays.append(pa.array(values, type=f.type))
    return pa.Table.from_arrays(arrays, schema=SCHEMA)
