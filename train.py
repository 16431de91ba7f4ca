"""Training entry point: the same command as ``vggt3d train`` (see ``--help``).

    python train.py --config configs/tiny_synthetic.yaml [key=value ...] [--resume]
    accelerate launch --multi_gpu --num_processes 8 train.py --config configs/finetune_vggt1b.yaml
"""

import os
import sys

# ``python train.py`` puts this folder (the repository root) first on sys.path, where the source folder
# ``vggt3d/`` would shadow the installed package (which adds vggt3d.heads and vggt3d.data): use the install.
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != os.path.dirname(os.path.abspath(__file__))]

from vggt3d.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
