"""A figure of example beat images per class and of the nine crops of one beat, from the image shards.

``python -m pipelines.gallery --images datasets/images/annotations --out reports/figures/beat_gallery.png``

Reads the render stage's Parquet shards (``part-*.parquet``; columns ``beat_id``, ``record``,
``r_sample``, ``aami``, ``jun8``, ``crop``, ``image`` = struct<bytes: PNG, path>) with pyarrow,
touching only what it needs: the small label columns to choose the examples, then the ``image``
column of just the chosen rows (a dataset filter on ``beat_id``/``crop``, which skips row groups
by their statistics).

The choice is deterministic: for every AAMI class and every Jun et al. class present (in the
schemes' order), ``per_class`` original images (crop 0) evenly spaced over that class's beats in
(record, r_sample) order, so they come from different records where the class allows; for the
crops, the first beat with all nine crops, taken from the first AAMI class of V, S, F, Q, N that
has one. The PNG is written atomically with fixed metadata, so the same shards give the same bytes.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
from matplotlib import style as mpl_style
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .core.errors import ConfigError, DataError
from .core.params import load_params
from .core.files import atomic_path
from .core.stage import run_stage
from .signal.labels import class_names

#: Label columns read to choose the examples (no image bytes).
INDEX_COLUMNS = ("beat_id", "record", "r_sample", "aami", "jun8", "crop")
#: AAMI classes in the order they are preferred for the crops panel (most telling first).
CROP_CLASS_PREFERENCE = ("V", "S", "F", "Q", "N")
#: Number of crop rows per beat when the nine crops are materialised (crop 0 + 1..9).
N_CROPS = 9


def shard_files(images_dir: str | os.PathLike) -> list[Path]:
    """The shards of an image directory (``data/<config>/*.parquet``, or the old ``part-*.parquet``), sorted;
    DataError when there are none."""
    images_dir = Path(images_dir)
    files = sorted(images_dir.glob("data/*/*.parquet")) or sorted(images_dir.glob("part-*.parquet"))
    if not files:
        raise DataError(str(images_dir), "no part-*.parquet image shards found (run the render stage first)")
    return files


def read_index(files: Sequence[Path]) -> pa.Table:
    """The label columns of every row (no image bytes), sorted by (record, r_sample, crop)."""
    try:
        table = ds.dataset([str(f) for f in files], format="parquet").to_table(columns=list(INDEX_COLUMNS))
    except (pa.ArrowInvalid, KeyError) as exc:
        raise DataError(str(files[0].parent),
                        f"image shards unreadable or missing columns {INDEX_COLUMNS}: {exc}") from exc
    return table.sort_by([("record", "ascending"), ("r_sample", "ascending"), ("crop", "ascending")])


def choose_examples(index: pa.Table, per_class: int) -> list[tuple[str, str, list[str]]]:
    """``[(scheme, class, beat_ids)]`` for every AAMI then jun8 class present among the originals.

    Examples
    --------
    >>> t = pa.table({"beat_id": ["a-1", "a-2", "b-1"], "record": ["a", "a", "b"], "r_sample": [1, 2, 1],
    ...               "aami": ["N", "V", "N"], "jun8": ["NOR", "PVC", None], "crop": [0, 0, 0]})
    >>> choose_examples(t, 2)
    [('aami', 'N', ['a-1', 'b-1']), ('aami', 'V', ['a-2']), ('jun8', 'NOR', ['a-1']), ('jun8', 'PVC', ['a-2'])]
    """
    originals = index.filter(pc.equal(index["crop"], 0))
    beat_ids = np.asarray(originals["beat_id"].to_pylist(), dtype=object)
    chosen = []
    for scheme in ("aami", "jun8"):
        labels = np.asarray(originals[scheme].to_pylist(), dtype=object)
        for name in class_names(scheme):
            rows = np.flatnonzero(labels == name)
            if rows.size:
                pick = np.unique(np.linspace(0, rows.size - 1, min(per_class, rows.size)).round().astype(int))
                chosen.append((scheme, name, [str(b) for b in beat_ids[rows[pick]]]))
    return chosen


def choose_crop_beat(index: pa.Table) -> str | None:
    """The first beat (in record, r_sample order) with all nine crops, by :data:`CROP_CLASS_PREFERENCE`."""
    cropped = index.filter(pc.equal(index["crop"], N_CROPS))
    if cropped.num_rows == 0:
        return None
    aami = np.asarray(cropped["aami"].to_pylist(), dtype=object)
    beat_ids = cropped["beat_id"].to_pylist()
    for name in CROP_CLASS_PREFERENCE:
        rows = np.flatnonzero(aami == name)
        if rows.size:
            return str(beat_ids[rows[0]])
    return str(beat_ids[0])


def read_images(files: Sequence[Path], originals: Sequence[str],
                all_crops_of: str | None = None) -> dict[tuple[str, int], np.ndarray]:
    """Decode images: crop 0 of ``originals`` and every crop of ``all_crops_of``.

    Returns ``{(beat_id, crop): uint8 (h, w)}``. Only the matching rows are read: the filter is
    pushed down to the Parquet scan (row groups whose statistics exclude every wanted id are
    skipped, and no other row's image bytes are decoded).
    """
    dataset = ds.dataset([str(f) for f in files], format="parquet")
    wanted = pc.field("beat_id").isin(pa.array(sorted(set(originals)), pa.string())) & (pc.field("crop") == 0)
    if all_crops_of is not None:
        wanted = wanted | (pc.field("beat_id") == all_crops_of)
    table = dataset.to_table(columns=["beat_id", "crop", "image"], filter=wanted)
    images = {}
    blobs = table["image"].combine_chunks().field("bytes").to_pylist()
    for beat_id, crop, blob in zip(table["beat_id"].to_pylist(), table["crop"].to_pylist(), blobs):
        img = None if blob is None else cv2.imdecode(np.frombuffer(blob, np.uint8), cv2.IMREAD_UNCHANGED)
        if img is None or img.ndim != 2:
            raise DataError(f"{files[0].parent} beat {beat_id} crop {crop}",
                            "image bytes are not an 8-bit grayscale PNG")
        images[(beat_id, int(crop))] = img
    return images


def draw_gallery(examples: list[tuple[str, str, list[str]]], images: dict[tuple[str, int], np.ndarray],
                 crop_beat: str | None, crop_label: str = "", per_class: int = 6) -> Figure:
    """The gallery figure: one row of examples per class, then crop 0 and crops 1..9 of ``crop_beat``.

    Panels are placed at fixed sizes in inches: 1.3 in (130 px at 100 dpi) per image, so 128 px
    images are never shrunk (a shrunk one-pixel-wide QRS stroke would drop out).
    """
    ncols = max(per_class, 5)
    panel, gap_x, title_h, gap_y, header, left, right = 1.3, 0.15, 0.22, 0.12, 0.5, 0.75, 0.15
    row_h = panel + title_h + gap_y
    n_rows, crop_rows = max(len(examples), 1), -(-(N_CROPS + 1) // ncols)
    width = left + ncols * (panel + gap_x) - gap_x + right
    height = 2 * header + (n_rows + crop_rows) * row_h
    fig = Figure(figsize=(width, height), dpi=100)

    def panel_axes(row: int, col: int, y_top: float):
        y = y_top - title_h - row * row_h - panel  # bottom of the panel, inches from the figure's bottom
        ax = fig.add_axes((
            (left + col * (panel + gap_x)) / width, y / height, panel / width, panel / height))
        ax.set_xticks([])
        ax.set_yticks([])
        return ax

    def show(ax, img, title: str, fontsize: float) -> None:
        ax.imshow(img, cmap="gray", vmin=0, vmax=255, interpolation="antialiased", aspect="auto")
        ax.set_title(title, fontsize=fontsize, pad=3)

    y_top = height - header
    fig.text(0.5, (height - header / 2) / height, "Example beat images per class (crop 0, original)",
             ha="center", va="center", fontsize=12)
    for r, (scheme, name, beat_ids) in enumerate(examples):
        for c, beat_id in enumerate(beat_ids[:ncols]):
            ax = panel_axes(r, c, y_top)
            show(ax, images[(beat_id, 0)], beat_id, 7)
            if c == 0:
                ax.set_ylabel(f"{'AAMI' if scheme == 'aami' else scheme} {name}", fontsize=10)
    y_top = height - 2 * header - n_rows * row_h
    title = f"Nine crops of beat {crop_beat}{f' ({crop_label})' if crop_label else ''}" if crop_beat else \
        "Nine crops: none materialised in these shards"
    fig.text(0.5, (y_top + header / 2) / height, title, ha="center", va="center", fontsize=12)
    for k in range(N_CROPS + 1):
        img = images.get((crop_beat, k)) if crop_beat else None
        if img is not None:
            show(panel_axes(k // ncols, k % ncols, y_top), img, "crop 0 (original)" if k == 0 else f"crop {k}", 8)
    return fig


def build_gallery(images_dir: str | os.PathLike, out: str | os.PathLike, *, per_class: int = 6) -> dict:
    """Read the shards, draw the gallery and write it to ``out`` atomically; return a summary dict."""
    if per_class < 1:
        raise ConfigError(f"gallery.per_class: must be >= 1, got {per_class}")
    files = shard_files(images_dir)
    index = read_index(files)
    examples = choose_examples(index, per_class)
    if not examples:
        raise DataError(str(images_dir), "no labelled original images (crop 0 with an AAMI or jun8 class)")
    crop_beat = choose_crop_beat(index)
    wanted = sorted({b for _, _, ids in examples for b in ids})
    images = read_images(files, wanted, crop_beat)
    missing = [b for b in wanted + ([crop_beat] if crop_beat else []) if (b, 0) not in images]
    if missing:
        raise DataError(str(images_dir), f"index and image rows disagree: no crop 0 image for {missing[:3]}")
    crop_label = ""
    if crop_beat:
        rows = index.filter(pc.equal(index["beat_id"], crop_beat))
        crop_label = f"AAMI {rows['aami'][0].as_py()}, jun8 {rows['jun8'][0].as_py()}"
    with mpl_style.context("default"):
        fig = draw_gallery(examples, images, crop_beat, crop_label, per_class)
        FigureCanvasAgg(fig)
        try:
            with atomic_path(out) as tmp:
                fig.savefig(tmp, format="png", metadata={"Software": None})
        finally:
            fig.clear()
    width, height = (int(round(v)) for v in fig.get_size_inches() * fig.dpi)
    return {"classes": len(examples), "beats": sum(len(ids) for _, _, ids in examples), "crop_beat": crop_beat,
            "width": width, "height": height, "out": str(out)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipelines.gallery", description=__doc__.split("\n")[0])
    parser.add_argument("--images", required=True, help="image shard directory, e.g. datasets/images/annotations")
    parser.add_argument("--out", required=True, help="output PNG, e.g. reports/figures/beat_gallery.png")
    parser.add_argument("--params", help="params.yaml; its gallery.per_class sets --per-class")
    parser.add_argument("--per-class", type=int, default=None, help="example beats per class (default 6)")
    args = parser.parse_args(argv)
    return run_stage("gallery", lambda: _run(args))


def _run(args: argparse.Namespace) -> None:
    """Resolve ``--per-class`` (else ``gallery.per_class`` of ``--params``, else 6), build, print a summary."""
    per_class = args.per_class
    if per_class is None:
        per_class = load_params(args.params, "gallery")["per_class"] if args.params else 6   # schema default 6
    summary = build_gallery(args.images, args.out, per_class=per_class)
    print(f"gallery: {summary['classes']} classes, {summary['beats']} example images, crops of "
          f"{summary['crop_beat'] or 'none'} -> {summary['out']} ({summary['width']}x{summary['height']} px)",
          file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
