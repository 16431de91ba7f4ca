"""Training entry point (thin wrapper over the package).

Training (losses, accelerate, checkpoints, resume) is built by issue #4
("Train end to end and evaluate"); until it lands this script only says so.
"""

import sys

if __name__ == "__main__":
    sys.exit("train.py: training is not implemented yet (tracked in issue #4). "
             "The model, checkpoints and image loading are available: see README.md.")
