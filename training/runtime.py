"""Process-wide TensorFlow settings for a training run: seeds, determinism, CPU threads.

Call :func:`configure` once, before building any model or dataset (TensorFlow fixes its thread
pools on first use).

What is reproducible on CPU, with the same params, inputs, thread counts and TensorFlow build:
fold assignment, row selection, shuffling order (seeded numpy + tf.data seeds), weight
initialisation and dropout masks (``keras.utils.set_random_seed``), and, with
``tf.config.experimental.enable_op_determinism``, the kernels' reduction order; the trained
weights and the predictions then come out bit-identical run to run (checked by the tests on a tiny
run). Not reproducible: wall-clock columns (``seconds``, ``images_per_s``) and anything across a
different CPU (oneDNN picks kernels by instruction set), thread count or TensorFlow version.
"""
from __future__ import annotations

import os
from typing import Any


def configure(seed: int, *, intra_op_threads: int = 0, inter_op_threads: int = 0,
              deterministic: bool = True) -> dict[str, Any]:
    """Seed every generator, make TensorFlow ops deterministic, set thread pools (0 = TF's default).

    Returns the settings applied (for ``run.json``).
    """
    import keras
    import tensorflow as tf

    from pipelines import usable_cpus

    if not intra_op_threads and usable_cpus() < (os.cpu_count() or 1):
        # a container or affinity mask smaller than the host: TensorFlow would size its pools by
        # the host's CPUs and oversubscribe the ones it may use
        intra_op_threads = usable_cpus()
    try:
        if intra_op_threads:
            tf.config.threading.set_intra_op_parallelism_threads(int(intra_op_threads))
        if inter_op_threads:
            tf.config.threading.set_inter_op_parallelism_threads(int(inter_op_threads))
    except RuntimeError:
        pass  # already initialised (tests building several models in one process)
    keras.utils.set_random_seed(int(seed))
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    return {
        "seed": int(seed),
        "op_determinism": bool(deterministic),
        "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
        "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
        "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default"),
        "devices": [d.device_type for d in tf.config.list_physical_devices()],
    }
