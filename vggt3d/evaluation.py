"""Evaluate a model against ground truth, next to trivial baselines, and write a report.

:func:`evaluate` runs the model on every scene of a dataset (``ds[i]``: the
scene's default frames, ground truth normalised as in training, TRAINING.md 3)
and computes the metrics of :mod:`vggt3d.metrics` for the model and for the
trivial baseline:

- cameras: identity for every frame (all cameras at frame 0's pose) with the
  mean true focal length;
- depth: a constant map (median scaling then makes it the true median);
- point maps: that constant depth unprojected with those cameras;
- tracks: every point stays at its query position and is always visible.

:func:`write_report` writes ``results.json`` (settings, per-scene and mean
values, curves), ``results.md`` (tables) and ``auc_curve.png`` /
``error_per_frame.png`` (matplotlib), and ``overview_K.png`` (prediction beside
ground truth, :mod:`vggt3d.export.preview`) for the first ``overview_scenes`` scenes.
"""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Literal, Mapping, Sequence

import torch
from torch import Tensor

from . import metrics as M
from .geometry import depth_to_world_points, pose_encoding_to_cameras

log = logging.getLogger(__name__)

METHODS = ("model", "baseline")
#: metric -> (column title, scale for the markdown table, lower is better)
COLUMNS: dict[str, tuple[str, float, bool]] = {
    "AUC@30": ("AUC@30 (%)", 100.0, False),
    "RRA@5": ("RRA@5 (%)", 100.0, False),
    "RRA@15": ("RRA@15 (%)", 100.0, False),
    "RRA@30": ("RRA@30 (%)", 100.0, False),
    "RTA@5": ("RTA@5 (%)", 100.0, False),
    "RTA@15": ("RTA@15 (%)", 100.0, False),
    "RTA@30": ("RTA@30 (%)", 100.0, False),
    "ATE": ("ATE", 1.0, True),
    "RPE_trans": ("RPE trans", 1.0, True),
    "RPE_rot_deg": ("RPE rot (deg)", 1.0, True),
    "abs_rel": ("Depth AbsRel", 1.0, True),
    "delta_1.25": ("Depth δ<1.25 (%)", 100.0, False),
    "accuracy": ("Points acc.", 1.0, True),
    "completeness": ("Points comp.", 1.0, True),
    "chamfer": ("Chamfer", 1.0, True),
    "delta_avg": ("Tracks δavg (%)", 100.0, False),
    "occlusion_accuracy": ("Occlusion acc. (%)", 100.0, False),
}


@dataclass
class EvalSettings:
    """How :func:`evaluate` aligns and what it measures."""

    depth_align: M.DepthAlign = "median"
    depth_per: Literal["frame", "sequence"] = "frame"
    #: point maps from ``depth`` (+ predicted cameras, the paper's better route) or the ``point_head``
    points_from: Literal["depth", "point_head"] = "depth"
    thresholds: Sequence[float] = (5, 15, 30)
    max_points: int = 10000
    #: track queries per scene (when the model has a track head and the data has tracks)
    track_queries: int = 64
    max_scenes: int | None = None
    seed: int = 0
    #: run the model causally (frame t sees frames 0..t; ``docs/world_models.md``)
    causal: bool = False
    #: the first N scenes are drawn next to their ground truth in the report (``overview_K.png``)
    overview_scenes: int = 3


@dataclass
class EvalResult:
    settings: EvalSettings
    scenes: list[dict] = field(default_factory=list)
    #: method -> every frame pair's (rotation, translation) errors, for the pooled AUC curve
    pair_errors: dict[str, list[tuple[Tensor, Tensor]]] = field(default_factory=dict)
    info: dict = field(default_factory=dict)
    #: (scene, prediction, ground truth) overviews (:mod:`vggt3d.export.preview`) of the first scenes
    overviews: list = field(default_factory=list, repr=False)

    def mean(self) -> dict[str, dict[str, float]]:
        """Mean over scenes of every metric, per method (NaNs left out)."""
        out: dict[str, dict[str, float]] = {}
        for method in METHODS:
            keys = sorted({k for s in self.scenes for k in s.get(method, {}) if not k.endswith("_per_frame")})
            out[method] = {}
            for k in keys:
                values = [s[method][k] for s in self.scenes if k in s.get(method, {})]
                values = [v for v in values if isinstance(v, (int, float)) and not math.isnan(v)]
                if values:
                    out[method][k] = sum(values) / len(values)
        return out

    def auc_curves(self, max_threshold: int = 30) -> dict[str, list[float]]:
        """Pooled over all pairs of all scenes: fraction of pairs with max(rot, trans) error below t, t = 1..30."""
        curves = {}
        for method, pairs in self.pair_errors.items():
            if pairs:
                rot = torch.cat([r for r, _ in pairs])
                trans = torch.cat([t for _, t in pairs])
                curves[method] = M.auc(rot, trans, max_threshold)[1].tolist()
        return curves

    def per_frame(self) -> dict[str, dict[str, list[float]]]:
        """Mean over scenes of per-frame-index errors (depth AbsRel, rotation / translation error to frame 0)."""
        out: dict[str, dict[str, list[float]]] = {}
        for method in METHODS:
            out[method] = {}
            for key in ("abs_rel_per_frame", "rot_to_first_per_frame", "trans_to_first_per_frame"):
                rows = [s[method][key] for s in self.scenes if key in s.get(method, {})]
                if not rows:
                    continue
                length = max(len(r) for r in rows)
                means = []
                for i in range(length):
                    vals = [r[i] for r in rows if i < len(r) and not math.isnan(r[i])]
                    means.append(sum(vals) / len(vals) if vals else float("nan"))
                out[method][key] = means
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"settings": asdict(self.settings), "info": self.info, "mean": self.mean(),
                "pooled": {m: {"AUC@30": sum(c) / len(c)} for m, c in self.auc_curves().items()},
                "curves": {"auc_thresholds_deg": list(range(1, 31)), **self.auc_curves()},
                "per_frame": self.per_frame(), "scenes": self.scenes}


