"""Reconstruction entry point: the same command as ``vggt3d reconstruct`` (see ``--help``).

    python infer.py photos/ --out scene
"""

import sys

from vggt3d.commands.reconstruct import main

if __name__ == "__main__":
    sys.exit(main())
