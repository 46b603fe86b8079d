"""A figure of example beat images per class and of the nine crops of one beat, from an image set.

``python -m pipelines.gallery --images datasets/images/annotations --out reports/figures/beat_gallery.png``

Opens the render stage's image set through its format owner (:func:`pipelines.formats.imageset.open_image_set`:
manifest checked, row index of the small columns read, PNG bytes left on disk), chooses the examples
(:mod:`pipelines.imaging.gallery`), then reads the ``image`` column of just the row groups holding the
chosen rows. The PNG is written atomically with fixed metadata, so the same shards give the same bytes.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

import numpy as np
import pyarrow.parquet as pq
from matplotlib import style as mpl_style
from matplotlib.backends.backend_agg import FigureCanvasAgg

from .core.errors import ConfigError, DataError
from .core.files import atomic_path
from .core.params import load_params
from .core.stage import run_stage
from .formats.imageset import ImageFiles, open_image_set
from .formats.png import decode_png
from .imaging.gallery import choose_crop_beat, choose_examples, crop_label, draw_gallery, sort_index


def read_images(images: ImageFiles, originals: Sequence[str],
                all_crops_of: str | None = None) -> dict[tuple[str, int], np.ndarray]:
    """Decode crop 0 of ``originals`` and every crop of ``all_crops_of``: ``{(beat_id, crop): uint8 (h, w)}``.

    Only the row groups that hold a wanted row are read (located by the row index's ``shard``,
    ``row_group`` and ``offset``), and only the wanted rows are decoded.
    """
    rows = images.rows
    beat_id, crop = rows["beat_id"].to_numpy(dtype=object), rows["crop"].to_numpy()
    wanted = (np.isin(beat_id, np.asarray(list(originals), dtype=object)) & (crop == 0)) | (beat_id == all_crops_of)
    chosen = rows[wanted]
    out = {}
    for (shard, group), part in chosen.groupby(["shard", "row_group"], sort=True):
        path = images.shards[int(shard)]
        column = pq.ParquetFile(path).read_row_group(int(group), columns=["image"])["image"].combine_chunks()
        blobs = column.field("bytes").take(part["offset"].to_numpy()).to_pylist()
        for b, c, blob in zip(part["beat_id"], part["crop"], blobs):
            img = decode_png(blob, f"{path} beat {b} crop {c}")
            if img.ndim != 2 or img.dtype != np.uint8:
                raise DataError(f"{path} beat {b} crop {c}", "image bytes are not an 8-bit grayscale PNG")
            out[(str(b), int(c))] = img
    return out


def build_gallery(images_dir: str | os.PathLike, out: str | os.PathLike, *, per_class: int = 6) -> dict:
    """Open the image set, draw the gallery and write it to ``out`` atomically; return a summary dict.

    Raises
    ------
    ConfigError
        ``per_class`` below 1.
    DataError
        A missing or inconsistent image set (the format owner's message), no labelled original,
        or an image that is not an 8-bit grayscale PNG (naming shard, beat and crop).
    """
    if per_class < 1:
        raise ConfigError(f"gallery.per_class: must be >= 1, got {per_class}")
    # the shards are a DVC-hashed dep; the manifest checks (names, rows, schema) still all run
    images = open_image_set(images_dir, verify=False)
    index = sort_index(images.rows)
    examples = choose_examples(index, per_class)
    if not examples:
        raise DataError(str(images_dir), "no labelled original images (crop 0 with an AAMI or jun8 class)")
    crop_beat = choose_crop_beat(index)
    wanted = sorted({b for _, _, ids in examples for b in ids})
    decoded = read_images(images, wanted, crop_beat)
    with mpl_style.context("default"):
        fig = draw_gallery(examples, decoded, crop_beat, crop_label(index, crop_beat), per_class)
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
    parser.add_argument("--images", required=True, help="image set directory, e.g. datasets/images/annotations")
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
