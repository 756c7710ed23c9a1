"""The authors' release format, written by the tests: the inverse of ``models.checkpoints.checkpoint_filter_fn``."""

from __future__ import annotations

from pathlib import Path

import torch

_NAMES = {"norm1": "attention_norm", "norm2": "ffn_norm", "attn.proj": "attn.out", "mlp.fc1": "ffn.fc1"}
_NAMES["mlp.fc2"] = "ffn.fc2"


def authors_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Zoo names -> the authors' (jeonsworld ViT-pytorch under DDP and TSN: ``module.base_model.transformer...``)."""
    out = {}
    for key, value in model.state_dict().items():
        if key == "cls_token":
            out["transformer.embeddings.cls_token"] = value
        elif key == "pos_embed":
            out["transformer.embeddings.position_embeddings"] = value
        elif key.startswith("patch_embed.proj."):
            out["transformer.embeddings.patch_embeddings." + key.rsplit(".", 1)[1]] = value
        elif key.startswith("norm."):
            out["transformer.encoder.encoder_norm." + key.rsplit(".", 1)[1]] = value
        elif key.startswith("head."):
            out[key] = value
        else:
            _, idx, rest = key.split(".", 2)
            layer = f"transformer.encoder.layer.{idx}."
            name, kind = rest.rsplit(".", 1)
            if name == "attn.qkv":
                for part, chunk in zip(("query", "key", "value"), value.chunk(3), strict=True):
                    out[f"{layer}attn.{part}.{kind}"] = chunk
            else:
                out[f"{layer}{_NAMES[name]}.{kind}"] = value
    return {f"module.base_model.{k}": v.clone() for k, v in out.items()}


def save_authors_checkpoint(model: torch.nn.Module, path: str | Path, **extra_keys: torch.Tensor) -> Path:
    """``torch.save`` a file as the authors released theirs: {'epoch', 'state_dict', 'best_acc1', ...}."""
    torch.save(
        {
            "epoch": 18,
            "state_dict": authors_state_dict(model) | extra_keys,
            "best_acc1": 77.28,
            "optimizer": {"state": {}, "param_groups": [{"lr": 0.1, "momentum": 0.9}]},
            "scheduler": {"milestones": [10, 15], "last_epoch": 18},
        },
        path,
    )
    return Path(path)
