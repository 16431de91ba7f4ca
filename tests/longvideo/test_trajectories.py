"""Chunk alignment and loop closure on exact synthetic long trajectories.

Each chunk's geometry is ground truth moved into its own random Sim(3) frame,
with a drift growing along the chunk (2 deg rotation, 3 % scale, 2 % of the
scene size in translation at its last frame), 0.3 % depth noise and 10 %
low-confidence outliers (:func:`vggt3d.longvideo.synthetic.simulate_chunks`).
Stated bounds (measured over seeds 1-8 by ``benchmarks/longvideo_alignment.py``:
corridor ATE <= 0.6 %, room ATE <= 0.5 % of the path; loop closure cut the
end-to-start drift 5-49x):

- ATE after a Sim(3) fit below 1 % of the path length;
- loop closure reduces the end-to-start drift at least 4x.
"""

from __future__ import annotations

import numpy as np
import pytest

from vggt3d.longvideo import AlignmentError, plan_chunks, umeyama
from vggt3d.longvideo.align import align_pair
from vggt3d.longvideo.pipeline import LoopConfig, align_sequence
from vggt3d.longvideo.synthetic import corridor, room_loop, simulate_chunks

DRIFT = dict(drift_rot_deg=2.0, drift_scale=0.03, drift_trans=0.02)


def _centres(cam: np.ndarray) -> np.ndarray:
    return -np.einsum("tji,tj->ti", cam[:, :3, :3], cam[:, :3, 3])


def ate(traj, cam: np.ndarray) -> float:
    """RMS camera-centre error after the best Sim(3), relative to the path length."""
    p, g = _centres(cam), traj.centres
    return float(np.sqrt(((umeyama(p, g).apply(p) - g) ** 2).sum(1).mean()) / traj.path_length)


def end_to_start(traj, cam: np.ndarray) -> float:
    """Error of the last camera's position seen from the first camera, in path lengths (scale free)."""
    p, g = _centres(cam), traj.centres
    seen = (cam[0, :3, :3] @ p[-1] + cam[0, :3, 3]) / np.linalg.norm(np.diff(p, axis=0), axis=1).sum()
    gt = traj.cam_from_world
    true = (gt[0, :3, :3] @ g[-1] + gt[0, :3, 3]) / traj.path_length
    return float(np.linalg.norm(seen - true))


def _descriptors(traj, seed: int = 0) -> np.ndarray:
    """Appearance stand-in: responses to landmarks around the room and the viewing direction."""
    rng = np.random.default_rng(seed)
    land = rng.uniform(-6, 6, (64, 3))
    d = np.exp(-((traj.centres[:, None] - land[None]) ** 2).sum(-1) / 2.0)
    return np.concatenate([d, 2 * traj.cam_from_world[:, 2, :3]], axis=1)


def test_corridor_walk_is_recovered():
    traj = corridor(300)
    plan = plan_chunks(300, 40, 10)
    chunks = simulate_chunks(traj, plan, seed=1, **DRIFT)
    result = align_sequence(plan, chunks)
    assert result.frames["cam_from_world"].shape == (300, 4, 4)
    assert result.frames["points"].shape == (300, 24, 32, 3)
    assert ate(traj, result.frames["cam_from_world"]) < 0.01


@pytest.mark.parametrize("seed", [1] + [pytest.param(s, marks=pytest.mark.slow) for s in (2, 3)])
def test_room_loop_closes(seed):
    traj = room_loop(360)
    plan = plan_chunks(360, 32, 8)
    chunks = simulate_chunks(traj, plan, seed=seed, **DRIFT)
    rng_seed = iter(range(1000, 2000))

    def predict(frames):  # a loop chunk: the model sees both visits at once, no chain drift
        return simulate_chunks(traj, [frames], seed=next(rng_seed), drift_rot_deg=0, drift_scale=0,
                               drift_trans=0)[0]

    open_loop = align_sequence(plan, chunks)
    closed = align_sequence(plan, chunks, descriptors=_descriptors(traj), predict=predict)
    assert len(closed.loops) >= 1 and closed.loops[0].b - closed.loops[0].a > 300
    before, after = end_to_start(traj, open_loop.frames["cam_from_world"]), end_to_start(
        traj, closed.frames["cam_from_world"])
    assert after * 4 < before, (before, after)
    assert ate(traj, closed.frames["cam_from_world"]) < 0.01


def test_false_loop_is_rejected():
    """A loop chunk whose second visit does not see the first visit's place is not used."""
    traj = room_loop(360)
    plan = plan_chunks(360, 32, 8)
    chunks = simulate_chunks(traj, plan, seed=4, **DRIFT)
    desc = _descriptors(traj)
    desc[170:190] = desc[0:20]  # frames 170-189 "look like" the start, but are across the room

    def predict(frames):
        return simulate_chunks(traj, [frames], seed=7, drift_rot_deg=0, drift_scale=0, drift_trans=0)[0]

    result = align_sequence(plan, chunks, descriptors=desc, predict=predict,
                            loops=LoopConfig(radius=0.001, max_loops=1))
    assert result.loops == [] and len(result.rejected) == 1
    assert "agree across the two visits" in result.rejected[0][1]


def test_unalignable_chunks_are_named():
    traj = corridor(120)
    plan = plan_chunks(120, 40, 10)
    chunks = simulate_chunks(traj, plan, seed=2)
    rng = np.random.default_rng(0)
    chunks[2].points[:] = rng.normal(size=chunks[2].points.shape)  # chunk 2 predicts noise
    with pytest.raises(AlignmentError, match="chunks 1 and 2"):
        align_sequence(plan, chunks)
    align_pair(chunks, 0, 1)  # the others still agree
