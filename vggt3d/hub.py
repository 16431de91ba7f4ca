"""Checkpoints: ``from_pretrained`` / ``save_pretrained`` on top of huggingface-hub.

Sources accepted by :meth:`PretrainedMixin.from_pretrained`:

- a Hugging Face repo id (``facebook/VGGT-1B``): ``model.safetensors`` (or
  ``model.pt``) and ``config.json``, through the hub cache; offline mode
  (``HF_HUB_OFFLINE=1``) and ``local_files_only`` use only the cache;
- a local directory holding ``config.json`` and ``model.safetensors`` /
  ``model.pt`` / ``pytorch_model.bin``;
- a local ``.safetensors``, ``.pt``, ``.pth`` or ``.bin`` file, such as the
  original ``vggt_omega_1b_512.pt`` / ``vggt_omega_1b_256_text.pt`` (architecture
  from ``config``, else from the checkpoint's keys);
- the gated hub repo ``facebook/VGGT-Omega`` (request access on its page first);
- the name of a model shipped inside the package (``vggt3d/assets/<name>/``).

``config.json`` may be in this project's schema (:class:`vggt3d.ModelConfig`)
or the original VGGT constructor arguments (``img_size``, ``patch_size``,
``embed_dim``, ``enable_*``), as on the hub.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, Mapping

import torch

from .config import ConfigError, ModelConfig
from .io.atomic import atomic_write

log = logging.getLogger(__name__)

DEFAULT_REPO = "facebook/VGGT-1B"
WEIGHT_FILES = ("model.safetensors", "model.pt", "pytorch_model.bin")
#: the file names of the original VGGT-Omega release (``facebook/VGGT-Omega``)
ORIGINAL_OMEGA_FILES = ("vggt_omega_1b_512.pt", "vggt_omega_1b_256_text.pt")
ASSETS_DIR = Path(__file__).resolve().parent / "assets"
_ORIGINAL_KEYS = {"img_size", "patch_size", "embed_dim", "enable_camera", "enable_point", "enable_depth",
                  "enable_track"}


class CheckpointError(RuntimeError):
    """A checkpoint cannot be found, read, or does not fit the architecture."""


def shipped_models() -> dict[str, Path]:
    """Models that ship inside the package: name -> directory."""
    if not ASSETS_DIR.is_dir():
        return {}
    return {p.name: p for p in sorted(ASSETS_DIR.iterdir()) if (p / "config.json").is_file()}


def config_from_json_dict(d: Mapping[str, Any], origin: str = "config.json") -> ModelConfig:
    """Read either our schema or the original VGGT constructor arguments."""
    if set(d) and set(d) <= _ORIGINAL_KEYS:
        cfg = ModelConfig()
        if int(d.get("embed_dim", 1024)) != 1024:
            raise CheckpointError(f"{origin}: embed_dim={d['embed_dim']} is not supported for original-format configs "
                                  f"(VGGT's encoder is a ViT-L, width 1024); write the config in vggt3d's schema")
        cfg.img_size = int(d.get("img_size", cfg.img_size))
        cfg.patch_size = int(d.get("patch_size", cfg.patch_size))
        cfg.heads = [h for h in ("camera", "depth", "point", "track") if d.get(f"enable_{h}", True)]
        return ModelConfig.from_dict(cfg.to_dict())
    try:
        return ModelConfig.from_dict(d)
    except ConfigError as e:
        raise CheckpointError(f"{origin}: {e}") from e


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise CheckpointError(f"cannot read {path}: {e}") from e


def load_state_dict_file(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a ``.safetensors`` / ``.pt`` / ``.pth`` / ``.bin`` state dict onto the CPU.

    Common wrappers (``{"model": ...}``, ``{"state_dict": ...}``) and a
    ``module.`` prefix (DDP) are unwrapped.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint file {path} does not exist")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            sd = load_file(str(path), device="cpu")
        else:
            sd = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any reader failure is a bad checkpoint
        raise CheckpointError(f"cannot read checkpoint {path}: {e}. Is the file complete (not truncated)?") from e
    for key in ("model", "state_dict", "model_state_dict"):
        if isinstance(sd, dict) and key in sd and isinstance(sd[key], dict):
            sd = sd[key]
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise CheckpointError(f"{path} does not hold a state dict of tensors")
    if sd and all(k.startswith("module.") for k in sd):
        sd = {k[len("module."):]: v for k, v in sd.items()}
    return sd


def check_state_dict(expected: Mapping[str, torch.Tensor], found: Mapping[str, torch.Tensor], origin: str) -> None:
    """Raise :class:`CheckpointError` listing missing, unexpected and mis-shaped tensors."""
    missing = [k for k in expected if k not in found]
    unexpected = [k for k in found if k not in expected]
    shapes = [f"{k}: checkpoint {tuple(found[k].shape)} vs model {tuple(expected[k].shape)}"
              for k in expected if k in found and tuple(found[k].shape) != tuple(expected[k].shape)]
    if not (missing or unexpected or shapes):
        return

    def listing(title: str, items: list[str]) -> str:
        more = f" ... and {len(items) - 8} more" if len(items) > 8 else ""
        return f"\n  {len(items)} {title}: " + ", ".join(items[:8]) + more if items else ""

    raise CheckpointError(
        f"checkpoint {origin} does not match the model architecture:"
        + listing("missing", missing) + listing("unexpected", unexpected) + listing("with wrong shapes", shapes)
        + "\nPass the matching config (config=ModelConfig.from_json(...) or a directory with its config.json), "
          "or check that the file is a VGGT-family checkpoint."
    )


#: Hub repos whose weights are not ``model.safetensors``/``model.pt``: repo -> {preset: file}; the first is the default.
REPO_FILES: dict[str, dict[str, str]] = {
    "facebook/VGGT-Omega": {"vggt-omega-1b-512": "vggt_omega_1b_512.pt",
                            "vggt-omega-1b-256-text": "vggt_omega_1b_256_text.pt"},
}
#: Gated hub repos: the terms must be accepted on the repo page before a download works.
GATED_REPOS = {"facebook/VGGT-Omega"}


def _access_help(repo_id: str, files: tuple[str, ...]) -> str:
    """How to get the weights of a gated repo, or to use a local file instead."""
    return (f"\n{repo_id} is a gated repository. To get access: log in at https://huggingface.co, open "
            f"https://huggingface.co/{repo_id}, request access (accept the license terms) and wait for approval, "
            f"then run `hf auth login` (or set HF_TOKEN) on a machine with internet access and download "
            f"{' or '.join(files)} (`hf download {repo_id} {files[0]}`). Or pass a local copy of the file: "
            f"VGGT3D.from_pretrained('/path/to/{files[0]}') / --weights /path/to/{files[0]}.")


def _hub_files(repo_id: str, revision: str | None, cache_dir: str | None, local_files_only: bool | None,
               filename: str | None = None, preset: str | None = None):
    """Download (or find in the cache) the config and the weights of a hub repo."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (EntryNotFoundError, GatedRepoError, HfHubHTTPError, LocalEntryNotFoundError,
                                        RepositoryNotFoundError)

    known = REPO_FILES.get(repo_id, {})
    if filename is not None:
        candidates: tuple[str, ...] = (filename,)
    elif known:
        first = known.get(preset or "", next(iter(known.values())))
        candidates = (first,)
    else:
        candidates = WEIGHT_FILES[:2]

    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        local_files_only = True  # read now: huggingface_hub reads it once, at its import

    def fetch(name: str) -> Path | None:
        try:
            return Path(hf_hub_download(repo_id, name, revision=revision, cache_dir=cache_dir,
                                        local_files_only=bool(local_files_only)))
        except (EntryNotFoundError, LocalEntryNotFoundError):
            return None
        except GatedRepoError as e:
            raise CheckpointError(f"access to {repo_id!r} was refused: {str(e).splitlines()[0]}"
                                  + _access_help(repo_id, candidates)) from e
        except RepositoryNotFoundError as e:
            help_ = _access_help(repo_id, candidates) if repo_id in GATED_REPOS else ""
            raise CheckpointError(f"no such Hugging Face repository {repo_id!r} (or it is private): {e}" + help_) from e
        except HfHubHTTPError as e:
            if repo_id in GATED_REPOS and getattr(getattr(e, "response", None), "status_code", None) in (401, 403):
                raise CheckpointError(f"access to {repo_id!r} was refused ({e})" + _access_help(repo_id, candidates)) \
                    from e
            raise

    weights = None
    for name in candidates:
        weights = fetch(name)
        if weights is not None:
            break
    if weights is None:
        shipped = ", ".join(shipped_models()) or "none installed"
        if repo_id in GATED_REPOS:
            raise CheckpointError(
                f"could not get {' or '.join(candidates)} of {repo_id!r}: not in the local Hugging Face cache and "
                f"the hub could not be reached (offline: HF_HUB_OFFLINE={os.environ.get('HF_HUB_OFFLINE', '0')})."
                + _access_help(repo_id, candidates) + f" Models shipped with vggt3d (no download): {shipped}.")
        raise CheckpointError(
            f"could not get the weights of {repo_id!r} ({' or '.join(candidates)}): not in the local Hugging "
            f"Face cache and the hub could not be reached (offline: HF_HUB_OFFLINE={os.environ.get('HF_HUB_OFFLINE', '0')})."
            f"\nTo obtain them, on a machine with internet access run:\n"
            f"    hf download {repo_id}\n"
            f"and copy the cache (~/.cache/huggingface/hub) here, or download model.pt / model.safetensors and pass "
            f"its path. Models shipped with vggt3d (no download): {shipped}."
        )
    return (None if known else fetch("config.json")), weights


