"""The authors' ``.pth`` -> the zoo's safetensors, and publishing the result on a Hugging Face hub.

The authors' files are ``torch.save`` of ``{'epoch', 'state_dict', 'best_acc1', 'optimizer', 'scheduler'}``
whose ``state_dict`` keys are ``module.base_model.`` + jeonsworld ViT-pytorch names; they are read with
``weights_only=True``. The key mapping itself is ``checkpoint_filter_fn`` (models/checkpoints.py); this module picks
the architecture, checks that every tensor has a place of the right shape, and writes the file atomically (a
temporary file in the destination folder, renamed when complete), so DST is never left half-written.

``publish`` uploads ``model.safetensors``, timm's ``config.json`` (with the zoo's ``video_cfg`` beside timm's
keys) and the model card in one commit through huggingface_hub, so ``create_model("hf-hub:ORG/REPO",
pretrained=True)`` loads it back, verified.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import timm
import torch
from huggingface_hub import CommitOperationAdd, HfApi
from safetensors.torch import save_file

from .atomic import atomic_write
from .errors import WeightsError
from .models.checkpoints import checkpoint_filter_fn
from .models.registry import get_video_cfg, list_models
from .weights.local import (
    is_training_output,
    load_state_dict_file,
    read_checkpoint_metadata,
    read_safetensors_metadata,
)
from .weights.pins import sha256_file

__all__ = [
    "ConversionError",
    "Converted",
    "DEFAULT_ARCHITECTURE",
    "convert",
    "detect_architecture",
    "hub_config",
    "publish",
]

_logger = logging.getLogger(__name__)

DEFAULT_ARCHITECTURE = "tokshift_base16_224_8f"


class ConversionError(WeightsError):
    """The source file cannot be turned into the zoo's format (unplaceable keys, wrong shapes, no match)."""


@dataclass(frozen=True)
class Converted:
    """The result of ``convert``: the written file and what it holds."""

    path: Path
    architecture: str
    model_kwargs: dict[str, Any]
    tag: str
    sha256: str
    source_sha256: str


@dataclass(frozen=True)
class _Shapes:
    """What a state dict says about the architecture: width, patch, depth, tokens, classes (0: no head)."""

    embed_dim: int
    patch_size: int
    depth: int
    num_tokens: int
    num_classes: int

    def __str__(self) -> str:
        return (
            f"width {self.embed_dim}, {self.patch_size}x{self.patch_size} patches, {self.depth} blocks, "
            f"{self.num_tokens} tokens (class token included)"
        )


def _shapes(state_dict: dict[str, Any]) -> _Shapes:
    """Read the architecture facts off the keys of the authors' or the zoo's names (any wrapper prefix)."""

    def find(pattern: str) -> torch.Tensor | None:
        return next((v for k, v in state_dict.items() if re.search(pattern, k)), None)

    patch = find(r"(^|\.)(patch_embeddings|patch_embed\.proj)\.weight$")
    pos = find(r"(^|\.)(position_embeddings|pos_embed)$")
    head = find(r"(^|\.)head\.weight$")
    blocks = {int(m.group(2)) for k in state_dict if (m := re.search(r"(^|\.)(?:encoder\.layer|blocks)\.(\d+)\.", k))}
    if patch is None or pos is None or not blocks:
        raise ConversionError("not a ViT state dict: no patch embedding, position embedding or blocks found")
    return _Shapes(
        embed_dim=patch.shape[0],
        patch_size=patch.shape[-1],
        depth=max(blocks) + 1,
        num_tokens=pos.shape[-2],
        num_classes=0 if head is None else head.shape[0],
    )


@cache
def _registry_shapes(name: str, kwargs_json: str = "{}") -> _Shapes:
    with torch.device("meta"):  # shapes only: no memory, no init cost
        model = timm.create_model(name, **json.loads(kwargs_json))
    return _Shapes(model.embed_dim, model.patch_embed.patch_size[0], len(model.blocks), model.pos_embed.shape[1], 0)


def _fits(found: _Shapes, name: str, model_kwargs: dict[str, Any]) -> bool:
    expected = _registry_shapes(name, json.dumps(model_kwargs, sort_keys=True))
    return dataclasses.replace(found, num_classes=0) == expected


def detect_architecture(state_dict: dict[str, Any], default: str = DEFAULT_ARCHITECTURE) -> str:
    """The zoo model whose shapes fit ``state_dict`` (the authors' or the zoo's names).

    Weights cannot tell the clip length or whether the shift is on (both change no shape), so several models
    can fit: then ``default`` wins if it is one of them, otherwise the choice is refused.

    Raises:
        ConversionError: no zoo model fits, or several do and ``default`` is not one of them.
    """
    found = _shapes(state_dict.get("state_dict", state_dict))
    candidates = [name for name in list_models() if _fits(found, name, {})]
    if not candidates:
        raise ConversionError(f"no zoo model fits these weights ({found}); pass the architecture with --model")
    if len(candidates) == 1:
        return candidates[0]
    if default in candidates:
        _logger.warning(
            "weights fit %s (frame count and shift are not visible in weights); using %s - pass --model to choose",
            ", ".join(candidates),
            default,
        )
        return default
    raise ConversionError(f"these weights ({found}) fit {', '.join(candidates)}; choose one with --model")


