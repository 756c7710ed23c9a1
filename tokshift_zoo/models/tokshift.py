"""TokShift video transformer (Zhang, Hao, Ngo, "Token Shift Transformer for Video Classification", ACM MM 2021).

A ViT runs on every frame of a clip. Its one change is zero-parameter: in every block, before the attention and
again before the MLP, the class token of each frame exchanges a quarter of its channels with the next frame and a
quarter with the previous one. Patch tokens are untouched, and the shifted tensor is also the residual. The clip's
logits are the per-frame head averaged over time (here: the head of the time-averaged class token, the same
thing for a linear head).

Everything else is timm's ViT: ``PatchEmbed``, ``Attention`` (fused scaled-dot-product attention), ``Block``,
the init, the registry and ``pretrained_cfg``. This file holds the whole model family end to end, like timm's
``vision_transformer.py``: the shift, the block, the video model and the registered builders. The checkpoint
mapping is in ``checkpoints.py``, the weights records (from which timm's default cfgs are generated) in
``entries.py``. Any ``load_state_dict`` (timm's ``create_model(checkpoint_path=...)`` and ``load_checkpoint``
included) takes the authors' names, a wrapped state dict and another position-embedding grid: the model maps them
with ``checkpoint_filter_fn`` first, as timm's ``pretrained_filter_fn`` would.
"""

from __future__ import annotations

import difflib
import inspect
import logging
from functools import partial
from typing import Any

import torch
import torch.nn.functional as F
from timm.models import FeatureHookNet, build_model_with_cfg, register_model
from timm.models._builder import pretrained_cfg_for_features
from timm.models._features import FeatureGetterNet, feature_take_indices
from timm.models._features_fx import FeatureGraphNet
from timm.models.vision_transformer import Block, VisionTransformer, global_pool_nlc
from torch import nn
from torch.utils.checkpoint import checkpoint

from ..notices import warn_once
from .checkpoints import check_model_kwargs, checkpoint_filter_fn, needs_mapping
from .entries import RECORDS
from .registry import Weights, attach_weights, register_weights

__all__ = ["MODEL_ARGS", "token_shift", "TokShiftBlock", "VideoVisionTransformer", "checkpoint_filter_fn"]

