"""The base class of every multi-view dataset: scenes of frames -> contract samples.

A dataset is a list of scenes. ``ds[i]`` (an ``int``) returns scene i's default
frames, processed deterministically; ``ds[SampleRequest(...)]`` returns a
training sample: S co-visible frames (the first is a random anchor), cropped and
resized to the requested size, colour-jittered, with tracks if asked, drawn
from a generator seeded by the request, so the same request always yields the
same sample, in any worker.

Subclasses implement :meth:`MultiViewDataset.__len__`, :meth:`scene_name`,
:meth:`frame_cameras` and :meth:`load_views`; they may override
:meth:`frame_points` (3D points for the overlap score) and the hooks
:meth:`_processed_views` / :meth:`_tracks` (the synthetic scenes render at the
final cameras and compute exact tracks).

Convention: ``cam_from_world`` with OpenCV axes (x right, y down, z forward),
intrinsics in pixels with pixel centres at integers, sizes as (H, W).
"""

from __future__ import annotations

from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from vggt3d.io.paths import UnsafePathError, path_inside  # noqa: F401  (re-exported: dataset readers use it)

from .augment import AugmentConfig, MultiViewAugment
from .sample import check_sample
from .selection import camera_guess_points, overlap_scores, select_covisible_frames
from .tracks import tracks_from_depth
from .views import View, views_to_sample

__all__ = ["FrameCameras", "MultiViewDataset", "SampleRequest", "UnsafePathError", "path_inside",
           "torch_single_thread"]


POINTS_CACHE = 1024  # scenes whose overlap points are kept (per process)


@dataclass(frozen=True)
class SampleRequest:
    """What the batch sampler asks of a dataset: scene ``index``, S frames, output size, seed.

    Convention: ``image_size`` is ``(H, W)`` of every frame of the sample; ``seed``
    determines the frame choice, the augmentation and the tracks.
    """

    index: int
    num_frames: int
    image_size: tuple[int, int]
    seed: int


@dataclass
class FrameCameras:
    """Cameras of all F frames of a scene (cheap to get, no pixels loaded).

    Convention: ``cam_from_world [F, 3, 4]`` float64 (OpenCV axes: x right, y down,
    z forward), ``intrinsics [F, 3, 3]`` float64 pixels with centres at integers,
    ``sizes [F, 2]`` int64 (H, W).
    """

    cam_from_world: np.ndarray
    intrinsics: np.ndarray
    sizes: np.ndarray

    def __len__(self) -> int:
        return len(self.cam_from_world)


