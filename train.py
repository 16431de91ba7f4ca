"""Training entry point: the same command as ``vggt3d train`` (see ``--help``).

    python train.py --config configs/tiny_synthetic.yaml [key=value ...] [--resume]
    accelerate launch --multi_gpu --num_processes 8 train.py --config configs/finetune_vggt1b.yaml
"""

import sys

from vggt3d.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