def config_from_state_dict(state: Mapping[str, torch.Tensor], origin: str = "checkpoint") -> ModelConfig:
    """The architecture of a checkpoint without a config, from its keys.

    ``aggregator.inter_frame_blocks.*`` marks VGGT-Omega (``text_alignment_head.*``
    its text variant), anything else VGGT-1B; the heads are those present. Sizes
    are the released models'; a checkpoint of another size needs its config.
    """
    keys = list(state)
    prefixes = {k.split(".", 1)[0] for k in keys}
    if any(k.startswith("aggregator.inter_frame_blocks.") for k in keys):
        text = "text_alignment_head" in prefixes
        cfg = ModelConfig.preset("vggt-omega-1b-256-text" if text else "vggt-omega-1b-512")
        present = {"camera_head": "camera", "dense_head": "depth", "text_alignment_head": "text_alignment"}
    elif any(k.startswith("aggregator.") for k in keys):
        cfg = ModelConfig()
        present = {"camera_head": "camera", "depth_head": "depth", "point_head": "point", "track_head": "track"}
    else:
        raise CheckpointError(f"{origin} holds no aggregator.* tensors: not a VGGT-family checkpoint")
    heads = [h for p, h in present.items() if p in prefixes]
    if heads != cfg.heads:
        cfg = ModelConfig.from_dict({**cfg.to_dict(), "heads": heads})
    log.info("%s has no config: using the %s architecture with heads %s (from its keys)", origin,
             "VGGT-Omega" if cfg.family == "omega" else "VGGT-1B", heads)
    return cfg


