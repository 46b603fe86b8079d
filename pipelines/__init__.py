"""ECG beat-image dataset builder: the data stages and their public library.

Stages (``python -m pipelines.<stage>``, see ``dvc.yaml``): ``ingest`` -> ``segment`` -> ``render``
-> ``gallery``, and ``paper`` (ECG printouts of the records). Library subpackages, one concern each:

========================= ===================================================================
``pipelines.core``        errors, atomic file writes, progress lines, CPU count, params, stage runner
``pipelines.records``     WFDB records: reading, verification, checksums, sources (local or PhysioNet)
``pipelines.signal``      R-peak detection (Christov), beat matching, windows, labels, rhythm and
                          template (beat morphology: record-relative and absolute) features
``pipelines.imaging``     beat images: raster engine and kernel, the matplotlib recipe, nine crops
``pipelines.printout``    paper ECG strips: page geometry, grid, traces, seeded distortions
``pipelines.formats``     on-disk formats: beats table, image shards (+ manifest, dataset card)
========================= ===================================================================

The public API is re-exported here (as ``wfdb`` does), loaded lazily so that importing one name
does not import TensorFlow-free but heavy modules (numba, matplotlib, dask) it does not need.
``training`` and ``evaluation`` import only these names.

Examples
--------
>>> import pipelines
>>> pipelines.class_names("aami")
('N', 'S', 'V', 'F', 'Q')
>>> from pipelines import DataError
>>> str(DataError("100.hea", "bad gain"))
'100.hea: bad gain'
"""
from __future__ import annotations

import importlib
import os
import platform
from typing import Any


def _pin_blas_kernels() -> None:
    """Make OpenBLAS use its AVX2 ("Haswell") kernels on every x86-64 CPU that has AVX2.

    Data outputs must be byte-identical on every machine (DVC caches them by hash), but OpenBLAS picks
    its kernels by CPU, and its AVX-512 ("SkylakeX") kernels round differently from the AVX2 ones that
    an AMD EPYC gets: scipy's ``sosfiltfilt`` (its initial conditions solve a small linear system
    through LAPACK) changed the last bit of the float32 template columns of 12 of 109,870 beats, and so
    the beats table and the image shards, between an Intel Xeon and an AMD EPYC. OpenBLAS reads
    ``OPENBLAS_CORETYPE`` when numpy or scipy first loads it, so this runs before this package imports
    either (``python -m pipelines.<stage>`` imports this file first). A value already set is kept;
    non-x86 machines and CPUs without AVX2 (which cannot run those kernels) are left alone.
    """
    if "OPENBLAS_CORETYPE" not in os.environ and _avx2_x86():
        os.environ["OPENBLAS_CORETYPE"] = "Haswell"