class MultiViewDataset(Dataset):
    """Scenes of posed frames yielding samples of :mod:`vggt3d.data.sample` (see the module docstring).

    Args:
        num_frames: frames of ``ds[i]``: None = all frames of the scene, an int = that
            many, evenly spaced over the scene.
        image_size: ``(H, W)`` of ``ds[i]``'s frames (validation-style crop around the
            principal point and resize); None keeps the native size (frames must match).
        num_tracks: tracks per sample (0 = none).
        min_overlap: overlap score below which a frame is not preferred for a sample.
        seed: base seed of ``ds[i]``'s track draw.
    """

    name = "dataset"

    def __init__(self, num_frames: int | None = None, image_size: tuple[int, int] | None = None, num_tracks: int = 0,
                 min_overlap: float = 0.2, seed: int = 0) -> None:
        if num_frames is not None and (isinstance(num_frames, bool) or int(num_frames) < 1):
            raise ValueError(f"num_frames must be None or a positive int, got {num_frames!r}")
        if image_size is not None:
            image_size = _check_size(image_size, "image_size")
        if int(num_tracks) < 0:
            raise ValueError(f"num_tracks must be >= 0, got {num_tracks}")
        self.num_frames = None if num_frames is None else int(num_frames)
        self.image_size = image_size
        self.num_tracks = int(num_tracks)
        self.min_overlap = float(min_overlap)
        self.seed = int(seed)
        self._points_cache: OrderedDict[int, list[np.ndarray]] = OrderedDict()  # LRU, POINTS_CACHE scenes

    # -- what a subclass provides ------------------------------------------------------------

    def __len__(self) -> int:
        raise NotImplementedError

    def scene_name(self, index: int) -> str:
        """Name of scene ``index`` (stored as the sample's ``"scene"``)."""
        raise NotImplementedError

    def frame_cameras(self, index: int) -> FrameCameras:
        """Cameras of every frame of scene ``index``."""
        raise NotImplementedError

    def load_views(self, index: int, frame_ids: Sequence[int]) -> list[View]:
        """Native-resolution views of the given frames of scene ``index``."""
        raise NotImplementedError

    def frame_points(self, index: int) -> list[np.ndarray]:
        """A few world points ``[P, 3]`` per frame for the overlap score (default: a depth guess)."""
        cams = self.frame_cameras(index)
        return camera_guess_points(cams.cam_from_world, cams.intrinsics, cams.sizes)

    # -- provided ----------------------------------------------------------------------------

    def resolve(self, index: int) -> tuple["MultiViewDataset", int]:
        """The dataset and local index that serve ``index`` (a mixture delegates)."""
        return self, index

    def num_scene_frames(self, index: int) -> int:
        """Number of frames F of scene ``index``."""
        return len(self.frame_cameras(index))

    def default_frame_ids(self, index: int) -> list[int]:
        """Frames of ``ds[index]``: all, or ``num_frames`` evenly spaced (repeating when too few)."""
        count = self.num_scene_frames(index)
        if self.num_frames is None:
            return list(range(count))
        return [int(i) for i in np.floor(np.arange(self.num_frames) * count / self.num_frames)]

    def select_frames(self, index: int, num_frames: int, rng: np.random.Generator) -> list[int]:
        """S co-visible frames of scene ``index``; the first is a random anchor (the reference frame)."""
        cams = self.frame_cameras(index)
        points = self._points_cache.get(index)
        if points is None:
            points = self._points_cache[index] = self.frame_points(index)
            if len(self._points_cache) > POINTS_CACHE:
                self._points_cache.popitem(last=False)
        else:
            self._points_cache.move_to_end(index)

        def scores_for(anchor: int) -> np.ndarray:
            return overlap_scores(anchor, points, cams.cam_from_world, cams.intrinsics, cams.sizes)

        return select_covisible_frames(num_frames, scores_for, len(cams), rng, self.min_overlap)

    def get_sample(self, index: int, frame_ids: Sequence[int], image_size: tuple[int, int] | None = None,
                   augment: MultiViewAugment | None = None, rng: np.random.Generator | None = None,
                   num_tracks: int | None = None) -> dict[str, Any]:
        """A contract sample of the given frames of scene ``index``.

        Args:
            frame_ids: S frame indices; the first is the reference frame.
            image_size: output ``(H, W)``; None keeps the native size.
            augment: crop/resize/colour processing; None = deterministic validation crop.
            rng: randomness of the augmentation and tracks (None: seeded by ``(seed, index)``).
            num_tracks: overrides the dataset's ``num_tracks``.
        """
        if not 0 <= index < len(self):
            raise IndexError(f"{self.name}: scene index {index} out of range [0, {len(self)})")
        with torch_single_thread():
            return self._get_sample(index, frame_ids, image_size, augment, rng, num_tracks)

    def _get_sample(self, index: int, frame_ids: Sequence[int], image_size: tuple[int, int] | None,
                    augment: MultiViewAugment | None, rng: np.random.Generator | None, num_tracks: int | None
                    ) -> dict[str, Any]:
        rng = rng if rng is not None else np.random.default_rng([self.seed, index])
        views = self._processed_views(index, list(frame_ids), image_size, augment, rng)
        origin = f"{self.name} scene {self.scene_name(index)!r}"
        sample = views_to_sample(views, self.scene_name(index), origin, check=False)
        if augment is not None:
            sample["images"] = augment.color(sample["images"], rng)
        n = self.num_tracks if num_tracks is None else int(num_tracks)
        if n > 0:
            sample.update(self._tracks(index, sample, n, rng))
        return dict(check_sample(sample, origin))

    def sample_for_request(self, request: SampleRequest, augment: MultiViewAugment | None = None,
                           num_tracks: int | None = None) -> dict[str, Any]:
        """The sample of ``request`` (deterministic for the request).

        Frames: :meth:`select_frames` with a generator seeded by ``(request.seed, request.index)``;
        ``augment`` None gives the deterministic validation crop (``ds[request]`` uses the
        default training augmentation).
        """
        rng = np.random.default_rng([request.seed, request.index])
        frame_ids = self.select_frames(request.index, request.num_frames, rng)
        return self.get_sample(request.index, frame_ids, request.image_size, augment, rng, num_tracks)

    def __getitem__(self, key: int | SampleRequest) -> dict[str, Any]:
        if isinstance(key, SampleRequest):
            return self.sample_for_request(key, TRAINING)
        index = int(key)
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"{self.name}: scene index {key} out of range [0, {len(self)})")
        return self.get_sample(index, self.default_frame_ids(index), self.image_size)

    # -- hooks -------------------------------------------------------------------------------

    def _processed_views(self, index: int, frame_ids: list[int], image_size: tuple[int, int] | None,
                         augment: MultiViewAugment | None, rng: np.random.Generator) -> list[View]:
        views = self.load_views(index, frame_ids)
        if image_size is None:
            return views
        processor = augment or VALIDATION
        return processor.process(views, image_size, rng if augment is not None else None)

    def _tracks(self, index: int, sample: dict[str, Any], num_tracks: int, rng: np.random.Generator) -> dict:
        return tracks_from_depth(sample, num_tracks, rng)


