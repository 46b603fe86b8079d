"""Confusion-matrix and ROC figures of one run, as PNG bytes with stable content.

Drawn with matplotlib's object API (``Figure`` + Agg canvas, no pyplot state, nothing left open),
and saved with ``metadata={"Software": None}`` so that the bytes depend only on the data and the
matplotlib version.
"""
from __future__ import annotations

import io
from typing import Any, Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from .metrics import safe_divide

_DPI = 100
_PNG_METADATA = {"Software": None}


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI, metadata=_PNG_METADATA)
    fig.clf()
    return buf.getvalue()


def _subtitle(info: Mapping[str, Any]) -> str:
    return (f"model {info.get('model')}, segmentation {info.get('method')}, "
            f"folds {info.get('folds')}, labels {info.get('labels')}")


def confusion_png(run: str, info: Mapping[str, Any], classes: Sequence[str], cm: np.ndarray,
                  n_folds: int) -> bytes:
    """PNG of a confusion matrix: counts and row percentages in each cell, colour = row fraction.

    Rows are the actual classes (with their number of test beats), columns the predicted ones.

    Examples
    --------
    >>> png = confusion_png("demo", {"model": "m"}, ["N", "V"], np.array([[90, 10], [2, 8]]), 2)
    >>> png[:8] == b"\\x89PNG\\r\\n\\x1a\\n"
    True
    """
    cm = np.asarray(cm, dtype=np.int64)
    k = len(classes)
    support = cm.sum(axis=1)
    frac = safe_divide(cm, support[:, None])
    side = max(4.0, 0.9 * k + 2.0)
    fig = Figure(figsize=(side + 1.6, side + 0.9))
    ax = fig.add_subplot()
    image = ax.imshow(np.nan_to_num(frac), cmap="Blues", vmin=0.0, vmax=1.0)
    fontsize = 10 if k <= 5 else 8
    for i in range(k):
        for j in range(k):
            pct = "–" if np.isnan(frac[i, j]) else f"{100 * frac[i, j]:.1f}%"
            ax.text(j, i, f"{cm[i, j]:,}\n{pct}", ha="center", va="center", fontsize=fontsize,
                    color="white" if frac[i, j] > 0.5 else "black")
    ax.set_xticks(range(k), list(classes))
    ax.set_yticks(range(k), [f"{c}\n(n={support[i]:,})" for i, c in enumerate(classes)])
    ax.set_xlabel("predicted class")
    ax.set_ylabel("actual class")
    ax.set_title(f"{run}: {int(cm.sum()):,} test beats, {n_folds} fold(s) pooled\n{_subtitle(info)}",
                 fontsize=9)
    cbar = fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    cbar.set_label("fraction of the actual class (row)")
    fig.tight_layout()
    return _png(fig)


def roc_png(run: str, info: Mapping[str, Any], curves: Mapping[str, tuple[np.ndarray, np.ndarray]],
            auc: Mapping[str, float], support: Mapping[str, int], n: int) -> bytes:
    """PNG of one-vs-rest ROC curves: linear axes on the left, logarithmic false-positive rate on the right.

    Parameters
    ----------
    curves : mapping class -> (fpr, tpr)
        Defined curves only (classes absent from the truth are listed in the legend as such).
    auc, support : mapping class -> value
        Pooled AUC and number of test beats of every class (all classes, including undefined ones).
    n : int
        Number of test beats.

    Examples
    --------
    >>> curve = (np.array([0, 0.1, 1.0]), np.array([0, 0.9, 1.0]))
    >>> png = roc_png("demo", {}, {"V": curve}, {"V": 0.95, "Q": float("nan")}, {"V": 5, "Q": 0}, 100)
    >>> png[:4] == b"\\x89PNG"
    True
    """
    fig = Figure(figsize=(11.0, 5.0))
    lin, log = fig.subplots(1, 2)
    positive = [f[f > 0].min() for f, _ in curves.values() if (f > 0).any()]
    lo = 10.0 ** np.floor(np.log10(min(positive))) if positive else 1e-4
    lo = float(np.clip(lo, 1e-5, 1e-1))
    for i, cls in enumerate(auc):
        color = f"C{i % 10}"
        if cls in curves:
            fpr, tpr = curves[cls]
            label = f"{cls}: AUC {auc[cls]:.3f} (n={support[cls]:,})"
            lin.plot(fpr, tpr, color=color, lw=1.5, label=label)
            log.plot(np.maximum(fpr, lo), tpr, color=color, lw=1.5, label=label)
        else:
            lin.plot([], [], color=color, lw=1.5, ls=":", label=f"{cls}: undefined (n={support[cls]:,})")
    lin.plot([0, 1], [0, 1], color="0.6", lw=0.8, ls="--")
    lin.set_xlim(0, 1)
    lin.set_ylim(0, 1.01)
    lin.set_xlabel("false positive rate (1 - specificity)")
    lin.set_ylabel("true positive rate (sensitivity)")
    lin.legend(loc="lower right", fontsize=8)
    lin.set_title("one-vs-rest ROC, all test folds pooled", fontsize=9)
    log.set_xscale("log")
    log.set_xlim(lo, 1)
    log.set_ylim(0, 1.01)
    log.set_xlabel("false positive rate, log scale")
    log.set_title("the same, low false-positive rates", fontsize=9)
    log.grid(True, which="major", color="0.9")
    fig.suptitle(f"{run}: {n:,} test beats; {_subtitle(info)}", fontsize=10)
    fig.tight_layout()
    return _png(fig)
