"""Build SAM 2 / 2.1 models by short name through sam2's own configs (and ours)."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from sam2.modeling.sam2_base import SAM2Base
from sam2.sam2_video_predictor import SAM2VideoPredictor

from sam2rl.errors import InputError
from sam2rl.tracker.checkpoint import CheckpointError, file_sha256, load_into

__all__ = ["MODELS", "ModelError", "ModelSpec", "build_sam2_model", "build_sam2_video_predictor", "checkpoint_search_dirs", "model_config"]

_SAM2_CONFIGS = resources.files("sam2") / "configs"
_OWN_CONFIGS = resources.files("sam2rl") / "configs"
_OWN_WEIGHTS = Path(str(resources.files("sam2rl") / "weights"))  # ours (nano), shipped inside the package


class ModelError(InputError, ValueError):
    """A model that cannot be built as asked: unknown name, unusable config or input size."""


@dataclass(frozen=True)
class _Entry:
    config: Path
    checkpoint_file: str


def _official(version: str, size: str, file_size: str) -> _Entry:
    prefix = "sam2.1" if version == "2.1" else "sam2"
    folder = "sam2.1" if version == "2.1" else "sam2"
    return _Entry(
        Path(str(_SAM2_CONFIGS / folder / f"{prefix}_hiera_{size}.yaml")),
        f"{prefix}_hiera_{file_size}.pt",
    )


MODELS: dict[str, _Entry] = {
    f"{prefix}_hiera_{size}": _official(version, size, file_size)
    for version, prefix in (("2", "sam2"), ("2.1", "sam2.1"))
    for size, file_size in (("t", "tiny"), ("s", "small"), ("b+", "base_plus"), ("l", "large"))
}
"""Short name -> sam2 config and the official checkpoint file name."""

# Settings of `sam2.build_sam.build_sam2_video_predictor` (its `apply_postprocessing`), so that
# our tracker behaves as `SAM2VideoPredictor` does. Hole filling (`fill_hole_area`) needs sam2's
# CUDA extension, which we do not build; without it the predictor skips it too (with a warning). With
# it, the predictor fills holes in the masks it outputs and encodes the prompt frame's memory from
# those; our tracker does not.
_VIDEO_PREDICTOR_OVERRIDES = {
    "model.sam_mask_decoder_extra_args.dynamic_multimask_via_stability": True,
    "model.sam_mask_decoder_extra_args.dynamic_multimask_stability_delta": 0.05,
    "model.sam_mask_decoder_extra_args.dynamic_multimask_stability_thresh": 0.98,
    "model.binarize_mask_from_pts_for_mem_enc": True,
}


def checkpoint_search_dirs() -> list[Path]:
    """Where a checkpoint named only by model is looked for, in order."""
    dirs = []
    if env := os.environ.get("SAM2RL_CHECKPOINT_DIR"):
        dirs.append(Path(env))
    dirs += [Path.home() / ".cache" / "sam2rl" / "checkpoints", _OWN_WEIGHTS]
    return dirs


@dataclass(frozen=True)
class ModelSpec:
    """Which SAM 2 to build: the identity recorded in caches and agent checkpoints.

    `name` is a short name from `MODELS` (or one of our own configs, e.g. `nano`) or a path
    to a sam2-style YAML config. `checkpoint` may be omitted for named models whose file is
    in `checkpoint_search_dirs()`; random weights only when `random_weights=True`.
    """

    name: str
    checkpoint: str | None = None
    image_size: int | None = None
    random_weights: bool = False
    seed: int = 0
    """Seed of the random weights, so a random-weight run is reproducible."""
    sha256: str | None = None
    overrides: dict[str, object] = field(default_factory=dict)

    def config_path(self) -> Path:
        """The YAML config: sam2's for an official name, ours for `nano`, or the path given."""
        if self.name in MODELS:
            return MODELS[self.name].config
        own = Path(str(_OWN_CONFIGS / f"{self.name}.yaml"))
        if own.is_file():
            return own
        path = Path(self.name)
        if path.suffix in (".yaml", ".yml") and path.is_file():
            return path
        known = ", ".join(sorted(MODELS) + own_model_names())
        raise ModelError(f"unknown SAM 2 model {self.name!r}: use one of {known} or a path to a YAML config")

    def checkpoint_file_name(self) -> str:
        """The file name an official checkpoint (or ours) is published under, looked for by name."""
        return MODELS[self.name].checkpoint_file if self.name in MODELS else f"{self.name}.pt"

    def resolve_checkpoint(self) -> Path | None:
        """The checkpoint file to load, None for random weights; error if it cannot be found."""
        if self.random_weights:
            if self.checkpoint is not None:
                raise ModelError(f"model {self.name}: give a checkpoint or random_weights=True, not both")
            return None
        if self.checkpoint is not None:
            path = Path(self.checkpoint).expanduser()
            if not path.is_file():
                raise CheckpointError(f"checkpoint {path} for model {self.name}: file not found")
            return path
        file_name = self.checkpoint_file_name()
        for folder in checkpoint_search_dirs():
            if (folder / file_name).is_file():
                return folder / file_name
        where = ", ".join(str(d) for d in checkpoint_search_dirs())
        raise CheckpointError(
            f"model {self.name} needs its checkpoint {file_name}: pass checkpoint=PATH, or put "
            f"the file in one of: {where} (SAM2RL_CHECKPOINT_DIR sets the first); "
            "random weights only with random_weights=True"
        )


