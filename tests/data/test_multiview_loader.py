"""Batches of equal shape, image budget, reproducible and resumable order; mixtures; registry; frame choice."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vggt3d.data import (
    DATASETS,
    MixedDataset,
    SceneFolderDataset,
    SyntheticConfig,
    SyntheticScenes,
    build_dataset,
    check_sample,
    collate_samples,
    depth_visibility,
    make_dataloader,
    write_scene_folder,
)
from vggt3d.data.selection import overlap_scores, select_covisible_frames
from vggt3d.geometry import depth_to_world_points, project_points


@pytest.fixture(scope="module")
def dataset():
    return SyntheticScenes(SyntheticConfig(num_scenes=10, num_frames=(3, 8), image_size=(56, 70), seed=4,
                                           num_tracks=8))


def _signature(batch):
    return batch["scene"], batch["frame_ids"].tolist(), tuple(batch["images"].shape), float(batch["images"].sum())


def test_batches_have_equal_shapes_and_budget(dataset):
    loader = make_dataloader(dataset, images_per_batch=12, num_frames=(2, 5), image_size=56, seed=0)
    seen = 0
    for batch in loader:
        B, S, _, H, W = batch["images"].shape
        assert 2 <= S <= 5 and B == min(max(1, 12 // S), len(dataset) - seen) and W == 56 and H % 14 == 0
        assert 14 <= H <= 56
        assert batch["depths"].shape == (B, S, H, W) and batch["world_points"].shape == (B, S, H, W, 3)
        assert batch["tracks"].shape == (B, S, 8, 2) and batch["frame_ids"].shape == (B, S)
        for b in range(B):
            check_sample({k: (v[b] if isinstance(v, torch.Tensor) and k != "frame_ids" else v[b])
                          for k, v in batch.items()} | {"frame_ids": batch["frame_ids"][b].tolist()}, "batch")
        seen += B
    assert seen == len(dataset) and loader.state_dict()["epoch"] == 1


def test_order_is_reproducible_and_resumable(dataset):
    def make():
        return make_dataloader(dataset, images_per_batch=8, num_frames=(2, 4), image_size=42, seed=3)

    reference = [_signature(b) for b in make()]
    assert [_signature(b) for b in make()] == reference  # same seed, same data
    loader = make()
    it = iter(loader)
    first = [_signature(next(it)) for _ in range(2)]
    state = loader.state_dict()
    assert state == {"epoch": 0, "batch_index": 2, "seed": 3}
    resumed = make()
    resumed.load_state_dict(state)
    assert first + [_signature(b) for b in resumed] == reference
    # The next epoch is another permutation; set_epoch replays any epoch.
    second = [_signature(b) for b in resumed]
    assert [s[0] for s in second] != [s[0] for s in reference]
    replay = make()
    replay.set_epoch(1)
    assert [_signature(b) for b in replay] == second
    other = make_dataloader(dataset, images_per_batch=8, num_frames=(2, 4), image_size=42, seed=4)
    assert [_signature(b) for b in other] != reference
    with pytest.raises(ValueError, match="seed"):
        other.load_state_dict(state)


def test_validation_batches_are_square_and_deterministic(dataset):
    loader = make_dataloader(dataset, images_per_batch=6, num_frames=3, image_size=42, train=False, seed=1)
    batches = list(loader)
    assert all(b["images"].shape[-2:] == (42, 42) for b in batches)
    assert [b["scene"] for b in batches][0] == [dataset.scene_name(0), dataset.scene_name(1)]  # no shuffle
    fixed = next(iter(make_dataloader(dataset, 4, 2, image_size=(28, 56), seed=0, normalize=True)))
    assert fixed["images"].shape[-2:] == (28, 56) and fixed["normalization_scale"].shape == (2,)


def test_covisible_frame_selection(dataset):
    scene = dataset.scene(0)
    cams = dataset.frame_cameras(0)
    points = dataset.frame_points(0)
    scores = overlap_scores(0, points, cams.cam_from_world, cams.intrinsics, cams.sizes)
    assert scores[0] == 1.0 and ((0 <= scores) & (scores <= 1)).all()
    rng = np.random.default_rng(0)
    for _ in range(20):
        frames = dataset.select_frames(0, 3, rng)
        assert len(frames) == 3 and len(set(frames)) == 3  # enough frames: no repeats
        anchor_scores = overlap_scores(frames[0], points, cams.cam_from_world, cams.intrinsics, cams.sizes)
        good = (anchor_scores >= dataset.min_overlap).sum() - 1
        if good >= 2:
            assert all(anchor_scores[f] >= dataset.min_overlap for f in frames[1:])
    assert len(scene.cam_from_world) >= 3


def test_selection_prefers_overlap_over_index():
    """Frames that see nothing of the anchor are used only when nothing better exists."""
    scores = {0: np.array([1.0, 0.0, 0.9, 0.0, 0.8]), 2: np.array([0.9, 0.0, 1.0, 0.0, 0.7]),
              4: np.array([0.8, 0.0, 0.7, 0.0, 1.0]), 1: np.array([0.0, 1.0, 0.0, 0.5, 0.0]),
              3: np.array([0.0, 0.5, 0.0, 1.0, 0.0])}
    for seed in range(10):
        frames = select_covisible_frames(3, scores.__getitem__, 5, np.random.default_rng(seed))
        anchor = frames[0]
        assert all(scores[anchor][f] > 0 for f in frames[1:]) or anchor in (1, 3)
        if anchor in (1, 3):  # only one good partner: it is used, then the best of the rest
            assert frames.count(3 if anchor == 1 else 1) == 1
    assert select_covisible_frames(4, lambda a: np.ones(2), 2, np.random.default_rng(0)).count(0) >= 1
    with pytest.raises(ValueError):
        select_covisible_frames(0, lambda a: np.ones(2), 2, np.random.default_rng(0))


def test_mixture_and_registry(dataset):
    other = SyntheticScenes(SyntheticConfig(num_scenes=4, num_frames=3, image_size=(56, 70), seed=9))
    mixed = MixedDataset([dataset, other], weights=[0.25, 0.75], length=40, seed=2)
    assert len(mixed) == 40
    owners = [mixed.resolve(i)[0] is other for i in range(40)]
    assert 20 <= sum(owners) <= 38  # weighted towards the second
    assert [mixed.resolve(i)[1] for i in range(40)] == [MixedDataset([dataset, other], [0.25, 0.75], 40, 2)
                                                        .resolve(i)[1] for i in range(40)]
    child, index = mixed.resolve(5)
    assert torch.equal(mixed[5]["images"], child[index]["images"])
    batch = next(iter(make_dataloader(mixed, 6, (2, 3), 42, seed=0)))
    assert batch["images"].shape[0] >= 2
    assert {"synthetic", "scene_folder", "colmap", "co3d", "mixed"} <= set(DATASETS)
    built = build_dataset("synthetic", num_scenes=3, num_frames=2, image_size=(28, 28))
    assert len(built) == 3 and built[0]["images"].shape == (2, 3, 28, 28)
    nested = build_dataset("mixed", datasets=[{"name": "synthetic", "num_scenes": 2, "image_size": (28, 28)}, built],
                           length=5)
    assert len(nested) == 5 and check_sample(nested[4], "nested")
    with pytest.raises(ValueError, match="unknown dataset"):
        build_dataset("imagenet")
    with pytest.raises(TypeError, match="synthetic"):
        build_dataset("synthetic", num_scene=3)
    with pytest.raises(ValueError, match="weights"):
        MixedDataset([dataset], weights=[-1.0])


def test_collate_errors(dataset):
    a, b = dataset[0], dataset[1]
    if a["images"].shape == b["images"].shape:
        b = dataset[2]
    with pytest.raises(ValueError, match="images"):
        collate_samples([a, b])
    with pytest.raises(ValueError, match="keys"):
        collate_samples([a, {k: v for k, v in a.items() if k != "tracks"}])


def test_scene_folder_training_batches_in_a_worker(tmp_path, scene_views):
    """The generic path: resampled frames, depth-based tracks, a worker process; geometry stays consistent."""
    _, views = scene_views
    for name in ("a", "b", "c"):
        write_scene_folder(tmp_path / name, [v.image for v in views], np.stack([v.cam_from_world for v in views]),
                           np.stack([v.intrinsics for v in views]), depths=[v.depth for v in views])
    ds = SceneFolderDataset(tmp_path, num_tracks=16)
    loader = make_dataloader(ds, images_per_batch=6, num_frames=(2, 3), image_size=42, seed=0, num_workers=1)
    batches = list(loader)
    assert sum(b["images"].shape[0] for b in batches) == 3
    for batch in batches:
        for b in range(batch["images"].shape[0]):
            depths, masks = batch["depths"][b].double(), batch["point_masks"][b]
            world, valid = depth_to_world_points(depths, batch["cam_from_world"][b].double(),
                                                 batch["intrinsics"][b].double())
            assert torch.equal(valid, masks)
            torch.testing.assert_close(batch["world_points"][b].double(), world * valid[..., None], atol=1e-5,
                                       rtol=1e-5)
            tracks, vis = batch["tracks"][b].double(), batch["track_visibility"][b]
            assert vis[0].all()
            # Visibility is the depth test of the projections of the frame-0 points.
            query = tracks[0].round().long()
            points = batch["world_points"][b, 0][query[:, 1], query[:, 0]].double()
            uv, z = project_points(points.expand(len(depths), -1, -1), batch["cam_from_world"][b].double(),
                                   batch["intrinsics"][b].double())
            uv[0] = tracks[0]  # frame 0 uses the query pixel centres themselves
            assert torch.equal(depth_visibility(uv, z, depths), vis)
            assert (uv - tracks)[vis].abs().max() < 1e-3
