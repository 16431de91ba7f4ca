"""Multi-view datasets, installed as ``vggt3d.data``.

One sample contract (:mod:`vggt3d.data.sample`) for every source: procedurally
generated scenes (:class:`SyntheticScenes`), our scene-folder format
(:mod:`vggt3d.data.scene_folder`), COLMAP models (:class:`ColmapDataset`) and
CO3Dv2 sequences (:class:`Co3dDataset`); training-time processing
(:class:`MultiViewAugment`), normalisation (:func:`normalize_sample`), mixtures
(:class:`MixedDataset`, :func:`build_dataset`) and equal-shape, resumable
batches (:func:`make_dataloader`).

Convention: ``cam_from_world`` with OpenCV axes (x right, y down, z forward),
intrinsics in pixels with pixel centres at integers, depth as camera z with 0
marking invalid pixels.
"""

from . import scene_folder
from .augment import AugmentConfig, CropPlan, MultiViewAugment, color_jitter, target_size_for_aspect
from .base import FrameCameras, MultiViewDataset, SampleRequest
from .co3d import Co3dDataset, Co3dSequence, co3d_viewpoint_to_opencv, load_co3d_depth
from .colmap import ColmapDataset, ColmapError, ColmapScene, read_colmap_depth, write_colmap_depth
from .loader import MultiViewBatchSampler, MultiViewLoader, collate_samples, make_dataloader
from .mixed import DATASETS, MixedDataset, build_dataset, register_dataset
from .normalize import normalize_sample
from .sample import REQUIRED_KEYS, SampleError, check_sample
from .scene_folder import SceneFolder, SceneFolderDataset, read_scene_folder, write_scene_folder
from .synthetic import SyntheticConfig, SyntheticScene, SyntheticScenes, make_synthetic_scene
from .tracks import depth_visibility, tracks_from_depth
from .views import View, views_to_sample

__all__ = [
    "DATASETS",
    "REQUIRED_KEYS",
    "AugmentConfig",
    "Co3dDataset",
    "Co3dSequence",
    "ColmapDataset",
    "ColmapError",
    "ColmapScene",
    "CropPlan",
    "FrameCameras",
    "MixedDataset",
    "MultiViewAugment",
    "MultiViewBatchSampler",
    "MultiViewDataset",
    "MultiViewLoader",
    "SampleError",
    "SampleRequest",
    "SceneFolder",
    "SceneFolderDataset",
    "SyntheticConfig",
    "SyntheticScene",
    "SyntheticScenes",
    "View",
    "build_dataset",
    "check_sample",
    "co3d_viewpoint_to_opencv",
    "collate_samples",
    "color_jitter",
    "depth_visibility",
    "load_co3d_depth",
    "make_dataloader",
    "make_synthetic_scene",
    "normalize_sample",
    "read_colmap_depth",
    "read_scene_folder",
    "register_dataset",
    "scene_folder",
    "target_size_for_aspect",
    "tracks_from_depth",
    "views_to_sample",
    "write_colmap_depth",
    "write_scene_folder",
]
