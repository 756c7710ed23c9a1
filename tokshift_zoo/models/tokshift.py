"""TokShift video transformer (Zhang, Hao, Ngo, "Token Shift Transformer for Video Classification", ACM MM 2021).

A ViT runs on every frame of a clip. Its one change is zero-parameter: in every block, before the attention and
again before the MLP, the class token of each frame exchanges a quarter of its channels with the next frame and a
quarter with the previous one. Patch tokens are untouched, and the shifted tensor is also the residual. The clip's
logits are the per-frame head averaged over time (here: the head of the time-averaged class token, the same
thing for a linear head).

Everything else is timm's ViT: ``PatchEmbed``, ``Attention`` (fused scaled-dot-product attention), ``Block``,
the init, the registry and ``pretrained_cfg``. This file holds the whole model family end to end, like timm's
``vision_transformer.py``: the shift, the block, the video model, the checkpoint filter, the default configs and
the registered builders.
"""

from __future__ import annotations

import re
from functools import partial
from typing import Any

import torch
import torch.nn.functional as F
from timm.data import IMAGENET_INCEPTION_MEAN, IMAGENET_INCEPTION_STD
from timm.layers import resample_abs_pos_embed
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from timm.models.vision_transformer import Block, VisionTransformer
from torch import nn
from torch.utils.checkpoint import checkpoint

from .registry import KINETICS400_LABELS, VideoCfg, get_video_cfg, register_video_cfgs

__all__ = ["token_shift", "TokShiftBlock", "VideoVisionTransformer", "checkpoint_filter_fn"]


