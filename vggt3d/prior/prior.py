"""``GeometryPrior``: a frozen vggt3d model as a feature extractor and geometry oracle for other models.

Typical use (world-model training, feature caching, scoring generated video)::

    prior = GeometryPrior.from_pretrained("facebook/VGGT-1B", layers=[4, 11, 17, 23], device="cuda")
    feats = prior(frames)                       # frames [B, T, 3, H, W] in [0, 1], any H, W
    feats.patch_tokens[23]                      # [B, T, h, w, 2048]
    feats.to_grid(23)                           # [B, T, H, W, 2048] on the caller's pixels

Resizing: every frame is resized as a whole (bilinear, antialiased; no crop, no
padding) so that its longer side is ``resolution`` pixels (518 for VGGT-1B)
and the shorter side keeps the aspect ratio, rounded to a multiple of the
patch size (``config.patch_size``: 14 for VGGT-1B, 16 for VGGT-Omega);
``resolution=(H', W')`` fixes the size. The mapping between
patches and the caller's pixels is in :mod:`vggt3d.prior.features`.

Long clips: with ``window=N`` the clip is processed in windows of ``N`` frames
that all start with frame 0 (the anchor, the model's reference frame) and
share ``overlap`` further frames; each frame's features come from one window
(:mod:`vggt3d.prior.windows`). The heads' outputs of all windows are in frame
0's camera frame (it is the reference frame of every window) and are brought
to window 0's scale by the median ratio of the anchor's depth in window 0 to
its depth in the window (depth and camera translations are multiplied by it).
"""

from __future__ import annotations

import hashlib
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..geometry import pose_encoding_to_cameras
from ..hub import DEFAULT_REPO
from ..model import VGGT3D
from .features import GeometryFeatures
from ..stream.cache import StreamConfig
from .windows import Window, plan_windows

__all__ = ["GeometryPrior", "model_input_size"]


def model_input_size(height: int, width: int, resolution: int | tuple[int, int], patch_size: int = 14
                     ) -> tuple[int, int]:
    """``(H', W')`` the model sees for a frame of ``(height, width)`` pixels.

    Convention: an ``int`` resolution is the longer side (a multiple of
    ``patch_size``); the shorter side is ``round(short * resolution / long /
    patch_size) * patch_size``, at least one patch. A pair is used as is.
    """
    if isinstance(resolution, (tuple, list)):
        size = (int(resolution[0]), int(resolution[1]))
        if min(size) <= 0 or size[0] % patch_size or size[1] % patch_size:
            raise ValueError(f"resolution {size} must be positive multiples of the patch size {patch_size}")
        return size
    if resolution <= 0 or resolution % patch_size:
        raise ValueError(f"resolution must be a positive multiple of the patch size {patch_size}, got {resolution}")
    long_side, short_side = max(height, width), min(height, width)
    short = max(patch_size, round(short_side * resolution / long_side / patch_size) * patch_size)
    return (resolution, short) if height >= width else (short, resolution)


