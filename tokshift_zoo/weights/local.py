"""Local weight files into a model: the zoo's safetensors, the authors' ``.pth`` and Google's ViT ``.npz``; and
``local-dir:`` folders (a hub repo's files on disk: ``config.json`` beside the weights).

Torch files are read with ``weights_only=True``; names are mapped by ``models.checkpoints.checkpoint_filter_fn``;
every load reports which keys were loaded, which were re-initialised and which were unused.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from safetensors import safe_open
from safetensors.torch import load_file

from ..errors import ChecksumError, WeightsError
from ..models.checkpoints import checkpoint_filter_fn
from .pins import Fetched, sha256_file

__all__ = [
    "LoadReport",
    "fetch_dir_file",
    "is_training_output",
    "read_dir_config",
    "load_state_dict_file",
    "load_weights_file",
    "read_checkpoint_metadata",
    "read_safetensors_metadata",
]

_logger = logging.getLogger(__name__)

_TORCH_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt", ".tar")


@dataclass
class LoadReport:
    """What a weight load did: the file, and the model keys loaded, re-initialised, and file keys unused."""

    source: str
    loaded: list[str] = field(default_factory=list)
    reinitialised: list[str] = field(default_factory=list)
    unused: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        text = f"loaded {len(self.loaded)} tensors from {self.source}"
        if self.reinitialised:
            text += f"; re-initialised: {', '.join(self.reinitialised)}"
        if self.unused:
            text += f"; unused: {', '.join(self.unused)}"
        return text


def load_state_dict_file(path: str | os.PathLike) -> dict[str, Any]:
    """Read a safetensors or ``torch.save`` file into a dict, never unpickling arbitrary objects.

    Raises:
        FileNotFoundError: the file does not exist.
        WeightsError: the suffix is not one of .safetensors, .pth/.pt/.bin/.ckpt/.tar, or the file holds
            something other than tensors and plain containers.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no weight file at {path}")
    if path.suffix == ".safetensors":
        return load_file(path)
    if path.suffix in _TORCH_SUFFIXES:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # UnpicklingError, RuntimeError: torch names the offending global
            raise WeightsError(f"{path}: not a plain tensor checkpoint (read with weights_only=True): {err}") from err
        return state["model"] if _is_trainer_checkpoint(state) else state
    raise WeightsError(f"{path}: expected a .safetensors, .npz or torch checkpoint ({', '.join(_TORCH_SUFFIXES)}) file")


def load_mapped(model: nn.Module, state_dict: dict[str, torch.Tensor], source: str) -> LoadReport:
    """Load a state dict already in the model's names; a head of another shape is dropped and re-initialised."""
    own = model.state_dict()
    mismatched = [k for k, v in state_dict.items() if k in own and own[k].shape != v.shape]
    for key in mismatched:
        if not key.startswith("head."):
            raise WeightsError(
                f"{source}: {key} has shape {tuple(state_dict[key].shape)}, the model expects {tuple(own[key].shape)}"
            )
        del state_dict[key]
    result = model.load_state_dict(state_dict, strict=False)
    missing = [k for k in result.missing_keys if not k.startswith("head.")]
    if missing:
        raise WeightsError(f"{source}: these model weights are missing from the file: {missing}")
    return LoadReport(
        source=source,
        loaded=[k for k in state_dict if k not in result.unexpected_keys],
        reinitialised=list(result.missing_keys),
        unused=list(result.unexpected_keys),
    )


def load_local(model: nn.Module, path: Path) -> LoadReport:
    if path.suffix == ".npz":
        if not path.is_file():
            raise FileNotFoundError(f"no weight file at {path}")
        head = {k: v.clone() for k, v in model.head.state_dict().items()}
        model.load_pretrained(str(path))  # timm's npz loader: resamples pos_embed, loads head only if it fits
        head_loaded = any(not torch.equal(v, model.head.state_dict()[k]) for k, v in head.items())
        own = [k for k in model.state_dict() if not k.startswith("head.")]
        head_keys = [f"head.{k}" for k in head]
        report = LoadReport(str(path), loaded=own + (head_keys if head_loaded else []))
        report.reinitialised = [] if head_loaded else head_keys
        return report
    state_dict = checkpoint_filter_fn(load_state_dict_file(path), model)
    return load_mapped(model, state_dict, str(path))


def load_weights_file(model: nn.Module, path: str | os.PathLike) -> LoadReport:
    """Load a local weight file of any supported kind into ``model`` and log what happened.

    Args:
        model: a zoo ``VideoVisionTransformer``.
        path: ``.safetensors`` (zoo format or timm's), an authors'-format / timm torch checkpoint, or a Google
            ViT ``.npz``. A head whose class count differs from the model's is left re-initialised, as timm does.
    """
    report = load_local(model, Path(path))
    _logger.info("%s", report)
    return report


