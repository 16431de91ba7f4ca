"""Train or fine-tune a model from a YAML config, with key=value overrides.

The run directory (run.output_dir/run.name) receives config.yaml (the
resolved config), checkpoints/ (step-XXXXXXXX/, each loadable with
VGGT3D.from_pretrained; the last run.keep_last plus the best), tensorboard/
and, at the end, final/ (save_pretrained).

Examples:

    vggt3d train --config configs/tiny_synthetic.yaml
    vggt3d train --config configs/tiny_synthetic.yaml run.max_steps=200 optim.lr=1e-4 "data.num_frames=[2,4]"
    vggt3d train --config configs/tiny_synthetic.yaml --resume          # newest checkpoint of the run
    vggt3d train --config configs/finetune_vggt1b.yaml --print-config
    accelerate launch --multi_gpu --num_processes 8 train.py --config configs/finetune_vggt1b.yaml   # DDP
"""

from __future__ import annotations

import argparse
import json
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.description = __doc__
    parser.add_argument("--config", "-c", default=None,
                        help="YAML training config (see configs/); without it the built-in defaults")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                        help="config overrides, e.g. optim.lr=1e-4 run.max_steps=100 model.pretrained=facebook/VGGT-1B")
    parser.add_argument("--resume", nargs="?", const="latest", default=None, metavar="CHECKPOINT",
                        help="continue a run: 'latest' (default when given alone) or 'best' checkpoint of this run, "
                             "or a checkpoint / run directory")
    parser.add_argument("--print-config", action="store_true", help="print the resolved config as YAML and exit")


def run(args: argparse.Namespace) -> int:
    import yaml

    from vggt3d.config import ConfigError
    from vggt3d.training.config import load_config

    try:
        cfg = load_config(args.config, args.overrides)
    except ConfigError as e:
        print(f"vggt3d train: {e}", file=sys.stderr)
        return 2
    if args.print_config:
        sys.stdout.write(yaml.safe_dump(cfg.to_dict(), sort_keys=False, default_flow_style=None))
        return 0
    from vggt3d.data.mixed import DATASETS
    from vggt3d.training.checkpoint import CheckpointLoadError, CheckpointNotFound
    from vggt3d.training.trainer import Trainer

    for split in ("train", "val"):  # an unknown name fails here, before the model is built
        for entry in getattr(cfg.data, split, None) or []:
            if entry.name not in DATASETS:
                print(f"vggt3d train: data.{split}: unknown dataset {entry.name!r}; registered: "
                      f"{', '.join(sorted(DATASETS))}", file=sys.stderr)
                return 2
    try:
        trainer = Trainer(cfg)
    except (TypeError, ValueError, FileNotFoundError) as e:  # dataset arguments, paths, shapes from the config
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        print(f"vggt3d train: cannot set up the run from {args.config or 'the defaults'}: {first}", file=sys.stderr)
        return 2
    try:
        summary = trainer.fit(resume=args.resume)
    except CheckpointNotFound as e:
        print(f"vggt3d train: cannot resume: {e}", file=sys.stderr)
        return 2
    except CheckpointLoadError as e:
        print(f"vggt3d train: cannot resume: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # disk full, permissions while writing checkpoints or logs
        print(f"vggt3d train: {e.strerror or e}" + (f": {e.filename}" if e.filename else ""), file=sys.stderr)
        return 1
    if trainer.accelerator.is_main_process:
        print(json.dumps(summary, indent=2, default=str))
    return 0
