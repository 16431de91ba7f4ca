"""`vggt3d features`: one file per clip with metadata, resumable after an interruption, settings checks, shards."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from PIL import Image

from testutils import TOL, assert_close, encode_video
from vggt3d import GeometryPrior
from vggt3d.cli import main
from vggt3d.prior.cache import FeatureCache, FeatureCacheWriter, read_manifest, read_metadata
from vggt3d.prior.clips import load_clip




def write_video(path, n=5, size=(64, 48), fps=5):
    rng = np.random.default_rng(0)
    return encode_video(path, [rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8) for _ in range(n)], fps)


def write_clips(root):
    """Three image folders and a video under ``root``, and a list file naming them: 4 clips."""
    rng = np.random.default_rng(1)
    names = []
    for k, frames in enumerate((3, 4, 2)):
        folder = root / f"shot{k}"
        folder.mkdir(parents=True)
        for f in range(frames):
            Image.fromarray(rng.integers(0, 255, (40, 50, 3), dtype=np.uint8)).save(folder / f"img{f + 1}.png")
        names.append(folder.name)
    write_video(root / "walk.mp4")
    names.append("walk.mp4")
    (root / "clips.txt").write_text("# four clips\n" + "\n".join(names) + "\n")
    return root / "clips.txt"


@pytest.fixture(scope="module")
def clip_list(tmp_path_factory):
    return write_clips(tmp_path_factory.mktemp("clips"))


def args(clip_list, out, model_dir, *extra):
    return ["features", str(clip_list), "--out", str(out), "--model", model_dir, "--layers", "1,5",
            "--resolution", "70", "--window", "3", "--overlap", "1", "--save-dtype", "float32", "--no-progress",
            *extra]


def snapshot(out):
    """``{file: (mtime_ns, inode, bytes)}`` of the finished clip files."""
    return {p.name: (p.stat().st_mtime_ns, p.stat().st_ino, p.read_bytes())
            for p in sorted(out.glob("*.safetensors"))}


# ------------------------------------------------------------------ contents
def test_one_file_per_clip_with_metadata_and_the_prior_features(clip_list, model_dir, tmp_path):
    out = tmp_path / "cache"
    assert main(args(clip_list, out, model_dir, "--cameras")) == 0
    files = sorted(out.glob("*.safetensors"))
    assert len(files) == 4 and len(read_manifest(out)) == 4
    settings = json.loads((out / "cache.json").read_text())
    assert settings["layers"] == [1, 5] and settings["model_hash"].startswith("blake2b:")

    prior = GeometryPrior.from_pretrained(model_dir, [1, 5], resolution=70, window=3, overlap=1)
    cache = FeatureCache(out)
    assert len(cache) == 4
    for i in range(4):
        item = cache[i]
        meta = item["meta"]
        assert meta["model_id"] == model_dir and meta["model_hash"] == prior.fingerprint()
        assert json.loads(meta["layers"]) == [1, 5] and meta["dtype"] == "float32"
        assert json.loads(meta["grid"]) == [4, 5]
        clip = load_clip(item["source"])
        T = len(clip.indices)
        assert item["frame_indices"].tolist() == clip.indices
        feats = prior(clip.frames.unsqueeze(0), heads=True)
        for layer in (1, 5):
            assert item["patch_tokens"][layer].shape == (T, 4, 5, 128)
            assert_close(item["patch_tokens"][layer], feats.patch_tokens[layer][0], **TOL, name="patch tokens")
            assert_close(item["camera_tokens"][layer], feats.camera_tokens[layer][0], **TOL, name="camera tokens")
        assert_close(item["pose_enc"], feats.heads["pose_enc"][0], **TOL, name="pose_enc")
        assert item["frame_window"].tolist() == feats.frame_window.tolist()
        if item["source"].endswith(".mp4"):
            assert item["timestamps"].tolist() == pytest.approx([k / 5 for k in range(5)], abs=1e-6)
        else:
            assert json.loads(meta["names"]) == [f"img{f + 1}.png" for f in range(T)]
            assert torch.isnan(item["timestamps"]).all()


def test_cache_as_a_dataset(clip_list, model_dir, tmp_path):
    out = tmp_path / "cache"
    assert main(args(clip_list, out, model_dir)) == 0
    cache = FeatureCache(out, layers=[5], tokens=("patch_tokens",), num_frames=2, dtype=torch.float16)
    loader = torch.utils.data.DataLoader(cache, batch_size=2, collate_fn=list)
    items = [item for batch in loader for item in batch]
    assert len(items) == 4
    for item in items:
        assert set(item["patch_tokens"]) == {5} and "camera_tokens" not in item
        assert item["patch_tokens"][5].shape == (2, 4, 5, 128) and item["patch_tokens"][5].dtype == torch.float16
        assert len(item["frame_indices"]) == 2
    feats = FeatureCache(out).features(0)
    assert feats.layers == [1, 5] and feats.grid == (4, 5) and feats.input_size in ((40, 50), (48, 64))
    with pytest.raises(ValueError, match="not cached"):
        FeatureCache(out, layers=[3])


# ------------------------------------------------------------------ interruption and resumption
def test_interrupted_run_resumes_without_redoing_or_corrupting(clip_list, model_dir, tmp_path, monkeypatch):
    out = tmp_path / "cache"
    real_write = FeatureCacheWriter.write
    calls = []

    def killed_on_third(self, clip, progress=None):
        calls.append(clip.source)
        if len(calls) == 3:  # as if killed while saving: a partial temporary file, no final file
            path = self.path_for(clip.source)
            path.with_name(f".{path.name}.tmp").write_bytes(b"partial")
            raise KeyboardInterrupt
        return real_write(self, clip, progress)

    monkeypatch.setattr(FeatureCacheWriter, "write", killed_on_third)
    assert main(args(clip_list, out, model_dir)) == 130
    finished = snapshot(out)
    assert len(finished) == 2 and len(read_manifest(out)) == 2
    assert len(list(out.glob(".*.tmp"))) == 1

    # The process also died between a rename and its manifest line once: drop the last line.
    lines = (out / "manifest.jsonl").read_text().splitlines(keepends=True)
    (out / "manifest.jsonl").write_text("".join(lines[:-1]) + '{"clip": "torn')

    calls.clear()
    monkeypatch.setattr(FeatureCacheWriter, "write", lambda self, clip, progress=None: (
        calls.append(clip.source), real_write(self, clip, progress))[1])
    assert main(args(clip_list, out, model_dir)) == 0
    assert len(calls) == 2, "only the two unfinished clips are computed"
    after = snapshot(out)
    assert len(after) == 4 and {k: after[k] for k in finished} == finished, "finished files untouched"
    assert not list(out.glob(".*.tmp"))
    manifest = read_manifest(out)
    assert len(manifest) == 4 and {e["file"] for e in manifest.values()} == set(after)
    cache = FeatureCache(out)
    assert len(cache) == 4 and all(cache[i]["patch_tokens"][1].shape[1:] == (4, 5, 128) for i in range(4))

    calls.clear()
    assert main(args(clip_list, out, model_dir)) == 0 and calls == [], "a third run does nothing"
    assert snapshot(out) == after


def test_other_settings_are_refused_unless_overwrite(clip_list, model_dir, tmp_path, capsys):
    out = tmp_path / "cache"
    assert main(args(clip_list, out, model_dir)) == 0
    before = snapshot(out)
    changed = [a if a != "1,5" else "2" for a in args(clip_list, out, model_dir)]
    assert main(changed) == 2
    assert "other settings" in capsys.readouterr().err and snapshot(out) == before
    assert main(changed + ["--overwrite"]) == 0
    assert all(json.loads(read_metadata(p)["layers"]) == [2] for p in out.glob("*.safetensors"))
    assert len(FeatureCache(out)) == 4


def test_shards_fill_one_cache(clip_list, model_dir, tmp_path):
    out = tmp_path / "cache"
    assert main(args(clip_list, out, model_dir, "--shard", "0/2")) == 0
    assert len(list(out.glob("*.safetensors"))) == 2
    assert main(args(clip_list, out, model_dir, "--shard", "1/2")) == 0
    assert len(FeatureCache(out)) == 4


def test_bad_inputs(clip_list, model_dir, tmp_path, capsys):
    assert main(args(tmp_path / "missing.mp4", tmp_path / "c", model_dir)) == 2
    assert "does not exist" in capsys.readouterr().err
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video")
    good = clip_list.parent / "shot0"
    lst = tmp_path / "two.txt"
    lst.write_text(f"{broken}\n{good}\n")
    assert main(args(lst, tmp_path / "c2", model_dir)) == 1, "one clip failed, the other was written"
    assert len(list((tmp_path / "c2").glob("*.safetensors"))) == 1
    assert os.path.basename(str(broken)) in capsys.readouterr().err
