"""Chunked inference: merging predictions of chunks into one world frame, and the model-facing API and CLI."""

from __future__ import annotations

import numpy as np
import pytest

from vggt3d.longvideo import AlignmentError, LoopConfig, plan_chunks, run_chunked, umeyama
from vggt3d.longvideo.synthetic import corridor, simulate_chunks


def _predictor(traj, seed=0, corrupt=None):
    calls = iter(range(seed, seed + 10_000))

    def predict(frames):
        (g,) = simulate_chunks(traj, [tuple(frames)], seed=next(calls), noise=0.002, outliers=0.05)
        depth = np.einsum("shwj,sj->shw", g.points, g.cam_from_world[:, 2, :3]) + g.cam_from_world[:, 2, 3, None, None]
        if corrupt is not None and frames[0] == corrupt:  # this chunk's depths are wrong
            depth = depth * np.random.default_rng(0).uniform(0.2, 5.0, depth.shape)
        return {"cam_from_world": g.cam_from_world, "intrinsics": g.intrinsics, "depth": depth.astype(np.float32),
                "conf": g.conf}

    return predict


def test_merged_frames_share_one_world():
    traj = corridor(90)
    plan = plan_chunks(90, 20, 6)
    result = run_chunked(_predictor(traj), plan, loops=LoopConfig(enabled=False), stride=2)
    assert result.cam_from_world.shape == (90, 4, 4) and result.depth.shape == (90, 24, 32)
    assert len(result.report["alignment"]) == len(plan) - 1
    # Cameras: the trajectory up to one similarity.
    c = -np.einsum("tji,tj->ti", result.cam_from_world[:, :3, :3], result.cam_from_world[:, :3, 3])
    fit = umeyama(c, traj.centres)
    assert np.sqrt(((fit.apply(c) - traj.centres) ** 2).sum(1).mean()) < 0.01 * traj.path_length
    # Depths: in world units, so every frame's depth is the true depth over the same global scale.
    cam = traj.cam_from_world
    true = np.einsum("thwj,tj->thw", traj.points, cam[:, 2, :3]) + cam[:, 2, 3, None, None]
    ratio = np.median((result.depth * fit.scale / true).reshape(90, -1), axis=1)
    np.testing.assert_allclose(ratio, 1.0, atol=0.03)


def test_disagreeing_chunks_are_named_and_nothing_is_returned():
    traj = corridor(60)
    plan = plan_chunks(60, 20, 6)
    with pytest.raises(AlignmentError, match=r"chunks 1 and 2 .*--overlap"):
        run_chunked(_predictor(traj, corrupt=plan[2].frames[0]), plan, loops=LoopConfig(enabled=False))