def _avx2_x86() -> bool:
    """True on an x86-64 CPU with AVX2 and FMA (read from ``/proc/cpuinfo``; False where it is absent)."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            flags = next((line for line in f if line.startswith("flags")), "").split()
    except OSError:
        return False
    return "avx2" in flags and "fma" in flags


_pin_blas_kernels()

#: Public name -> the module that owns it. Static, so that tools (and ``tests/test_dvc_yaml.py``)
#: can resolve ``from pipelines import X`` to the file that defines ``X``.
PUBLIC_API: dict[str, str] = {
    # core
    "DataError": "pipelines.core.errors",
    "ChecksumError": "pipelines.core.errors",
    "ConfigError": "pipelines.core.errors",
    "sha256_file": "pipelines.core.files",
    "atomic_dir": "pipelines.core.files",
    "atomic_path": "pipelines.core.files",
    "write_json": "pipelines.core.files",
    "read_json": "pipelines.core.files",
    "Progress": "pipelines.core.progress",
    "usable_cpus": "pipelines.core.system",
    "peak_rss_mb": "pipelines.core.system",
    "load_params": "pipelines.core.params",
    "params_hash": "pipelines.core.params",
    "run_stage": "pipelines.core.stage",
    "load_config": "pipelines.core.params",
    "validate_section": "pipelines.core.params",
    # records
    "read_record": "pipelines.records.reader",
    "load_record": "pipelines.records.reader",
    "EcgRecord": "pipelines.records.reader",
    # signal
    "detect_r_peaks": "pipelines.signal.christov",
    "refine_peaks": "pipelines.signal.christov",
    "ChristovParams": "pipelines.signal.christov",
    "match_beats": "pipelines.signal.matching",
    "detection_scores": "pipelines.signal.matching",
    "compute_windows": "pipelines.signal.windows",
    "extract_windows": "pipelines.signal.windows",
    "WindowSpec": "pipelines.signal.windows",
    "RR_COLUMNS": "pipelines.signal.rhythm",
    "RHYTHM_FEATURES": "pipelines.signal.rhythm",
    "rr_intervals": "pipelines.signal.rhythm",
    "rhythm_features": "pipelines.signal.rhythm",
    "rhythm_columns": "pipelines.signal.rhythm",
    "TEMPLATE_COLUMNS": "pipelines.signal.template",
    "RELATIVE_COLUMNS": "pipelines.signal.template",
    "MORPHOLOGY_COLUMNS": "pipelines.signal.template",
    "FEATURE_COLUMNS": "pipelines.signal.template",
    "TemplateSpec": "pipelines.signal.template",
    "template_features": "pipelines.signal.template",
    "template_matrix": "pipelines.signal.template",
    "BEAT_SYMBOLS": "pipelines.signal.labels",
    "AAMI_CLASSES": "pipelines.signal.labels",
    "JUN8_CLASSES": "pipelines.signal.labels",
    "JUN8_MAP": "pipelines.signal.labels",
    "SCHEMES": "pipelines.signal.labels",
    "DS1": "pipelines.signal.labels",
    "DS2": "pipelines.signal.labels",
    "PACED_RECORDS": "pipelines.signal.labels",
    "class_names": "pipelines.signal.labels",
    "class_indices": "pipelines.signal.labels",
    "map_symbols": "pipelines.signal.labels",
    # imaging
    "render_beats": "pipelines.imaging.raster",
    "nine_crops": "pipelines.imaging.crops",
    "crop_windows": "pipelines.imaging.crops",
    "RenderConfig": "pipelines.imaging.draw",
    "BeatGeometry": "pipelines.imaging.draw",
    "beat_geometry": "pipelines.imaging.draw",
    "draw_beats": "pipelines.imaging.draw",
    "beat_exclusions": "pipelines.imaging.draw",
    # paper printouts (docs/paper.md)
    "read_paper": "pipelines.formats.paper",
    "iter_paper": "pipelines.formats.paper",
    "verify_paper": "pipelines.formats.paper",
    "decode_strip": "pipelines.formats.paper",
    # digitised paper strips (docs/digitize.md)
    "read_digitized": "pipelines.digitize",
    "record_signals": "pipelines.digitize",
    "digitize_strip": "pipelines.digitizer.strip",
    # formats
    "read_manifest": "pipelines.formats.manifest",
    "verify_shards": "pipelines.formats.manifest",
    "open_image_set": "pipelines.formats.imageset",
    "ImageFiles": "pipelines.formats.imageset",
    "iter_batches": "pipelines.formats.imageset",
    "shard_paths": "pipelines.formats.imageset",
    "encode_png": "pipelines.formats.png",
    "decode_png": "pipelines.formats.png",
    "decode_images": "pipelines.formats.png",
    "read_beats": "pipelines.formats.beats",
    "verify_beats": "pipelines.formats.beats",
}

__all__ = sorted(PUBLIC_API)


def __getattr__(name: str) -> Any:
    try:
        module = PUBLIC_API[name]
    except KeyError:
        raise AttributeError(f"module 'pipelines' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(PUBLIC_API))