def read_safetensors_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The string metadata of a safetensors file's header (nothing else is read); empty for other files."""
    if not os.fspath(path).endswith(".safetensors"):
        return {}
    with safe_open(os.fspath(path), framework="pt") as f:
        return dict(f.metadata() or {})


def _is_trainer_checkpoint(state: Any) -> bool:
    """Whether a loaded torch file is the zoo trainer's ``checkpoint-epochNNN.pt`` (weights under ``"model"``)."""
    return isinstance(state, dict) and {"model", "config", "num_classes", "label_names"} <= state.keys()


def _trainer_checkpoint_metadata(path: Path) -> dict[str, Any]:
    """Architecture, model arguments and classes of a trainer checkpoint; empty for any other torch file."""
    try:  # mmap: the optimiser state and the weights are not read
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # not a zip-format torch file, or not plain tensors: the weight loader says what is wrong
        return {}
    if not _is_trainer_checkpoint(state):
        return {}
    config = json.loads(state["config"])
    num_classes, label_names = state["num_classes"], state["label_names"]
    return {
        "architecture": config["model"],
        "model_kwargs": dict(config.get("model_kwargs") or {}, num_classes=num_classes),
        "pretrained_cfg": {"num_classes": num_classes, "label_names": label_names},
    }


def read_checkpoint_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The zoo's metadata of a file written by ``convert`` or the trainer, values JSON-decoded.

    Keys that may be present: ``architecture``, ``model_kwargs`` (builder overrides, ``num_classes`` included),
    ``pretrained_cfg`` (label names, mean/std...), ``video_cfg``, ``tag``. A trainer's ``checkpoint-epochNNN.pt``
    gives the first three (from the run's config); other files give an empty dict.
    """
    if Path(path).suffix in _TORCH_SUFFIXES and Path(path).is_file():
        return _trainer_checkpoint_metadata(Path(path))
    decoded = {}
    for key, value in read_safetensors_metadata(path).items():
        try:
            decoded[key] = json.loads(value)
        except json.JSONDecodeError:  # plain strings (convert writes the architecture as is)
            decoded[key] = value
    return decoded


def is_training_output(path: str | os.PathLike) -> bool:
    """Whether ``path`` is weights a training run wrote (the trainer's ``best.safetensors``): a safetensors file
    whose metadata carries the fine-tuned model's ``pretrained_cfg`` (classes) and ``video_cfg``."""
    path = Path(path)
    if path.suffix != ".safetensors" or not path.is_file():
        return False
    return {"architecture", "pretrained_cfg", "video_cfg"} <= read_safetensors_metadata(path).keys()


def read_dir_config(folder: str | os.PathLike) -> dict[str, Any]:
    """The ``config.json`` of a ``local-dir:`` folder (timm's format, with the zoo's ``video_cfg`` if present).

    Raises:
        FileNotFoundError: the folder has no ``config.json``.
        WeightsError: the file is not a JSON object.
    """
    path = Path(folder) / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"no config.json in the local-dir folder {folder}")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise WeightsError(f"{path}: expected a JSON object (timm's config.json), found invalid JSON: {err}") from err
    if not isinstance(config, dict):
        raise WeightsError(f"{path}: expected a JSON object (timm's config.json), found {type(config).__name__}")
    return config


def fetch_dir_file(folder: str | os.PathLike, filename: str, sha256: str | None = None) -> Fetched:
    """The weight file of a ``local-dir:`` folder, checked against the sha256 its ``config.json`` pins.

    Args:
        folder: the folder timm's ``local-dir:PATH`` names (a hub repo's files, e.g. from ``snapshot_download``).
        filename: the weight file in it (the folder's ``video_cfg.filename``, else ``model.safetensors``); any
            format ``load_weights_file`` reads.
        sha256: the folder's own pin (``video_cfg.sha256`` in its ``config.json``), or None: loaded unchecked,
            like any file of the user's.

    Raises:
        FileNotFoundError: no such file in the folder.
        ChecksumError: the file's bytes do not match the pin (the file is left where it is).
    """
    path = Path(folder) / filename
    source = f"local-dir:{folder}/{filename}"
    if not path.is_file():
        raise FileNotFoundError(f"no {filename} in the local-dir folder {folder} (its config.json names that file)")
    if not sha256:
        return Fetched(path, source)
    actual = sha256_file(path)
    if actual != sha256.lower():
        raise ChecksumError(
            f"{path}: sha256 {actual} does not match the pin in {Path(folder) / 'config.json'}, {sha256.lower()}"
        )
    return Fetched(path, source, sha256=actual, verified_by="the folder's config.json pin")
