"""Figures of the digitiser's scoring: a strip with the recovered trace over it, and SNR by distortion.

``digitize_overlay.png``: the first clean strip, its image with the digitised signal drawn in colour
over the printed trace (mapped to pixels with the strip's recorded geometry, for display only).
``digitize_snr.png``: mean SNR per variant, without and with alignment.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from pipelines import decode_strip, read_digitized, read_paper  # noqa: E402

_GEOMETRY = ("strip_id", "fs", "leads", "px_per_mm", "mm_per_s", "mm_per_mv", "x_origin", "baseline_y", "image")


def overlay(ax: Any, row: Mapping[str, Any], signals: Mapping[str, np.ndarray]) -> None:
    """Draw a strip's image and, per lead, the digitised signal at the strip's pixel geometry."""
    ax.imshow(decode_strip(row["image"]["bytes"]), interpolation="nearest")
    ppmm = row["px_per_mm"]
    for k, lead in enumerate(row["leads"]):
        sig = signals.get(lead)
        if sig is None:
            continue
        sig = np.asarray(sig, dtype=np.float64)
        x = row["x_origin"] + np.arange(len(sig)) / row["fs"] * row["mm_per_s"] * ppmm
        y = row["baseline_y"][k] - sig * row["mm_per_mv"] * ppmm
        ax.plot(x, y, color="#1f77b4", lw=0.6, alpha=0.8)
    ax.set_axis_off()


def write_figures(directory: Path, paper_dir: Path, digitized_dir: Path, report: Mapping[str, Any],
                  per_lead: Mapping[str, Any]) -> None:
    """Write ``digitize_overlay.png`` and ``digitize_snr.png`` into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    variants = list(report["variants"])
    if "clean" in variants:
        rows = read_paper(paper_dir / "clean", columns=_GEOMETRY).slice(0, 1).to_pylist()
        if rows:
            dig = read_digitized(digitized_dir / "clean.parquet").to_pylist()
            sigs = {d["lead"]: d["signal"] for d in dig if d["strip_id"] == rows[0]["strip_id"] and d["signal"]}
            fig, ax = plt.subplots(figsize=(14, 4), dpi=150)
            overlay(ax, rows[0], sigs)
            ax.set_title(f"strip {rows[0]['strip_id']}: digitised signal (blue) over the printout")
            fig.tight_layout()
            fig.savefig(directory / "digitize_overlay.png", metadata={"Software": None})
            plt.close(fig)
    fig, ax = plt.subplots(figsize=(8, 3.5), dpi=120)
    idx = np.arange(len(variants))
    raw = [report["variants"][v]["snr_db"] for v in variants]
    ali = [report["variants"][v]["snr_aligned_db"] for v in variants]
    ax.bar(idx - 0.2, raw, 0.4, label="SNR")
    ax.bar(idx + 0.2, ali, 0.4, label="SNR, aligned")
    ax.set_xticks(idx, variants, rotation=30, ha="right")
    ax.set_ylabel("mean SNR (dB)")
    ax.axhline(12.15, color="grey", ls=":", lw=1, label="Challenge 2024 best (hidden scans)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(directory / "digitize_snr.png", metadata={"Software": None})
    plt.close(fig)
