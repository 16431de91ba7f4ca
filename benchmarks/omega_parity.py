"""Measured differences of the VGGT-Omega port: against the original's goldens (fp32) and bf16 against fp32 (CPU).

    python benchmarks/omega_parity.py --out benchmarks/results/omega_parity_cpu.json

For every output stage of the tiny golden model (``tests/fixtures/golden/omega/``,
weights from the name rule, salt 0; both golden inputs) it reports the maximum
absolute difference and ``xtol`` = max |d| / (1e-4 + 1e-4 |golden|), the fraction
of the README's tolerance used (parity holds while xtol <= 1). Then, for the tiny
models of both families, ``precision="bf16"`` against ``precision="fp32"`` on the
CPU: max |d| / (1 + |fp32|) per output (the tests allow 0.03). The numbers in the
README and ``docs/models.md`` come from this script.
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import numpy as np
import torch

from vggt3d import ModelConfig, VGGT3D
from vggt3d.testing import load_rule_weights

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "fixtures" / "golden"
OMEGA_CASES = ["tiny_omega_b1_s3_64x96", "tiny_omega_b2_s2_48x80"]
VGGT_CASES = ["tiny_b1_s3_70x98", "tiny_b2_s2_56x42"]
KEYS = ["camera_and_register_tokens", "pose_enc", "depth", "depth_conf", "text_alignment_embedding",
        "text_alignment_token"]


def golden_parity() -> dict[str, dict[str, float]]:
    model = load_rule_weights(VGGT3D(ModelConfig.preset("tiny-omega-text")).eval())
    worst: dict[str, dict[str, float]] = {}
    for case in OMEGA_CASES:
        g = np.load(GOLDEN / "omega" / f"{case}.npz")
        images = torch.from_numpy(g["images"])
        with torch.no_grad():
            ours = {"encoder_patch_tokens": model.aggregator.encode(images).numpy()}
            layers = model.forward_intermediates(images, g["aggregator_layers"].tolist())
            ours["aggregator_tokens"] = np.stack([layers[int(i)].numpy() for i in g["aggregator_layers"]])
            out = model(images)
        ours.update({k: out[k].numpy() for k in KEYS})
        for key, value in ours.items():
            d = np.abs(value - g[key])
            entry = worst.setdefault(key, {"max_abs": 0.0, "xtol": 0.0})
            entry["max_abs"] = max(entry["max_abs"], float(d.max()))
            entry["xtol"] = max(entry["xtol"], float((d / (1e-4 + 1e-4 * np.abs(g[key]))).max()))
    return worst


def bf16_against_fp32() -> dict[str, dict[str, float]]:
    result: dict[str, dict[str, float]] = {}
    for preset, folder, cases in (("tiny-omega-text", "omega", OMEGA_CASES), ("tiny", "", VGGT_CASES)):
        model = load_rule_weights(VGGT3D(ModelConfig.preset(preset)).eval())
        last = model.config.aggregator.depth - 1
        worst: dict[str, float] = {}
        for case in cases:
            images = torch.from_numpy(np.load(GOLDEN / folder / f"{case}.npz")["images"])
            with torch.no_grad():
                ref, low = model(images, precision="fp32"), model(images, precision="bf16")
                ref["last_layer_tokens"] = model.forward_intermediates(images, [last], precision="fp32")[last]
                low["last_layer_tokens"] = model.forward_intermediates(images, [last], precision="bf16")[last]
            for key, value in ref.items():
                if isinstance(value, torch.Tensor) and key != "images":
                    d = ((low[key].float() - value).abs() / (1 + value.abs())).max().item()
                    worst[key] = max(worst.get(key, 0.0), d)
        result[preset] = worst
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    report = {"torch": torch.__version__, "machine": platform.processor() or platform.machine(),
              "golden_fp32": golden_parity(), "bf16_vs_fp32_scaled": bf16_against_fp32()}
    text = json.dumps(report, indent=2)
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