def own_model_names() -> list[str]:
    """Names of the model configs that ship with sam2rl (`sam2rl/configs`)."""
    return sorted(p.name.removesuffix(".yaml") for p in _OWN_CONFIGS.iterdir() if p.name.endswith(".yaml"))


def _size_overrides(image_size: int) -> dict[str, object]:
    if image_size <= 0 or image_size % 32:
        raise ModelError(f"image_size must be a positive multiple of 32, got {image_size}")
    feat = [image_size // 16, image_size // 16]
    layer = "model.memory_attention.layer"
    # RoPE tables are sized at construction; a mismatch makes sam2 recompute them every call.
    return {
        "model.image_size": image_size,
        f"{layer}.self_attention.feat_sizes": feat,
        f"{layer}.cross_attention.feat_sizes": feat,
    }


def model_config(spec: ModelSpec, target: str = "sam2.modeling.sam2_base.SAM2Base") -> DictConfig:
    """The resolved sam2 config of `spec` with the video-predictor settings and input size."""
    config = spec.config_path()
    cfg = OmegaConf.load(config)
    if "model" not in cfg:
        raise ModelError(f"config {config}: no `model` section (not a sam2 model config)")
    overrides: dict[str, object] = {"model._target_": target, **_VIDEO_PREDICTOR_OVERRIDES}
    if spec.image_size is not None:
        overrides.update(_size_overrides(spec.image_size))
    overrides.update(spec.overrides)
    for key, value in overrides.items():
        OmegaConf.update(cfg, key, value, force_add=True)
    OmegaConf.resolve(cfg)
    return cfg


def build_sam2_model(spec: ModelSpec, device: str | torch.device = "cpu",
                     compiled: bool = False) -> tuple[SAM2Base, Path | None]:
    """Instantiate sam2's `SAM2Base` from its config; returns it (eval mode) and its checkpoint file.

    `compiled` builds sam2's `SAM2VideoPredictorVOS` instead: the same model with its memory
    encoder, memory attention, prompt encoder and mask decoder under `torch.compile`
    (max-autotune, CUDA graphs on GPU), compiled on their first calls.
    """
    target = "sam2.sam2_video_predictor.SAM2VideoPredictorVOS" if compiled else "sam2.modeling.sam2_base.SAM2Base"
    return _instantiate(spec, target, device)


def build_sam2_video_predictor(spec: ModelSpec, device: str | torch.device = "cpu") -> SAM2VideoPredictor:
    """sam2's own `SAM2VideoPredictor` with exactly the config and weights `build_sam2_model` gives:
    the plain SAM 2 loop our tracker is compared with (equivalence and speed)."""
    return _instantiate(spec, "sam2.sam2_video_predictor.SAM2VideoPredictor", device)[0]


def _instantiate(spec: ModelSpec, target: str, device: str | torch.device) -> tuple[SAM2Base, Path | None]:
    config = model_config(spec, target)
    checkpoint = spec.resolve_checkpoint()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(spec.seed)
        model = instantiate(config.model, _recursive_=True)
    if checkpoint is None:
        warnings.warn(f"model {spec.name}: random weights (no checkpoint); masks will be meaningless",
                      stacklevel=3)
    else:
        load_into(model, checkpoint, str(spec.config_path()), spec.sha256)
    return model.to(device).eval(), checkpoint


def checkpoint_digest(path: Path | None, seed: int = 0) -> str:
    """Identity of the weights for cache keys: sha256 of the file, or the random seed."""
    return f"random-seed{seed}" if path is None else file_sha256(path)
