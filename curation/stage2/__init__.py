"""Stage 2 of the pipeline (DESIGN.md, "Stage 2"): consistency filtering and label recycling.

Pure parts (no Django): :mod:`decontam` (13-gram decontamination) and :mod:`rules` (the filter rule
and the recycling policies). The rest is the sharded engine: :mod:`models`, :mod:`engine`,
:mod:`judging` (the judges' interface), :mod:`dataset` (the result as a dataset version).
"""
