"""The exported prior (torch.export, fixed B, T, H, W) matches eager, after a save and load; ONNX when installed."""

from __future__ import annotations

import pytest
import torch

from testutils import TOL, assert_close
from vggt3d import GeometryPrior, ModelConfig, VGGT3D
from vggt3d.config import AggregatorConfig, DenseHeadConfig, EncoderConfig, TrackHeadConfig
from vggt3d.prior import export_onnx, export_prior
from vggt3d.prior.export import OUTPUT_NAMES, load_exported_prior
from vggt3d.testing import load_rule_weights


def micro_prior() -> GeometryPrior:
    """Much smaller than the tiny preset (exporting is slow on CPU); windows and a resize included."""
    config = ModelConfig(encoder=EncoderConfig(embed_dim=32, depth=1, num_heads=2),
                         aggregator=AggregatorConfig(embed_dim=32, depth=1, num_heads=2),
                         dense_head=DenseHeadConfig(layers=[0, 0, 0, 0]), track_head=TrackHeadConfig(layers=[0, 0, 0, 0]),
                         heads=["camera"])
    return GeometryPrior(load_rule_weights(VGGT3D(config)), layers=[0], resolution=70, window=2)


def eager_outputs(prior, frames):
    feats = prior(frames)
    return [torch.stack([getattr(feats, name)[i] for i in feats.layers]) for name in OUTPUT_NAMES]


def test_exported_program_matches_eager(tmp_path):
    prior = micro_prior()
    frames = torch.rand(1, 3, 3, 40, 50, generator=torch.Generator().manual_seed(0))  # 2 windows, resized
    export_prior(prior, (1, 3, 40, 50), tmp_path / "prior.pt2")
    program = load_exported_prior(tmp_path / "prior.pt2")
    outputs = program(frames)
    expected = eager_outputs(prior, frames)
    assert [tuple(o.shape) for o in outputs] == [(1, 1, 3, 4, 5, 64), (1, 1, 3, 64), (1, 1, 3, 4, 64)]
    for name, a, b in zip(OUTPUT_NAMES, outputs, expected):
        assert_close(a, b, **TOL, name=name)
    # The eager prior still works after export (the RoPE change is temporary).
    assert_close(eager_outputs(prior, frames)[0], expected[0], **TOL, name="eager after export")


def test_onnx_export_matches_eager(tmp_path):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxscript")
    ort = pytest.importorskip("onnxruntime")
    prior = micro_prior()
    frames = torch.rand(1, 3, 3, 40, 50, generator=torch.Generator().manual_seed(0))
    export_onnx(prior, frames, tmp_path / "prior.onnx")
    session = ort.InferenceSession(str(tmp_path / "prior.onnx"))
    outputs = session.run(None, {"frames": frames.numpy()})
    for name, a, b in zip(OUTPUT_NAMES, outputs, eager_outputs(prior, frames)):
        assert_close(torch.from_numpy(a), b, rtol=1e-3, atol=1e-3, name=name)
