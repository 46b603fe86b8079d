"""A classical ECG-paper digitiser: strip image (PNG bytes) -> one signal per lead, in mV.

================================ ==============================================================
``pipelines.digitizer.grid``     ink/grid masks, skew angle and deskew, grid pitch (px per mm)
``pipelines.digitizer.trace``    trace ink, lead rows, column-by-column trace following (numba)
``pipelines.digitizer.calibrate`` thickness, column and stroke-row points, resampling to fs in mV
``pipelines.digitizer.strip``    one strip end to end: :func:`digitize_strip` (failures as data), trace ends
================================ ==============================================================

The stage is ``pipelines/digitize.py``; the contract is ``docs/digitize.md``.
"""
