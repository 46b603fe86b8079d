"""The dataset browser: image shards of ``datasets/images/<method>`` by class, record and crop, paged.

Read straight from the Parquet shards: the row index comes from :func:`pipelines.open_image_set`
(verified against the manifest once per process and method); a page reads only the row groups that
hold its images, and only their ``image`` column.
"""
from __future__ import annotations

import base64
import re
import threading
from pathlib import Path
from typing import Any

import numpy as np

#: A method directory name (``datasets/images/<method>``): never a client path.
METHOD_RE = re.compile(r"^[a-z][a-z0-9_]*$")
PAGE_SIZE = 48


class DatasetBrowser:
    """Image sets under ``images_dir``, opened once each (thread-safe)."""

    def __init__(self, images_dir: Path):
        self.images_dir = Path(images_dir)
        self._open: dict[str, Any] = {}
        self._lock = threading.Lock()

    def methods(self) -> list[str]:
        """Image-set directories present (those with a ``manifest.json``)."""
        if not self.images_dir.is_dir():
            return []
        return sorted(p.name for p in self.images_dir.iterdir()
                      if METHOD_RE.match(p.name) and (p / "manifest.json").is_file())

    def image_set(self, method: str):
        """The opened image set of ``method``; KeyError when there is none (the name is checked, not joined blindly)."""
        from pipelines import open_image_set

        if method not in self.methods():
            raise KeyError(method)
        with self._lock:
            if method not in self._open:
                self._open[method] = open_image_set(self.images_dir / method)
            return self._open[method]

    def page(self, method: str, *, cls: str | None = None, record: str | None = None, crop: int | None = 0,
             page: int = 1, page_size: int = PAGE_SIZE) -> dict[str, Any]:
        """One page of images matching the filters, with the counts per class, record and crop."""
        images = self.image_set(method)
        rows = images.rows
        filters = {"aami": cls or None, "record": record or None, "crop": crop}
        masks = {col: (rows[col] == value).to_numpy() if value is not None else np.ones(len(rows), bool)
                 for col, value in filters.items()}
        mask = masks["aami"] & masks["record"] & masks["crop"]
        picked = np.flatnonzero(mask)
        pages = max(1, -(-picked.size // page_size))
        page = min(max(1, int(page)), pages)
        chosen = picked[(page - 1) * page_size: page * page_size]

        def counts(col: str) -> dict[str, int]:
            """Counts of ``col`` under the other two filters (what choosing a value of it would show)."""
            m = np.logical_and.reduce([v for k, v in masks.items() if k != col])
            vc = rows.loc[m, col].astype(str).value_counts()
            return {str(k): int(v) for k, v in sorted(vc.items())}

        return {"method": method, "class": cls or None, "record": record or None, "crop": crop, "page": page,
                "pages": pages, "total": int(picked.size),
                "counts": {"class": counts("aami"), "record": counts("record"), "crop": counts("crop")},
                "items": self._items(images, chosen)}

    def _items(self, images, chosen: np.ndarray) -> list[dict[str, Any]]:
        """Metadata and the PNG (as a data URI) of rows ``chosen``, reading only their row groups."""
        import pyarrow.parquet as pq

        rows = images.rows.iloc[chosen]
        out = []
        for (shard, group), part in rows.groupby(["shard", "row_group"], sort=False):
            column = pq.ParquetFile(images.shards[int(shard)]).read_row_group(int(group), columns=["image"])["image"]
            for idx, r in part.iterrows():
                png = column[int(r["offset"])].as_py()["bytes"]
                out.append({"beat_id": r["beat_id"], "record": r["record"], "symbol": r["symbol"], "class": r["aami"],
                            "crop": int(r["crop"]), "src": "data:image/png;base64," + base64.b64encode(png).decode()})
        order = {b: i for i, b in enumerate(rows["beat_id"].astype(str) + "/" + rows["crop"].astype(str))}
        return sorted(out, key=lambda item: order[f"{item['beat_id']}/{item['crop']}"])
