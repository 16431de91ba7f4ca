"""The memory and time model and the strategy it picks (the measured check is benchmarks/memory_model.py)."""

from __future__ import annotations

import pytest
import torch

from vggt3d.config import ModelConfig
from vggt3d.longvideo import ChunkPlanError
from vggt3d.planner import PlanError, estimate_cost, max_chunk_frames, plan_inference
from vggt3d.runtime import estimate_memory

CONFIG = ModelConfig()  # VGGT-1B


def test_memory_grows_linearly_and_time_quadratically_with_frames():
    one, two, four = (estimate_cost(CONFIG, s, 518, 518, torch.bfloat16, "cuda") for s in (512, 1024, 2048))
    per_frame = (two.memory_bytes - one.memory_bytes) / 512  # past the heads phase, the trunk's peak counts
    assert (four.memory_bytes - two.memory_bytes) / 1024 == pytest.approx(per_frame, rel=1e-6)
    assert four.flops / two.flops > two.flops / one.flops > 2.0  # the global attention's (S P)^2 term
    assert set(one.terms) >= {"kept_layers", "block", "dense_heads", "outputs"}


def test_estimate_memory_delegates_to_the_planner():
    assert estimate_memory(CONFIG, 8, 518, 518, torch.bfloat16) == estimate_cost(
        CONFIG, 8, 518, 518, torch.bfloat16, "cuda", postprocess=True).memory_bytes


def test_chunked_memory_is_flat_in_the_video_length():
    from vggt3d.planner import RESULT_BYTES_PER_PIXEL

    for device in ("cuda", "cpu"):  # a CPU run also holds its results: a few bytes per pixel in host memory
        short, long = (estimate_cost(CONFIG, s, 294, 518, torch.float32, device, "chunked", chunk=32, overlap=8)
                       for s in (100, 1000))
        exact = estimate_cost(CONFIG, 1000, 294, 518, torch.float32, device)
        grows = 900 * 294 * 518 * RESULT_BYTES_PER_PIXEL if device == "cpu" else 0
        assert long.memory_bytes - short.memory_bytes == grows and long.memory_bytes < exact.memory_bytes / 10
    merged = estimate_cost(CONFIG, 64, 294, 518, torch.bfloat16, "cuda", "merged", merge_ratio=0.5)
    assert merged.flops < estimate_cost(CONFIG, 64, 294, 518, torch.bfloat16, "cuda").flops


def test_plan_picks_exact_then_chunks_and_says_why():
    exact = estimate_cost(CONFIG, 200, 294, 518, torch.bfloat16, "cuda", postprocess=True).memory_bytes
    plan = plan_inference(CONFIG, 200, 294, 518, torch.bfloat16, "cuda", exact + 1)
    assert plan.strategy == "exact" and "one pass" in plan.reason
    plan = plan_inference(CONFIG, 200, 294, 518, torch.bfloat16, "cuda", exact // 2, budget_source="24 GB GPU")
    assert plan.strategy == "chunked" and 8 <= plan.chunk <= 64 and plan.overlap >= 4
    assert "more than" in plan.reason and "24 GB GPU" in plan.reason
    assert plan.estimate.memory_bytes <= exact // 2
    limit = max_chunk_frames(CONFIG, 294, 518, torch.bfloat16, "cuda", exact // 2, 200)
    with pytest.raises(ChunkPlanError, match="above what fits"):
        plan_inference(CONFIG, 200, 294, 518, torch.bfloat16, "cuda", exact // 2, chunk=limit + 1)
    with pytest.raises(PlanError, match="--max-frames"):
        plan_inference(CONFIG, 200, 294, 518, torch.bfloat16, "cuda", 1 << 20)
    with pytest.raises(PlanError, match="cannot run in chunks"):
        plan_inference(CONFIG, 200, 294, 518, torch.bfloat16, "cuda", exact // 2, chunk=16, num_queries=10)


def test_lean_pass_needs_less_memory_per_frame_than_the_plain_pass():
    plain = [estimate_cost(CONFIG, s, 518, 518, torch.float32, "cpu", lean=False).terms["block"] for s in (32, 64)]
    lean = [estimate_cost(CONFIG, s, 518, 518, torch.float32, "cpu", lean=True).terms["block"] for s in (32, 64)]
    assert lean[0] < plain[0] and lean[1] - lean[0] < 0.75 * (plain[1] - plain[0])
    small = estimate_cost(CONFIG, 2, 28, 28, torch.float32, "cpu", lean=True)  # below one chunk: the plain block
    assert small.terms["block"] == estimate_cost(CONFIG, 2, 28, 28, torch.float32, "cpu", lean=False).terms["block"]
    assert estimate_cost(CONFIG, 64, 518, 518, torch.float32, "cpu").terms["block"] == lean[1]  # inference default