class GeometryPrior(nn.Module):
    """A frozen :class:`vggt3d.VGGT3D` that returns :class:`GeometryFeatures` for clips of any size.

    Args:
        model: the model (its weights are frozen unless ``frozen=False``).
        layers: aggregator layers to return (negative counts from the end);
            default: the layers the dense heads read (``4, 11, 17, 23`` for VGGT-1B).
        resolution: longer side of the model input in pixels, or ``(H', W')``;
            default :meth:`ModelConfig.default_resolution` (518 for VGGT-1B, 512 for VGGT-Omega).
        window: frames per model call for long clips (``None``: one pass).
        overlap: frames (besides the anchor) shared by consecutive windows.
        differentiable: default of ``forward(grad=...)``: when true, gradients
            flow to the input frames (the weights stay frozen).
        frozen: ``requires_grad=False`` on the weights and the model kept in
            eval mode even when a parent module calls ``.train()``.
        model_id: a name for the weights, recorded in cached features.
        causal: frame t's features and geometry depend on frames ``0..t``
            only (``model(..., causal=True)``; ``docs/world_models.md``). With
            ``window=None`` one causal pass; with ``window=N`` (or ``stream``)
            the clip is streamed through a key/value cache of at most N frames
            (frame 0, the N/2 newest frames and keyframes every N/4 frames;
            pushes of N/4 frames), so long clips run in bounded memory.
        stream: the cache budget and eviction policy of a causal stream
            (:class:`vggt3d.stream.StreamConfig`), instead of the one ``window`` implies.
        merge_ratio: merge away this fraction (0-0.95) of the tokens in every
            global attention (:mod:`vggt3d.merging`; faster, approximate; 0 = exact).

    ``forward`` runs under ``torch.no_grad`` unless asked otherwise. On CUDA the
    aggregator runs under bf16 (fp16 where bf16 is unsupported) autocast, on CPU
    in the weights' dtype (fp32 by default).
    """

    def __init__(self, model: VGGT3D, layers: Sequence[int] | None = None, *,
                 resolution: int | tuple[int, int] | None = None, window: int | None = None, overlap: int = 0,
                 differentiable: bool = False, frozen: bool = True, model_id: str | None = None,
                 causal: bool = False, stream: StreamConfig | None = None, merge_ratio: float = 0.0) -> None:
        super().__init__()
        if merge_ratio:
            from ..merging import MergeConfig

            MergeConfig(ratio=merge_ratio)  # validates: a number in [0, 0.95]
            if causal:
                raise ValueError("merge_ratio (token merging) cannot run with causal=True (a masked global attention)")
        self.merge_ratio = float(merge_ratio)
        if not isinstance(model, VGGT3D):
            raise TypeError(f"model must be a vggt3d.VGGT3D, got {type(model).__name__}")
        if causal:
            model.check_causal()
            if overlap:
                raise ValueError("overlap applies to bidirectional windows; a causal prior streams long clips through "
                                 "a key/value cache (frame 0, recent frames, keyframes) instead: leave overlap at 0")
        elif stream is not None:
            raise ValueError("stream (a StreamConfig) needs causal=True")
        self.causal = causal
        if causal and stream is None and window is not None:
            stream = StreamConfig(max_frames=max(2, window), recent=max(1, window // 2),
                                  keyframe_interval=max(1, window // 4))
        self.stream_config = stream
        self.model = model
        depth = model.config.aggregator.depth
        layers = list(model.config.dense_head.layers) if layers is None else [int(i) for i in layers]
        bad = [i for i in layers if not -depth <= i < depth]
        if bad or not layers:
            raise ValueError(f"layers {layers} must be a non-empty list of aggregator layers in [-{depth}, {depth})")
        self.layers = sorted({i % depth for i in layers})
        self.resolution = model.config.default_resolution() if resolution is None else resolution
        model_input_size(1, 1, self.resolution, model.config.patch_size)  # validates the resolution
        if window is not None:
            plan_windows(window + 1, window, overlap)  # validates window and overlap
        elif overlap:
            raise ValueError("overlap needs a window size (window=None processes a clip in one pass)")
        self.window, self.overlap = window, overlap
        self.differentiable = differentiable
        self.frozen = frozen
        self.model_id = model_id or "unnamed"
        self._fingerprint: str | None = None
        if frozen:
            model.requires_grad_(False)
        model.eval()

    @classmethod
    def from_pretrained(cls, source: str = DEFAULT_REPO, layers: Sequence[int] | None = None, *,
                        dtype: torch.dtype | None = None, device: str | torch.device = "cpu", config=None,
                        **kwargs) -> "GeometryPrior":
        """Load weights like :meth:`vggt3d.VGGT3D.from_pretrained` and wrap them.

        ``dtype`` casts the aggregator (the bulk of the weights; bf16/fp16 halve
        its memory on GPUs); the heads stay fp32. Other keyword arguments go to
        the constructor.
        """
        model = VGGT3D.from_pretrained(source, config=config, device=device)
        if dtype is not None:
            model.aggregator.to(dtype)
        return cls(model, layers, model_id=kwargs.pop("model_id", str(source)), **kwargs)

    # ---------------------------------------------------------------- state
    def train(self, mode: bool = True) -> "GeometryPrior":
        super().train(mode)
        if self.frozen:
            self.model.eval()
        return self

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute aggregator blocks in the backward pass (for losses through the prior)."""
        self.model.set_grad_checkpointing(enable)

    @property
    def dtype(self) -> torch.dtype:
        """Dtype of the aggregator weights (the input frames are cast to it)."""
        return next(self.model.aggregator.parameters()).dtype

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def fingerprint(self) -> str:
        """A hash of the weights (names, shapes, dtypes and bytes): ``blake2b:<32 hex digits>``."""
        if self._fingerprint is None:
            h = hashlib.blake2b(digest_size=16)
            for name, t in sorted(self.model.state_dict().items()):
                h.update(f"{name}:{tuple(t.shape)}:{t.dtype};".encode())
                h.update(t.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
            self._fingerprint = "blake2b:" + h.hexdigest()
        return self._fingerprint

    def model_size(self, height: int, width: int) -> tuple[int, int]:
        """``(H', W')`` the model sees for frames of ``height x width`` pixels."""
        return model_input_size(height, width, self.resolution, self.model.config.patch_size)

    # ---------------------------------------------------------------- forward
    def _check_frames(self, frames: Tensor) -> Tensor:
        if not isinstance(frames, Tensor):
            raise TypeError(f"frames must be a torch.Tensor, got {type(frames).__name__}")
        if frames.dim() == 4:
            frames = frames.unsqueeze(0)
        if frames.dim() != 5 or frames.shape[2] != 3:
            raise ValueError(f"frames must be [B, T, 3, H, W] or [T, 3, H, W] RGB, got shape {tuple(frames.shape)}")
        if frames.numel() == 0:
            raise ValueError(f"frames is empty (shape {tuple(frames.shape)})")
        if not frames.is_floating_point():
            raise TypeError(f"frames must be floating point RGB in [0, 1], got dtype {frames.dtype}")
        return frames

    def resize(self, frames: Tensor) -> Tensor:
        """Frames ``[B, T, 3, H, W]`` -> model input ``[B, T, 3, H', W']`` (a no-op when the size already fits)."""
        B, T, _, H, W = frames.shape
        size = self.model_size(H, W)
        if size == (H, W):
            return frames
        x = F.interpolate(frames.reshape(B * T, 3, H, W), size=size, mode="bilinear", align_corners=False,
                          antialias=True)  # [B*T, 3, H', W']
        return x.reshape(B, T, 3, *size)

    def forward(self, frames: Tensor, *, heads: bool = False, query_points: Tensor | None = None,
                grad: bool | None = None, progress: Callable[[int], None] | None = None) -> GeometryFeatures:
        """Features of ``frames [B, T, 3, H, W]`` (or ``[T, 3, H, W]``) RGB in [0, 1].

        Args:
            heads: also return cameras and depth (``GeometryFeatures.heads``).
            query_points: ``[N, 2]`` or ``[B, N, 2]`` pixels (x, y) of frame 0 on
                the model grid ``(H', W')``: also track them (implies ``heads``).
            grad: let gradients flow to ``frames`` (default: ``self.differentiable``).
            progress: called with the number of frames finished after each window.
        """
        frames = self._check_frames(frames)
        B, T, _, H, W = frames.shape
        grad = self.differentiable if grad is None else grad
        heads = heads or query_points is not None
        if self.stream_config is not None:
            return self._forward_stream(frames, heads, query_points, grad, progress)
        with torch.set_grad_enabled(grad):
            images = self.resize(frames.to(self.device))  # [B, T, 3, H', W']
            Hm, Wm = images.shape[-2:]
            windows = plan_windows(T, self.window, self.overlap)
            need = set(self.layers) | (set(self._head_layers(query_points is not None)) if heads else set())
            parts: dict[int, list[Tensor]] = {i: [] for i in self.layers}
            head_parts: list[dict[str, Tensor]] = []
            anchor_depth = None
            for k, win in enumerate(windows):
                sub = images[:, list(win.frames)]  # [B, S, 3, H', W']
                hooks = None
                if self.merge_ratio:
                    from ..merging import merge_hooks

                    hooks = merge_hooks(self.merge_ratio, sub.shape[1],
                                        1 + self.model.config.aggregator.num_register_tokens)
                tokens = self.model.forward_intermediates(sub.to(self.dtype), sorted(need), causal=self.causal,
                                                          hooks=hooks)  # {i: [B, S, P, 2C]}
                owned = [win.position(t) for t in win.owned]
                for i in self.layers:
                    parts[i].append(tokens[i][:, owned])  # [B, s, P, 2C]
                if heads:
                    out = self._run_heads(tokens, sub, query_points)
                    if k == 0:
                        anchor_depth = out["depth"][:, 0]
                    else:
                        self._rescale(out, anchor_depth)
                    head_parts.append({key: v[:, owned] for key, v in out.items()})
                del tokens
                if progress is not None:
                    progress(len(win.owned))
        return self._features(parts, head_parts, windows, (B, T, H, W), (Hm, Wm))

    def _features(self, parts: dict[int, list[Tensor]], head_parts: list[dict[str, Tensor]], windows: list,
                  shape: tuple[int, int, int, int], model_size: tuple[int, int]) -> GeometryFeatures:
        """Assemble :class:`GeometryFeatures` from each window's (or push's) tokens and head outputs."""
        B, T, H, W = shape
        Hm, Wm = model_size
        start = self.model.config.patch_start_idx()
        heads = bool(head_parts)
        h, w = Hm // self.model.config.patch_size, Wm // self.model.config.patch_size
        patch, camera, registers = {}, {}, {}
        for i in self.layers:
            x = torch.cat(parts[i], dim=1) if len(parts[i]) > 1 else parts[i][0]  # [B, T, P, 2C]
            camera[i] = x[:, :, 0]  # [B, T, 2C]
            registers[i] = x[:, :, 1:start]  # [B, T, R, 2C]
            patch[i] = x[:, :, start:].reshape(B, T, h, w, x.shape[-1])  # [B, T, h, w, 2C]
        owner = torch.tensor([k for k, win in enumerate(windows) for _ in win.owned], dtype=torch.int64)
        head_out = None
        if heads:
            head_out = {key: torch.cat([p[key] for p in head_parts], dim=1) for key in head_parts[0]}
            head_out["cam_from_world"], head_out["intrinsics"] = pose_encoding_to_cameras(head_out["pose_enc"],
                                                                                          (Hm, Wm))
        return GeometryFeatures(patch, camera, registers, (h, w), (Hm, Wm), (H, W), owner, windows, head_out)

    @property
    def can_track(self) -> bool:
        """Whether ``query_points`` work: the model has a track head and the prior is not streamed."""
        return "track" in self.model.heads() and self.stream_config is None

    def _forward_stream(self, frames: Tensor, heads: bool, query_points: Tensor | None, grad: bool,
                        progress: Callable[[int], None] | None) -> GeometryFeatures:
        """Causal features of a long clip through a :class:`vggt3d.stream.GeometryStream` (bounded memory)."""
        if query_points is not None:
            raise ValueError("query_points: a streamed causal prior does not track points (the tracker needs every "
                             "frame at once); use window=None for causal tracking")
        if grad:
            raise ValueError("grad=True: a streamed causal prior runs without gradients; use window=None")
        from ..stream.stream import GeometryStream

        B, T, _, H, W = frames.shape
        cfg = self.stream_config
        chunk = max(1, (cfg.max_frames or 16) // 4) if self.window is None else max(1, self.window // 4)
        stream = GeometryStream(self.model, cfg, layers=self.layers, heads=heads)
        parts: dict[int, list[Tensor]] = {i: [] for i in self.layers}
        head_parts: list[dict[str, Tensor]] = []
        windows = []
        Hm = Wm = 0
        for t0 in range(0, T, chunk):
            images = self.resize(frames[:, t0: t0 + chunk].to(self.device))  # [B, s, 3, H', W']
            Hm, Wm = images.shape[-2:]
            out = stream.push(images.to(self.dtype))
            new = tuple(out["frame_indices"])
            past = tuple(f for f in stream.cached_frames if f not in new)
            windows.append(Window(past + new, new))  # the frames these attended to, and the frames they own
            for i in self.layers:
                parts[i].append(out["tokens"][i])  # [B, s, P, 2C]
            if heads:
                head_parts.append({"pose_enc": out["pose_enc"], "depth": out["depth"][..., 0],
                                   "depth_conf": out["depth_conf"]})
            if progress is not None:
                progress(len(new))
        return self._features(parts, head_parts, windows, (B, T, H, W), (Hm, Wm))

    # ---------------------------------------------------------------- heads
    def _head_layers(self, track: bool) -> list[int]:
        m = self.model
        heads = m.heads()
        if "camera" not in heads or "depth" not in heads:
            raise ValueError("heads=True needs a model with camera and depth heads (config.heads)")
        if track and "track" not in heads:
            raise ValueError(f"query_points were given but the model has no track head (config.heads = "
                             f"{m.config.heads})")
        return m.head_layers(track=track)

    def _run_heads(self, tokens: dict[int, Tensor], images: Tensor, query_points: Tensor | None) -> dict[str, Tensor]:
        """Camera, depth (and track) heads on one window's tokens (:meth:`VGGT3D.forward_heads`, fp32)."""
        H, W = images.shape[-2:]
        q = None if query_points is None else query_points.to(images.device)
        if q is not None and (q.dim() not in (2, 3) or q.shape[-1] != 2):
            raise ValueError(f"query_points must be [N, 2] or [B, N, 2], got {tuple(query_points.shape)}")
        full = self.model.forward_heads(tokens, (H, W), q, causal=self.causal)
        out: dict[str, Tensor] = {"pose_enc": full["pose_enc"], "depth": full["depth"][..., 0],
                                  "depth_conf": full["depth_conf"]}  # [B, S, 9], [B, S, H, W] x 2
        if q is not None:
            out["track"], out["vis"], out["track_conf"] = full["track"], full["vis"], full["conf"]  # [B, S, N, ...]
        return out

    @staticmethod
    def _rescale(out: dict[str, Tensor], anchor_depth: Tensor) -> None:
        """Bring one window's depth and translations to window 0's scale via the anchor's depth."""
        ratio = (anchor_depth / out["depth"][:, 0].clamp_min(1e-8)).flatten(1)  # [B, H*W]
        scale = ratio.median(dim=1).values  # [B]
        out["depth"] = out["depth"] * scale[:, None, None, None]
        pose = out["pose_enc"]
        out["pose_enc"] = torch.cat([pose[..., :3] * scale[:, None, None], pose[..., 3:]], dim=-1)

