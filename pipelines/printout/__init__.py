"""ECG printouts: strips of a record drawn on millimetre paper, with exact ground truth.

=============================== ==============================================================
``pipelines.printout.grid``     page geometry (mm <-> px, baselines, pulse box), the grid template
``pipelines.printout.strip``    baseline removal, clipping, plotted pixels, drawing traces/pulses/names
``pipelines.printout.distort``  seeded distortions (rotation, noise, blur, JPEG, grid colour, crease, lighting)
``pipelines.printout.record``   one record -> its strips' rows (the paper stage's task)
=============================== ==============================================================

The shard format is :mod:`pipelines.formats.paper`; the contract is ``docs/paper.md``.
"""