# ------------------------------------------------------------------------------------------- baselines
def baseline_predictions(sample: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Identity cameras with the mean true focal length, constant depth 1, stationary always-visible tracks."""
    S, _, H, W = sample["images"].shape
    K = sample["intrinsics"].double()
    f = 0.5 * (K[:, 0, 0] + K[:, 1, 1]).mean()
    cams = torch.eye(4, dtype=torch.float64)[:3].expand(S, 3, 4).clone()
    intr = torch.tensor([[f, 0, W / 2], [0, f, H / 2], [0, 0, 1]], dtype=torch.float64).expand(S, 3, 3).clone()
    out = {"cam_from_world": cams, "intrinsics": intr, "depth": torch.ones(S, H, W, dtype=torch.float64)}
    if "tracks" in sample:
        q = sample["tracks"][0].double()  # [N, 2]
        out["track"] = q[None].expand(S, -1, -1).clone()
        out["vis"] = torch.ones(S, q.shape[0], dtype=torch.bool)
    return out


# --------------------------------------------------------------------------------------------- scoring
def score(pred: Mapping[str, torch.Tensor], gt: Mapping[str, torch.Tensor], settings: EvalSettings,
          query_index: torch.Tensor | None = None) -> tuple[dict[str, Any], tuple | None]:
    """Metrics of one scene's prediction (decoded: ``cam_from_world``, ``depth``, optional ``world_points``, ``track``).

    Returns ``(metrics, (rotation errors, translation errors) of all pairs or None)``.
    """
    out: dict[str, Any] = {}
    pairs = None
    S, _, H, W = gt["images"].shape
    mask = gt["point_masks"].bool()
    if "cam_from_world" in pred:
        cams_gt = gt["cam_from_world"].double()
        out.update(M.camera_metrics(pred["cam_from_world"], cams_gt, settings.thresholds))
        pairs = M.camera_pair_errors(pred["cam_from_world"], cams_gt)
        first = torch.arange(S - 1)  # pairs (0, j) come first in the row-major order
        out["rot_to_first_per_frame"] = [0.0] + pairs[0][first].tolist()
        out["trans_to_first_per_frame"] = [0.0] + pairs[1][first].tolist()
    if "depth" in pred:
        d = M.depth_metrics(pred["depth"], gt["depths"], mask, settings.depth_align, settings.depth_per)
        out.update(d)
    points = pred.get("world_points")
    if points is None and "depth" in pred and "cam_from_world" in pred:
        points = depth_to_world_points(pred["depth"].double(), pred["cam_from_world"].double(),
                                       pred["intrinsics"].double())[0]
    if points is not None:
        out.update(M.pointmap_metrics(points, gt["world_points"], mask, settings.max_points, settings.seed))
    if "track" in pred and "tracks" in gt:
        idx = query_index if query_index is not None else torch.arange(pred["track"].shape[1])
        gt_tracks, gt_vis = gt["tracks"][:, idx], gt["track_visibility"][:, idx]
        keep = gt_vis[0]  # queries visible in frame 0
        if bool(keep.any()):
            out.update(M.tapvid_metrics(pred["track"][:, keep], pred["vis"][:, keep], gt_tracks[:, keep],
                                        gt_vis[:, keep], (H, W)))
    return out, pairs


@torch.no_grad()
def predict(model, sample: Mapping[str, torch.Tensor], settings: EvalSettings,
            device: torch.device | str = "cpu") -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
    """Run ``model`` on one scene and decode cameras; returns ``(prediction, query indices or None)``."""
    images = sample["images"].to(device)
    S, _, H, W = images.shape
    queries = index = None
    if "track" in model.heads() and "tracks" in sample:
        index = torch.arange(min(settings.track_queries, sample["tracks"].shape[1]))
        queries = sample["tracks"][0, index].to(device)
    out = model(images[None], query_points=queries, causal=settings.causal)
    pred: dict[str, torch.Tensor] = {}
    if "pose_enc" in out:
        cams, K = pose_encoding_to_cameras(out["pose_enc"][0].float().cpu(), (H, W))
        pred["cam_from_world"], pred["intrinsics"] = cams.double(), K.double()
    if "depth" in out:
        pred["depth"] = out["depth"][0, ..., 0].float().cpu()
    use_head = settings.points_from == "point_head" or "depth" not in out or "pose_enc" not in out
    if "world_points" in out and use_head:
        pred["world_points"] = out["world_points"][0].float().cpu()
    if "track" in out:
        pred["track"] = out["track"][0].float().cpu()
        pred["vis"] = out["vis"][0].cpu() > 0.5
    return pred, index


def evaluate(model, dataset, settings: EvalSettings | None = None, device: torch.device | str = "cpu",
             progress: bool = False, normalize: bool = True) -> EvalResult:
    """Evaluate ``model`` (a :class:`vggt3d.VGGT3D`) on every scene ``dataset[i]`` (see the module docstring)."""
    from tqdm.auto import tqdm

    settings = settings or EvalSettings()
    if settings.points_from == "point_head" and "point" not in model.heads():
        raise ValueError(f"points from the point-map head were asked for, but this model has no point head "
                         f"(config.heads = {model.config.heads}); use points from depth (--points-from depth)")
    if normalize:
        from vggt3d.data import normalize_sample
    model.eval()
    result = EvalResult(settings, pair_errors={m: [] for m in METHODS})
    count = len(dataset) if settings.max_scenes is None else min(len(dataset), settings.max_scenes)
    for i in tqdm(range(count), desc="evaluate", disable=not progress, unit="scene"):
        sample = dataset[i]
        if normalize:
            sample = normalize_sample(sample)
        H, W = sample["images"].shape[-2:]
        patch = model.config.patch_size
        if H % patch or W % patch:
            raise ValueError(f"scene {i}: images are {H}x{W}, not multiples of the patch size {patch}; "
                             f"evaluate at a size the model accepts (e.g. the dataset's image_size)")
        pred, index = predict(model, sample, settings, device)
        row: dict[str, Any] = {"scene": str(sample.get("scene", i)), "num_frames": int(sample["images"].shape[0])}
        base = baseline_predictions(sample)
        if index is not None and "track" in base:  # the same queries as the model's
            base["track"], base["vis"] = base["track"][:, index], base["vis"][:, index]
        for method, p in (("model", pred), ("baseline", base)):
            row[method], pairs = score(p, sample, settings, index)
            if pairs is not None:
                result.pair_errors[method].append(pairs)
        result.scenes.append(row)
        if len(result.overviews) < settings.overview_scenes:
            from .export.preview import overview_pair

            result.overviews.append((row["scene"], *overview_pair(pred, sample, seed=settings.seed)))
    return result


# ---------------------------------------------------------------------------------------------- report
def _fmt(value: float | None, scale: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    v = value * scale
    return f"{v:.1f}" if scale == 100.0 else f"{v:.3f}"


def markdown_table(mean: Mapping[str, Mapping[str, float]], labels: Mapping[str, str] | None = None) -> str:
    """One row per method, the metrics present for the model as columns (best value in bold)."""
    labels = labels or {"model": "model", "baseline": "trivial baseline"}
    keys = [k for k in COLUMNS if k in mean.get("model", {})]
    head = "| method | " + " | ".join(COLUMNS[k][0] for k in keys) + " |"
    rule = "| --- | " + " | ".join("---:" for _ in keys) + " |"
    rows = [head, rule]
    for method in METHODS:
        cells = []
        for k in keys:
            _, scale, lower = COLUMNS[k]
            value = mean.get(method, {}).get(k)
            others = [mean.get(m, {}).get(k) for m in METHODS]
            others = [v for v in others if v is not None and not math.isnan(v)]
            best = value is not None and others and value == (min(others) if lower else max(others)) and len(others) > 1
            text = _fmt(value, scale)
            cells.append(f"**{text}**" if best else text)
        rows.append(f"| {labels.get(method, method)} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def _scene_table(scenes: Iterable[Mapping[str, Any]]) -> str:
    keys = [("AUC@30", "AUC@30 (%)", 100.0), ("abs_rel", "AbsRel", 1.0), ("chamfer", "Chamfer", 1.0)]
    head = "| scene | frames | " + " | ".join(f"{t} model | {t} baseline" for _, t, _ in keys) + " |"
    rows = [head, "| --- | ---: | " + " | ".join("---: | ---:" for _ in keys) + " |"]
    for s in scenes:
        cells = []
        for k, _, scale in keys:
            cells += [_fmt(s["model"].get(k), scale), _fmt(s["baseline"].get(k), scale)]
        rows.append(f"| {s['scene']} | {s['num_frames']} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def _plots(result: EvalResult, out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    written = []
    styles = {"model": dict(color="tab:blue", label="model"),
              "baseline": dict(color="tab:gray", linestyle="--", label="trivial baseline")}
    curves = result.auc_curves()
    if curves:
        fig, ax = plt.subplots(figsize=(5, 4))
        for method, curve in curves.items():
            ax.plot(range(1, len(curve) + 1), [100 * c for c in curve], **styles[method])
        ax.set(xlabel="threshold (deg)", ylabel="pairs with max(rot, trans) error < threshold (%)",
               title="Camera accuracy (area = AUC@30)", ylim=(0, 100), xlim=(1, 30))
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / "auc_curve.png", dpi=100)
        plt.close(fig)
        written.append("auc_curve.png")
    per_frame = result.per_frame()
    panels = [("abs_rel_per_frame", "depth AbsRel"), ("rot_to_first_per_frame", "rotation error to frame 0 (deg)"),
              ("trans_to_first_per_frame", "translation angle to frame 0 (deg)")]
    panels = [(k, t) for k, t in panels if k in per_frame.get("model", {})]
    if panels:
        fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 3.6), squeeze=False)
        for ax, (key, title) in zip(axes[0], panels):
            for method in METHODS:
                values = per_frame.get(method, {}).get(key)
                if values:
                    ax.plot(range(len(values)), values, marker="o", **styles[method])
            ax.set(xlabel="frame index", title=title)
            ax.grid(alpha=0.3)
        axes[0][0].legend()
        fig.suptitle("Error per frame (mean over scenes)")
        fig.tight_layout()
        fig.savefig(out / "error_per_frame.png", dpi=100)
        plt.close(fig)
        written.append("error_per_frame.png")
    from .export.preview import render_comparison

    for k, (scene, pred_view, gt_view) in enumerate(result.overviews):
        render_comparison(pred_view, gt_view, out / f"overview_{k}.png", title=f"scene {scene}: prediction vs truth")
        written.append(f"overview_{k}.png")
    return written


def write_report(result: EvalResult, out_dir: str | Path, title: str = "Evaluation") -> dict[str, Any]:
    """Write ``results.json``, ``results.md`` and the plots into ``out_dir``; returns the JSON dict.

    Everything is written into a temporary folder inside ``out_dir`` first and
    moved into place only when all of it is written, so a failure (disk full,
    Ctrl-C) leaves the previous report, not a half-written one.
    """
    import shutil
    import tempfile

    from .io.atomic import _umask, remove_stale_temp_dirs

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    remove_stale_temp_dirs(out / "report")
    tmp = Path(tempfile.mkdtemp(prefix=f".report.tmp-{os.getpid()}-", dir=out))
    try:
        data = _write_report_files(result, tmp, title)
        for f in sorted(tmp.iterdir(), key=lambda p: p.name == "results.md"):  # the index last
            os.chmod(f, 0o666 & ~_umask())  # mkdtemp and some writers make files private
            os.replace(f, out / f.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return data


def _write_report_files(result: EvalResult, out: Path, title: str) -> dict[str, Any]:
    data = result.to_dict()
    plots = _plots(result, out)
    data["plots"] = plots
    (out / "results.json").write_text(json.dumps(data, indent=2, default=_json_default) + "\n", encoding="utf-8")
    info = result.info
    lines = [f"# {title}", ""]
    if info:
        lines += [f"- {k}: `{v}`" for k, v in info.items()] + [""]
    lines += ["Mean over scenes. Cameras: all frame pairs, VGGT protocol; ATE / RPE after Sim(3) alignment. "
              f"Depth after {result.settings.depth_align} alignment per {result.settings.depth_per}. "
              "Points after Sim(3) alignment, in units of the normalised scene (mean distance to camera 0 = 1). "
              "Trivial baseline: identity cameras with the mean true focal length, constant depth "
              "(stationary, always-visible tracks).", "", markdown_table(data["mean"]), ""]
    if data["pooled"]:
        pooled = ", ".join(f"{m} {100 * v['AUC@30']:.1f}" for m, v in data["pooled"].items())
        lines += [f"AUC@30 pooled over all pairs of all scenes (%): {pooled}.", ""]
    lines += [f"![{p}]({p})" for p in plots] + ["", "## Per scene", "", _scene_table(result.scenes), ""]
    (out / "results.md").write_text("\n".join(lines), encoding="utf-8")
    return data


def _json_default(obj: Any):
    if isinstance(obj, torch.Tensor):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
