"""Checkpoint loading and saving: local files, directories, the hub cache offline, clear errors."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from vggt3d import ModelConfig, VGGT3D
from vggt3d.hub import CheckpointError, config_from_json_dict
from vggt3d.testing import load_rule_weights


@pytest.fixture(scope="module")
def tiny_model():
    return load_rule_weights(VGGT3D(ModelConfig.preset("tiny")).eval(), salt=7)


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


def test_save_pretrained_round_trip(tmp_path, tiny_model):
    tiny_model.save_pretrained(tmp_path / "ckpt")
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["config.json", "model.safetensors"]
    assert json.loads((tmp_path / "ckpt" / "config.json").read_text()) == tiny_model.config.to_dict()
    loaded = VGGT3D.from_pretrained(tmp_path / "ckpt")
    assert loaded.config == tiny_model.config and not loaded.training
    _same_weights(loaded, tiny_model)
    x = torch.rand(1, 2, 3, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x)["depth"], tiny_model(x)["depth"], rtol=0, atol=0)


def test_local_pt_and_safetensors_files(tmp_path, tiny_model):
    sd = tiny_model.state_dict()
    torch.save(sd, tmp_path / "model.pt")
    torch.save({"model": sd}, tmp_path / "wrapped.pth")
    save_file({k: v.contiguous() for k, v in sd.items()}, str(tmp_path / "w.safetensors"))
    for name in ("model.pt", "wrapped.pth", "w.safetensors"):
        loaded = VGGT3D.from_pretrained(tmp_path / name, config="tiny")
        _same_weights(loaded, tiny_model)


def test_file_without_config_defaults_to_vggt_1b(tmp_path, tiny_model):
    torch.save(tiny_model.state_dict(), tmp_path / "model.pt")
    with pytest.raises(CheckpointError) as err:
        VGGT3D.from_pretrained(tmp_path / "model.pt")
    msg = str(err.value)
    assert "does not match the model architecture" in msg and "with wrong shapes" in msg
    assert "config=" in msg  # says what to do


def test_key_mismatch_is_listed(tmp_path, tiny_model):
    sd = dict(tiny_model.state_dict())
    sd.pop("camera_head.embed_pose.bias")
    sd["extra.weight"] = torch.zeros(1)
    torch.save(sd, tmp_path / "model.pt")
    with pytest.raises(CheckpointError, match=r"(?s)1 missing: camera_head.embed_pose.bias.*1 unexpected: extra.weight"):
        VGGT3D.from_pretrained(tmp_path / "model.pt", config="tiny")


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(CheckpointError, match="neither an existing file"):
        VGGT3D.from_pretrained(tmp_path / "nope.pt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="holds none of model.safetensors"):
        VGGT3D.from_pretrained(tmp_path / "empty")
    (tmp_path / "bad.safetensors").write_bytes(b"\x00garbage")
    with pytest.raises(CheckpointError, match="bad.safetensors.*truncated"):
        VGGT3D.from_pretrained(tmp_path / "bad.safetensors", config="tiny")


def test_original_hub_config_format():
    cfg = config_from_json_dict({"img_size": 518, "patch_size": 14, "embed_dim": 1024})
    assert cfg == ModelConfig()
    cfg = config_from_json_dict({"embed_dim": 1024, "enable_track": False})
    assert cfg.heads == ["camera", "depth", "point"]
    with pytest.raises(CheckpointError, match="embed_dim=768"):
        config_from_json_dict({"embed_dim": 768})


def _fake_hub_cache(cache: Path, repo_id: str, files: dict[str, Path]) -> None:
    """Lay out a Hugging Face hub cache entry (refs/main -> snapshot) as the hub client writes it."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo_dir = cache / ("models--" + repo_id.replace("/", "--"))
    (repo_dir / "refs").mkdir(parents=True)
    (repo_dir / "refs" / "main").write_text(commit)
    snap = repo_dir / "snapshots" / commit
    snap.mkdir(parents=True)
    for name, src in files.items():
        (snap / name).write_bytes(src.read_bytes())


