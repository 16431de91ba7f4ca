"""End to end on the real data path: SyntheticScenes through make_dataloader, the CLI, exact resume."""

from __future__ import annotations

import json

import pytest
import torch

import vggt3d.data.synthetic  # noqa: F401  (in-tree: a broken import must fail, not skip)
from vggt3d import VGGT3D
from vggt3d.cli import main
from vggt3d.training.config import load_config
from vggt3d.training.trainer import Trainer

SYNTHETIC = "{name: synthetic, kwargs: {num_scenes: 6, num_frames: 4, image_size: [28, 28], seed: %d}}"


def overrides(tmp_path, name="run", steps=4):
    return [f"run.output_dir={tmp_path}", f"run.name={name}", f"run.max_steps={steps}", "run.ckpt_every=2",
            "run.keep_last=4", "run.val_every=2", "run.val_batches=1", "run.image_every=2", "run.progress=false",
            "run.export_final=false", "model.preset=tiny", "model.arch={img_size: 28, heads: [camera, depth]}",
            f"data.train=[{SYNTHETIC % 0}]", f"data.val=[{SYNTHETIC % 1}]", "data.images_per_batch=4",
            "data.num_frames=[2, 3]", "data.val_num_frames=[2, 2]", "data.image_size=[28, 28]",
            "optim.warmup=0.0", "optim.lr=1e-3", "accel.num_threads=1"]


def test_resume_on_synthetic_scenes_is_exact(tmp_path):
    full = Trainer(load_config(None, overrides(tmp_path, "full", steps=5)))
    full.fit()
    assert full.skipped_steps == 0 and full.stream.epoch >= 1  # 6 scenes, 2-4 per batch: crosses an epoch
    resumed = Trainer(load_config(None, overrides(tmp_path, "full", steps=5)))
    resumed.fit(resume=tmp_path / "full" / "checkpoints" / "step-00000002")
    assert [h["objective"] for h in resumed.history] == [h["objective"] for h in full.history[2:]]
    assert [h["lr"] for h in resumed.history] == [h["lr"] for h in full.history[2:]]


def test_cli_train_resume_and_evaluate(tmp_path, capsys):
    args = ["train", *overrides(tmp_path, steps=2)]
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["step"] == 2 and summary["best"]["step"] == 2
    assert main(["train", *overrides(tmp_path, steps=3), "--resume"]) == 0
    assert json.loads(capsys.readouterr().out)["step"] == 3
    checkpoint = tmp_path / "run" / "checkpoints" / "step-00000003"
    VGGT3D.from_pretrained(checkpoint)
    out = tmp_path / "report"
    assert main(["evaluate", "--data", "synthetic", "--data-arg", "num_scenes=2", "--data-arg", "num_frames=3",
                 "--data-arg", "image_size=[28,28]", "--data-arg", "seed=7", "--weights", str(checkpoint),
                 "--out", str(out), "--threads", "1"]) == 0
    report = json.loads((out / "results.json").read_text())
    assert len(report["scenes"]) == 2 and "AUC@30" in report["mean"]["model"]
    assert (out / "auc_curve.png").is_file() and (out / "error_per_frame.png").is_file()
    assert "| trivial baseline |" in capsys.readouterr().out


def test_resume_without_checkpoint_is_an_error(tmp_path, capsys):
    assert main(["train", *overrides(tmp_path, name="empty", steps=1), "--resume"]) == 2
    assert "no complete checkpoint" in capsys.readouterr().err


def test_datasets_mixed_by_weight(tmp_path):
    from vggt3d.data import MixedDataset
    from vggt3d.training.trainer import build_loader

    cfg = load_config(None, overrides(tmp_path) + [
        f"data.train=[{SYNTHETIC % 0}, {{name: synthetic, weight: 3, kwargs: {{num_scenes: 2, seed: 5}}}}]",
        "data.epoch_length=10"])
    loader = build_loader(cfg, "train", seed=0)
    assert isinstance(loader.dataset, MixedDataset) and len(loader.dataset) == 10
    assert list(loader.dataset.weights) == [0.25, 0.75]
    batch = next(iter(loader))
    assert batch["images"].shape[-2:] == (28, 28) and "normalization_scale" in batch


@pytest.mark.slow
def test_ddp_two_cpu_processes_train_and_resume_exactly(tmp_path):
    """torchrun with 2 CPU processes (gloo): different batch shapes per process, micro-batches, validation,
    per-process checkpoint files, and a resumed run that ends with the same weights."""
    import subprocess
    import sys
    from pathlib import Path

    from safetensors.torch import load_file

    root = Path(__file__).resolve().parents[2]

    def launch(name, steps, *extra):
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", str(root / "train.py"),
               *overrides(tmp_path, name, steps), "accel.cpu=true", "optim.accum_steps=2", *extra]
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=240)
        assert proc.returncode == 0, proc.stderr[-3000:]

    launch("full", 3)
    checkpoints = tmp_path / "full" / "checkpoints"
    assert (checkpoints / "step-00000002" / "rank-1.pt").is_file()
    launch("resumed", 3, "--resume", str(checkpoints / "step-00000002"))
    a = load_file(checkpoints / "step-00000003" / "model.safetensors")
    b = load_file(tmp_path / "resumed" / "checkpoints" / "step-00000003" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
