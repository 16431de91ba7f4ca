"""VGGT-Omega behind the VGGT3D API: config schema, checkpoint layout, tiny-golden parity stage by stage, contract."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from testutils import TOL, assert_close, read_manifest

from vggt3d import VGGT3D, ModelConfig
from vggt3d.config import ConfigError
from vggt3d.testing import load_rule_weights, rule_tensor

CASES = ["tiny_omega_b1_s3_64x96", "tiny_omega_b2_s2_48x80"]
OUTPUT_KEYS = ["camera_and_register_tokens", "pose_enc", "depth", "depth_conf"]
TEXT_KEYS = ["text_alignment_embedding", "text_alignment_token"]
CONFIGS = [("omega_1b_512_config.json", "vggt-omega-1b-512"), ("omega_1b_256_text_config.json", "vggt-omega-1b-256-text"),
           ("tiny_omega_config.json", "tiny-omega"), ("tiny_omega_text_config.json", "tiny-omega-text")]


@pytest.fixture(scope="session")
def omega_dir(golden_dir):
    return golden_dir / "omega"


@pytest.fixture(scope="module", params=["tiny-omega-text", "tiny-omega"])
def tiny(request):
    return load_rule_weights(VGGT3D(ModelConfig.preset(request.param)).eval(), salt=0)


@pytest.fixture(scope="module", params=CASES)
def case(request, golden_dir):
    data = np.load(golden_dir / "omega" / f"{request.param}.npz")
    return {k: data[k] for k in data.files}


@pytest.fixture(scope="module")
def outputs(tiny, case):
    with torch.no_grad():
        return tiny(torch.from_numpy(case["images"]))


# ---------------------------------------------------------------------- config
@pytest.mark.parametrize("name,preset", CONFIGS)
def test_golden_configs_round_trip_exactly(omega_dir, name, preset):
    d = json.loads((omega_dir / name).read_text())
    cfg = ModelConfig.from_dict(d)
    assert cfg.to_dict() == d
    assert cfg == ModelConfig.preset(preset)
    assert cfg.family == "omega" and cfg.patch_size == 16


@pytest.mark.parametrize("patch,match", [
    ({"aggregator": {"kind": "omegaa"}}, "omegaa"),
    ({"encoder": {"kind": "dinov3"}}, "rope_base"),
    ({"encoder": {"rope_base": 100.0}}, "only used by kind dinov3"),
    ({"aggregator": {"register_attention_layers": [2]}}, "needs kind omega"),
    ({"aggregator": {"output_layers": [4, 11]}}, "must include"),
    ({"camera_head": {"kind": "trunk"}}, "uses camera_head.kind 'iterative'"),
])
def test_invalid_extensions_are_named(patch, match):
    with pytest.raises(ConfigError, match=match):
        ModelConfig.from_dict(patch)


def test_family_heads_and_trunk_iterations_are_checked(omega_dir):
    d = json.loads((omega_dir / "tiny_omega_config.json").read_text())
    with pytest.raises(ConfigError, match="point"):
        ModelConfig.from_dict({**d, "heads": ["camera", "depth", "point"]})
    with pytest.raises(ConfigError, match="iterations"):
        ModelConfig.from_dict({**d, "camera_head": {**d["camera_head"], "iterations": 4}})
    with pytest.raises(ConfigError, match="register_attention_layers.*out of range"):
        ModelConfig.from_dict({**d, "aggregator": {**d["aggregator"], "register_attention_layers": [4]}})
    bad = {**d, "aggregator": {**d["aggregator"], "colour": 1}}
    with pytest.raises(ConfigError, match="colour"):
        ModelConfig.from_dict(bad)


# ----------------------------------------------------------------- checkpoints
@pytest.mark.parametrize("manifest,preset,count,numbers", [
    ("omega_1b_512_state_dict.tsv", "vggt-omega-1b-512", 1411, 1_144_059_977),
    ("omega_1b_256_text_state_dict.tsv", "vggt-omega-1b-256-text", 1482, 1_349_743_689),
])
def test_state_dict_matches_release_manifest(omega_dir, manifest, preset, count, numbers):
    expected = read_manifest(omega_dir / manifest)
    with torch.device("meta"):
        model = VGGT3D(ModelConfig.preset(preset))
    found = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert len(expected) == count and found == expected
    assert sum(v.numel() for v in model.state_dict().values()) == numbers


@pytest.mark.parametrize("manifest,preset", [("tiny_omega_state_dict.tsv", "tiny-omega"),
                                             ("tiny_omega_text_state_dict.tsv", "tiny-omega-text")])
def test_tiny_state_dicts_match(omega_dir, manifest, preset):
    found = {k: tuple(v.shape) for k, v in VGGT3D(ModelConfig.preset(preset)).state_dict().items()}
    assert found == read_manifest(omega_dir / manifest)


# name, shape, salt, first values (omega golden README table)
CHECK_VALUES = [
    ("aggregator.camera_token", (1, 2, 1, 64), 0, [0.095493436, 0.81118333, 0.77957016, -0.29954192]),
    ("aggregator.register_token", (1, 2, 8, 64), 0, [-0.16453485, -0.32320723, -0.26406026, 0.6929423]),
    ("aggregator.patch_embed.storage_tokens", (1, 4, 64), 0, [0.4641218, -0.58653784, -0.051138457, -0.675545]),
    ("aggregator.patch_embed.blocks.0.attn.qkv.weight", (192, 64), 0,
     [0.21016365, -0.101908974, 0.12056808, 0.06211648]),
    ("aggregator.frame_blocks.0.attn.q_norm.weight", (16,), 0, [0.86950725, 0.8796562, 1.0253898, 1.0127076]),
    ("aggregator.inter_frame_blocks.0.ls1.gamma", (64,), 0, [0.10995512, 0.07637052, 0.08943276, 0.13372931]),
    ("camera_head.camera_branch.2.weight", (9, 64), 0, [0.006853679, -0.15431277, -0.13865271, -0.032743152]),
    ("dense_head.proj_conf.bias", (16,), 0, [0.029364651, -0.020847494, -0.015628722, 0.00945333]),
    ("text_alignment_head.language_token", (1, 1, 128), 0, [0.21353474, -0.20800209, -0.043207075, 0.77166414]),
    ("aggregator.patch_embed.blocks.0.attn.qkv.bias_mask", (192,), 0, [1, 1, 1, 1]),
    ("aggregator.rope_embed.periods", (4,), 0, [1, 3.1622777, 10, 31.622776]),
    ("aggregator.frame_blocks.0.norm1.weight", (64,), 13579, [0.9209901, 0.91653395, 0.87877995, 0.93684]),
]


@pytest.mark.parametrize("name,shape,salt,expected", CHECK_VALUES)
def test_weight_rule_check_values(name, shape, salt, expected):
    t = rule_tensor(name, shape, salt)
    np.testing.assert_allclose(t.flatten()[:4].numpy(), expected, rtol=1e-7, atol=1e-7)


def test_defined_buffers_and_model_defaults():
    mask = rule_tensor("x.attn.qkv.bias_mask", (192,))
    assert mask[:64].eq(1).all() and mask[64:128].eq(0).all() and mask[128:].eq(1).all()
    periods = rule_tensor("aggregator.rope_embed.periods", (16,))
    readme = [1, 1.3335215, 1.7782794, 2.3713737, 3.1622777, 4.216965, 5.623413, 7.498942, 10, 13.335215,
              17.782795, 23.713737, 31.622776, 42.16965, 56.23413, 74.98942]
    np.testing.assert_array_equal(periods.numpy(), np.array(readme, dtype=np.float32))
    from vggt3d.layers import DinoRope2D

    np.testing.assert_array_equal(DinoRope2D(64, 100.0).periods.numpy(), np.array(readme, dtype=np.float32))
    model = VGGT3D(ModelConfig.preset("tiny-omega"))  # defined at construction too (the original leaves NaN)
    sd = model.state_dict()
    for name, value in sd.items():
        if name.endswith(("bias_mask", "periods")):
            torch.testing.assert_close(value, rule_tensor(name, value.shape), rtol=0, atol=0)


# ---------------------------------------------------------------------- parity
def test_pose_and_depth_check_values(omega_dir):
    model = load_rule_weights(VGGT3D(ModelConfig.preset("tiny-omega")).eval())
    images = torch.from_numpy(np.load(omega_dir / "tiny_omega_b1_s3_64x96.npz")["images"])
    with torch.no_grad():
        out = model(images)
    np.testing.assert_allclose(out["pose_enc"][0, 1].numpy(), [-0.36505327, -0.6223877, -0.82513094, -0.40368333,
                               -0.22208063, -0.27853256, 0.29141012, 0.3508889, 0.8504064], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(out["depth"][0, 0, 0, :4, 0].numpy(), [1.1649884, 1.330861, 2.1846514, 1.2840172],
                               rtol=1e-4)
    assert len(out["pose_enc_list"]) == 1 and (out["pose_enc"][..., 7:] >= 0.01).all()


def test_encoder_tokens(tiny, case):
    with torch.no_grad():
        enc = tiny.aggregator.encode(torch.from_numpy(case["images"]))
    assert_close(enc, case["encoder_patch_tokens"], **TOL, name="encoder_patch_tokens")


def test_every_aggregator_layer_both_halves(tiny, case):
    with torch.no_grad():
        layers = tiny.forward_intermediates(torch.from_numpy(case["images"]), list(range(4)))
    C = tiny.config.aggregator.embed_dim
    for k, i in enumerate(case["aggregator_layers"].tolist()):
        ref = case["aggregator_tokens"][k]
        assert_close(layers[i][..., :C], ref[..., :C], **TOL, name=f"layer {i} frame half")
        kind = "register" if i in tiny.config.aggregator.register_attention_layers else "global"
        assert_close(layers[i][..., C:], ref[..., C:], **TOL, name=f"layer {i} inter-frame half ({kind})")


@pytest.mark.parametrize("key", OUTPUT_KEYS)
def test_outputs(outputs, case, key):
    assert_close(outputs[key], case[key], **TOL, name=key)


def test_text_outputs(tiny, outputs, case):
    if "text_alignment" not in tiny.config.heads:
        assert not set(TEXT_KEYS) & set(outputs)
        return
    for key in TEXT_KEYS:
        assert_close(outputs[key], case[key], **TOL, name=key)
    torch.testing.assert_close(outputs["text_alignment_embedding"].norm(dim=-1), torch.ones(case["images"].shape[0]))


# --------------------------------------------------------------------- contract
def test_forward_is_intermediates_then_heads(tiny):
    images = torch.rand(1, 2, 3, 32, 48)
    with torch.no_grad():
        out = tiny(images)
        tokens = tiny.forward_intermediates(images, tiny.head_layers())
        again = tiny.forward_heads(tokens, (32, 48))
        default = tiny.forward_intermediates(images)
    assert sorted(default) == tiny.config.aggregator.output_layers
    assert set(out) == set(again) | {"images"} and torch.equal(out["images"], images)
    for key in again:
        torch.testing.assert_close(again[key], out[key], rtol=0, atol=0)
    with pytest.raises(ValueError, match="missing"):
        tiny.forward_heads({0: tokens[0]}, (32, 48))


def test_missing_heads_are_named(tiny):
    images = torch.rand(1, 2, 3, 32, 32)
    with pytest.raises(ValueError, match="no track head"):
        tiny(images, query_points=torch.tensor([[4.0, 5.0]]))
    assert tiny.point_head is None and tiny.track_head is None and "depth" in tiny.heads()
    with pytest.raises(ValueError, match="multiples of the patch size 16"):
        tiny(torch.rand(1, 2, 3, 28, 28))


def test_hooks_frame_chunking_and_progress_are_exact(tiny):
    from vggt3d.aggregator import AggregatorHooks

    images = torch.rand(1, 3, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    seen = []
    with torch.no_grad():
        ref = tiny(images)
        out = tiny(images, hooks=AggregatorHooks(frame_chunk=1), progress=lambda *a: seen.append(a))
    for key in ref:  # float rounding only: other batch sizes block the matmuls differently (depth ~10: ulp ~1e-6)
        torch.testing.assert_close(out[key], ref[key], rtol=1e-5, atol=1e-5)
    assert seen[-1] == ("heads", 1, 1) and seen[:4] == [("aggregator", i, 4) for i in range(1, 5)]


def test_causal_mask_through_hooks_makes_frame_0_independent_of_later_frames(tiny):
    """An attention bias (the causal seam): frame 0 must not change when later frames do."""
    from vggt3d.aggregator import AggregatorHooks

    def causal(layer, S, T):
        frame = torch.arange(S * T) // T
        return frame[:, None] >= frame[None, :]  # [S*T, S*T], True = attend

    hooks = AggregatorHooks(attn_bias=causal)
    a, b = torch.rand(1, 3, 3, 32, 32), torch.rand(1, 3, 3, 32, 32)
    b[:, 0] = a[:, 0]
    with torch.no_grad():
        ta = tiny.forward_intermediates(a, [3], hooks=hooks)[3]
        tb = tiny.forward_intermediates(b, [3], hooks=hooks)[3]
        free = tiny.forward_intermediates(b, [3])[3]
    torch.testing.assert_close(ta[:, 0], tb[:, 0], rtol=0, atol=1e-6)
    assert (free[:, 0] - ta[:, 0]).abs().max() > 1e-4


@pytest.mark.slow
def test_omega_1b_text_forward_with_rule_weights():
    """The full VGGT-Omega-1B text architecture, loaded strictly from rule weights, runs once at 64x96, S=2."""
    from vggt3d.testing import rule_state_dict

    with torch.device("meta"):
        model = VGGT3D(ModelConfig.preset("vggt-omega-1b-256-text"))
    model.load_state_dict(rule_state_dict(model), strict=True, assign=True)
    model.eval()
    with torch.no_grad():
        out = model(torch.rand(1, 2, 3, 64, 96, generator=torch.Generator().manual_seed(0)))
    assert out["pose_enc"].shape == (1, 2, 9) and out["depth"].shape == (1, 2, 64, 96, 1)
    assert out["camera_and_register_tokens"].shape == (1, 2, 17, 2048)
    assert out["text_alignment_embedding"].shape == (1, 2048)
    for key, value in out.items():
        if isinstance(value, torch.Tensor):
            assert torch.isfinite(value).all(), key


# -------------------------------------------------------------------- precision
#: bf16 autocast on the CPU against fp32, measured on the tiny goldens of both families (issue #10):
#: max |bf16 - fp32| / (1 + |fp32|) = 0.018 (Omega depth), 0.011 (last-layer tokens), 0.008 (VGGT world points).
BF16_TOL = {"rtol": 0.03, "atol": 0.03}


@pytest.mark.parametrize("preset,case", [("tiny-omega-text", "omega/tiny_omega_b1_s3_64x96.npz"),
                                         ("tiny", "tiny_b2_s2_56x42.npz")])
def test_bf16_on_cpu_against_fp32_with_fp32_heads(golden_dir, preset, case):
    model = load_rule_weights(VGGT3D(ModelConfig.preset(preset)).eval())
    images = torch.from_numpy(np.load(golden_dir / case)["images"])
    last = model.config.aggregator.depth - 1
    with torch.no_grad():
        ref, low = model(images, precision="fp32"), model(images, precision=torch.bfloat16)
        t32 = model.forward_intermediates(images, [last], precision="fp32")[last]
        t16 = model.forward_intermediates(images, [last], precision="bf16")[last]
    assert 1e-4 < (t16 - t32).abs().max() and torch.allclose(t16.float(), t32, **BF16_TOL)
    for key, value in ref.items():
        if isinstance(value, torch.Tensor):
            assert low[key].dtype == torch.float32, key  # the heads always run in fp32
            assert torch.allclose(low[key], value, **BF16_TOL), key


def test_precision_none_keeps_the_callers_autocast_and_fp32_overrides_it(tiny):
    images = torch.rand(1, 2, 3, 32, 32)
    with torch.no_grad():
        ref = tiny(images, precision="fp32")
        bf16 = tiny(images, precision="bf16")
        with torch.autocast("cpu", dtype=torch.bfloat16):
            ambient = tiny(images, precision=None)
            forced = tiny(images, precision="fp32")
        plain = tiny(images)  # "auto" on the CPU: fp32
    torch.testing.assert_close(ambient["depth"], bf16["depth"], rtol=0, atol=0)
    torch.testing.assert_close(forced["depth"], ref["depth"], rtol=0, atol=0)
    torch.testing.assert_close(plain["depth"], ref["depth"], rtol=0, atol=0)
    with pytest.raises(ValueError, match="unknown precision"):
        tiny(images, precision="fp8")
    assert not hasattr(tiny, "autocast")