def test_hub_repo_id_from_offline_cache(tmp_path, monkeypatch, tiny_model):
    src = tiny_model.save_pretrained(tmp_path / "src")
    cache = tmp_path / "hub"
    _fake_hub_cache(cache, "someone/vggt-tiny", {n: src / n for n in ("config.json", "model.safetensors")})
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    loaded = VGGT3D.from_pretrained("someone/vggt-tiny", cache_dir=str(cache))
    _same_weights(loaded, tiny_model)
    # the original hub layout: constructor-argument config + model.pt
    torch.save(tiny_model.state_dict(), tmp_path / "model.pt")
    (tmp_path / "orig_config.json").write_text(json.dumps({"img_size": 518, "patch_size": 14, "embed_dim": 1024}))
    _fake_hub_cache(cache, "facebook/VGGT-tiny-pt", {"model.pt": tmp_path / "model.pt",
                                                     "config.json": tmp_path / "orig_config.json"})
    loaded = VGGT3D.from_pretrained("facebook/VGGT-tiny-pt", config="tiny", cache_dir=str(cache))
    _same_weights(loaded, tiny_model)


def test_uncached_repo_offline_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(CheckpointError) as err:
        VGGT3D.from_pretrained("facebook/VGGT-1B", cache_dir=str(tmp_path))
    msg = str(err.value)
    assert "facebook/VGGT-1B" in msg and "hf download" in msg and "HF_HUB_OFFLINE=1" in msg


