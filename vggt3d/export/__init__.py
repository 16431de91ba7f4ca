"""Writers of a :class:`vggt3d.reconstruct.Reconstruction`, one module per format.

========== ======================= ==================================================
format     files                   read by
========== ======================= ==================================================
cameras    ``cameras.json``        json (conventions written into the file)
ply        ``points.ply``          trimesh, open3d, MeshLab, CloudCompare
glb        ``scene.glb``           any glTF viewer (points + camera frustums)
colmap     ``colmap/sparse/0/``    pycolmap, COLMAP, Gaussian-splatting trainers
depth      ``depth/``,             numpy (``.npy`` float32) and image viewers
           ``confidence/``         (16-bit PNG previews, scale in ``index.json``)
nerfstudio ``transforms.json``     nerfstudio and other NeRF tools
splats     ``splats.ply``          3D Gaussian splatting viewers and trainers
images     ``images/``             the frames at original resolution (COLMAP and
                                   nerfstudio refer to them)
tracks     ``tracks.npz``          numpy (only when tracks were predicted)
scene_     ``scene/``              :func:`vggt3d.data.scene_folder.read_scene_folder`
folder                             (on request: not in the defaults)
preview    ``preview.png``         any image viewer: points and cameras from two
                                   viewpoints, frames with depth and confidence
html       ``scene.html``          any browser, from disk: points, cameras, tracks
                                   (:mod:`vggt3d.viewer.page`; on request)
========== ======================= ==================================================

:func:`save` writes into a temporary directory beside the target and renames
it into place at the end, so a failed export leaves no partial output.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..io.atomic import OutputExistsError, atomic_output_dir, check_output_dir

if TYPE_CHECKING:
    from vggt3d.result import Reconstruction

__all__ = ["DEFAULT_FORMATS", "FORMATS", "OutputExistsError", "atomic_output_dir", "check_output_dir", "parse_formats",
           "save"]

#: format -> (module with ``write(rec, root) -> list[Path]``, what it writes)
FORMATS: dict[str, tuple[str, str]] = {
    "images": ("vggt3d.export.images", "images/"),
    "cameras": ("vggt3d.export.cameras_json", "cameras.json"),
    "ply": ("vggt3d.export.ply", "points.ply"),
    "glb": ("vggt3d.export.glb", "scene.glb"),
    "colmap": ("vggt3d.export.colmap", "colmap/sparse/0/"),
    "depth": ("vggt3d.export.depth_maps", "depth/, confidence/"),
    "nerfstudio": ("vggt3d.export.nerfstudio", "transforms.json"),
    "splats": ("vggt3d.export.splats", "splats.ply"),
    "tracks": ("vggt3d.export.tracks", "tracks.npz"),
    "scene_folder": ("vggt3d.export.scene_folder", "scene/"),
    "preview": ("vggt3d.export.preview", "preview.png"),
    "html": ("vggt3d.viewer.page", "scene.html"),
}
#: Written by default (``tracks`` only when the reconstruction has tracks); ``scene_folder``, ``html`` on request.
DEFAULT_FORMATS: tuple[str, ...] = tuple(f for f in FORMATS if f not in ("scene_folder", "html"))


def parse_formats(formats: str | Sequence[str] | None) -> list[str]:
    """``"ply,colmap"`` / ``["ply", "colmap"]`` / ``None`` (the defaults) -> known format names in writing order.

    ``all`` stands for the defaults and may be combined: ``"all,scene_folder"``.
    """
    if formats is None:
        return list(DEFAULT_FORMATS)
    names = [f.strip() for f in (formats.split(",") if isinstance(formats, str) else formats) if f.strip()]
    if "all" in names:
        names = [f for f in names if f != "all"] + list(DEFAULT_FORMATS)
    unknown = [f for f in names if f not in FORMATS]
    if unknown:
        raise ValueError(f"unknown output format(s) {', '.join(unknown)}; choose from {', '.join(FORMATS)} or all")
    if not names:
        raise ValueError("no output format given")
    return [f for f in FORMATS if f in names]


def save(rec: Reconstruction, out: str | os.PathLike, formats: str | Sequence[str] | None = None,
         overwrite: bool = False, progress: bool = False) -> dict[str, list[Path]]:
    """Write ``rec`` into ``out`` in the given formats; returns the final paths written per format.

    ``out`` must not exist or be empty unless ``overwrite`` (then it is replaced
    as a whole once the new output is complete).
    """
    from tqdm.auto import tqdm

    names = parse_formats(formats)
    if rec.tracks is None:
        names = [f for f in names if f != "tracks"]
    written: dict[str, list[Path]] = {}
    _refuse_out_holding_inputs(rec, out)
    with atomic_output_dir(out, overwrite=overwrite) as (tmp, final):
        for name in tqdm(names, desc="export", unit="format", disable=not progress, leave=False):
            module = importlib.import_module(FORMATS[name][0])
            paths = module.write(rec, tmp)
            written[name] = [final / Path(p).relative_to(tmp) for p in paths]
    return written


def _refuse_out_holding_inputs(rec: Reconstruction, out: str | os.PathLike) -> None:
    """``overwrite`` replaces ``out`` as a whole: refuse an ``out`` that is or holds one of the input files."""
    target = Path(out).expanduser().resolve()
    for source in getattr(rec, "sources", None) or []:
        if not isinstance(source, str) or source.startswith("<"):
            continue
        path = Path(source.split("#frame=")[0]).expanduser().resolve()
        if path == target or target in path.parents:
            raise ValueError(f"output {out} holds the input {source}; writing there would replace it: choose an "
                             "output folder apart from the inputs")
