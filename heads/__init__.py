"""Prediction heads of the VGGT-style models, installed as ``vggt3d.heads``.

One head per file: :mod:`.camera` (VGGT-1B's iterative pose refinement),
:mod:`.trunk_camera` (VGGT-Omega's one-pass camera head), :mod:`.dpt` (dense
depth / point-map decoder), :mod:`.dpt_shuffle` (VGGT-Omega's pixel-shuffle
depth decoder), :mod:`.text` (VGGT-Omega's text-alignment readout),
:mod:`.track` (CoTracker-style point tracker). The model families in
:mod:`vggt3d.models` build them. Inside this package use relative imports only
(see PACKAGING).
"""
