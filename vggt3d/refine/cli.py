"""The ``cameras`` options of ``vggt3d reconstruct``, their keyword arguments and summary lines.

Kept free of torch and pycolmap imports so that building the parser stays fast.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

__all__ = ["add_arguments", "reconstruct_kwargs", "summary_lines"]


def _existing_file(text: str) -> Path:
    path = Path(text)
    if not path.exists():
        raise argparse.ArgumentTypeError(f"{text} does not exist")
    return path


def _scale(text: str) -> str:
    from .known import parse_scale

    try:
        parse_scale(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix(f"--scale {text!r}: ")) from None
    return text


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``cameras`` group: ``--tracks-from``, ``--refine``, ``--distortion``, ``--intrinsics``, ``--poses``,
    ``--fix-poses``, ``--scale``."""
    group = parser.add_argument_group("cameras (see docs/reconstruct.md, 'Accurate cameras')")
    group.add_argument("--tracks-from", default=None, choices=["head", "features", "both"],
                       help="multi-view tracks for colmap/ and --refine: the model's track head (queries in several "
                            "frames), SIFT features (no learned weights) or both (default with --refine)")
    group.add_argument("--refine", default=None, choices=["ba"],
                       help="bundle adjustment of cameras and tracks (pycolmap); every output follows, depth maps "
                            "are rescaled; on failure the unrefined result is written and the summary says why")
    group.add_argument("--distortion", action="store_true",
                       help="with --refine ba: also estimate one radial distortion coefficient (SIMPLE_RADIAL); "
                            "colmap/ then holds undistorted images and PINHOLE cameras")
    group.add_argument("--intrinsics", type=_existing_file, default=None, metavar="FILE",
                       help="known intrinsics at the original resolution: JSON (one shared K or fx/fy/cx/cy, or "
                            "per image) or a COLMAP cameras file/model; poses are re-solved with them")
    group.add_argument("--poses", type=_existing_file, default=None, metavar="FILE",
                       help="known poses (vggt3d cameras.json, COLMAP images file/model, nerfstudio transforms.json): "
                            "the output moves into their frame and units")
    group.add_argument("--fix-poses", action="store_true", help="with --poses: use them exactly (fixed in BA)")
    group.add_argument("--scale", type=_scale, default=None, metavar="SPEC",
                       help="metric scale from one known distance: 'F:X,Y F:X,Y DIST' (two pixels at original "
                            "resolution in frames F and their distance) or 'camera-height=H' (first camera above "
                            "the ground)")


def reconstruct_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """Keyword arguments of :func:`vggt3d.reconstruct` from the parsed options."""
    config = None
    if args.distortion:
        if args.refine != "ba":
            raise ValueError("--distortion needs --refine ba")
        from .ba import BAConfig
        from .pipeline import RefineConfig

        config = RefineConfig(ba=BAConfig(distortion=True))
    if args.fix_poses and args.poses is None:
        raise ValueError("--fix-poses needs --poses FILE")
    if args.scale is not None and args.poses is not None:
        raise ValueError("--scale and --poses both set the units; give one of them")
    return {"tracks_from": args.tracks_from, "refine": args.refine, "intrinsics": args.intrinsics,
            "poses": args.poses, "fix_poses": args.fix_poses, "scale": args.scale, "refine_config": config}


def summary_lines(info: dict[str, Any]) -> list[str]:
    """Lines for the command's summary: tracks, refinement (before/after), known cameras, scale."""
    lines = []
    if "known_intrinsics" in info:
        k = info["known_intrinsics"]
        lines.append("intrinsics: as given" + ("; poses re-solved by PnP against the point map" if k["poses_resolved"]
                                               else "") + (f" (PnP failed for frames {k['pnp_failed']})"
                                                           if k["pnp_failed"] else ""))
    if "known_poses" in info:
        k = info["known_poses"]
        lines.append(f"poses: aligned to the given ones (scale x{k['scale']:.4g}, median centre error "
                     f"{k['centre_error_median']:.3g})" + (f"; frames {k['outliers']} disagreed and were left out"
                                                           if k["outliers"] else "")
                     + ("; given poses used exactly" if k["replaced"] else ""))
    if "tracks_from" in info:
        t = info["tracks_from"]
        lines.append(f"tracks ({t['source']}): {t['tracks']:,} kept of {t['found']:,}, {t['observations']:,} "
                     "observations")
    refine = info.get("refine")
    if refine:
        if refine["status"] == "refined":
            lines.append(f"bundle adjustment: mean reprojection error {refine['reprojection_error_before']:.3f} -> "
                         f"{refine['reprojection_error_after']:.3f} px over {refine['tracks']:,} tracks and "
                         f"{refine['observations']:,} observations ({refine['observations_dropped']:,} outliers "
                         "dropped)")
        else:
            lines.append(f"bundle adjustment FAILED ({refine['status'].removeprefix('failed: ')}); the outputs are "
                         "the unrefined reconstruction")
    if "scale" in info:
        s = info["scale"]
        lines.append(f"scale: x{s['factor']:.4g} so the known distance is {s['known']:g} (was {s['measured']:.4g})")
    return lines