#: Deterministic processing of ``ds[i]`` with an ``image_size``: centred crop and resize, no jitter.
VALIDATION = MultiViewAugment(AugmentConfig(train=False))
#: Processing of ``ds[SampleRequest(...)]``: the default training augmentation.
TRAINING = MultiViewAugment(AugmentConfig(train=True))


@contextmanager
def torch_single_thread() -> Iterator[None]:
    """Run the body with one torch intra-op thread, then restore the previous count.

    Sample building works on small tensors one sample at a time; on a busy machine
    torch's intra-op threads mostly wait on each other (10-50x slower than one
    thread). DataLoader workers already use one thread; this makes loading in the
    main process (``num_workers=0``) behave the same. The setting is process-wide
    while the body runs, so do not build samples in a thread that runs beside
    model computation.
    """
    previous = torch.get_num_threads()
    if previous == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _check_size(size: Any, name: str) -> tuple[int, int]:
    try:
        height, width = (int(s) for s in size)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be (H, W) positive ints, got {size!r}") from None
    if height < 1 or width < 1:
        raise ValueError(f"{name} must be (H, W) positive ints, got {size!r}")
    return height, width


class SceneListDataset(MultiViewDataset):
    """A :class:`MultiViewDataset` over ``self.scenes``: objects with ``name``,
    ``cam_from_world [F, 3, 4]``, ``intrinsics [F, 3, 3]``, ``sizes [F, 2]`` and
    ``load_view(frame) -> View`` (COLMAP scenes, scene folders, CO3D sequences).
    """

    scenes: list

    def __len__(self) -> int:
        return len(self.scenes)

    def scene_name(self, index: int) -> str:
        return self.scenes[index].name

    def frame_cameras(self, index: int) -> FrameCameras:
        s = self.scenes[index]
        return FrameCameras(s.cam_from_world, s.intrinsics, s.sizes)

    def load_views(self, index: int, frame_ids: Sequence[int]) -> list[View]:
        return [self.scenes[index].load_view(int(f)) for f in frame_ids]
