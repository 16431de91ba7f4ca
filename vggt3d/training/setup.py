"""Building blocks of a training run: the model, the data stream, the accelerator."""

from __future__ import annotations

from typing import Any, Iterable, Iterator, Mapping

import torch

from vggt3d.model import VGGT3D

from .config import TrainConfig
from .optim import init_vit_weights


# ------------------------------------------------------------------------------------------------ model
def build_model(cfg: TrainConfig) -> VGGT3D:
    """The model of ``cfg.model``: from scratch (preset + arch, ViT init) or from any ``from_pretrained`` source.

    With ``pretrained``, ``arch`` may only list ``heads`` (a subset of the
    checkpoint's): the other heads are dropped, e.g. to fine-tune VGGT-1B
    with only the camera and depth heads.
    """
    section = cfg.model
    if section.pretrained is None:
        model = VGGT3D(section.model_config())
        if section.init == "vit":
            init_vit_weights(model, layer_scale=section.init_layer_scale, token_std=section.init_token_std)
        if section.init_from is not None:
            load_over(model, section.init_from)
        return model
    extra = sorted(set(section.arch) - {"heads"})
    if extra:
        raise ValueError(f"model.arch may only set 'heads' when loading model.pretrained ({section.pretrained}); "
                         f"got {extra} (the architecture comes from the checkpoint)")
    model = VGGT3D.from_pretrained(section.pretrained)
    keep = section.arch.get("heads")
    if keep is not None:
        missing = [h for h in keep if h not in model.config.heads]
        if missing:
            raise ValueError(f"model.arch.heads asks for {missing}, which {section.pretrained} does not have")
        for head in [h for h in model.config.heads if h not in keep]:
            setattr(model, f"{head}_head", None)
        model.config.heads = [h for h in model.config.heads if h in keep]
    return model


def load_over(model: VGGT3D, source: str) -> list[str]:
    """Load the weights of ``source`` (any ``from_pretrained`` source) into ``model``.

    Every tensor of ``source`` must exist in ``model`` with the same shape; the
    only parameters ``source`` may lack are whole heads that it does not have.
    Returns the heads that kept their initialisation.
    """
    src = VGGT3D.from_pretrained(source)
    state = src.state_dict()
    own = model.state_dict()
    extra = sorted(k for k in state if k not in own)
    wrong = sorted(k for k in state if k in own and own[k].shape != state[k].shape)
    if extra or wrong:
        raise ValueError(f"model.init_from {source}: its weights do not fit model.arch "
                         f"({len(extra)} unknown, {len(wrong)} of another shape, e.g. {(extra + wrong)[0]})")
    new_heads = [h for h in model.config.heads if h not in src.config.heads]
    missing = [k for k in own if k not in state and not any(k.startswith(f"{h}_head.") for h in new_heads)]
    if missing:
        raise ValueError(f"model.init_from {source} lacks {len(missing)} tensors of its own heads, e.g. {missing[0]}")
    model.load_state_dict(state, strict=False)
    return new_heads


# ------------------------------------------------------------------------------------------------- data
class BatchStream:
    """Endless, resumable iteration over a data loader.

    The position is ``(epoch, index)``: batches already taken from the current
    pass. A loader with ``set_epoch`` is told the epoch before each pass; one
    with ``state_dict`` / ``load_state_dict`` restores its own position,
    otherwise ``index`` batches are skipped after a restore (exact when each
    pass is deterministic given the epoch, as :func:`vggt3d.data.make_dataloader` is).
    """

    def __init__(self, loader: Iterable) -> None:
        self.loader = loader
        self.epoch = 0
        self.index = 0
        self._iter: Iterator | None = None
        self._loader_state: Any = None

    def _start(self) -> None:
        if hasattr(self.loader, "set_epoch"):
            self.loader.set_epoch(self.epoch)
        if self._loader_state is not None:
            self.loader.load_state_dict(self._loader_state)
            self._loader_state = None
            self._iter = iter(self.loader)
            return
        self._iter = iter(self.loader)
        for _ in range(self.index):  # fast-forward after a restore
            next(self._iter)

    def __next__(self):
        if self._iter is None:
            self._start()
        try:
            batch = next(self._iter)
        except StopIteration:
            self.epoch, self.index = self.epoch + 1, 0
            self._start()
            try:
                batch = next(self._iter)
            except StopIteration:
                raise RuntimeError("the training data loader yields no batch") from None
        self.index += 1
        return batch

    def __iter__(self):
        return self

    def state_dict(self) -> dict:
        state = {"epoch": self.epoch, "index": self.index}
        if hasattr(self.loader, "state_dict") and hasattr(self.loader, "load_state_dict"):
            state["loader"] = self.loader.state_dict()
        return state

    def load_state_dict(self, state: Mapping) -> None:
        self.epoch, self.index = int(state["epoch"]), int(state["index"])
        self._loader_state = state.get("loader")
        self._iter = None


def build_loader(cfg: TrainConfig, split: str, seed: int, num_tracks: int = 0, patch_size: int = 14):
    """A :func:`vggt3d.data.make_dataloader` over the ``cfg.data.<split>`` datasets, mixed by weight.

    One dataset is used as is (an epoch is one pass over its scenes); several
    become a :class:`vggt3d.data.MixedDataset` of ``data.epoch_length`` indices.
    Samples are normalised in the loader (in its workers when ``num_workers > 0``).
    """
    from vggt3d import data as vdata  # training-time dependency only

    d = cfg.data
    d.check_patch_size(patch_size)
    entries = d.train if split == "train" else d.val
    datasets = [vdata.build_dataset(e.name, **e.kwargs) for e in entries]
    if len(datasets) == 1:
        dataset = datasets[0]
    else:
        dataset = vdata.MixedDataset(datasets, [e.weight for e in entries], length=d.epoch_length, seed=seed)
    train = split == "train"
    size = d.image_size if isinstance(d.image_size, int) else tuple(d.image_size)
    return vdata.make_dataloader(dataset, images_per_batch=d.images_per_batch,
                                 num_frames=tuple(d.num_frames if train else d.val_num_frames), image_size=size,
                                 train=train, seed=seed, num_workers=d.num_workers, num_tracks=num_tracks,
                                 normalize=True, augment=vdata.AugmentConfig(train=train, **d.augment),
                                 patch_size=patch_size)


# ---------------------------------------------------------------------------------------------- trainer
def _resolve_precision(precision: str, cpu: bool) -> str:
    """accelerate's ``mixed_precision`` for our ``precision`` setting."""
    cuda = torch.cuda.is_available() and not cpu
    if precision == "auto":
        if not cuda:
            return "no"
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if precision == "fp32":
        return "no"
    if not cuda and precision == "fp16":
        raise ValueError("accel.precision=fp16 needs a CUDA device")
    return precision


def build_accelerator(cfg: TrainConfig):
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs

    a = cfg.accel
    kwargs: dict[str, Any] = dict(cpu=a.cpu, mixed_precision=_resolve_precision(a.precision, a.cpu),
                                  kwargs_handlers=[DistributedDataParallelKwargs(
                                      find_unused_parameters=a.find_unused_parameters)])
    if a.distributed == "fsdp":
        from accelerate.utils import FullyShardedDataParallelPlugin

        kwargs["fsdp_plugin"] = FullyShardedDataParallelPlugin(use_orig_params=True)
    if a.allow_tf32 and torch.cuda.is_available():
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    return Accelerator(**kwargs)
