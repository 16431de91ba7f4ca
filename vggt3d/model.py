"""The assembled model: an alternating-attention aggregator and the heads of its family.

``VGGT3D()`` is the VGGT-1B architecture (Wang et al., "VGGT: Visual Geometry
Grounded Transformer", CVPR 2025); its ``state_dict`` has exactly the names and
shapes of the public ``facebook/VGGT-1B`` checkpoint. ``VGGT3D(ModelConfig.
preset("vggt-omega-1b-512"))`` is VGGT-Omega-1B with the names of
``vggt_omega_1b_512.pt``. The family (``config.aggregator.kind``) builds the
parts (:mod:`vggt3d.models`).

Two-stage contract (timm-style): :meth:`VGGT3D.forward_intermediates` gives
aggregator tokens, :meth:`VGGT3D.forward_heads` runs the heads on them, and
``forward`` is their composition. Precision is an argument
(:func:`vggt3d.runtime.precision_context`); the heads always run in fp32.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Sequence

import torch
from torch import nn

from .aggregator import AggregatorHooks, lean_hooks
from .config import ModelConfig
from .hub import PretrainedMixin
from .models import family as _family
from .runtime import precision_context
from .stream.cache import CausalFrames, causal_mask

#: ``progress(stage, done, total)``: ``stage`` is ``"aggregator"`` (done = layers run) or ``"heads"``.
ProgressFn = Callable[[str, int, int], None]


class VGGT3D(PretrainedMixin, nn.Module):
    """Feed-forward multi-view geometry.

    ``forward(images, query_points=None)`` takes RGB images in [0, 1] of shape
    ``[S, 3, H, W]`` or ``[B, S, 3, H, W]`` (H, W multiples of the patch size,
    ``config.patch_size``: 14 for VGGT-1B, 16 for VGGT-Omega) and returns a dict:

    - ``pose_enc`` ``[B, S, 9]`` and ``pose_enc_list`` (one per refinement
      iteration; one entry for a one-pass head): ``[tx, ty, tz, qx, qy, qz, qw,
      fov_h, fov_w]`` of ``cam_from_world`` (OpenCV axes, frame 0 is the
      world); decode with :func:`vggt3d.geometry.pose_encoding_to_cameras`.
    - ``depth`` ``[B, S, H, W, 1]`` (z in each camera) and ``depth_conf`` ``[B, S, H, W]``.
    - VGGT-1B: ``world_points`` ``[B, S, H, W, 3]`` (frame 0's camera
      coordinates) and ``world_points_conf``; with ``query_points`` ``[N, 2]``
      or ``[B, N, 2]`` (pixels ``(x, y)`` in frame 0, pixel centres at
      integers): ``track`` ``[B, S, N, 2]``, ``vis`` and ``conf`` ``[B, S, N]``
      in [0, 1]; also ``track_list`` and ``vis_logits`` / ``conf_logits``.
    - VGGT-Omega: ``camera_and_register_tokens`` ``[B, S, 1+R, 2C]``; the text
      variant adds ``text_alignment_embedding`` and ``text_alignment_token`` ``[B, 2C]``.

    ``precision``: ``"auto"`` (default: bf16 autocast on CUDA, fp16 where bf16
    is unsupported and on MPS, fp32 on CPU), ``"fp32"``/``"bf16"``/``"fp16"`` or
    a torch dtype (bf16 works on the CPU), or ``None`` to keep the caller's
    autocast state. It applies to the encoder and aggregator; heads run in fp32.
    """

    def __init__(self, config: ModelConfig | None = None) -> None:
        super().__init__()
        self.config = config = config if config is not None else ModelConfig()
        self.family.build(self, config)

    @property
    def family(self):
        """The family module (:mod:`vggt3d.models`) of ``config.aggregator.kind``."""
        return _family(self.config.family)

    # ------------------------------------------------------------------ inputs
    def _check_images(self, images: torch.Tensor) -> torch.Tensor:
        if not isinstance(images, torch.Tensor):
            raise TypeError(f"images must be a torch.Tensor, got {type(images).__name__}")
        if images.dim() == 4:
            images = images.unsqueeze(0)
        if images.dim() != 5:
            raise ValueError(f"images must be [S, 3, H, W] or [B, S, 3, H, W], got shape {tuple(images.shape)}")
        B, S, C, H, W = images.shape
        if C != 3:
            raise ValueError(f"images must have 3 (RGB) channels in dim -3, got {C} (shape {tuple(images.shape)})")
        if B == 0 or S == 0 or H == 0 or W == 0:
            raise ValueError(f"images is empty (shape {tuple(images.shape)})")
        p = self.config.patch_size
        if H % p or W % p:
            raise ValueError(
                f"image height and width must be multiples of the patch size {p}, got {H}x{W}; "
                f"resize or crop them (vggt3d.load_images does this)"
            )
        if not images.is_floating_point():
            raise TypeError(f"images must be floating point RGB in [0, 1], got dtype {images.dtype}")
        return images

    def _check_queries(self, query_points: torch.Tensor, B: int, image_size: tuple[int, int]) -> torch.Tensor:
        self.family.check_queries(self, image_size)
        q = query_points
        if q.dim() == 2:
            q = q.unsqueeze(0)
        if q.dim() != 3 or q.shape[-1] != 2:
            raise ValueError(f"query_points must be [N, 2] or [B, N, 2] pixel (x, y), got shape {tuple(query_points.shape)}")
        if q.shape[0] != B:
            if q.shape[0] == 1:
                q = q.expand(B, -1, -1)
            else:
                raise ValueError(f"query_points batch {q.shape[0]} does not match images batch {B}")
        if q.shape[1] == 0:
            raise ValueError("query_points is empty (N = 0)")
        return q.float()

    # ----------------------------------------------------------------- helpers
    def heads(self) -> dict[str, nn.Module]:
        """The built heads by name (``camera``, ``depth``, ``point``, ``track``, ``text_alignment``)."""
        return self.family.head_modules(self)

    def head_prefixes(self) -> dict[str, str]:
        """State-dict prefix of every head the family can build (``{"depth": "dense_head.", ...}`` for Omega)."""
        return {name: f"{attr}." for name, attr in self.family.HEAD_ATTRIBUTES.items()}

    def head_layers(self, track: bool = True) -> list[int]:
        """Aggregator layers read by the enabled heads (``track``: include the track head's)."""
        return self.family.head_layers(self, track)

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute aggregator blocks in the backward pass (saves memory when training)."""
        self.aggregator.set_grad_checkpointing(enable)

    # ---------------------------------------------------------------- causal
    def check_causal(self) -> None:
        """Raise ``ValueError`` unless this model's family supports causal attention over frames."""
        if not getattr(self.family, "SUPPORTS_CAUSAL", False):
            raise ValueError(f"the {self.config.family!r} model family does not support causal attention "
                             f"(--causal / causal=True / streams); use a VGGT-1B or VGGT-Omega model, or drop causal")

    def _causal_hooks(self, hooks: AggregatorHooks | None, device: torch.device) -> AggregatorHooks:
        self.check_causal()
        hooks = hooks or AggregatorHooks()
        if hooks.attn_bias is not None:
            raise ValueError("causal=True builds the global attention mask itself; do not also pass hooks.attn_bias")
        return dataclasses.replace(hooks, attn_bias=lambda layer, S, T: causal_mask(S, T, device=device))

    def stream(self, config: Any = None, **kwargs: Any):
        """A :class:`vggt3d.stream.GeometryStream`: ``push(frames) -> outputs`` from a key/value cache.

        ``config``: a :class:`vggt3d.stream.StreamConfig` (cache budget and
        eviction); other keyword arguments go to the stream (``layers``,
        ``heads``, ``precision``).
        """
        from .stream.stream import GeometryStream

        return GeometryStream(self, config, **kwargs)

    # ---------------------------------------------------------------- stage 1
    def forward_intermediates(self, images: torch.Tensor, layers: Sequence[int] | None = None, *,
                              precision: Any = "auto", hooks: AggregatorHooks | None = None,
                              progress: ProgressFn | None = None, causal: bool = False) -> dict[int, torch.Tensor]:
        """Aggregator tokens ``{layer: [B, S, P, 2C]}`` for the requested layers.

        ``causal=True``: global attention masked so that frame t attends to
        frames ``<= t`` (frame attention unchanged; frame 0 keeps its tokens),
        so the tokens of frames ``0..t`` equal those of a pass over frames
        ``0..t`` alone (prefix invariance; ``docs/world_models.md``).

        Default layers: ``config.aggregator.output_layers`` (every layer when
        unset). ``P = 1 + R + h*w``: token 0 is the camera token, then R register
        tokens, then the patch tokens in row-major order. Layers past the last
        requested one are not computed. Tokens are in the autocast dtype.

        Without gradients this is the lean exact pass (:func:`vggt3d.aggregator.lean_hooks`):
        the per-frame stages and the token-wise parts of the global blocks run
        in chunks of ``LEAN_TOKEN_CHUNK`` tokens, so only the global attention
        kernel sees all tokens; same results within float rounding, less
        memory, no more time (``benchmarks/memory_lean.py``). ``hooks`` with
        ``token_chunk=0`` turn it off.
        """
        images = self._check_images(images)
        if not torch.is_grad_enabled():
            hooks = lean_hooks(hooks)
        depth = self.config.aggregator.depth
        if layers is None:
            layers = self.config.aggregator.output_layers or list(range(depth))
        layers = [i + depth if i < 0 else i for i in layers]
        last = max(layers) if layers else -1
        callback = None if progress is None else (lambda i: progress("aggregator", i + 1, last + 1))
        if causal:
            hooks = self._causal_hooks(hooks, images.device)
        with precision_context(precision, images.device):
            return self.aggregator(images, layers, hooks, callback)

    # ---------------------------------------------------------------- stage 2
    def forward_heads(self, tokens: dict[int, torch.Tensor], image_size: tuple[int, int],
                      query_points: torch.Tensor | None = None, *, causal: bool = False,
                      kv_cache: Any = None) -> dict[str, torch.Tensor]:
        """Run the heads on aggregator tokens ``{layer: [B, S, P, 2C]}`` for images of ``image_size`` (H, W).

        ``causal=True``: the heads that mix frames (camera trunk, tracker) let
        frame t see frames ``<= t`` only. ``kv_cache``: a stream's
        :class:`vggt3d.stream.FrameKVCache` (implies causal; the tokens are the
        new frames', the cache holds the past).

        ``tokens`` must hold :meth:`head_layers` (``track=query_points is not
        None``). Runs in fp32 with autocast off, whatever the tokens' dtype.
        """
        H, W = int(image_size[0]), int(image_size[1])
        need = self.head_layers(track=query_points is not None)
        missing = [i for i in need if i not in tokens]
        if missing:
            raise ValueError(f"forward_heads needs aggregator layers {need}; missing {missing}")
        B = tokens[need[0]].shape[0] if need else 0
        if query_points is not None:
            query_points = self._check_queries(query_points, B, (H, W))
        head_dtype = next((p.dtype for h in self.heads().values() for p in h.parameters()), torch.float32)
        tokens = {i: t.to(head_dtype) for i, t in tokens.items()}  # fp32 unless the caller cast the heads
        device_type = next(iter(tokens.values())).device.type if tokens else "cpu"
        frames = None
        if kv_cache is not None or causal:
            self.check_causal()
            frames = kv_cache if kv_cache is not None else CausalFrames(tokens[need[0]].shape[1] if need else 0)
        with torch.autocast(device_type, enabled=False):
            return self.family.forward_heads(self, tokens, (H, W), query_points, causal=frames)

    def forward_tracks(self, tokens: dict[int, torch.Tensor], image_size: tuple[int, int],
                       queries: dict[int, torch.Tensor]) -> dict[int, dict[str, torch.Tensor]]:
        """Tracks of query pixels given in several frames: ``{frame q: [N_q, 2] or [B, N_q, 2]}``.

        ``tokens`` as for :meth:`forward_heads` (with ``head_layers(track=True)``).
        Returns ``{q: {"track": [B, S, N_q, 2], "vis": ..., "conf": [B, S, N_q]}}``
        in input frame order (pixels ``(x, y)``, pixel centres at integers); the
        track features are computed once for all query frames. Runs in fp32.
        """
        if self.track_head is None:
            raise ValueError("this model has no track head (config.heads); it cannot track query points")
        H, W = int(image_size[0]), int(image_size[1])
        need = self.head_layers(track=True)
        missing = [i for i in need if i not in tokens]
        if missing:
            raise ValueError(f"forward_tracks needs aggregator layers {need}; missing {missing}")
        B, S = tokens[need[0]].shape[:2]
        bad = [q for q in queries if not 0 <= int(q) < S]
        if bad:
            raise ValueError(f"query frames {bad} out of range [0, {S})")
        checked = {int(q): self._check_queries(p, B, (H, W)) for q, p in queries.items()}
        tokens = {i: t.float() for i, t in tokens.items()}
        device_type = tokens[need[0]].device.type
        with torch.autocast(device_type, enabled=False):
            raw = self.track_head.forward_from_frames(tokens, (H, W), self.aggregator.patch_start_idx, checked)
        return {q: {"track": t, "vis": torch.sigmoid(v), "conf": torch.sigmoid(c)} for q, (t, v, c) in raw.items()}

    # ----------------------------------------------------------------- forward
    def forward(self, images: torch.Tensor, query_points: torch.Tensor | None = None, *, precision: Any = "auto",
                hooks: AggregatorHooks | None = None, progress: ProgressFn | None = None,
                causal: bool = False) -> dict:
        images = self._check_images(images)
        B, S, _, H, W = images.shape
        if causal:
            self.check_causal()  # fail before the aggregator runs
        if query_points is not None:
            self._check_queries(query_points, B, (H, W))  # fail before the aggregator runs
        tokens = self.forward_intermediates(images, self.head_layers(track=query_points is not None),
                                            precision=precision, hooks=hooks, progress=progress, causal=causal)
        out = self.forward_heads(tokens, (H, W), query_points, causal=causal)
        if getattr(self.family, "ECHO_IMAGES", False):  # VGGT-Omega's forward returns its input, [B, S, 3, H, W]
            out["images"] = images
        if progress is not None:
            progress("heads", 1, 1)
        return out