def convert(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    model_name: str | None = None,
    *,
    model_kwargs: dict[str, Any] | None = None,
    tag: str = "k400",
    require_classes: int | None = None,
) -> Converted:
    """Convert a weight file (the authors' release, or any format ``checkpoint_filter_fn`` reads) to the zoo's
    safetensors, refusing anything that does not map exactly onto the architecture.

    Args:
        src: the authors' ``.pth`` (read with ``weights_only=True``) or a timm/zoo state dict file. A training
            run's ``best.safetensors`` is copied with its metadata (classes, video settings, figures).
        dst: the ``.safetensors`` to write; replaced atomically, never left half-written.
        model_name: the zoo architecture; None to detect it from the shapes (``detect_architecture``), or
            ``DEFAULT_ARCHITECTURE`` when ``model_kwargs`` resize the model.
        model_kwargs: builder overrides for a non-registry size (e.g. ``embed_dim``, ``depth``); the head's
            class count is read from the file.
        tag: the registry tag whose preprocessing and labels these weights use (recorded in the metadata).
        require_classes: refuse a head with another class count (400 for the authors' Kinetics-400 release).

    Returns:
        What was written. The file's metadata holds ``architecture``, ``model_kwargs`` (JSON), ``tag``,
        ``source_file``, ``source_sha256`` and, when the source has them, ``source_epoch``/``source_best_acc1``.

    Raises:
        ConversionError: keys with no place in the model (listed), model weights missing from the file (listed),
            shapes that differ, or an architecture that does not fit.
    """
    src, dst = Path(src), Path(dst)
    if dst.suffix != ".safetensors":
        raise ConversionError(f"{dst}: the destination must be a .safetensors file")
    if dst.resolve() == src.resolve():
        raise ConversionError(f"{dst}: the destination must differ from the source")
    if is_training_output(src):
        return _copy_training_output(src, dst, model_name)
    raw = load_state_dict_file(src)
    state_dict = raw.get("state_dict", raw)
    found = _shapes(state_dict)
    model_kwargs = dict(model_kwargs or {})
    if model_name is None:
        model_name = detect_architecture(state_dict) if not model_kwargs else DEFAULT_ARCHITECTURE
    if model_name not in list_models():
        raise ConversionError(f"{model_name!r} is not a zoo model; known: {list_models()}")
    if not _fits(found, model_name, model_kwargs):
        expected = _registry_shapes(model_name, json.dumps(model_kwargs, sort_keys=True))
        raise ConversionError(f"{src}: the weights have {found}; {model_name} has {expected}")
    pretrained_cfg = f"{model_name}.{tag}"
    if pretrained_cfg not in list_models(pretrained=True):
        raise ConversionError(f"no registry entry {pretrained_cfg}; known: {list_models(pretrained=True)}")
    if require_classes is not None and found.num_classes != require_classes:
        raise ConversionError(
            f"{src}: expected a {require_classes}-class head, found "
            + (f"{found.num_classes} classes" if found.num_classes else "no head")
        )
    default_classes = timm.models.get_pretrained_cfg(pretrained_cfg).num_classes
    if found.num_classes != default_classes:
        model_kwargs["num_classes"] = found.num_classes

    with torch.device("meta"):  # names and shapes only: no memory, no init of a model the size of the file
        model = timm.create_model(model_name, pretrained_cfg=tag, **model_kwargs)
    try:
        mapped = checkpoint_filter_fn(raw, model)
    except WeightsError as err:
        raise ConversionError(f"{src}: {err}") from err
    own = model.state_dict()
    missing = sorted(set(own) - set(mapped))
    unplaced = sorted(set(mapped) - set(own))
    misshapen = [
        f"{k} {tuple(v.shape)} vs {tuple(own[k].shape)}" for k, v in mapped.items() if v.shape != own.get(k, v).shape
    ]
    if missing or unplaced or misshapen:
        raise ConversionError(
            f"{src} does not map onto {model_name}: "
            + "; ".join(
                f"{what}: {keys}"
                for what, keys in (
                    ("keys it could not place", unplaced),
                    ("model weights missing from the file", missing),
                    ("shapes that differ", misshapen),
                )
                if keys
            )
        )

    source_sha256 = sha256_file(src)
    metadata = {
        "format": "pt",
        "architecture": model_name,
        "model_kwargs": json.dumps(model_kwargs, sort_keys=True),
        "tag": tag,
        "source_file": src.name,
        "source_sha256": source_sha256,
    }
    for key in ("epoch", "best_acc1"):
        value = raw.get(key) if "state_dict" in raw else None
        if isinstance(value, int | float) or (isinstance(value, torch.Tensor) and value.numel() == 1):
            metadata[f"source_{key}"] = str(value.item() if isinstance(value, torch.Tensor) else value)
    tensors = {k: mapped[k].detach().contiguous() for k in own}
    dst.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(dst, lambda tmp: save_file(tensors, str(tmp), metadata=metadata))
    sha256 = sha256_file(dst)
    _logger.info("converted %s (sha256 %s) -> %s (%s, sha256 %s)", src, source_sha256, dst, model_name, sha256)
    return Converted(dst, model_name, model_kwargs, tag, sha256, source_sha256)