def token_shift(x: torch.Tensor, num_frames: int, fold_div: int = 4, inplace: bool = False) -> torch.Tensor:
    """Shift the class token of each frame along time, on ``C // fold_div`` channels each way.

    Args:
        x: tokens of shape (B*T, N, C), frames of one clip contiguous, class token at index 0.
        num_frames: T.
        fold_div: channels ``[0, C/fold_div)`` take frame t+1's values, ``[C/fold_div, 2C/fold_div)`` take frame
            t-1's; the missing neighbours at the clip's ends are zeros. The other channels stay.
        inplace: write the shifted channels into ``x`` and return it. Only the ``B*T*2C/fold_div`` moving
            class-token values are written; nothing of the size of ``x`` is allocated. Works under autograd and
            ``torch.compile`` as long as no one else needs ``x``'s old values (the model uses it on tensors it
            owns). Otherwise ``x`` is copied first and left as it was.

    Returns:
        ``x`` shifted (``x`` itself when ``inplace``); only the class token's first ``2C/fold_div`` channels
        differ from the input. Unlike the authors' code, no zero-filled copy of every token is made: the moving
        channels are sliced out, shifted and written back.
    """
    if not inplace:
        x = x.clone()
    bt, _, c = x.shape
    fold = c // fold_div
    if fold == 0:
        return x
    moving = x[:, 0, : 2 * fold].reshape(bt // num_frames, num_frames, 2 * fold)  # (B*T, 2f) view -> (B, T, 2f)
    shifted = torch.cat(
        [
            F.pad(moving[:, 1:, :fold], (0, 0, 0, 1)),  # take t+1, zeros after the last frame
            F.pad(moving[:, :-1, fold:], (0, 0, 1, 0)),  # take t-1, zeros before the first frame
        ],
        dim=2,
    )
    x[:, 0, : 2 * fold] = shifted.reshape(bt, 2 * fold)
    return x


class TokShiftBlock(Block):
    """timm's pre-norm ViT ``Block`` with the class token shifted before the attention and before the MLP.

    The shifted tensor is the residual too, as in the paper's code. With ``fold_div=0`` the block is exactly
    timm's ``Block`` (the plain ViT baseline).
    """

    def __init__(self, *args: Any, fold_div: int = 4, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fold_div = fold_div

    def _shift(self, x: torch.Tensor, num_frames: int, inplace: bool) -> torch.Tensor:
        return token_shift(x, num_frames, self.fold_div, inplace) if self.fold_div else x

    def forward(self, x: torch.Tensor, num_frames: int, inplace: bool = False) -> torch.Tensor:
        """(B*T, N, C) -> (B*T, N, C). ``inplace``: shift ``x`` itself, for a caller that owns it (the model's
        forward does, except under gradient checkpointing, which keeps a block's input to run it again). The
        second shift always acts in place, on the residual sum this block has just made."""
        x = self._shift(x, num_frames, inplace)
        x = x + self.drop_path1(self.ls1(self.attn(self.norm1(x))))
        x = self._shift(x, num_frames, inplace=True)
        x = x + self.drop_path2(self.ls2(self.mlp(self.norm2(x))))
        return x


class VideoVisionTransformer(VisionTransformer):
    """A ViT applied to every frame of a (B, 3, T, H, W) clip, with the TokShift block.

    Args:
        num_frames: the clip length the weights were trained with (metadata; any T >= 1 runs).
        fold_div: the shift's channel divisor; 0 disables the shift (the plain ViT baseline).
        pos_embed_std: init std of the position embedding (timm's 0.02). Training from scratch on motion needs a
            larger one (the demo model's 1.0): the class token learns where the object is only through
            attention-weighted position embeddings, and at 0.02 that signal is too weak to get learning started.
        **kwargs: timm ``VisionTransformer`` arguments (``img_size``, ``patch_size``, ``embed_dim``, ``depth``,
            ``num_heads``, ``num_classes``, ``drop_path_rate``, ...). The class token and token pooling are
            required, as the shift and the head act on the class token.
    """

    def __init__(self, num_frames: int = 8, fold_div: int = 4, pos_embed_std: float = 0.02, **kwargs: Any) -> None:
        if not kwargs.get("class_token", True) or kwargs.get("global_pool", "token") != "token":
            raise ValueError("TokShift needs class_token=True and global_pool='token'")
        if fold_div < 0 or fold_div == 1:
            raise ValueError(f"fold_div must be 0 (no shift) or >= 2, got {fold_div}")
        kwargs.setdefault("block_fn", partial(TokShiftBlock, fold_div=fold_div))
        super().__init__(**kwargs)
        self.num_frames = num_frames
        self.fold_div = fold_div
        if pos_embed_std != 0.02 and self.pos_embed is not None:  # timm's init draws it with std 0.02
            nn.init.trunc_normal_(self.pos_embed, std=pos_embed_std, a=-2 * pos_embed_std, b=2 * pos_embed_std)

    def _check_input(self, x: torch.Tensor) -> None:
        height, width = self.patch_embed.img_size
        expected = f"(B, {self.in_chans}, T, {height}, {width})"
        if x.ndim != 5:
            raise ValueError(f"expected a clip batch of shape {expected}, got a {x.ndim}-d tensor {tuple(x.shape)}")
        if x.shape[1] != self.in_chans or tuple(x.shape[3:]) != (height, width) or x.shape[2] < 1:
            raise ValueError(f"expected a clip batch of shape {expected}, got {tuple(x.shape)}")

    def _has_hooks(self) -> bool:
        """Whether a forward hook on any submodule could keep a tensor that a block would later shift in place."""
        return any(m._forward_hooks or m._forward_pre_hooks for m in self.modules())

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Clip (B, 3, T, H, W) -> final-normed tokens (B, T, N, D), N = 1 + number of patches."""
        self._check_input(x)
        b, c, t, h, w = x.shape
        x = x.transpose(1, 2).reshape(b * t, c, h, w)  # (B, C, T, H, W) -> (B*T, C, H, W)
        x = self.patch_embed(x)
        x = self._pos_embed(x)
        x = self.patch_drop(x)
        x = self.norm_pre(x)
        # Each block's input is a fresh tensor made here (the embedding, or the previous block's residual sum), so
        # the block may shift it in place, unless a hook could hold it or checkpointing keeps it to run again.
        inplace = not self._has_hooks()
        for blk in self.blocks:
            if self.grad_checkpointing and torch.is_grad_enabled():
                x = checkpoint(blk, x, t, use_reentrant=False)
            else:
                x = blk(x, t, inplace=inplace)
        x = self.norm(x)
        return x.reshape(b, t, *x.shape[1:])  # (B*T, N, D) -> (B, T, N, D)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Tokens (B, T, N, D) -> clip embedding (B, D) if ``pre_logits`` else logits (B, num_classes).

        The embedding is the time-average of the class tokens; as the head is linear, its logits equal the
        per-frame logits averaged over time (the paper's consensus).
        """
        x = x[:, :, 0].mean(dim=1)
        x = self.fc_norm(x)
        x = self.head_drop(x)
        return x if pre_logits else self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Clip (B, 3, T, H, W), normalised -> logits (B, num_classes)."""
        return self.forward_head(self.forward_features(x))


# --- weights: the authors' release and Google's npz -> ours -------------------------------------------------

_AUTHORS_PREFIX = "transformer."
_AUTHORS_BLOCK_NAMES = {
    "attention_norm": "norm1",
    "ffn_norm": "norm2",
    "attn.out": "attn.proj",
    "ffn.fc1": "mlp.fc1",
    "ffn.fc2": "mlp.fc2",
}


def _strip_wrappers(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop the DDP / TSN wrappers of the authors' training code (``module.``, ``base_model.``)."""
    out = {}
    for key, value in state_dict.items():
        for prefix in ("module.", "_orig_mod.", "base_model."):
            key = key.removeprefix(prefix)
        out[key] = value
    return out


def _convert_authors(state_dict: dict[str, torch.Tensor], model: VideoVisionTransformer) -> dict[str, torch.Tensor]:
    """Map jeonsworld ViT-pytorch names (the authors' release) to timm's; unplaceable keys raise KeyError."""
    out: dict[str, torch.Tensor] = {}
    qkv: dict[str, dict[str, torch.Tensor]] = {}
    unmapped = []
    for key, value in state_dict.items():
        if key == "transformer.embeddings.cls_token":
            out["cls_token"] = value
        elif key == "transformer.embeddings.position_embeddings":
            out["pos_embed"] = value
        elif key.startswith("transformer.embeddings.patch_embeddings."):
            out["patch_embed.proj." + key.rsplit(".", 1)[1]] = value
        elif key.startswith("transformer.encoder.encoder_norm."):
            out["norm." + key.rsplit(".", 1)[1]] = value
        elif key.startswith("head."):
            out[key] = value
        elif m := re.fullmatch(r"transformer\.encoder\.layer\.(\d+)\.(.+)\.(weight|bias)", key):
            idx, name, kind = m.groups()
            if name in ("attn.query", "attn.key", "attn.value"):
                qkv.setdefault(f"blocks.{idx}.attn.qkv.{kind}", {})[name.split(".")[1]] = value
            elif name in _AUTHORS_BLOCK_NAMES:
                out[f"blocks.{idx}.{_AUTHORS_BLOCK_NAMES[name]}.{kind}"] = value
            else:
                unmapped.append(key)
        else:
            unmapped.append(key)
    for key, parts in qkv.items():
        if set(parts) != {"query", "key", "value"}:
            unmapped.append(f"{key} (has only {sorted(parts)})")
            continue
        out[key] = torch.cat([parts["query"], parts["key"], parts["value"]], dim=0)
    if unmapped:
        raise KeyError(f"cannot place these keys of an authors'-format checkpoint: {unmapped}")
    return out


def checkpoint_filter_fn(state_dict: dict[str, Any], model: VideoVisionTransformer) -> dict[str, torch.Tensor]:
    """Turn any supported state dict into this model's names and sizes.

    Accepts the zoo's own state dicts, timm's image ViT state dicts, and the authors' release (a dict with
    ``state_dict`` whose keys are ``module.base_model.transformer...``). The position embedding is resampled
    with timm's ``resample_abs_pos_embed`` when the grid differs; ViT ``pre_logits`` are dropped.
    """
    state_dict = state_dict.get("state_dict", state_dict)
    state_dict = _strip_wrappers(state_dict)
    if any(k.startswith(_AUTHORS_PREFIX) for k in state_dict):
        state_dict = _convert_authors(state_dict, model)
    out = {}
    for key, value in state_dict.items():
        if "pre_logits" in key:
            continue
        if key == "pos_embed" and value.shape != model.pos_embed.shape:
            num_prefix = model.num_prefix_tokens
            old_side = int(round((value.shape[1] - num_prefix) ** 0.5))
            value = resample_abs_pos_embed(
                value, new_size=model.patch_embed.grid_size, old_size=(old_side, old_side), num_prefix_tokens=num_prefix
            )
        out[key] = value
    return out


# --- configs and builders ----------------------------------------------------------------------------------

_PAPER = dict(
    paper_name="Token Shift Transformer for Video Classification",
    paper_ids="arXiv:2108.02432",
    origin_url="https://github.com/VideoNetworks/TokShift-Transformer",
    license="apache-2.0",
)
_IN21K_HUB = {"base": "timm/vit_base_patch16_224.orig_in21k", "large": "timm/vit_large_patch16_224.orig_in21k"}


def _k400_cfg(res: int, **kwargs: Any) -> dict[str, Any]:
    return dict(
        input_size=(3, res, res),
        crop_pct=1.0,
        crop_mode="center",
        interpolation="bilinear",
        mean=(0.5, 0.5, 0.5),
        std=(0.5, 0.5, 0.5),
        num_classes=400,
        label_names=KINETICS400_LABELS,
        first_conv="patch_embed.proj",
        classifier="head",
        fixed_input_size=True,
        description="Kinetics-400 weights released by the authors (Google Drive); not yet on a hub.",
        **_PAPER,
        **kwargs,
    )


def _in21k_cfg(size: str, res: int) -> dict[str, Any]:
    return dict(
        hf_hub_id=_IN21K_HUB[size],
        input_size=(3, res, res),
        crop_pct=1.0,
        interpolation="bilinear",
        mean=IMAGENET_INCEPTION_MEAN,
        std=IMAGENET_INCEPTION_STD,
        num_classes=0,
        first_conv="patch_embed.proj",
        classifier="head",
        description="Google's ImageNet-21k ViT weights (timm's copy), the paper's starting point; no head.",
        **_PAPER,
    )


# The paper's table: name -> (frames, size, resolution, K400 top-1, GFLOPs per view). The GFLOPs are the paper's,
# kept for comparison only: `tokshift_zoo.flops` counts them from the built model.
_PAPER_TABLE = {
    "vit_base16_224_8f": (8, "base", 224, 76.02, 134.7),
    "tokshift_base16_224_8f": (8, "base", 224, 77.28, 134.7),
    "tokshift_base16_256_8f": (8, "base", 256, 77.68, 175.8),
    "tokshift_base16_384_8f": (8, "base", 384, 78.14, 394.7),
    "tokshift_base16_224_16f": (16, "base", 224, 78.18, 268.5),
    "tokshift_large16_384_8f": (8, "large", 384, 79.83, 1397.6),
    "tokshift_large16_384_12f": (12, "large", 384, 80.40, 2096.4),
}

# The bundled demo model: trained by the zoo on its synthetic motion task (tokshift_zoo.synthetic) with the recipe
# in docs/demo_model.md; the weights ship in the package, pinned by sha256.
_DEMO_FILE = "tokshift_demo_motion.safetensors"
_DEMO_SHA256 = "55eeeae3bd44355000834395f3737eeaa9f8fb5f8fa2e4178feb2f06e5124c54"
_DEMO_CFG = dict(
    file="package://tokshift_zoo/data/" + _DEMO_FILE,  # weights.package_file's form (weights imports this module)
    input_size=(3, 32, 32),
    crop_pct=1.0,
    interpolation="bilinear",
    mean=(0.5, 0.5, 0.5),
    std=(0.5, 0.5, 0.5),
    num_classes=4,
    label_names=("moving_left", "moving_right", "moving_up", "moving_down"),
    first_conv="patch_embed.proj",
    classifier="head",
    license="apache-2.0",
    description="A small TokShift trained by tokshift-zoo on its synthetic motion task; shipped in the package.",
    origin_url=_PAPER["origin_url"],
)

default_cfgs = generate_default_cfgs(
    {
        # in21k first: timm makes the first tag with weights the default unless a later one is starred
        **{f"{name}.in21k": _in21k_cfg(size, res) for name, (_, size, res, _, _) in _PAPER_TABLE.items()},
        **{f"{name}.k400*": _k400_cfg(res) for name, (_, _, res, _, _) in _PAPER_TABLE.items()},
        "tokshift_demo_motion.synthetic": _DEMO_CFG,
    }
)

register_video_cfgs(
    {
        **{
            f"{name}.k400": VideoCfg(num_frames=frames, dataset="kinetics400", paper_top1=top1, paper_gflops=gflops)
            for name, (frames, _, _, top1, gflops) in _PAPER_TABLE.items()
        },
        **{
            f"{name}.in21k": VideoCfg(num_frames=frames, dataset="imagenet-21k")
            for name, (frames, *_) in _PAPER_TABLE.items()
        },
        # 8 frames spread over the whole clip (short clips: no 8x32 wrap-around), no flips: left/right are classes
        "tokshift_demo_motion.synthetic": VideoCfg(
            num_frames=8,
            sampling="uniform",
            test_clips=1,
            test_crops=3,
            train_hflip=False,
            dataset="tokshift-zoo synthetic motion (4 directions)",
            sha256=_DEMO_SHA256,
            filename=_DEMO_FILE,
        ),
    }
)


def _create_tokshift(variant: str, pretrained: bool = False, **kwargs: Any) -> VideoVisionTransformer:
    """Build ``variant`` with timm's ``build_model_with_cfg``; pretrained weights go through the zoo's loader,
    which verifies sha256 pins and reads the authors' and Google's formats (see ``tokshift_zoo.weights``)."""
    from ..weights import hub_video_cfg, load_pretrained  # weights.py imports models/, so import at call time

    cache_dir = kwargs.get("cache_dir")
    model = build_model_with_cfg(VideoVisionTransformer, variant, pretrained=False, **kwargs)
    model.video_cfg = hub_video_cfg(model, cache_dir) or get_video_cfg(model)  # an hf-hub: repo's own first
    if pretrained:
        model.load_report = load_pretrained(model, cache_dir)
    return model


_BASE16 = dict(patch_size=16, embed_dim=768, depth=12, num_heads=12)
_LARGE16 = dict(patch_size=16, embed_dim=1024, depth=24, num_heads=16)


@register_model
def vit_base16_224_8f(pretrained: bool = False, **kwargs: Any) -> VideoVisionTransformer:
    """Plain ViT-B/16, 8 frames at 224, logits averaged over time: the paper's baseline (no shift)."""
    model_args = dict(_BASE16, img_size=224, num_frames=8, fold_div=0)
    return _create_tokshift("vit_base16_224_8f", pretrained=pretrained, **dict(model_args, **kwargs))


@register_model
def tokshift_base16_224_8f(pretrained: bool = False, **kwargs: Any) -> VideoVisionTransformer:
    """TokShift-B/16, 8 frames at 224 (K400 top-1 77.28)."""
    model_args = dict(_BASE16, img_size=224, num_frames=8)
    return _create_tokshift("tokshift_base16_224_8f", pretrained=pretrained, **dict(model_args, **kwargs))


@register_model
def tokshift_base16_256_8f(pretrained: bool = False, **kwargs: Any) -> VideoVisionTransformer:
    """TokShift-B/16, 8 frames at 256 (K400 top-1 77.68)."""
    model_args = dict(_BASE16, img_size=256, num_frames=8)
    return _create_tokshift("tokshift_base16_256_8f", pretrained=pretrained, **dict(model_args, **kwargs))


@register_model
def tokshift_base16_384_8f(pretrained: bool = False, **kwargs: Any) -> VideoVisionTransformer:
    """TokShift-B/16, 8 frames at 384 (K400 top-1 78.14)."""
    model_args = dict(_BASE16, img_size=384, num_frames=8)
    return _create_tokshift("tokshift_base16_384_8f", pretrained=pretrained, **dict(model_args, **kwargs))


@register_model
def tokshift_base16_224_16f(pretrained: bool = False, **kwargs: Any) -> VideoVisionTransformer:
    """TokShift-B/16, 16 frames at 224 (K400 top-1 78.18)."""
    model_args = dict(_BASE16, img_size=224, num_frames=16)
    return _create_tokshift("tokshift_base16_224_16f", pretrained=pretrained, **dict(model_args, **kwargs))


@register_model
def tokshift_large16_384_8f(pretrained: bool = False, **kwargs: Any) -> VideoVisionTransformer:
    """TokShift-L/16, 8 frames at 384 (K400 top-1 79.83)."""
    model_args = dict(_LARGE16, img_size=384, num_frames=8)
    return _create_tokshift("tokshift_large16_384_8f", pretrained=pretrained, **dict(model_args, **kwargs))


@register_model
def tokshift_large16_384_12f(pretrained: bool = False, **kwargs: Any) -> VideoVisionTransformer:
    """TokShift-L/16, 12 frames at 384 (K400 top-1 80.40)."""
    model_args = dict(_LARGE16, img_size=384, num_frames=12)
    return _create_tokshift("tokshift_large16_384_12f", pretrained=pretrained, **dict(model_args, **kwargs))


@register_model
def tokshift_demo_motion(pretrained: bool = False, **kwargs: Any) -> VideoVisionTransformer:
    """The bundled demo: a 4-block, 64-wide TokShift on 8 frames of 32x32 in 8x8 patches, 4 motion classes."""
    model_args = dict(img_size=32, patch_size=8, embed_dim=64, depth=4, num_heads=4, num_frames=8, pos_embed_std=1.0)
    return _create_tokshift("tokshift_demo_motion", pretrained=pretrained, **dict(model_args, **kwargs))