def _is_repo_id(source: str) -> bool:
    parts = source.split("/")
    return len(parts) == 2 and all(parts) and not source.startswith((".", "/", "~"))


class PretrainedMixin:
    """``from_pretrained`` / ``save_pretrained`` for :class:`vggt3d.VGGT3D`."""

    config: ModelConfig

    @classmethod
    def from_pretrained(cls, source: str | os.PathLike = DEFAULT_REPO, config: ModelConfig | str | None = None, *,
                        device: str | torch.device = "cpu", dtype: torch.dtype | None = None,
                        revision: str | None = None, cache_dir: str | None = None,
                        local_files_only: bool | None = None, filename: str | None = None):
        """Build the model and load its weights (strict: every tensor must match).

        ``config`` (a :class:`ModelConfig` or preset name) overrides the
        checkpoint's ``config.json``; with neither, the architecture comes from
        the checkpoint's keys (:func:`config_from_state_dict`: VGGT-1B, or
        VGGT-Omega-1B with or without its text head). ``filename`` picks a file
        of a hub repo; for ``facebook/VGGT-Omega`` (gated) the default is
        ``vggt_omega_1b_512.pt``, or ``vggt_omega_1b_256_text.pt`` with
        ``config="vggt-omega-1b-256-text"``. ``dtype`` casts the encoder and
        aggregator weights (the heads stay float32; run with a matching ``precision``).
        """
        src = str(source)
        path = Path(os.path.expanduser(src))
        config_path: Path | None = None
        if path.is_dir():
            config_path = path / "config.json" if (path / "config.json").is_file() else None
            names = ((filename,) if filename else ()) + WEIGHT_FILES + ORIGINAL_OMEGA_FILES
            weights = next((path / n for n in names if (path / n).is_file()), None)
            if weights is None:
                raise CheckpointError(f"directory {path} holds none of {', '.join(names)}")
        elif path.is_file():
            weights = path
        elif src in shipped_models():
            root = shipped_models()[src]
            config_path, weights = root / "config.json", root / "model.safetensors"
        elif _is_repo_id(src):
            config_path, weights = _hub_files(src, revision, cache_dir, local_files_only, filename,
                                              config if isinstance(config, str) else None)
        else:
            shipped = ", ".join(shipped_models()) or "none installed"
            raise CheckpointError(
                f"{src!r} is neither an existing file or directory nor a Hugging Face repo id (owner/name); "
                f"shipped models: {shipped}"
            )

        if isinstance(config, str):
            config = ModelConfig.preset(config)
        state = load_state_dict_file(weights)
        if config is None:
            config = (config_from_json_dict(_read_json(config_path), str(config_path)) if config_path is not None
                      else config_from_state_dict(state, str(weights)))
        with torch.device("meta"):
            model = cls(config)
        check_state_dict(model.state_dict(), state, str(weights))
        model.load_state_dict(state, strict=True, assign=True)
        model.eval()
        model.to(device=device)
        if dtype is not None:  # the encoder and aggregator (the bulk of the weights); heads stay fp32
            model.aggregator.to(dtype)
        return model

    def save_pretrained(self, directory: str | os.PathLike) -> Path:
        """Write ``config.json`` (our schema) and ``model.safetensors`` into ``directory``.

        Each file is written to a temporary name and renamed into place, so an
        interrupted save never leaves a half-written checkpoint under the final name.
        """
        from safetensors.torch import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().to("cpu").contiguous() for k, v in self.state_dict().items()}  # type: ignore[attr-defined]
        atomic_write(directory / "model.safetensors", lambda tmp: save_file(state, tmp, metadata={"format": "pt"}))
        atomic_write(directory / "config.json", self.config.to_json)
        return directory