_logger = logging.getLogger(__name__)


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

    Raises:
        ValueError: ``B*T`` is not a multiple of ``num_frames`` (the frames of a clip would mix with another's).
    """
    bt, _, c = x.shape
    if num_frames < 1 or bt % num_frames:
        raise ValueError(
            f"token_shift expects tokens (B*T, N, C) of whole clips of T={num_frames} frames, "
            f"got {bt} frames ({tuple(x.shape)}), not a multiple of {num_frames}"
        )
    return _shift_class_token(x, num_frames, c // fold_div, inplace)


def _shift_class_token(x: torch.Tensor, num_frames: int, fold: int, inplace: bool) -> torch.Tensor:
    """``token_shift`` with the fold as a Python int, so that tracing (torch.fx, torch.export) needs no shape
    arithmetic on ``x``; ``num_frames`` may be a traced value (a dynamic T)."""
    fx_traced = _is_fx_traced(x)
    if fold == 0:
        return x if inplace or fx_traced else x.clone()
    moving = x[:, 0, : 2 * fold].reshape(-1, num_frames, 2 * fold)  # (B*T, 2f) view -> (B, T, 2f)
    shift = _rolled if fx_traced or torch.compiler.is_exporting() else _padded
    shifted = shift(moving, num_frames, fold).reshape(-1, 2 * fold)  # (B, T, 2f) -> (B*T, 2f)
    if fx_traced:
        # A new tensor from the pieces: torch.fx's feature extractors drop in-place ops whose result nothing reads.
        class_token = torch.cat([shifted, x[:, 0, 2 * fold :]], dim=1)
        return torch.cat([class_token.unsqueeze(1), x[:, 1:]], dim=1)
    if not inplace:
        x = x.clone()
    x[:, 0, : 2 * fold] = shifted
    return x


def _padded(moving: torch.Tensor, num_frames: int, fold: int) -> torch.Tensor:
    """(B, T, 2f) -> shifted (B, T, 2f): neighbours' slices padded with zeros; three class-token-sized writes
    with the write-back (the eager path)."""
    return torch.cat(
        [
            F.pad(moving[:, 1:, :fold], (0, 0, 0, 1)),  # take t+1, zeros after the last frame
            F.pad(moving[:, :-1, fold:], (0, 0, 1, 0)),  # take t-1, zeros before the first frame
        ],
        dim=2,
    )


def _rolled(moving: torch.Tensor, num_frames: int, fold: int) -> torch.Tensor:
    """``_padded``'s values, bit for bit, as a roll with the wrapped-around frame zeroed: the traced path, since
    torch.export would specialise a dynamic T on the length of a T-1-frame slice (guard T - 1 != 1)."""
    frame = torch.arange(num_frames, device=moving.device).view(1, -1, 1)
    return torch.cat(
        [
            torch.where(frame < num_frames - 1, moving[:, :, :fold].roll(-1, dims=1), 0.0),  # take t+1
            torch.where(frame > 0, moving[:, :, fold:].roll(1, dims=1), 0.0),  # take t-1
        ],
        dim=2,
    )


def _is_fx_traced(x: torch.Tensor) -> bool:
    """Whether ``x`` is a torch.fx symbolic-tracing proxy: then the model shifts nothing in place."""
    return isinstance(x, torch.fx.Proxy)


class TokShiftBlock(Block):
    """timm's pre-norm ViT ``Block`` with the class token shifted before the attention and before the MLP.

    The shifted tensor is the residual too, as in the paper's code. With ``fold_div=0`` the block is exactly
    timm's ``Block`` (the plain ViT baseline).
    """

    def __init__(self, dim: int, *args: Any, fold_div: int = 4, **kwargs: Any) -> None:
        super().__init__(dim, *args, **kwargs)
        self.fold_div = fold_div
        self.fold = dim // fold_div if fold_div else 0  # channels moved each way, fixed at build time

    def _shift(self, x: torch.Tensor, num_frames: int, inplace: bool) -> torch.Tensor:
        return _shift_class_token(x, num_frames, self.fold, inplace) if self.fold_div else x

    def forward(
        self,
        x: torch.Tensor,
        num_frames: int,
        inplace: bool = False,
        attn_mask: torch.Tensor | None = None,
        is_causal: bool = False,
    ) -> torch.Tensor:
        """(B*T, N, C) -> (B*T, N, C). ``inplace``: shift ``x`` itself, for a caller that owns it (the model's
        forward does, except under gradient checkpointing, which keeps a block's input to run it again). The
        second shift acts in place, on the residual sum this block has just made (except under torch.fx).
        ``attn_mask`` and ``is_causal`` go to timm's ``Attention`` (a mask is per frame: broadcastable to
        (B*T, heads, N, N))."""
        x = self._shift(x, num_frames, inplace)
        x = x + self.drop_path1(self.ls1(self.attn(self.norm1(x), attn_mask=attn_mask, is_causal=is_causal)))
        x = self._shift(x, num_frames, inplace=not _is_fx_traced(x))
        x = x + self.drop_path2(self.ls2(self.mlp(self.norm2(x))))
        return x


# Pools a head can use: the class token (the paper's), none (tokens through the head, timm's ''), or timm's
# reductions over the patch tokens. Each acts per frame; the clip's result is the average over time.
_POOLS = ("token", "", "avg", "avgmax", "max")


class VideoVisionTransformer(VisionTransformer):
    """A ViT applied to every frame of a (B, 3, T, H, W) clip, with the TokShift block.

    Args:
        num_frames: the clip length the weights were trained with (metadata; any T >= 1 runs).
        fold_div: the shift's channel divisor; 0 disables the shift (the plain ViT baseline).
        pos_embed_std: init std of the position embedding (timm's 0.02). Training from scratch on motion needs a
            larger one (the demo model's 1.0): the class token learns where the object is only through
            attention-weighted position embeddings, and at 0.02 that signal is too weak to get learning started.
        **kwargs: timm ``VisionTransformer`` arguments (``img_size``, ``patch_size``, ``in_chans``, ``embed_dim``,
            ``depth``, ``num_heads``, ``num_classes``, ``drop_path_rate``, ...). The class token is required (the
            shift moves it); ``global_pool`` is ``'token'`` (the paper's head) or ``''`` (no pooling).
    """

    def __init__(self, num_frames: int = 8, fold_div: int = 4, pos_embed_std: float = 0.02, **kwargs: Any) -> None:
        if not kwargs.get("class_token", True) or kwargs.get("global_pool", "token") not in ("token", ""):
            raise ValueError(
                f"TokShift needs class_token=True and global_pool 'token' (or '' for none), got class_token="
                f"{kwargs.get('class_token', True)}, global_pool={kwargs.get('global_pool')!r}; other pools can be "
                "set later with reset_classifier(num_classes, global_pool)"
            )
        if fold_div < 0 or fold_div == 1:
            raise ValueError(f"fold_div must be 0 (no shift) or >= 2, got {fold_div}")
        kwargs.setdefault("block_fn", partial(TokShiftBlock, fold_div=fold_div))
        super().__init__(**kwargs)
        self.num_frames = num_frames
        self.fold_div = fold_div
        if pos_embed_std != 0.02 and self.pos_embed is not None:  # timm's init draws it with std 0.02
            nn.init.trunc_normal_(self.pos_embed, std=pos_embed_std, a=-2 * pos_embed_std, b=2 * pos_embed_std)
        self.register_load_state_dict_pre_hook(_map_foreign_state_dict)

    # --- input, embedding, blocks --------------------------------------------------------------------------

    def _check_input(self, x: torch.Tensor) -> None:
        height, width = self.patch_embed.img_size
        expected = f"(B, {self.in_chans}, T, {height}, {width})"
        if _is_fx_traced(x):  # torch.fx: shapes are unknown here, the checks become graph nodes
            torch._assert(x.dim() == 5, f"expected a clip batch of shape {expected}")
            torch._assert(x.shape[2] >= 1, f"expected a clip batch of shape {expected} with T >= 1")
            return
        if x.ndim != 5:
            raise ValueError(f"expected a clip batch of shape {expected}, got a {x.ndim}-d tensor {tuple(x.shape)}")
        if x.shape[1] != self.in_chans or tuple(x.shape[3:]) != (height, width) or x.shape[2] < 1:
            raise ValueError(f"expected a clip batch of shape {expected}, got {tuple(x.shape)}")
        if not torch.compiler.is_compiling() and x.shape[2] != self.num_frames:
            warn_once(
                _logger,
                f"num_frames {self.num_frames} {x.shape[2]}",
                f"this model was trained on {self.num_frames}-frame clips and is given {x.shape[2]} frames: it runs "
                "on them as they are (the shift works on any length), but its accuracy was measured on "
                f"{self.num_frames}-frame clips",
            )

    def _has_hooks(self) -> bool:
        """Whether a forward hook on any submodule could keep a tensor that a block would later shift in place."""
        return any(m._forward_hooks or m._forward_pre_hooks for m in self.modules())

    def _may_shift_in_place(self, x: torch.Tensor) -> bool:
        """Whether blocks may shift their input in place: not when a hook could hold it, nor under torch.fx,
        whose feature extractors return block outputs that the next block would otherwise overwrite."""
        return not _is_fx_traced(x) and not self._has_hooks()

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        """Clip (B, C, T, H, W) -> tokens (B*T, N, D) with class token and position embedding."""
        x = x.transpose(1, 2).flatten(0, 1)  # (B, C, T, H, W) -> (B*T, C, H, W)
        x = self.patch_embed(x)
        x = self._pos_embed(x)
        x = self.patch_drop(x)
        return self.norm_pre(x)

    def _run_block(self, block: nn.Module, x: torch.Tensor, num_frames: int, inplace: bool, **attn: Any):
        if self.grad_checkpointing and torch.is_grad_enabled():
            return checkpoint(block, x, num_frames, use_reentrant=False, **attn)
        return block(x, num_frames, inplace=inplace, **attn)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Clip (B, 3, T, H, W) -> final-normed tokens (B, T, N, D), N = 1 + number of patches."""
        self._check_input(x)
        t = x.shape[2]
        x = self._embed(x)
        # Each block's input is a fresh tensor made here (the embedding, or the previous block's residual sum), so
        # the block may shift it in place, unless a hook could hold it or checkpointing keeps it to run again.
        inplace = self._may_shift_in_place(x)
        for blk in self.blocks:
            x = self._run_block(blk, x, t, inplace)
        x = self.norm(x)
        return x.unflatten(0, (-1, t))  # (B*T, N, D) -> (B, T, N, D)

    # --- head ----------------------------------------------------------------------------------------------

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Tokens (B, T, N, D) -> clip embedding (B, D) if ``pre_logits`` else logits (B, num_classes).

        The embedding is the time-average of the class tokens; as the head is linear, its logits equal the
        per-frame logits averaged over time (the paper's consensus). With another ``global_pool`` (see
        ``reset_classifier``) each frame is pooled timm's way and the frames averaged; with ``''`` the tokens
        (B, T, N, D) go through the head unpooled.
        """
        if self.global_pool == "token":
            x = x[:, :, 0].mean(dim=1)
        elif self.global_pool:
            frames = global_pool_nlc(x.flatten(0, 1), self.global_pool, self.num_prefix_tokens)  # (B*T, D)
            x = frames.unflatten(0, (-1, x.shape[1])).mean(dim=1)
        x = self.fc_norm(x)
        x = self.head_drop(x)
        return x if pre_logits else self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Clip (B, 3, T, H, W), normalised -> logits (B, num_classes)."""
        return self.forward_head(self.forward_features(x))

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        """A fresh ``num_classes`` head (0: none, ``forward`` gives the pooled embedding), as timm's ViT.

        Args:
            num_classes: classes of the new head.
            global_pool: None keeps the pool; ``'token'`` (the paper's), ``''`` (no pooling), ``'avg'``,
                ``'avgmax'``, ``'max'`` (over each frame's patch tokens, then over time). timm's attention pools
                (``'map'``, ``'prr'``) are refused: this model has none.

        Label names that no longer fit the head leave ``pretrained_cfg`` and ``weights``, and ``weights`` loses the
        paper's top-1, which described the old head.
        """
        if global_pool is not None and global_pool not in _POOLS:
            raise ValueError(f"global_pool must be one of {_POOLS} for a TokShift model, got {global_pool!r}")
        super().reset_classifier(num_classes, global_pool)
        self.fit_cfg_to_head()

    def fit_cfg_to_head(self) -> None:
        """Make ``pretrained_cfg`` and ``weights`` describe the current head: its class count, and no label
        names (nor the paper's top-1) when the names were those of another head. The ``tag`` stays: it names the
        weights and preprocessing the model came from (``convert`` and the hub config record it)."""
        cfg = getattr(self, "pretrained_cfg", None)
        if not cfg or cfg.get("num_classes") == self.num_classes:
            return
        cfg = dict(cfg, num_classes=self.num_classes)
        names = cfg.get("label_names")
        if names is not None and len(names) != self.num_classes:
            cfg.update(label_names=None, label_descriptions=None)
        self.pretrained_cfg = self.default_cfg = cfg
        if isinstance(getattr(self, "weights", None), Weights):
            self.weights = self.weights.fit(self)

    # --- intermediate layers (timm's API) ------------------------------------------------------------------

    def forward_intermediates(
        self,
        x: torch.Tensor,
        indices: int | list[int] | None = None,
        return_prefix_tokens: bool = False,
        norm: bool = False,
        stop_early: bool = False,
        output_fmt: str = "NCTHW",
        intermediates_only: bool = False,
        output_dict: bool = False,
        attn_mask: torch.Tensor | None = None,
        is_causal: bool = False,
    ) -> list[Any] | tuple[torch.Tensor, list[Any]] | dict[str, Any]:
        """The outputs of chosen blocks, with timm ViT's signature and semantics, for a clip (B, C, T, H, W).

        Args:
            x: clip (B, C, T, H, W), normalised.
            indices: None: every block; an int n: the last n; a list: those blocks (negative from the end).
            return_prefix_tokens: pair each intermediate with its prefix tokens (the class token of each frame),
                (B, T, C): ``[(map_or_tokens, cls), ...]``.
            norm: apply the final norm to each intermediate (then the last block's class tokens averaged over
                time are ``forward_head(..., pre_logits=True)``'s embedding).
            stop_early: run no block after the last one asked for.
            output_fmt: ``'NCTHW'`` (or timm's ``'NCHW'``, the name its feature wrappers pass): patch tokens as
                video maps (B, C, T, H', W'); ``'NLC'``: patch tokens (B, T*H'*W', C), frame-major.
            intermediates_only: return only the list of intermediates.
            output_dict: return ``{'image_intermediates': [...], 'image_intermediates_prefix': [...] (with
                return_prefix_tokens), 'image_features': ...}`` (timm's keys).
            attn_mask, is_causal: passed to every block's attention (a mask per frame).

        Returns:
            ``(features, intermediates)``, features as ``forward_features`` gives them (B, T, N, C); or the
            intermediates alone; or the dict.
        """
        if output_fmt not in ("NCTHW", "NCHW", "NLC"):
            raise ValueError(f"output_fmt must be 'NCTHW' (or 'NCHW', the same video maps) or 'NLC', got {output_fmt}")
        take_indices, max_index = feature_take_indices(len(self.blocks), indices)
        self._check_input(x)
        _, _, t, height, width = x.shape
        x = self._embed(x)
        blocks = self.blocks[: max_index + 1] if stop_early else self.blocks
        may_shift_in_place = self._may_shift_in_place(x)
        attn = dict(attn_mask=attn_mask, is_causal=is_causal)
        intermediates = []
        for i, blk in enumerate(blocks):
            kept = bool(intermediates) and intermediates[-1] is x  # a kept output must not be shifted in place
            x = self._run_block(blk, x, t, may_shift_in_place and not kept, **attn)
            if i in take_indices:
                intermediates.append(self.norm(x) if norm else x)

        # (B*T, N, C) -> prefix (B, T*P, C) and patch tokens, frame-major
        npre = self.num_prefix_tokens
        prefix = [y[:, :npre].unflatten(0, (-1, t)).flatten(1, 2) for y in intermediates]
        if output_fmt == "NLC":
            intermediates = [y[:, npre:].unflatten(0, (-1, t)).flatten(1, 2) for y in intermediates]
        else:
            grid_h, grid_w = self.patch_embed.dynamic_feat_size((height, width))
            intermediates = [
                y[:, npre:].reshape(-1, t, grid_h, grid_w, y.shape[-1]).permute(0, 4, 1, 2, 3).contiguous()
                for y in intermediates
            ]  # (B*T, H'*W', C) -> (B, C, T, H', W')

        if output_dict:
            result: dict[str, Any] = {"image_intermediates": intermediates}
            if return_prefix_tokens:
                result["image_intermediates_prefix"] = prefix
            if not intermediates_only:
                result["image_features"] = self.norm(x).unflatten(0, (-1, t))
            return result
        if return_prefix_tokens:
            intermediates = list(zip(intermediates, prefix, strict=True))
        if intermediates_only:
            return intermediates
        return self.norm(x).unflatten(0, (-1, t)), intermediates


# --- configs and builders ----------------------------------------------------------------------------------


def _map_foreign_state_dict(
    module: VideoVisionTransformer, state_dict: dict[str, Any], prefix: str, *args: Any
) -> None:
    """``load_state_dict``'s pre-hook: the keys under ``prefix`` in the authors' names (or wrapped, or made for
    another grid or channel count) are replaced by ``checkpoint_filter_fn``'s mapping, in place; the zoo's and
    timm's own names pass untouched."""
    own = {key[len(prefix) :]: value for key, value in state_dict.items() if key.startswith(prefix)}
    if not needs_mapping(own, module):
        return
    for key in [key for key in state_dict if key.startswith(prefix)]:
        del state_dict[key]
    state_dict.update({prefix + key: value for key, value in checkpoint_filter_fn(own, module).items()})


default_cfgs = register_weights(RECORDS)  # timm's cfgs, generated from the zoo's one record per name.tag


# timm's feature wrappers that can run a video model: 'getter' (timm ViT's default) calls forward_intermediates;
# 'hook' and 'fx' return the blocks' raw outputs, (B*T, N, C). timm's 'list' and 'dict' rebuild a model from its
# children called in a row, which cannot reshape a clip into frames.
_FEATURE_CLASSES = {"getter": FeatureGetterNet, "hook": FeatureHookNet, "fx": FeatureGraphNet}


def pop_feature_args(kwargs: dict[str, Any]) -> dict[str, Any] | None:
    """Take timm's feature-extraction arguments (``features_only``, ``out_indices``, ``feature_cls``,
    ``feature_cfg``) out of builder ``kwargs``: the ``feature_model`` arguments, or None without
    ``features_only``. Defaults as timm's ViT: the last 3 blocks, ``'getter'``."""
    features_only = kwargs.pop("features_only", False)
    feature_cfg = dict(out_indices=kwargs.pop("out_indices", 3), feature_cls=kwargs.pop("feature_cls", "getter"))
    feature_cfg.update(kwargs.pop("feature_cfg", None) or {})
    return feature_cfg if features_only else None


def feature_model(model: VideoVisionTransformer, feature_cls: Any = "getter", **feature_cfg: Any) -> nn.Module:
    """Wrap a built (and loaded) model in one of timm's feature classes, as ``build_model_with_cfg`` does."""
    if isinstance(feature_cls, str):
        if feature_cls.lower() not in _FEATURE_CLASSES:
            raise ValueError(
                f"feature_cls must be one of {sorted(_FEATURE_CLASSES)} (or a class) for a video model, got "
                f"{feature_cls!r}: timm's 'list'/'dict' call the model's children in a row, which cannot run a clip"
            )
        feature_cls = _FEATURE_CLASSES[feature_cls.lower()]
    features = feature_cls(model, **feature_cfg)
    features.pretrained_cfg = features.default_cfg = pretrained_cfg_for_features(model.pretrained_cfg)
    features.weights = model.weights
    for name in ("_traits", "load_report"):
        if hasattr(model, name):
            setattr(features, name, getattr(model, name))
    return features


def _check_arguments(variant: str, kwargs: dict[str, Any]) -> None:
    """Refuse a keyword no builder layer takes, with the closest names (``pretraind``: did you mean
    ``pretrained``?), instead of a TypeError from deep inside timm."""
    layers = (build_model_with_cfg, VideoVisionTransformer.__init__, VisionTransformer.__init__)
    known = {"pretrained"}.union(*(inspect.signature(f).parameters for f in layers)) - {"self", "kwargs"}
    unknown = [key for key in kwargs if key not in known]
    if unknown:
        close = difflib.get_close_matches(unknown[0], sorted(known), n=3)
        hint = f": did you mean {' or '.join(map(repr, close))}?" if close else " (see help(tokshift_zoo.create_model))"
        raise TypeError(f"{variant}() got an unexpected keyword argument {unknown[0]!r}{hint}")


def _config_json(cfg: Any) -> str | None:
    """The ``config.json`` whose ``model_args`` timm passed to the builder (an ``hf-hub:`` or ``local-dir:``
    name), as messages name it; None for a build from a registry name."""
    if not isinstance(cfg, dict):
        return None
    if cfg.get("source") == "local-dir":
        return f"{cfg.get('file')}/config.json"
    if cfg.get("source") == "hf-hub":
        return f"hf-hub:{cfg.get('hf_hub_id')} config.json"
    return None


def _create_tokshift(variant: str, pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """Build ``variant`` with timm's ``build_model_with_cfg``; its weights record and pretrained weights come from the
    zoo's weights loader, called back through the registry (it verifies sha256 pins and reads the authors' and
    Google's formats, see ``tokshift_zoo.weights``).

    ``features_only=True`` (with ``out_indices``, default the last 3 blocks, and ``feature_cls``, default
    ``'getter'``, or a ``feature_cfg`` dict) wraps the loaded model in timm's feature class, as timm's ViT does.
    """
    features = pop_feature_args(kwargs)
    _check_arguments(variant, kwargs)
    config_json = _config_json(kwargs.get("pretrained_cfg"))
    if config_json is not None:  # the arguments are (in part) that file's: sized before anything is allocated
        check_model_kwargs(kwargs, config_json, "model_args")
    model = build_model_with_cfg(VideoVisionTransformer, variant, pretrained=False, **kwargs)
    input_size = (model.in_chans, *model.patch_embed.img_size)
    if tuple(model.pretrained_cfg.get("input_size") or ()) != input_size:  # so that timm's data config sees it
        model.pretrained_cfg = model.default_cfg = dict(model.pretrained_cfg, input_size=input_size)
    attach_weights(model, pretrained, kwargs.get("cache_dir"))
    model.fit_cfg_to_head()  # a new num_classes: the tag's label names no longer apply
    return feature_model(model, **features) if features is not None else model


_BASE16 = dict(patch_size=16, embed_dim=768, depth=12, num_heads=12)
_LARGE16 = dict(patch_size=16, embed_dim=1024, depth=24, num_heads=16)
# each builder's arguments, as data: the model table (``flops.model_table``) sizes the models from them unbuilt
MODEL_ARGS: dict[str, dict[str, Any]] = {
    "vit_base16_224_8f": dict(_BASE16, img_size=224, num_frames=8, fold_div=0),
    "tokshift_base16_224_8f": dict(_BASE16, img_size=224, num_frames=8),
    "tokshift_base16_256_8f": dict(_BASE16, img_size=256, num_frames=8),
    "tokshift_base16_384_8f": dict(_BASE16, img_size=384, num_frames=8),
    "tokshift_base16_224_16f": dict(_BASE16, img_size=224, num_frames=16),
    "tokshift_large16_384_8f": dict(_LARGE16, img_size=384, num_frames=8),
    "tokshift_large16_384_12f": dict(_LARGE16, img_size=384, num_frames=12),
    "tokshift_demo_motion": dict(
        img_size=32, patch_size=8, embed_dim=96, depth=6, num_heads=4, num_frames=8, pos_embed_std=1.0
    ),
}


@register_model
def vit_base16_224_8f(pretrained: bool = False, **kwargs: Any) -> VideoVisionTransformer:
    """Plain ViT-B/16, 8 frames at 224, logits averaged over time: the paper's baseline (no shift)."""
    model_args = MODEL_ARGS["vit_base16_224_8f"]
    return _create_tokshift("vit_base16_224_8f", pretrained=pretrained, **dict(model_args, **kwargs))


@register_model
def tokshift_base16_224_8f(pretrained: bool = False, **kwargs: Any) -> VideoVisionTransformer:
    """TokShift-B/16, 8 frames at 224 (K400 top-1 77.28)."""
    model_args = MODEL_ARGS["tokshift_base16_224_8f"]
    return _create_tokshift("tokshift_base16_224_8f", pretrained=pretrained, **dict(model_args, **kwargs))


@register_model
def tokshift_base16_256_8f(pretrained: bool = False, **kwargs: Any) -> VideoVisionTransformer:
    """TokShift-B/16, 8 frames at 256 (K400 top-1 77.68)."""
    model_args = MODEL_ARGS["tokshift_base16_256_8f"]
    return _create_tokshift("tokshift_base16_256_8f", pretrained=pretrained, **dict(model_args, **kwargs))


@register_model
def tokshift_base16_384_8f(pretrained: bool = False, **kwargs: Any) -> VideoVisionTransformer:
    """TokShift-B/16, 8 frames at 384 (K400 top-1 78.14)."""
    model_args = MODEL_ARGS["tokshift_base16_384_8f"]
    return _create_tokshift("tokshift_base16_384_8f", pretrained=pretrained, **dict(model_args, **kwargs))


@register_model
def tokshift_base16_224_16f(pretrained: bool = False, **kwargs: Any) -> VideoVisionTransformer:
    """TokShift-B/16, 16 frames at 224 (K400 top-1 78.18)."""
    model_args = MODEL_ARGS["tokshift_base16_224_16f"]
    return _create_tokshift("tokshift_base16_224_16f", pretrained=pretrained, **dict(model_args, **kwargs))


@register_model
def tokshift_large16_384_8f(pretrained: bool = False, **kwargs: Any) -> VideoVisionTransformer:
    """TokShift-L/16, 8 frames at 384 (K400 top-1 79.83)."""
    model_args = MODEL_ARGS["tokshift_large16_384_8f"]
    return _create_tokshift("tokshift_large16_384_8f", pretrained=pretrained, **dict(model_args, **kwargs))


@register_model
def tokshift_large16_384_12f(pretrained: bool = False, **kwargs: Any) -> VideoVisionTransformer:
    """TokShift-L/16, 12 frames at 384 (K400 top-1 80.40)."""
    model_args = MODEL_ARGS["tokshift_large16_384_12f"]
    return _create_tokshift("tokshift_large16_384_12f", pretrained=pretrained, **dict(model_args, **kwargs))


@register_model
def tokshift_demo_motion(pretrained: bool = False, **kwargs: Any) -> VideoVisionTransformer:
    """The bundled demo: a 6-block, 96-wide TokShift on 8 frames of 32x32 in 8x8 patches, 4 motion classes."""
    model_args = MODEL_ARGS["tokshift_demo_motion"]
    return _create_tokshift("tokshift_demo_motion", pretrained=pretrained, **dict(model_args, **kwargs))
