"""Evaluate a model against ground truth, next to trivial baselines; write a report.

--data names a dataset of vggt3d.data (build_dataset); --data-arg passes its
arguments (values read as YAML). Each scene ds[i] is evaluated with its
default frames. Writes into --out: results.json (per-scene and mean values,
curves), results.md (tables), auc_curve.png, error_per_frame.png and
overview_K.png (prediction beside ground truth for the first 3 scenes).

Examples:

    vggt3d evaluate --data synthetic --data-arg num_scenes=32 --data-arg seed=1 \\
        --data-arg image_size=[112,112] --weights tiny-synthetic --out report/
    vggt3d evaluate --data co3d --data-arg root=/data/co3d --data-arg num_frames=10 \\
        --data-arg image_size=[518,518] --weights facebook/VGGT-1B --device cuda --out co3d-report/
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .options import OptionError, positive_int, validate_out

#: --points-from values; ``point_head`` (the old spelling) is accepted as an alias of ``pointmap``
_POINTS_FROM = {"depth": "depth", "pointmap": "pointmap", "point_head": "pointmap"}


def _points_from(text: str) -> str:
    if text not in _POINTS_FROM:
        raise argparse.ArgumentTypeError(f"must be depth or pointmap, got {text!r}")
    return _POINTS_FROM[text]


def _data_arg(text: str) -> tuple[str, object]:
    import yaml

    if "=" not in text:
        raise argparse.ArgumentTypeError(f"--data-arg must be key=value, got {text!r}")
    key, raw = text.split("=", 1)
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError as e:
        raise argparse.ArgumentTypeError(f"--data-arg {text!r}: value is not valid YAML ({e})") from None
    return key.strip(), value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.description = __doc__
    parser.add_argument("--data", required=True, help="dataset name in vggt3d.data (e.g. synthetic, co3d, colmap)")
    parser.add_argument("--data-arg", action="append", default=[], type=_data_arg, metavar="KEY=VALUE",
                        help="dataset argument (repeatable), e.g. num_scenes=32, seed=1, image_size=[112,112]")
    parser.add_argument("--weights", "--model", dest="weights", required=True,
                        help="a from_pretrained source: shipped model name, checkpoint directory, file or hub id")
    parser.add_argument("--out", "-o", required=True, type=Path, help="report directory (created)")
    parser.add_argument("--max-scenes", type=positive_int, default=None, help="evaluate only the first N scenes")
    parser.add_argument("--depth-align", choices=["median", "scale_shift", "none"], default="median",
                        help="depth alignment before AbsRel / delta (default median scaling)")
    parser.add_argument("--depth-per", choices=["frame", "sequence"], default="frame",
                        help="align depth per frame (default) or once per sequence")
    parser.add_argument("--points-from", type=_points_from, choices=["depth", "pointmap"], default="depth",
                        help="point maps from depth + predicted cameras (default) or the point map head "
                             "(point_head also accepted)")
    parser.add_argument("--causal", action="store_true",
                        help="run the model causally: frame t sees frames 0..t only (docs/world_models.md)")
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")
    parser.add_argument("--threads", type=positive_int, default=None, help="torch CPU threads")
    parser.add_argument("--seed", type=int, default=0, help="seed of the point subsampling")


def run(args: argparse.Namespace) -> int:
    import torch

    from vggt3d.evaluation import EvalSettings, evaluate, markdown_table, write_report
    from vggt3d.hub import CheckpointError
    from vggt3d.model import VGGT3D

    kwargs = dict(args.data_arg)
    roots = [v for k, v in kwargs.items() if k in ("root", "roots", "images_dir", "model_dir", "depth_dir")]
    roots = [r for v in roots for r in (v if isinstance(v, list) else [v]) if isinstance(r, str)]
    try:
        validate_out(args.out, roots)
    except OptionError as e:
        print(f"vggt3d evaluate: {e}", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        model = VGGT3D.from_pretrained(args.weights, device=args.device)
    except CheckpointError as e:
        print(f"vggt3d evaluate: {e}", file=sys.stderr)
        return 2
    if args.causal:
        try:
            model.check_causal()
        except ValueError as e:
            print(f"vggt3d evaluate: --causal: {e}", file=sys.stderr)
            return 2
    from vggt3d import data as vdata

    try:
        dataset = vdata.build_dataset(args.data, **kwargs)
    except (KeyError, TypeError, ValueError, OSError) as e:
        print(f"vggt3d evaluate: cannot build dataset {args.data!r} with {kwargs}: {e}", file=sys.stderr)
        return 2
    settings = EvalSettings(depth_align=args.depth_align, depth_per=args.depth_per,
                            points_from="point_head" if args.points_from == "pointmap" else args.points_from,
                            max_scenes=args.max_scenes, seed=args.seed, causal=args.causal)
    try:
        result = evaluate(model, dataset, settings, device=args.device, progress=True)
        result.info = {"weights": args.weights, "data": args.data, "data_args": kwargs, "scenes": len(result.scenes)}
        data = write_report(result, args.out, title=f"Evaluation of {args.weights} on {args.data}")
    except (ValueError, OSError) as e:  # unreadable frames, bad dataset files, disk full
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        print(f"vggt3d evaluate: {first}", file=sys.stderr)
        return 1
    print(markdown_table(data["mean"]))
    print(f"report: {args.out / 'results.md'}")
    return 0
