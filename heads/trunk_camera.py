"""One-pass camera head (VGGT-Omega): a transformer trunk over every frame's special tokens.

Input: the last aggregator layer's ``Q = 1 + R`` special tokens per frame
``[B, S, Q, 2C]`` -> ``token_norm`` -> ``[B, S*Q, 2C]`` -> ``trunk`` (blocks
with layer scale and no key bias; no QK-norm, no RoPE) -> token 0 of each
frame -> ``trunk_norm`` -> ``camera_branch`` (Linear 2C->C, GELU, Linear C->9).
Output ``pose_enc`` ``[B, S, 9]`` = ``[tx, ty, tz, qx, qy, qz, qw, fov_h,
fov_w]`` of ``cam_from_world`` (OpenCV axes, scalar-last quaternion, frame 0
is the world); the fields of view go through ``relu(x) + 0.01``.
"""

from __future__ import annotations

import torch
from torch import nn

from vggt3d.config import CameraHeadConfig
from vggt3d.layers import BlockSpec

POSE_DIM = 9
#: smallest field of view (radians) the trunk head predicts
FOV_FLOOR = 0.01


def activate_pose_floor(raw: torch.Tensor) -> torch.Tensor:
    """Translation and quaternion as is, the two fields of view through ``relu(x) + 0.01``. ``[..., 9]``."""
    return torch.cat([raw[..., :7], torch.relu(raw[..., 7:]) + FOV_FLOOR], dim=-1)


class TrunkCameraHead(nn.Module):
    """Last aggregator layer ``[B, S, P, 2C]`` -> ``[pose_enc [B, S, 9]]`` (a list of one, as iterative heads return)."""

    def __init__(self, config: CameraHeadConfig, dim_in: int, num_special: int, norm_eps: float = 1e-5) -> None:
        super().__init__()
        self.num_special = num_special
        spec = BlockSpec(dim_in, config.num_heads, config.mlp_ratio, layer_scale_init=1e-5, norm_eps=norm_eps,
                         k_bias_mask=True)
        self.token_norm = nn.LayerNorm(dim_in, eps=norm_eps)
        self.trunk = nn.Sequential(*(spec.build() for _ in range(config.trunk_depth)))
        self.trunk_norm = nn.LayerNorm(dim_in, eps=norm_eps)
        self.camera_branch = nn.Sequential(nn.Linear(dim_in, dim_in // 2), nn.GELU(), nn.Linear(dim_in // 2, POSE_DIM))

    def forward(self, last_layer: torch.Tensor, causal=None) -> list[torch.Tensor]:
        """``causal``: None (all frames' special tokens attend to each other), or a frame-attention policy
        (:class:`vggt3d.stream.CausalFrames` / a stream's :class:`vggt3d.stream.FrameKVCache`): frame t's
        tokens see the special tokens of frames <= t."""
        B, S, _, C2 = last_layer.shape
        Q = self.num_special
        x = self.token_norm(last_layer[:, :, :Q]).reshape(B, S * Q, C2)  # [B, S*Q, 2C]
        if causal is None:
            x = self.trunk(x)
        else:
            mask = causal.mask(Q, x.device)  # [S*Q, S_kv*Q]
            for b, block in enumerate(self.trunk):
                x = block(x, None, mask, causal.hook(("camera", b), Q))
        x = x.reshape(B, S, Q, C2)[:, :, 0]  # camera token of each frame, [B, S, 2C]
        return [activate_pose_floor(self.camera_branch(self.trunk_norm(x)))]  # [B, S, 9]
