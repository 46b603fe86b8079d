"""Training: K-fold CNN training on the image shards (stage ``train@<run>``, ``python -m training.train``).

Modules: :mod:`training.config` (run settings from params.yaml), :mod:`training.meta` (open and verify
shards, labels), :mod:`training.folds` (fold schemes and the leak guard), :mod:`training.data`
(tf.data stream, class weights), :mod:`training.models` (vgg, small_cnn), :mod:`training.runtime`
(seeds, determinism, threads), :mod:`training.callbacks` (epoch log), :mod:`training.train` (the stage).
Importing this package does not import TensorFlow.
"""
from .config import RunConfig, run_config
from .data import Selection, cap_per_class, class_weights, fold_selections, make_dataset
from .folds import FOLD_SCHEMES, Fold, FoldPlan, LeakError, check_fold_rows, check_plan, make_folds
from .meta import ImageSet, check_classes, label_rows, open_images
from .models import MODELS, build_model, compile_model, resolve_precision


def __getattr__(name):
    # lazy, so that `python -m training.train` does not import training.train twice
    if name == "train_run":
        from .train import train_run

        return train_run
    raise AttributeError(f"module 'training' has no attribute {name!r}")


__all__ = [
    "RunConfig", "run_config", "Selection", "cap_per_class", "class_weights", "fold_selections", "make_dataset",
    "FOLD_SCHEMES", "Fold", "FoldPlan", "LeakError", "check_fold_rows", "check_plan", "make_folds",
    "ImageSet", "check_classes", "label_rows", "open_images", "MODELS", "build_model", "compile_model",
    "resolve_precision", "train_run",
]
