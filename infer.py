"""Reconstruction entry point (thin wrapper over the package).

`vggt3d reconstruct` and its exporters (COLMAP, PLY, GLB, depth maps) are
built by issue #5; until it lands this script only says so.
"""

import sys

if __name__ == "__main__":
    sys.exit("infer.py: the reconstruction command is not implemented yet (tracked in issue #5). "
             "Use the Python API in README.md (VGGT3D.from_pretrained + load_images).")
