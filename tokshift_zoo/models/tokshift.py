"""TokShift video transformer (Zhang, Hao, Ngo, "Token Shift Transformer for Video Classification", ACM MM 2021).

A ViT runs on every frame of a clip. Its one change is zero-parameter: in every block, before the attention and
again before the MLP, the class token of each frame exchanges a quarter of its channels with the next frame and a
quarter with the previous one. Patch tokens are untouched, and the shifted tensor is also the residual. The clip's
logits are the per-frame head averaged over time (here: the head of the time-averaged class token, the same
thing for a linear head).

Everything else is timm's ViT: ``PatchEmbed``, ``Attention`` (fused scaled-dot-product attention), ``Block``,
the init, the registry and ``pretrained_cfg``. This file holds the whole model family end to end, like timm's
``vision_transformer.py``: the shift, the block, the video model and the registered builders. The checkpoint
mapping is in ``checkpoints.py``, the registry entries (from which timm's default cfgs are generated) in
``entries.py``.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import torch
import torch.nn.functional as F
from timm.models import build_model_with_cfg, register_model
from timm.models.vision_transformer import Block, VisionTransformer
from torch import nn
from torch.utils.checkpoint import checkpoint

from .checkpoints import checkpoint_filter_fn
from .entries import ENTRIES
from .registry import attach_weights, register_entries

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

    Raises:
        ValueError: ``B*T`` is not a multiple of ``num_frames`` (the frames of a clip would mix with another's).

    Returns:
        ``x`` shifted (``x`` itself when ``inplace``); only the class token's first ``2C/fold_div`` channels
        differ from the input. Unlike the authors' code, no zero-filled copy of every token is made: the moving
        channels are sliced out, shifted and written back.
    """
    bt, _, c = x.shape
    if num_frames < 1 or bt % num_frames:
        raise ValueError(
            f"token_shift expects tokens (B*T, N, C) of whole clips of T={num_frames} frames, "
            f"got {bt} frames ({tuple(x.shape)}), not a multiple of {num_frames}"
        )
    if not inplace:
        x = x.clone()
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


# --- configs and builders ----------------------------------------------------------------------------------

default_cfgs = register_entries(ENTRIES)  # timm's cfgs, generated from the zoo's one entry per name.tag


def _create_tokshift(variant: str, pretrained: bool = False, **kwargs: Any) -> VideoVisionTransformer:
    """Build ``variant`` with timm's ``build_model_with_cfg``; its video cfg and pretrained weights come from the
    zoo's weights loader, called back through the registry (it verifies sha256 pins and reads the authors' and
    Google's formats, see ``tokshift_zoo.weights``)."""
    model = build_model_with_cfg(VideoVisionTransformer, variant, pretrained=False, **kwargs)
    attach_weights(model, pretrained, kwargs.get("cache_dir"))
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