def _copy_training_output(src: Path, dst: Path, model_name: str | None) -> Converted:
    """A training run's ``best.safetensors`` is already in the zoo's names: copied with its metadata (classes,
    video settings, figures), so that nothing the run recorded is lost."""
    metadata = read_safetensors_metadata(src)
    decoded = read_checkpoint_metadata(src)
    if model_name is not None and model_name != decoded["architecture"]:
        found = decoded["architecture"]
        raise ConversionError(f"{src}: a {found} fine-tuned by `tokshift-zoo train`, not a {model_name}")
    tensors = load_state_dict_file(src)
    source_sha256 = sha256_file(src)
    metadata.update(source_file=src.name, source_sha256=source_sha256)
    dst.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(dst, lambda tmp: save_file(tensors, str(tmp), metadata=metadata))
    tag = str(decoded["pretrained_cfg"].get("tag") or "")
    kwargs = dict(decoded.get("model_kwargs") or {})
    return Converted(dst, decoded["architecture"], kwargs, tag, sha256_file(dst), source_sha256)


def _read_metadata(path: Path) -> dict[str, str]:
    if is_training_output(path):
        raise ConversionError(
            f"{path}: a model fine-tuned by `tokshift-zoo train`; publish it with its run, classes and figures: "
            "`tokshift-zoo publish-run RUN_DIR ORG/REPO --dataset NAME` (tokshift_zoo.publish.publish_run)"
        )
    metadata = read_safetensors_metadata(path)
    if "architecture" not in metadata:
        raise ConversionError(f"{path}: not a tokshift-zoo converted file (no 'architecture' in its metadata)")
    return metadata


def hub_config(path: str | os.PathLike) -> dict[str, Any]:
    """timm's ``config.json`` for a converted file, plus the zoo's ``video_cfg`` with the file's sha256.

    timm reads ``architecture``, ``num_classes``, ``model_args`` and ``pretrained_cfg``; the zoo also reads the
    top-level ``video_cfg`` (timm ignores it).
    """
    from timm.models._hub import save_config_for_hf

    path = Path(path)
    metadata = _read_metadata(path)
    architecture, tag = metadata["architecture"], metadata.get("tag", "k400")
    with torch.device("meta"):
        model = timm.create_model(architecture, pretrained_cfg=tag, **json.loads(metadata.get("model_kwargs", "{}")))
    description = f"{architecture}.{tag} converted by tokshift-zoo from {metadata.get('source_file', 'a checkpoint')}"
    with tempfile.TemporaryDirectory() as tmp:
        save_config_for_hf(model, f"{tmp}/config.json", model_config={"pretrained_cfg": {"description": description}})
        with open(f"{tmp}/config.json", encoding="utf-8") as f:
            config = json.load(f)
    video = dataclasses.replace(get_video_cfg(f"{architecture}.{tag}"), sha256=sha256_file(path))
    config["video_cfg"] = dataclasses.replace(video, filename="model.safetensors").to_dict()
    return config


def publish(
    path: str | os.PathLike,
    repo_id: str,
    *,
    private: bool | None = None,
    token: str | None = None,
    commit_message: str | None = None,
) -> str:
    """Upload a converted file as ``model.safetensors`` with timm's ``config.json`` and the model card.

    One commit on ``main`` of ``repo_id`` (created if needed) through huggingface_hub's upload API; the endpoint
    and token are huggingface_hub's (``HF_ENDPOINT``, ``HF_TOKEN`` or ``hf auth login``).

    Returns:
        The commit's URL.
    """
    from .model_cards import render_card

    path = Path(path)
    config = hub_config(path)
    metadata = _read_metadata(path)
    name = f"{metadata['architecture']}.{metadata.get('tag', 'k400')}"
    card = render_card(name, hf_repo=repo_id, sha256=config["video_cfg"]["sha256"], source=metadata)
    api = HfApi(token=token)
    api.create_repo(repo_id, private=private, exist_ok=True)
    info = api.create_commit(
        repo_id,
        [
            CommitOperationAdd("model.safetensors", str(path)),
            CommitOperationAdd("config.json", (json.dumps(config, indent=2) + "\n").encode()),
            CommitOperationAdd("README.md", card.encode()),
        ],
        commit_message=commit_message or f"Add {name} converted by tokshift-zoo",
    )
    _logger.info("published %s to %s: %s", path, repo_id, info.commit_url)
    return info.commit_url
