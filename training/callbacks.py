"""Keras callback that logs every epoch with its time and training images/s, and keeps the history."""
from __future__ import annotations

import math
import sys
import time
from typing import Any, TextIO

import keras

from pipelines import Progress

#: Columns of ``history.csv`` (the models/<run>/ contract); ``member``: the ensemble member (0 for one model),
#: filled in by :func:`training.train.train_fold`.
HISTORY_COLUMNS: tuple[str, ...] = ("member", "epoch", "loss", "accuracy", "val_loss", "val_accuracy", "val_macro_f1",
                                    "seconds", "images_per_s")


class EpochLog(keras.callbacks.Callback):
    """Progress lines within each epoch and one line per epoch; rows for ``history.csv``.

    ``images_per_s`` counts training images over the training part of the epoch only (validation
    excluded); ``seconds`` is the whole epoch.

    Parameters
    ----------
    n_train : int
        Training images per epoch.
    batch_size : int
    epochs : int
    label : str
        Prefix of every line, e.g. ``"fold 1/5"``.
    stream : file, optional
        Where lines go (stderr by default).
    interval : float
        Seconds between progress lines inside an epoch.
    """

    def __init__(self, n_train: int, batch_size: int, epochs: int, label: str = "", *,
                 stream: TextIO | None = None, interval: float = 15.0):
        super().__init__()
        self.n_train, self.batch_size, self.epochs = n_train, batch_size, epochs
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.interval = interval
        self.rows: list[dict[str, Any]] = []
        self.train_seconds = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._t0 = time.perf_counter()
        self._t_train = None
        self._seen = 0
        self._progress = Progress(f"{self.label} epoch {epoch + 1}/{self.epochs}".strip(), total=self.n_train,
                                  unit="images", stream=self.stream, interval=self.interval)
        self._progress._last = time.perf_counter()  # first line after `interval`, not at once

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        seen = min((batch + 1) * self.batch_size, self.n_train)
        self._progress.update(seen - self._seen)
        self._seen = seen

    def on_test_begin(self, logs: dict | None = None) -> None:
        if self._t_train is None:
            self._t_train = time.perf_counter() - self._t0

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        seconds = time.perf_counter() - self._t0
        # validation by training.selection.MacroF1Selection reports its own time in the logs
        train_s = self._t_train if self._t_train is not None else seconds - float(logs.get("val_seconds", 0.0))
        self.train_seconds += train_s
        row = {"epoch": epoch + 1, **{k: float(logs.get(k, math.nan)) for k in HISTORY_COLUMNS[2:7]},
               "seconds": seconds, "images_per_s": self.n_train / max(train_s, 1e-9)}
        self.rows.append(row)
        metrics = ", ".join(f"{k} {row[k]:.4f}" for k in HISTORY_COLUMNS[2:7] if not math.isnan(row[k]))
        print(f"{self.label} epoch {epoch + 1}/{self.epochs}: {metrics}; {seconds:,.1f} s, "
              f"{row['images_per_s']:,.0f} images/s".strip(), file=self.stream, flush=True)
