"""The shift's cost: TokShift against timm's plain ViT on the same frames, and the shift on its own against the
authors' formulation (a zero-filled copy of every token), in time and in elements written per call."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn as nn
from torch.utils._python_dispatch import TorchDispatchMode

from .core import BASE_REFERENCE, build_model, measure, num_tokens, paired_ratio, random_clip, significant

__all__ = ["authors_token_shift", "count_writes", "shift_suite"]


def authors_token_shift(x: torch.Tensor, num_frames: int, fold_div: int = 4) -> torch.Tensor:
    """The shift as the authors' ``shift_tk`` computes it (``vit_models/modeling_tokshift.py``): a zero-filled
    tensor the size of ``x``, into which every token is copied, the class token's moving channels shifted.
    Same result as ``token_shift``; kept here only to be measured against."""
    bt, n, c = x.shape
    fold = c // fold_div
    clips = x.view(bt // num_frames, num_frames, n, c)
    out = torch.zeros_like(clips)
    out[:, :-1, 0, :fold] = clips[:, 1:, 0, :fold]
    out[:, 1:, 0, fold : 2 * fold] = clips[:, :-1, 0, fold : 2 * fold]
    out[:, :, 1:, : 2 * fold] = clips[:, :, 1:, : 2 * fold]
    out[:, :, :, 2 * fold :] = clips[:, :, :, 2 * fold :]
    return out.view(bt, n, c)


class _WriteCounter(TorchDispatchMode):
    """Counts, per ATen operator call, the elements written: in place (arguments the schema marks as written)
    and into newly made tensors; views count nothing."""

    _NO_WRITE = ("empty", "empty_like", "empty_strided", "new_empty", "new_empty_strided")

    def __init__(self) -> None:
        super().__init__()
        self.written = 0
        self.allocated: list[int] = []
        self.ops: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001 - torch's signature
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        schema = func._schema
        self.ops.append(str(func.overloadpacket.__name__))
        mutated = False
        for position, argument in enumerate(schema.arguments):
            if argument.alias_info is not None and argument.alias_info.is_write:
                value = args[position] if position < len(args) else kwargs.get(argument.name)
                if isinstance(value, torch.Tensor):
                    self.written += value.numel()
                    mutated = True
        if mutated or any(r.alias_info is not None for r in schema.returns):
            return out  # in place (counted above) or a view
        for tensor in torch.utils._pytree.tree_leaves(out):
            if isinstance(tensor, torch.Tensor):
                self.allocated.append(tensor.numel())
                if func.overloadpacket.__name__ not in self._NO_WRITE:
                    self.written += tensor.numel()
        return out


def count_writes(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
    """Run ``fn(*args, **kwargs)`` and count what its ATen operators write.

    Run it outside ``torch.inference_mode`` (``torch.no_grad`` is fine): under inference mode composite
    operators such as ``reshape`` reach the counter whole, and one that copies would count as a view.

    Returns:
        ``{"elements_written", "largest_new_tensor" (elements), "new_tensors", "ops"}``.
    """
    counter = _WriteCounter()
    with counter:
        fn(*args, **kwargs)
    return {
        "elements_written": counter.written,
        "largest_new_tensor": max(counter.allocated, default=0),
        "new_tensors": len(counter.allocated),
        "ops": counter.ops,
    }


def shift_suite(
    device: str | torch.device = "cpu",
    batch_size: int = 1,
    num_frames: int | None = None,
    reps: int = 3,
    warmup: int = 1,
    name: str = BASE_REFERENCE,
    model_kwargs: Mapping[str, Any] | None = None,
    timm_name: str = "vit_base_patch16_224",
) -> dict[str, Any]:
    """TokShift against timm's plain ViT on the same frames (same weights), and the shift on its own.

    The three models are timed in interleaved rounds on the same clip: timm's image ViT on the B*T frames, the
    zoo's ViT baseline (the same model without the shift) and TokShift; ``ratio`` is TokShift's time over
    timm's (the median of the per-round ratios; ``ratio_range`` shows their spread: a shared machine's rounds
    can differ by 10% or more, and a median of few rounds by several percent). The shift alone is timed at the
    model's token shape three ways: in place (what the model runs), on a copy (``token_shift`` by default) and
    as the authors wrote it, with the elements each writes.
    """
    import timm

    from ..models.tokshift import token_shift

    device = torch.device(device)
    model_kwargs = dict(model_kwargs or {})
    tokshift = build_model(name, device, **model_kwargs)
    baseline = build_model(name, device, fold_div=0, **model_kwargs)
    baseline.load_state_dict(tokshift.state_dict())
    image_kwargs = {k: v for k, v in model_kwargs.items() if k != "num_frames"}
    image_kwargs.setdefault("num_classes", tokshift.num_classes)
    image = timm.create_model(timm_name, **image_kwargs).to(device).eval()
    image.load_state_dict(tokshift.state_dict())
    num_frames = num_frames or tokshift.num_frames
    clip = random_clip(tokshift, batch_size, num_frames, device)
    frames = clip.transpose(1, 2).reshape(-1, clip.shape[1], *clip.shape[-2:]).contiguous()  # (B*T, 3, H, W)

    def run(model: nn.Module, x: torch.Tensor) -> Callable[[], torch.Tensor]:
        def call() -> torch.Tensor:
            with torch.inference_mode():
                return model(x)

        return call

    times = measure(
        {"timm_vit": run(image, frames), "zoo_vit": run(baseline, clip), "tokshift": run(tokshift, clip)},
        device,
        reps=reps,
        warmup=warmup,
    )
    rounds = [a / b for a, b in zip(times["tokshift"], times["timm_vit"], strict=True)]
    models = {
        "model": name,
        "reference": f"timm {timm_name} on the same {batch_size}x{num_frames} frames",
        "batch_size": batch_size,
        "frames": num_frames,
        "timm_vit_ms": significant(1e3 * statistics.median(times["timm_vit"])),
        "zoo_vit_ms": significant(1e3 * statistics.median(times["zoo_vit"])),
        "tokshift_ms": significant(1e3 * statistics.median(times["tokshift"])),
        "ratio": round(paired_ratio(times["tokshift"], times["timm_vit"]), 4),
        "ratio_best": round(min(times["tokshift"]) / min(times["timm_vit"]), 4),
        "ratio_range": [round(min(rounds), 4), round(max(rounds), 4)],  # the machine's noise, round to round
        "zoo_vit_ratio": round(paired_ratio(times["zoo_vit"], times["timm_vit"]), 4),
        "reps": reps,
    }

    # the shift on its own, at the model's token shape
    tokens = num_tokens(tokshift)
    width = tokshift.embed_dim
    fold_div = tokshift.fold_div
    x = torch.randn(batch_size * num_frames, tokens, width, device=device)
    variants = {
        "in_place": lambda: token_shift(x, num_frames, fold_div, inplace=True),
        "copy": lambda: token_shift(x, num_frames, fold_div),
        "authors": lambda: authors_token_shift(x, num_frames, fold_div),
    }
    with torch.no_grad():  # not inference_mode: the write counter then sees the decomposed ATen operators
        shift_times = measure(variants, device, reps=max(reps, 5), warmup=3, min_seconds=0.05)
        writes = {key: count_writes(fn) for key, fn in variants.items()}
        y = x.clone()
        same = torch.equal(
            token_shift(y, num_frames, fold_div, inplace=True), authors_token_shift(x, num_frames, fold_div)
        )
    calls = 2 * len(tokshift.blocks)
    model_s = statistics.median(times["tokshift"])
    shift_rows = []
    for key, fn_times in shift_times.items():
        per_call = statistics.median(fn_times)
        shift_rows.append(
            {
                "shift": key,
                "us_per_call": significant(1e6 * per_call),
                "elements_written": writes[key]["elements_written"],
                "largest_new_tensor": writes[key]["largest_new_tensor"],
                "share_of_forward": significant(calls * per_call / model_s, 3),
                "vs_in_place": round(paired_ratio(fn_times, shift_times["in_place"]), 2),
            }
        )
    return {
        "models": models,
        "shift": shift_rows,
        "shift_shape": f"({batch_size * num_frames}, {tokens}, {width}), {calls} calls per forward",
        "class_token_channels": batch_size * num_frames * 2 * (width // fold_div),
        "tokens_elements": x.numel(),
        "matches_authors": same,
    }
