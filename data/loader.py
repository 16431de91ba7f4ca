"""Batches of equal shape with an image budget, reproducible and resumable data order.

Each batch draws, from ``(seed, epoch, batch index)``: S frames (uniform in
``num_frames``), one aspect ratio (training) and so one image size, and
``B = max(1, images_per_batch // S)`` scenes taken in order from a per-epoch
permutation of the dataset. Every sample of the batch is requested with that
S and size and its own seed, so batches stack into ``[B, S, ...]`` tensors.

The order depends only on the seed, so a run resumes exactly: save
``loader.state_dict()`` (epoch and batches already consumed) with the
checkpoint and call ``loader.load_state_dict(state)`` before iterating.
"""

from __future__ import annotations

from typing import Any, Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from .augment import PATCH_SIZE, AugmentConfig, MultiViewAugment, target_size_for_aspect
from .base import MultiViewDataset, SampleRequest, torch_single_thread
from .normalize import normalize_sample

__all__ = ["MultiViewBatchSampler", "MultiViewLoader", "collate_samples", "make_dataloader"]


class MultiViewBatchSampler:
    """Plans the batches of each epoch as lists of :class:`~vggt3d.data.base.SampleRequest`.

    Args:
        dataset_length: number of scenes (indices) in the dataset.
        images_per_batch: image budget per batch; ``B = max(1, images_per_batch // S)``.
        num_frames: inclusive range ``(lo, hi)`` of S (or one int).
        image_size: an int ``W_t`` (training: height from a random aspect per batch, see
            :meth:`~vggt3d.data.augment.MultiViewAugment.draw_aspect`; validation: square) or
            a fixed ``(H, W)``.
        augment: supplies the aspect distribution.
        shuffle: permute the scenes each epoch (default for training).
        seed: fixes everything.
        drop_last: drop an epoch's last, smaller batch.
    """

    def __init__(self, dataset_length: int, images_per_batch: int, num_frames: int | tuple[int, int],
                 image_size: int | tuple[int, int], augment: MultiViewAugment, shuffle: bool, seed: int,
                 drop_last: bool = False, patch_size: int = PATCH_SIZE) -> None:
        if dataset_length < 1:
            raise ValueError("the dataset is empty")
        if images_per_batch < 1:
            raise ValueError(f"images_per_batch must be >= 1, got {images_per_batch}")
        lo, hi = (num_frames, num_frames) if isinstance(num_frames, int) else (int(num_frames[0]), int(num_frames[1]))
        if not 1 <= lo <= hi:
            raise ValueError(f"num_frames must be >= 1 (or a range lo <= hi), got {num_frames}")
        if isinstance(image_size, int):
            if image_size < patch_size:
                raise ValueError(f"image_size must be >= the patch size {patch_size}, got {image_size}")
        else:
            image_size = (int(image_size[0]), int(image_size[1]))
        self.dataset_length = int(dataset_length)
        self.images_per_batch = int(images_per_batch)
        self.num_frames = (lo, hi)
        self.image_size = image_size
        self.augment = augment
        self.shuffle = shuffle
        self.seed = int(seed)
        self.drop_last = drop_last
        self.patch_size = int(patch_size)
        self._plans: dict[int, list[list[SampleRequest]]] = {}

    def plan(self, epoch: int) -> list[list[SampleRequest]]:
        """All batches of ``epoch`` (cached; cheap: integers only)."""
        if epoch in self._plans:
            return self._plans[epoch]
        rng = np.random.default_rng([self.seed, epoch, 0xE90C])
        order = rng.permutation(self.dataset_length) if self.shuffle else np.arange(self.dataset_length)
        batches, cursor, k = [], 0, 0
        while cursor < self.dataset_length:
            brng = np.random.default_rng([self.seed, epoch, k, 0xBA7C])
            frames = int(brng.integers(self.num_frames[0], self.num_frames[1] + 1))
            if isinstance(self.image_size, int):
                size = target_size_for_aspect(self.image_size, self.augment.draw_aspect(brng), self.patch_size)
            else:
                size = self.image_size
            count = max(1, self.images_per_batch // frames)
            indices = order[cursor: cursor + count]
            if len(indices) < count and self.drop_last:
                break
            seeds = brng.integers(0, 2**62, size=len(indices))
            batches.append([SampleRequest(int(i), frames, size, int(s)) for i, s in zip(indices, seeds)])
            cursor += count
            k += 1
        self._plans = {epoch: batches}  # keep only the current epoch
        return batches

    def __len__(self) -> int:
        return len(self.plan(0))


class _RequestDataset(Dataset):
    """Serves :class:`SampleRequest` items: co-visible frames, augmentation, tracks, optional normalisation."""

    def __init__(self, dataset: MultiViewDataset, augment: MultiViewAugment, num_tracks: int | None,
                 normalize: bool) -> None:
        self.dataset, self.augment, self.num_tracks, self.normalize = dataset, augment, num_tracks, normalize

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, request: SampleRequest) -> dict[str, Any]:
        with torch_single_thread():
            sample = self.dataset.sample_for_request(request, self.augment, self.num_tracks)
            return normalize_sample(sample) if self.normalize else sample


