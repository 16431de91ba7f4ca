"""Accurate cameras after the forward pass: multi-view tracks, bundle adjustment, known cameras, metric scale.

- :mod:`~vggt3d.refine.features`: SIFT tracks through pycolmap (no learned weights);
- :mod:`~vggt3d.refine.head`: track-head tracks from several query frames;
- :mod:`~vggt3d.refine.tracks`: observation lists, triangulation, filtering;
- :mod:`~vggt3d.refine.ba`: pycolmap bundle adjustment;
- :mod:`~vggt3d.refine.files`: known intrinsics / poses files;
- :mod:`~vggt3d.refine.known`: PnP with known intrinsics, Sim(3) onto known poses, scale from a known distance;
- :mod:`~vggt3d.refine.update`: new cameras into a reconstruction (depth rescaled, cloud recomputed);
- :mod:`~vggt3d.refine.pipeline`: :func:`refine_reconstruction`, what ``vggt3d.reconstruct(...)`` runs.

Convention: ``cam_from_world`` with OpenCV axes (x right, y down, z forward);
intrinsics and pixels at original resolution with pixel centres at integers.
"""

from .._lazy import lazy_getattr

_NAMES = {
    "BAConfig": "vggt3d.refine.ba", "RefinementError": "vggt3d.refine.ba", "bundle_adjust": "vggt3d.refine.ba",
    "FeatureConfig": "vggt3d.refine.features", "feature_tracks": "vggt3d.refine.features",
    "KnownCamerasError": "vggt3d.refine.files", "read_intrinsics": "vggt3d.refine.files",
    "read_poses": "vggt3d.refine.files", "Observations": "vggt3d.refine.tracks", "TrackFilter": "vggt3d.refine.tracks",
    "filter_tracks": "vggt3d.refine.tracks", "triangulate": "vggt3d.refine.tracks",
    "RefineConfig": "vggt3d.refine.pipeline", "add_tracks": "vggt3d.refine.pipeline",
    "refine_reconstruction": "vggt3d.refine.pipeline", "apply_scale": "vggt3d.refine.known",
    "align_to_poses": "vggt3d.refine.known", "apply_intrinsics": "vggt3d.refine.known",
}
__all__ = ["BAConfig", "FeatureConfig", "KnownCamerasError", "Observations", "RefineConfig", "RefinementError",
           "TrackFilter", "add_tracks", "align_to_poses", "apply_intrinsics", "apply_scale", "bundle_adjust",
           "feature_tracks", "filter_tracks", "read_intrinsics", "read_poses", "refine_reconstruction", "triangulate"]
__getattr__ = lazy_getattr(__name__, _NAMES, globals())