def test_save_is_atomic(tmp_path, tiny_model, monkeypatch):
    tiny_model.save_pretrained(tmp_path / "ck")
    before = (tmp_path / "ck" / "model.safetensors").read_bytes()
    import safetensors.torch as st

    def boom(*args, **kwargs):
        Path(args[1]).write_bytes(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(st, "save_file", boom)
    with pytest.raises(KeyboardInterrupt):
        tiny_model.save_pretrained(tmp_path / "ck")
    assert (tmp_path / "ck" / "model.safetensors").read_bytes() == before
    assert sorted(os.listdir(tmp_path / "ck")) == ["config.json", "model.safetensors"]


# ------------------------------------------------------------------- VGGT-Omega
@pytest.fixture(scope="module")
def tiny_omega():
    return load_rule_weights(VGGT3D(ModelConfig.preset("tiny-omega-text")).eval(), salt=3)


def test_original_omega_pt_loads_strictly_and_round_trips(tmp_path, tiny_omega):
    """A plain ``torch.save(state_dict)`` file as the release ships, then save_pretrained and back."""
    torch.save(tiny_omega.state_dict(), tmp_path / "vggt_omega_tiny.pt")
    loaded = VGGT3D.from_pretrained(tmp_path / "vggt_omega_tiny.pt", config="tiny-omega-text")
    _same_weights(loaded, tiny_omega)
    out = loaded.save_pretrained(tmp_path / "saved")
    again = VGGT3D.from_pretrained(out)
    assert again.config == tiny_omega.config and again.config.family == "omega"
    _same_weights(again, tiny_omega)
    x = torch.rand(1, 2, 3, 32, 48)
    with torch.no_grad():
        a, b = tiny_omega(x), again(x)
    for key in ("pose_enc", "depth", "text_alignment_embedding"):  # same weights; kernels may block differently
        torch.testing.assert_close(a[key], b[key], rtol=1e-6, atol=1e-6)
    # a strict load: one tensor missing is named, with how to fix it
    state = tiny_omega.state_dict()
    state.pop("dense_head.proj.bias")
    torch.save(state, tmp_path / "broken.pt")
    with pytest.raises(CheckpointError, match=r"(?s)1 missing: dense_head.proj.bias.*matching config"):
        VGGT3D.from_pretrained(tmp_path / "broken.pt", config="tiny-omega-text")


@pytest.mark.parametrize("preset", ["vggt-omega-1b-512", "vggt-omega-1b-256-text", "vggt-1b"])
def test_architecture_from_checkpoint_keys(preset):
    from vggt3d.hub import config_from_state_dict

    with torch.device("meta"):
        state = VGGT3D(ModelConfig.preset(preset)).state_dict()
    assert config_from_state_dict(state) == ModelConfig.preset(preset)
    no_text = {k: v for k, v in state.items() if not k.startswith(("text_alignment_head.", "track_head."))}
    cfg = config_from_state_dict(no_text)
    assert "text_alignment" not in cfg.heads and "track" not in cfg.heads


def test_keys_pick_omega_and_a_size_mismatch_asks_for_the_config(tmp_path, tiny_omega):
    torch.save(tiny_omega.state_dict(), tmp_path / "tiny.pt")
    with pytest.raises(CheckpointError, match="(?s)wrong shapes.*matching config"):
        VGGT3D.from_pretrained(tmp_path / "tiny.pt")  # keys say Omega-1B text; shapes are tiny
    torch.save({"x": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a VGGT-family checkpoint"):
        VGGT3D.from_pretrained(tmp_path / "other.pt")


def test_omega_files_found_in_a_directory_and_in_the_hub_cache(tmp_path, monkeypatch, tiny_omega):
    (tmp_path / "dir").mkdir()
    torch.save(tiny_omega.state_dict(), tmp_path / "dir" / "vggt_omega_1b_256_text.pt")
    _same_weights(VGGT3D.from_pretrained(tmp_path / "dir", config="tiny-omega-text"), tiny_omega)
    cache = tmp_path / "hub"
    _fake_hub_cache(cache, "facebook/VGGT-Omega",
                    {"vggt_omega_1b_256_text.pt": tmp_path / "dir" / "vggt_omega_1b_256_text.pt"})
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    loaded = VGGT3D.from_pretrained("facebook/VGGT-Omega", config="tiny-omega-text", cache_dir=str(cache),
                                    filename="vggt_omega_1b_256_text.pt")
    _same_weights(loaded, tiny_omega)


def test_gated_omega_repo_offline_says_how_to_get_access(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(CheckpointError) as err:
        VGGT3D.from_pretrained("facebook/VGGT-Omega", cache_dir=str(tmp_path))
    msg = str(err.value)
    assert "vggt_omega_1b_512.pt" in msg and "gated" in msg and "request access" in msg
    assert "https://huggingface.co/facebook/VGGT-Omega" in msg and "from_pretrained('/path/to/" in msg
    with pytest.raises(CheckpointError, match="vggt_omega_1b_256_text.pt"):
        VGGT3D.from_pretrained("facebook/VGGT-Omega", config="vggt-omega-1b-256-text", cache_dir=str(tmp_path))


def test_gated_omega_repo_not_approved(tmp_path, monkeypatch):
    import huggingface_hub
    from huggingface_hub.errors import GatedRepoError

    import httpx2

    def refuse(*args, **kwargs):
        request = httpx2.Request("GET", "https://huggingface.co/facebook/VGGT-Omega/resolve/main/x.pt")
        raise GatedRepoError("403 Client Error: access to model facebook/VGGT-Omega is restricted",
                             response=httpx2.Response(403, request=request))

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", refuse)
    with pytest.raises(CheckpointError) as err:
        VGGT3D.from_pretrained("facebook/VGGT-Omega", cache_dir=str(tmp_path))
    msg = str(err.value)
    assert "refused" in msg and "request access" in msg and "hf auth login" in msg and "local copy" in msg


def test_dtype_casts_the_aggregator_only_and_rope_periods_stay_fp32(tmp_path, tiny_omega):
    src = tiny_omega.save_pretrained(tmp_path / "omega")
    model = VGGT3D.from_pretrained(src, dtype=torch.bfloat16)
    assert model.aggregator.frame_blocks[0].attn.qkv.weight.dtype == torch.bfloat16
    assert model.camera_head.camera_branch[0].weight.dtype == torch.float32
    periods = model.aggregator.rope_embed.periods
    assert periods.dtype == torch.float32 and torch.equal(periods, tiny_omega.aggregator.rope_embed.periods)
    x = torch.rand(1, 2, 3, 32, 32)
    with torch.no_grad():
        out = model(x.bfloat16(), precision="bf16")
        ref = tiny_omega(x)
    assert out["depth"].dtype == torch.float32 and torch.allclose(out["pose_enc"], ref["pose_enc"], atol=0.05, rtol=0.05)
