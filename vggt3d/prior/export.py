"""The geometry prior as a ``torch.export`` program (fixed B, T, H, W), and ONNX where the exporter allows.

The program maps frames ``[B, T, 3, H, W]`` (float32 RGB in [0, 1], exactly the
shape it was exported for) to a tuple of three tensors, named in
:data:`OUTPUT_NAMES`::

    patch_tokens     [L, B, T, h, w, C']   the prior's layers, ascending (prior.layers)
    camera_tokens    [L, B, T, C']
    register_tokens  [L, B, T, R, C']

It contains everything :class:`vggt3d.GeometryPrior` does for that shape: the
resize to the model grid and the windows (both fixed by the shape).

Limits: shapes are static (export again for another clip size); the heads
(cameras, depth, tracks) are not part of the program; gradients through the
program are not supported (it is exported in inference mode); on CUDA, export
and run on the same device and dtype. ONNX export needs the ``onnx`` and
``onnxscript`` packages (not vggt3d dependencies) and goes through the same
``torch.export`` graph.
"""

from __future__ import annotations

import os
from typing import Sequence

import torch
from torch import Tensor, nn

from .prior import GeometryPrior

__all__ = ["OUTPUT_NAMES", "export_onnx", "export_prior", "load_exported_prior"]

OUTPUT_NAMES = ("patch_tokens", "camera_tokens", "register_tokens")


class _FeatureProgram(nn.Module):
    """``GeometryPrior.forward`` with tensor outputs only (what an exported program can return)."""

    def __init__(self, prior: GeometryPrior) -> None:
        super().__init__()
        self.prior = prior

    def forward(self, frames: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        feats = self.prior(frames, grad=False)
        layers = feats.layers
        return (torch.stack([feats.patch_tokens[i] for i in layers]),
                torch.stack([feats.camera_tokens[i] for i in layers]),
                torch.stack([feats.register_tokens[i] for i in layers]))


def _example(prior: GeometryPrior, shape: Sequence[int] | Tensor) -> Tensor:
    if isinstance(shape, Tensor):
        return shape.detach().to(prior.device)
    if len(shape) != 4:
        raise ValueError(f"shape must be (B, T, H, W), got {tuple(shape)}")
    B, T, H, W = (int(s) for s in shape)
    return torch.rand(B, T, 3, H, W, device=prior.device)


def export_prior(prior: GeometryPrior, shape: Sequence[int] | Tensor,
                 path: str | os.PathLike | None = None) -> torch.export.ExportedProgram:
    """Export ``prior`` for frames of one shape ``(B, T, H, W)`` (or an example tensor ``[B, T, 3, H, W]``).

    Returns the :class:`torch.export.ExportedProgram` (call ``.module()(frames)``
    to run it) and saves it to ``path`` (``.pt2``) when given; reload with
    :func:`load_exported_prior`.
    """
    example = _example(prior, shape)
    program = _FeatureProgram(prior).eval()
    with torch.no_grad():
        exported = torch.export.export(program, (example,), strict=False)
    if path is not None:
        torch.export.save(exported, os.fspath(path))
    return exported


def load_exported_prior(path: str | os.PathLike) -> nn.Module:
    """Load a program saved by :func:`export_prior`: a module ``frames -> (patch, camera, register tokens)``."""
    return torch.export.load(os.fspath(path)).module()


def export_onnx(prior: GeometryPrior, shape: Sequence[int] | Tensor, path: str | os.PathLike,
                opset_version: int = 18) -> None:
    """Write ``prior`` for one frame shape as an ONNX model (inputs ``frames``; outputs :data:`OUTPUT_NAMES`).

    Raises:
        RuntimeError: the ONNX exporter's packages (``onnx``, ``onnxscript``)
            are missing, or it cannot convert an operator.
    """
    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError as e:
        raise RuntimeError(f"ONNX export needs the onnx and onnxscript packages ({e}); "
                           f"pip install onnx onnxscript") from e
    example = _example(prior, shape)
    program = _FeatureProgram(prior).eval()
    with torch.no_grad():
        torch.onnx.export(program, (example,), os.fspath(path), dynamo=True, opset_version=opset_version,
                          input_names=["frames"], output_names=list(OUTPUT_NAMES))
