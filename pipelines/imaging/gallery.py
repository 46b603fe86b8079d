"""The beat gallery figure: which example beats to show, and the drawing (no file I/O).

The choice is deterministic: for every AAMI class and every Jun et al. class present (in the
schemes' order), ``per_class`` original images (crop 0) evenly spaced over that class's beats in
(record, r_sample) order, so they come from different records where the class allows; for the
crops, the first beat with all nine crops, taken from the first AAMI class of
:data:`CROP_CLASS_PREFERENCE` that has one. The stage ``python -m pipelines.gallery`` reads the image
set and writes the PNG.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..signal.labels import class_names

#: Label columns the choice reads (the image set's row index has them, without image bytes).
INDEX_COLUMNS = ("beat_id", "record", "r_sample", "aami", "jun8", "crop")
#: AAMI classes in the order they are preferred for the crops panel (most telling first).
CROP_CLASS_PREFERENCE = ("V", "S", "F", "Q", "N")
#: Number of crop rows per beat when the nine crops are materialised (crop 0 + 1..9).
N_CROPS = 9


def sort_index(rows: pd.DataFrame) -> pd.DataFrame:
    """The :data:`INDEX_COLUMNS` of ``rows``, sorted by (record, r_sample, crop), renumbered 0..n-1."""
    return rows.loc[:, list(INDEX_COLUMNS)].sort_values(["record", "r_sample", "crop"], kind="stable",
                                                          ignore_index=True)


def choose_examples(index: pd.DataFrame, per_class: int) -> list[tuple[str, str, list[str]]]:
    """``[(scheme, class, beat_ids)]`` for every AAMI then jun8 class present among the originals.

    ``index`` is sorted as :func:`sort_index` sorts it.

    Examples
    --------
    >>> t = pd.DataFrame({"beat_id": ["a-1", "a-2", "b-1"], "record": ["a", "a", "b"], "r_sample": [1, 2, 1],
    ...                   "aami": ["N", "V", "N"], "jun8": ["NOR", "PVC", None], "crop": [0, 0, 0]})
    >>> choose_examples(t, 2)
    [('aami', 'N', ['a-1', 'b-1']), ('aami', 'V', ['a-2']), ('jun8', 'NOR', ['a-1']), ('jun8', 'PVC', ['a-2'])]
    """
    originals = index[index["crop"].to_numpy() == 0]
    beat_ids = originals["beat_id"].to_numpy(dtype=object)
    chosen = []
    for scheme in ("aami", "jun8"):
        labels = originals[scheme].to_numpy(dtype=object)
        for name in class_names(scheme):
            rows = np.flatnonzero(labels == name)
            if rows.size:
                pick = np.unique(np.linspace(0, rows.size - 1, min(per_class, rows.size)).round().astype(int))
                chosen.append((scheme, name, [str(b) for b in beat_ids[rows[pick]]]))
    return chosen


def choose_crop_beat(index: pd.DataFrame) -> str | None:
    """The first beat (in ``index`` order) with all nine crops, by :data:`CROP_CLASS_PREFERENCE`.

    Examples
    --------
    >>> t = pd.DataFrame({"beat_id": ["a-1", "a-2"], "aami": ["N", "V"], "crop": [9, 9]})
    >>> choose_crop_beat(t), choose_crop_beat(t.iloc[:0])
    ('a-2', None)
    """
    cropped = index[index["crop"].to_numpy() == N_CROPS]
    if cropped.empty:
        return None
    aami = cropped["aami"].to_numpy(dtype=object)
    beat_ids = cropped["beat_id"].to_numpy(dtype=object)
    for name in CROP_CLASS_PREFERENCE:
        rows = np.flatnonzero(aami == name)
        if rows.size:
            return str(beat_ids[rows[0]])
    return str(beat_ids[0])


def crop_label(index: pd.DataFrame, beat_id: str | None) -> str:
    """``"AAMI <class>, jun8 <class>"`` of ``beat_id`` (its first row in ``index``), or ``""`` for None.

    Examples
    --------
    >>> crop_label(pd.DataFrame({"beat_id": ["a-2"], "aami": ["V"], "jun8": ["PVC"]}), "a-2")
    'AAMI V, jun8 PVC'
    """
    if not beat_id:
        return ""
    row = index.loc[index["beat_id"].to_numpy(dtype=object) == beat_id].iloc[0]
    return f"AAMI {row['aami']}, jun8 {row['jun8']}"


def draw_gallery(examples: list[tuple[str, str, list[str]]], images: dict[tuple[str, int], np.ndarray],
                 crop_beat: str | None, crop_label: str = "", per_class: int = 6) -> Figure:
    """The gallery figure: one row of examples per class, then crop 0 and crops 1..9 of ``crop_beat``.

    Panels are placed at fixed sizes in inches: 1.3 in (130 px at 100 dpi) per image, so 128 px
    images are never shrunk (a shrunk one-pixel-wide QRS stroke would drop out). ``images`` maps
    ``(beat_id, crop)`` to a uint8 (h, w) image.
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
