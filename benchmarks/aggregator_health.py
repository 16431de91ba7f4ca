"""Does the aggregator carry image content into the camera tokens? (the issue #9 diagnosis)

For a checkpoint, on held-out synthetic clips: per aggregator layer, the spread
of the camera tokens of frames 1..S-1 over frames and clips (norm of the
per-channel std) next to their mean norm; how much each layer changed
the patch tokens (mean ``|x_layer - x_encoder| / |x_encoder|``: 0 for an
aggregator that does nothing); and the mean ``|gamma|`` of the frame / global
blocks' layer scales. A camera token whose spread is ~2 % of its norm is the same for every
frame: the camera head then predicts one pose for all frames (what the
previous shipped model did)::

    python benchmarks/aggregator_health.py runs/tiny-synthetic/checkpoints/step-00001000 \\
        --out benchmarks/results/aggregator_health.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch


@torch.no_grad()
def health(source: str, clips: int = 4, frames: int = 8, size: int = 112, seed: int = 1000) -> dict:
    from vggt3d import VGGT3D
    from vggt3d.data import build_dataset

    model = VGGT3D.from_pretrained(source).eval()
    ds = build_dataset("synthetic", num_scenes=clips, num_frames=frames, image_size=[size, size], seed=seed)
    images = torch.stack([ds[i]["images"] for i in range(clips)])  # [B, S, 3, H, W]
    tokens = model.forward_intermediates(images)  # {layer: [B, S, P, 2C]}
    encoder = model.aggregator.encode(images)  # [B*S, h*w, C]: the encoder's patch tokens
    layers = []
    for i, t in sorted(tokens.items()):
        C = t.shape[-1] // 2
        cam = t[:, 1:, 0]  # [B, S-1, 2C] camera tokens of frames >= 1
        row = {"layer": i}
        for name, half in (("frame", slice(0, C)), ("global", slice(C, None))):
            c = cam[..., half].reshape(-1, C)
            row[f"{name}_norm"] = float(c.norm(dim=-1).mean())
            row[f"{name}_spread"] = float(c.std(0).norm())
            patches = t[:, :, model.aggregator.patch_start_idx:, half].reshape(encoder.shape)
            row[f"{name}_patch_change"] = float(((patches - encoder).norm(dim=-1) / encoder.norm(dim=-1)).mean())
        layers.append(row)
    gammas = {n: float(p.abs().mean()) for n, p in model.named_parameters()
              if n.startswith(("aggregator.frame_blocks.", "aggregator.global_blocks.")) and n.endswith(".gamma")}
    pose = model(images)["pose_enc"][:, 1:]  # [B, S-1, 9]
    return {"source": source, "layers": layers, "layer_scale_mean_abs": gammas,
            "pose_spread_over_frames": float(pose.std(dim=1).norm(dim=-1).mean()),  # within each clip
            "pose_mean_norm": float(pose.norm(dim=-1).mean())}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("sources", nargs="+", help="checkpoints (any from_pretrained source)")
    p.add_argument("--out", type=Path, default=None)
    a = p.parse_args()
    torch.set_num_threads(1)
    results = [health(s) for s in a.sources]
    for r in results:
        last = r["layers"][-1]
        print(f"{r['source']}: last layer patch change {last['global_patch_change']:.3f}, camera-token spread/norm frame {last['frame_spread'] / last['frame_norm']:.3f}"
              f" global {last['global_spread'] / last['global_norm']:.3f}; predicted pose spread "
              f"{r['pose_spread_over_frames']:.4f}; mean |layer scale| "
              f"{sum(r['layer_scale_mean_abs'].values()) / len(r['layer_scale_mean_abs']):.4f}")
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps({"command": "python benchmarks/aggregator_health.py " + " ".join(a.sources),
                                     "results": results}, indent=1))


if __name__ == "__main__":
    main()