def collate_samples(samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Stack samples of equal shape into a batch.

    Convention: tensors become ``[B, ...]`` (e.g. ``images [B, S, 3, H, W]``);
    ``frame_ids`` becomes an int64 ``[B, S]`` tensor; strings become lists.

    Raises:
        ValueError: samples with different keys or shapes, naming the key.
    """
    if not samples:
        raise ValueError("cannot collate an empty list of samples")
    with torch_single_thread():
        return _collate(samples)


def _collate(samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
    keys = list(samples[0])
    for s in samples[1:]:
        if list(s) != keys:
            raise ValueError(f"samples have different keys: {sorted(keys)} vs {sorted(s)}")
    batch: dict[str, Any] = {}
    for key in keys:
        values = [s[key] for s in samples]
        if isinstance(values[0], torch.Tensor):
            shapes = {tuple(v.shape) for v in values}
            if len(shapes) != 1:
                raise ValueError(f"cannot stack {key!r}: shapes differ {sorted(shapes)}")
            batch[key] = torch.stack(values)
        elif key == "frame_ids":
            batch[key] = torch.tensor(values, dtype=torch.int64)
        else:
            batch[key] = values
    return batch


class MultiViewLoader:
    """Iterable over the batches of one epoch at a time, resumable mid-epoch.

    Each ``iter(loader)`` yields the remaining batches of the current epoch and
    then moves to the next epoch. ``state_dict()`` records the epoch and the
    batches consumed; ``load_state_dict()`` restores them, so the next iteration
    continues with exactly the batches that would have come next.
    """

    def __init__(self, dataset: MultiViewDataset, sampler: MultiViewBatchSampler, augment: MultiViewAugment,
                 num_tracks: int | None, normalize: bool, num_workers: int, pin_memory: bool = False) -> None:
        self.dataset = dataset
        self.batch_sampler = sampler
        self._requests = _RequestDataset(dataset, augment, num_tracks, normalize)
        self.num_workers = int(num_workers)
        self.pin_memory = pin_memory
        self.epoch = 0
        self.batch_index = 0

    def __len__(self) -> int:
        """Batches in the current epoch (including those already consumed)."""
        return len(self.batch_sampler.plan(self.epoch))

    def set_epoch(self, epoch: int) -> None:
        """Start ``epoch`` from its first batch."""
        self.epoch, self.batch_index = int(epoch), 0

    def state_dict(self) -> dict[str, int]:
        """``{"epoch", "batch_index" (batches consumed in that epoch), "seed"}``: where the data order stands."""
        return {"epoch": self.epoch, "batch_index": self.batch_index, "seed": self.batch_sampler.seed}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Continue from :meth:`state_dict`'s position; refuses a state saved with another seed."""
        if int(state.get("seed", self.batch_sampler.seed)) != self.batch_sampler.seed:
            raise ValueError(f"state was saved with seed {state['seed']}, this loader has seed "
                             f"{self.batch_sampler.seed}: the data order would differ")
        self.epoch, self.batch_index = int(state["epoch"]), int(state["batch_index"])

    def __iter__(self) -> Iterator[dict[str, Any]]:
        plan = self.batch_sampler.plan(self.epoch)[self.batch_index:]
        loader = DataLoader(self._requests, batch_sampler=plan, collate_fn=collate_samples,
                            num_workers=self.num_workers, pin_memory=self.pin_memory,
                            persistent_workers=False)
        for batch in loader:
            self.batch_index += 1
            yield batch
        self.epoch, self.batch_index = self.epoch + 1, 0


def make_dataloader(dataset: MultiViewDataset, images_per_batch: int, num_frames: int | tuple[int, int] = (2, 24),
                    image_size: int | tuple[int, int] = 518, train: bool = True, seed: int = 0, num_workers: int = 0,
                    augment: MultiViewAugment | AugmentConfig | None = None, num_tracks: int | None = None,
                    normalize: bool = False, shuffle: bool | None = None, drop_last: bool = False,
                    pin_memory: bool = False, patch_size: int = PATCH_SIZE) -> MultiViewLoader:
    """Batches ``dict[str, Tensor [B, S, ...]]`` of equal shape from a multi-view dataset.

    Args:
        dataset: any :class:`~vggt3d.data.base.MultiViewDataset` (or a mixture).
        images_per_batch: image budget; ``B = max(1, images_per_batch // S)``.
        num_frames: S per batch, uniform in the inclusive range (or an int).
        image_size: ``W_t`` (training: ``H_t`` from a random aspect per batch,
            ``floor(int(W_t a) / 14) * 14``; validation: square) or a fixed ``(H, W)``.
        train: training augmentation (random crops, margins, colour jitter, aspect)
            or deterministic validation processing.
        seed: fixes the data order, frame choice and augmentation.
        num_workers: DataLoader worker processes (each sample is deterministic anyway).
        augment: custom :class:`~vggt3d.data.augment.MultiViewAugment` or its config.
        num_tracks: tracks per sample (None: the dataset's own setting).
        normalize: apply :func:`~vggt3d.data.normalize.normalize_sample` to each sample
            (adds ``normalization_scale [B]``); the trainer may do it instead.
        shuffle: permute scenes each epoch (default: ``train``).
        drop_last: drop each epoch's last, smaller batch.
        patch_size: the model's patch size (``config.patch_size``); training heights are multiples of it.

    Returns:
        A :class:`MultiViewLoader` (iterable, ``len()``, ``state_dict``/``load_state_dict``,
        ``set_epoch``).
    """
    if not isinstance(dataset, MultiViewDataset):
        raise TypeError(f"dataset must be a MultiViewDataset, got {type(dataset).__name__}")
    if isinstance(augment, AugmentConfig):
        augment = MultiViewAugment(augment)
    augment = augment or MultiViewAugment(AugmentConfig(train=train))
    sampler = MultiViewBatchSampler(len(dataset), images_per_batch, num_frames, image_size, augment,
                                    train if shuffle is None else shuffle, seed, drop_last, patch_size)
    return MultiViewLoader(dataset, sampler, augment, num_tracks, normalize, num_workers, pin_memory)
