"""Mixtures of datasets and the dataset registry (``build_dataset(name, **kwargs)``).

:class:`MixedDataset` maps each of its ``length`` indices to one child
dataset (drawn by ``weights``) and one scene of that child (uniform),
deterministically from ``(seed, index)``, so mixtures are reproducible and
work with the batch sampler like any dataset.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from .base import FrameCameras, MultiViewDataset
from .views import View

__all__ = ["DATASETS", "MixedDataset", "build_dataset", "register_dataset"]


class MixedDataset(MultiViewDataset):
    """A weighted mixture of multi-view datasets.

    Args:
        datasets: the children (each a :class:`~vggt3d.data.base.MultiViewDataset`).
        weights: relative sampling weights (default: proportional to the children's lengths).
        length: number of indices (default: the sum of the children's lengths).
        seed: fixes which child and scene each index maps to.
    """

    name = "mixed"

    def __init__(self, datasets: Sequence[MultiViewDataset], weights: Sequence[float] | None = None,
                 length: int | None = None, seed: int = 0) -> None:
        super().__init__(seed=seed)
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("MixedDataset needs at least one dataset")
        for i, d in enumerate(self.datasets):
            if not isinstance(d, MultiViewDataset):
                raise TypeError(f"datasets[{i}] must be a MultiViewDataset, got {type(d).__name__}")
            if len(d) == 0:
                raise ValueError(f"datasets[{i}] ({d.name}) is empty")
        lengths = np.array([len(d) for d in self.datasets], dtype=np.float64)
        w = lengths if weights is None else np.asarray(weights, dtype=np.float64)
        if w.shape != (len(self.datasets),) or (w < 0).any() or w.sum() <= 0:
            raise ValueError(f"weights must be {len(self.datasets)} non-negative numbers with a positive sum, "
                             f"got {weights}")
        self.weights = w / w.sum()
        self.length = int(lengths.sum()) if length is None else int(length)
        if self.length < 1:
            raise ValueError(f"length must be >= 1, got {length}")

    def __len__(self) -> int:
        return self.length

    def resolve(self, index: int) -> tuple[MultiViewDataset, int]:
        """The child dataset and its scene index that serve ``index`` (deterministic in ``(seed, index)``)."""
        if not 0 <= index < self.length:
            raise IndexError(f"mixed dataset index {index} out of range [0, {self.length})")
        rng = np.random.default_rng([self.seed, index, 0x313])
        child = self.datasets[int(rng.choice(len(self.datasets), p=self.weights))]
        return child.resolve(int(rng.integers(len(child))))  # a nested mixture resolves further

    # The mixture delegates every per-scene question to the child that serves the index.
    def scene_name(self, index: int) -> str:
        child, i = self.resolve(index)
        return child.scene_name(i)

    def frame_cameras(self, index: int) -> FrameCameras:
        child, i = self.resolve(index)
        return child.frame_cameras(i)

    def load_views(self, index: int, frame_ids: Sequence[int]) -> list[View]:
        child, i = self.resolve(index)
        return child.load_views(i, frame_ids)

    def select_frames(self, index: int, num_frames: int, rng: np.random.Generator) -> list[int]:
        child, i = self.resolve(index)
        return child.select_frames(i, num_frames, rng)

    def default_frame_ids(self, index: int) -> list[int]:
        child, i = self.resolve(index)
        return child.default_frame_ids(i)

    def get_sample(self, index: int, frame_ids: Sequence[int], image_size: tuple[int, int] | None = None,
                   augment=None, rng: np.random.Generator | None = None, num_tracks: int | None = None
                   ) -> dict[str, Any]:
        child, i = self.resolve(index)
        return child.get_sample(i, frame_ids, image_size, augment, rng, num_tracks)

    def __getitem__(self, key):
        if isinstance(key, (int, np.integer)):
            index = int(key) + (self.length if int(key) < 0 else 0)
            child, i = self.resolve(index)
            return child[i]
        return super().__getitem__(key)


#: name -> factory(**kwargs) returning a MultiViewDataset. Filled below; extend with register_dataset.
DATASETS: dict[str, Callable[..., MultiViewDataset]] = {}


def register_dataset(name: str, factory: Callable[..., MultiViewDataset], overwrite: bool = False) -> None:
    """Make ``build_dataset(name, **kwargs)`` call ``factory(**kwargs)``."""
    if name in DATASETS and not overwrite:
        raise ValueError(f"dataset {name!r} is already registered")
    DATASETS[name] = factory


def build_dataset(name: str, **kwargs: Any) -> MultiViewDataset:
    """Build a registered dataset by name: ``synthetic``, ``scene_folder``, ``colmap``, ``co3d`` or ``mixed``.

    ``synthetic`` takes :class:`~vggt3d.data.synthetic.SyntheticConfig` fields as
    keywords (or ``config=``); the others take their class's arguments; ``mixed``
    takes ``datasets`` as a list of datasets or of ``{"name": ..., **kwargs}`` dicts.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; registered: {sorted(DATASETS)}")
    try:
        return DATASETS[name](**kwargs)
    except TypeError as exc:
        raise TypeError(f"build_dataset({name!r}): {exc}") from exc


def _synthetic(config=None, min_overlap: float = 0.2, **fields: Any) -> MultiViewDataset:
    from .synthetic import SyntheticConfig, SyntheticScenes

    if config is not None and fields:
        raise TypeError("pass either config= or SyntheticConfig fields, not both")
    return SyntheticScenes(config or SyntheticConfig(**fields), min_overlap=min_overlap)


def _scene_folder(**kwargs: Any) -> MultiViewDataset:
    from .scene_folder import SceneFolderDataset

    return SceneFolderDataset(**kwargs)


def _colmap(**kwargs: Any) -> MultiViewDataset:
    from .colmap import ColmapDataset

    return ColmapDataset(**kwargs)


def _co3d(**kwargs: Any) -> MultiViewDataset:
    from .co3d import Co3dDataset

    return Co3dDataset(**kwargs)


def _mixed(datasets: Sequence[Any], weights: Sequence[float] | None = None, length: int | None = None,
           seed: int = 0) -> MultiViewDataset:
    children = [d if isinstance(d, MultiViewDataset) else build_dataset(**d) for d in datasets]
    return MixedDataset(children, weights, length, seed)


for _name, _factory in (("synthetic", _synthetic), ("scene_folder", _scene_folder), ("colmap", _colmap),
                        ("co3d", _co3d), ("mixed", _mixed)):
    register_dataset(_name, _factory)
