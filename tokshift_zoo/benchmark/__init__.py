"""Benchmarks of the zoo, each against a reference measured in the same run.

A busy or throttled machine slows everything it runs, so no figure here stands alone: every timing is taken in
rounds that alternate it with its reference (a plain GEMM of the model's own MLP shape, timm's plain ViT on the
same frames, decoding every frame of the same file, ...), and the reported ratio is the median of the per-round
ratios (``core``). Absolute times are reported too, as medians and minima over the rounds.

Suites, one module each (functions returning plain dicts and lists, JSON-ready; ``tokshift-zoo benchmark``
prints them):

- ``model``: clips/s and latency per zoo model, fp32 / bf16, eager / ``torch.compile``, and the achieved FLOP
  rate as a fraction of a same-dtype GEMM of shape (tokens, C) x (C, 4C) - the model's own MLP ``fc1``; and
  ``op_breakdown``, where one forward spends its time.
- ``shift``: TokShift against timm's plain ViT on the same frames, and the shift alone against the authors'
  formulation (a zero-filled copy of every token): time and elements written per call.
- ``attention``: ``F.scaled_dot_product_attention`` per backend against attention written out.
- ``decode``: the paper's 10x3 test views of a long 720p video against decoding every frame; ``loader``: the
  training loader's clips/s against the number of workers (videos from ``videos``).
- ``memory``: peak memory of inference and of a training step (optionally with gradient checkpointing).
- ``runtime``: eager fp32, ``torch.compile``, ONNX Runtime fp32 and int8 against eager fp32, with their output
  differences; the demo model's held-out accuracy under each runtime.
- ``scale``: ``embed``'s videos/s in one process and in two under torchrun, the share of its time spent decoding,
  and a 10x3 evaluate's decoding time against the model's.
"""

from .attention import attention_suite
from .core import (
    build_model,
    cpu_has_native_bf16,
    default_models,
    environment,
    measure,
    num_tokens,
    paired_ratio,
    random_clip,
    summarize,
)
from .decode import decode_suite
from .loader import loader_suite
from .memory import memory_suite, peak_memory
from .model import benchmark_model, gemm_shape, make_gemm, model_suite, op_breakdown
from .runner import DEFAULT_SUITES, SUITES, format_table, run_benchmarks
from .runtime import runtime_accuracy, runtime_suite
from .scale import scale_suite
from .shift import authors_token_shift, count_writes, shift_suite
from .videos import write_long_video

__all__ = [
    "DEFAULT_SUITES",
    "SUITES",
    "attention_suite",
    "authors_token_shift",
    "benchmark_model",
    "build_model",
    "count_writes",
    "cpu_has_native_bf16",
    "decode_suite",
    "default_models",
    "environment",
    "format_table",
    "gemm_shape",
    "loader_suite",
    "make_gemm",
    "measure",
    "memory_suite",
    "model_suite",
    "num_tokens",
    "op_breakdown",
    "paired_ratio",
    "peak_memory",
    "random_clip",
    "run_benchmarks",
    "runtime_accuracy",
    "runtime_suite",
    "scale_suite",
    "shift_suite",
    "summarize",
    "write_long_video",
]
