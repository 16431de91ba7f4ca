"""Write procedurally generated multi-view scenes to disk as scene folders.

``vggt3d synth --out DIR --scenes N --frames S --size H W --seed K`` writes
``DIR/scene_000000/`` ... (images, float32 depth, cameras.json; see
:mod:`vggt3d.data.scene_folder`). ``--benchmark N`` instead times ``N`` samples
of :class:`~vggt3d.data.synthetic.SyntheticScenes` in memory and prints samples/s.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from vggt3d.commands.options import positive_int

    job = parser.add_mutually_exclusive_group(required=True)
    job.add_argument("--out", type=Path, help="output folder (one scene folder per scene inside); required "
                                              "unless --benchmark")
    job.add_argument("--benchmark", type=positive_int, default=0, metavar="N",
                     help="time N in-memory samples (ds[i], one process) instead of writing")
    parser.add_argument("--scenes", type=positive_int, default=10, help="number of scenes (default 10)")
    parser.add_argument("--frames", type=positive_int, nargs="+", default=[8], metavar="S",
                        help="frames per scene, or a range LO HI (default 8)")
    parser.add_argument("--size", type=positive_int, nargs=2, default=[224, 224], metavar=("H", "W"),
                        help="image height and width in pixels (default 224 224)")
    parser.add_argument("--seed", type=int, default=0, help="generator seed (default 0)")
    parser.add_argument("--scene-types", nargs="+", default=["room", "objects"], choices=["room", "objects"],
                        help="scene kinds to draw from")
    parser.add_argument("--camera-paths", nargs="+", default=["orbit", "forward", "lookat"],
                        choices=["orbit", "forward", "lookat"], help="camera path kinds to draw from")
    parser.add_argument("--depth-format", choices=["npy", "png16"], default="npy",
                        help="depth file format (npy: exact float32; png16: 16-bit with a recorded scale)")
    parser.add_argument("--overwrite", action="store_true", help="replace scene folders that already exist")


def _config(args: argparse.Namespace):
    from .synthetic import SyntheticConfig

    if len(args.frames) not in (1, 2):
        raise ValueError("--frames takes one number or a range LO HI")
    frames = args.frames[0] if len(args.frames) == 1 else (args.frames[0], args.frames[1])
    return SyntheticConfig(num_scenes=max(args.scenes, 1), num_frames=frames, image_size=(args.size[0], args.size[1]),
                           seed=args.seed, scene_types=tuple(args.scene_types), camera_paths=tuple(args.camera_paths))


def run(args: argparse.Namespace) -> int:
    from .synthetic import SyntheticScenes

    try:
        config = _config(args)
    except ValueError as exc:
        print(f"vggt3d synth: {exc}", file=sys.stderr)
        return 2
    if args.benchmark:
        return _benchmark(config, args.benchmark)
    if args.out is None:
        print("vggt3d synth: --out DIR is required (or --benchmark N)", file=sys.stderr)
        return 2
    from .scene_folder import write_scene_folder

    dataset = SyntheticScenes(config)
    try:
        args.out.mkdir(parents=True, exist_ok=True)
        return _write(dataset, args, write_scene_folder)
    except OSError as exc:  # read-only, disk full: one line (a scene cut short has no cameras.json: never read)
        print(f"vggt3d synth: cannot write --out {args.out}: {exc.strerror or exc}", file=sys.stderr)
        return 1


def _write(dataset, args: argparse.Namespace, write_scene_folder) -> int:
    start = time.perf_counter()
    for i in range(args.scenes):
        scene = dataset.scene(i)
        views = dataset.load_views(i, range(len(scene.cam_from_world)))
        root = args.out / f"scene_{i:06d}"
        try:
            write_scene_folder(root, [v.image for v in views], scene.cam_from_world, scene.intrinsics,
                               depths=[v.depth for v in views], depth_format=args.depth_format,
                               overwrite=args.overwrite)
        except FileExistsError as exc:
            print(f"vggt3d synth: {exc}", file=sys.stderr)
            return 1
        print(f"\rwrote {i + 1}/{args.scenes} scenes ({scene.scene_type}, {scene.camera_path}, "
              f"{len(views)} frames)", end="", file=sys.stderr, flush=True)
    print(f"\nwrote {args.scenes} scenes to {args.out} in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    return 0


def _benchmark(config, count: int) -> int:
    import os

    from .synthetic import SyntheticScenes

    dataset = SyntheticScenes(config)
    dataset[0]  # warm up imports and caches
    start_wall, start_cpu = time.perf_counter(), time.process_time()
    for i in range(1, count + 1):
        dataset[i % len(dataset)]
    wall, cpu = time.perf_counter() - start_wall, time.process_time() - start_cpu
    h, w = config.image_size
    print(f"{count / wall:.1f} samples/s ({count / cpu:.1f} per CPU second) for S={config.frame_range} at "
          f"{h}x{w}; {count} samples in {wall:.2f} s, one process, load average {os.getloadavg()[0]:.1f}")
    return 0
