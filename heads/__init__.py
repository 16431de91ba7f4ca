"""Prediction heads of the VGGT-style model, installed as ``vggt3d.heads``.

One head per file: :mod:`.camera` (iterative pose refinement), :mod:`.dpt`
(dense depth / point-map decoder), :mod:`.track` (CoTracker-style point
tracker). Inside this package use relative imports only (see PACKAGING).
"""
