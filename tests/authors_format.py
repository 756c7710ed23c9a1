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


def _paper_shift(x: torch.Tensor, num_frames: int, fold_div: int = 4) -> torch.Tensor:
    """The paper's shift of each frame's class token, written out frame by frame on a zero-filled copy."""
    bt, n, c = x.shape
    fold = c // fold_div
    clips = x.reshape(bt // num_frames, num_frames, n, c)
    out = clips.clone()
    out[:, :, 0, : 2 * fold] = 0
    out[:, :-1, 0, :fold] = clips[:, 1:, 0, :fold]
    out[:, 1:, 0, fold : 2 * fold] = clips[:, :-1, 0, fold : 2 * fold]
    return out.reshape(bt, n, c)


def authors_forward(state: dict[str, torch.Tensor], clip: torch.Tensor, num_heads: int, shift: bool = True):
    """The authors' model (jeonsworld ViT-pytorch per frame, TokShift blocks, logits averaged over frames) run
    straight from their checkpoint's tensors: clip (B, 3, T, H, W), normalised -> logits (B, classes)."""
    import torch.nn.functional as F

    def p(key: str) -> torch.Tensor:
        return state["module.base_model." + key]

    b, _, t, h, w = clip.shape
    weight = p("transformer.embeddings.patch_embeddings.weight")
    x = F.conv2d(clip.transpose(1, 2).reshape(b * t, 3, h, w), weight, stride=weight.shape[-1])
    x = x + p("transformer.embeddings.patch_embeddings.bias")[:, None, None]
    x = x.flatten(2).transpose(1, 2)  # (B*T, patches, D)
    x = torch.cat([p("transformer.embeddings.cls_token").expand(b * t, -1, -1), x], 1)
    x = x + p("transformer.embeddings.position_embeddings")
    dim = x.shape[-1]
    layers = 1 + max(int(k.split(".encoder.layer.")[1].split(".")[0]) for k in state if ".encoder.layer." in k)

    def norm(name: str, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, (dim,), p(name + ".weight"), p(name + ".bias"), eps=1e-6)

    def linear(name: str, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, p(name + ".weight"), p(name + ".bias"))

    for i in range(layers):
        layer = f"transformer.encoder.layer.{i}."
        x = _paper_shift(x, t) if shift else x
        y = norm(layer + "attention_norm", x)
        q, k, v = (
            linear(f"{layer}attn.{n}", y).unflatten(-1, (num_heads, -1)).transpose(1, 2)
            for n in ("query", "key", "value")
        )
        attn = (q @ k.transpose(-2, -1) / (dim // num_heads) ** 0.5).softmax(-1)
        x = x + linear(layer + "attn.out", (attn @ v).transpose(1, 2).flatten(2))
        x = _paper_shift(x, t) if shift else x
        x = x + linear(layer + "ffn.fc2", F.gelu(linear(layer + "ffn.fc1", norm(layer + "ffn_norm", x))))
    norm_w, norm_b = p("transformer.encoder.encoder_norm.weight"), p("transformer.encoder.encoder_norm.bias")
    x = F.layer_norm(x[:, 0], (dim,), norm_w, norm_b, eps=1e-6)
    logits = F.linear(x, state["module.base_model.head.weight"], state["module.base_model.head.bias"])
    return logits.reshape(b, t, -1).mean(1)
