"""Evaluation of trained runs: metrics (pure NumPy), the ``evaluate`` stage and its reports.

Public API::

    from evaluation import (encode_labels, confusion_matrix, per_class_scores, classification_scores,
                            roc_curve, roc_auc, one_vs_rest_auc, downsample_curve, nan_mean, nan_std,
                            ec57_confusion, ec57_scores, load_run, run_metrics)
    from evaluation.evaluate import evaluate   # the whole stage, as a function

The stage: ``python -m evaluation.evaluate --params params.yaml --models models
--detector reports/detector.json --out reports`` (see ``docs/evaluation.md``).
"""
import pipelines  # noqa: F401  (first: it pins OpenBLAS's kernels before numpy loads it, docs/architecture.md)

from .ec57 import EC57_CLASSES, ec57_confusion, ec57_exclusions, ec57_scores
from .metrics import (CLASS_METRICS, classification_scores, confusion_matrix, downsample_curve,
                      encode_labels, nan_mean, nan_std, one_vs_rest_auc, overall_accuracy, per_class_scores,
                      roc_auc, roc_curve)
from .runs import RunResults, load_run
from .summary import run_metrics


__all__ = [
    "CLASS_METRICS", "EC57_CLASSES", "RunResults", "classification_scores", "confusion_matrix", "ec57_confusion",
    "ec57_exclusions", "ec57_scores",
    "downsample_curve", "encode_labels", "load_run", "nan_mean", "nan_std", "one_vs_rest_auc",
    "overall_accuracy", "per_class_scores", "roc_auc", "roc_curve", "run_metrics",
]
