"""Camera head: iterative refinement of a 9-D pose encoding per frame (VGGT Sec. 3.3).

The encoding is ``[tx, ty, tz, qx, qy, qz, qw, fov_h, fov_w]``: translation and
scalar-last quaternion of ``cam_from_world`` (OpenCV axes: x right, y down,
z forward; frame 0 is the world), and the fields of view in radians. Decode it
with :func:`vggt3d.geometry.pose_encoding_to_cameras`.

Each iteration conditions the normalized camera tokens on the previous
(detached, pre-activation) encoding through adaptive LayerNorm (shift, scale,
gate, as in DiT, Peebles & Xie 2023), runs a small transformer trunk and adds
a predicted delta to the running encoding.
"""

from __future__ import annotations

import torch
from torch import nn

from vggt3d.config import CameraHeadConfig
from vggt3d.layers import Block, Mlp

POSE_DIM = 9


def activate_pose(raw: torch.Tensor) -> torch.Tensor:
    """Translation and quaternion as is, the two fields of view through ReLU. ``[..., 9]``."""
    return torch.cat([raw[..., :7], torch.relu(raw[..., 7:])], dim=-1)


class CameraHead(nn.Module):
    """Last aggregator layer ``[B, S, P, 2C]`` -> list of ``iterations`` encodings ``[B, S, 9]``."""

    def __init__(self, config: CameraHeadConfig, dim_in: int) -> None:
        super().__init__()
        self.iterations = config.iterations
        self.trunk = nn.Sequential(*(Block(dim_in, config.num_heads, config.mlp_ratio, layer_scale_init=0.01)
                                     for _ in range(config.trunk_depth)))
        self.token_norm = nn.LayerNorm(dim_in)
        self.trunk_norm = nn.LayerNorm(dim_in)
        self.empty_pose_tokens = nn.Parameter(torch.zeros(1, 1, POSE_DIM))
        self.embed_pose = nn.Linear(POSE_DIM, dim_in)
        self.poseLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim_in, 3 * dim_in))
        self.adaln_norm = nn.LayerNorm(dim_in, elementwise_affine=False, eps=1e-6)
        self.pose_branch = Mlp(dim_in, dim_in // 2, POSE_DIM)

    def forward(self, last_layer: torch.Tensor, iterations: int | None = None, causal=None) -> list[torch.Tensor]:
        """``causal``: None (every frame sees all frames in the trunk), or a frame-attention policy
        (:class:`vggt3d.stream.CausalFrames`, or a stream's :class:`vggt3d.stream.FrameKVCache`) giving the
        trunk's mask (frame t sees frames <= t) and key/value hooks."""
        tokens = self.token_norm(last_layer[:, :, 0])  # camera token of each frame, [B, S, 2C]
        B, S, _ = tokens.shape
        normalized = self.adaln_norm(tokens)
        raw = None
        outputs = []
        mask = causal.mask(1, tokens.device) if causal is not None else None  # [S, S_kv]: one token per frame
        for it in range(iterations or self.iterations):
            cond = self.empty_pose_tokens.expand(B, S, -1) if raw is None else raw.detach()
            shift, scale, gate = self.poseLN_modulation(self.embed_pose(cond)).chunk(3, dim=-1)
            x = gate * (normalized * (1 + scale) + shift) + tokens
            if causal is None:
                x = self.trunk(x)
            else:
                for b, block in enumerate(self.trunk):
                    x = block(x, None, mask, causal.hook(("camera", it, b), 1))
            delta = self.pose_branch(self.trunk_norm(x))  # [B, S, 9]
            raw = delta if raw is None else raw + delta
            outputs.append(activate_pose(raw))
        return outputs
