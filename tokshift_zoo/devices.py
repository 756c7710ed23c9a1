"""Devices, dtypes and autocast, the one place every command resolves them (load, predict, train, benchmark).

``resolve_device("auto")`` is CUDA when present, else CPU; an explicit ``"cuda:1"`` means that GPU everywhere
(under torchrun a bare ``"cuda"`` means the process's local GPU). Dtype names are float32/fp32, bfloat16/bf16,
float16/fp16/half. Autocast is never implicit: a model runs in the dtype it was given unless a caller asks for
mixed precision with ``amp``.
"""

from __future__ import annotations

import contextlib

import torch

from .errors import ConfigError, DeviceError

__all__ = ["AMP_CHOICES", "DTYPES", "amp_dtype", "autocast", "resolve_device", "resolve_dtype"]

DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
    "half": torch.float16,
}

AMP_CHOICES = ("auto", "bf16", "fp16", "none")


def resolve_device(device: str | torch.device = "auto", local_rank: int | None = None) -> torch.device:
    """``"auto"`` -> CUDA when present, else CPU; any other name is checked to exist here.

    Args:
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"mps"``, or a ``torch.device``.
        local_rank: under torchrun, the process's local rank: a CUDA device without an index becomes
            ``cuda:local_rank``.

    Raises:
        ConfigError: not a device name.
        DeviceError: the device is not available here (e.g. ``"cuda"`` on a machine without a GPU).
    """
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ConfigError(f"expected a device 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}") from err
    if device.type == "cuda":
        if device.index is None and local_rank is not None:
            device = torch.device("cuda", local_rank)
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if (device.index or 0) >= count:
            raise DeviceError(f"device {device} was asked for, but this machine has {count} CUDA device(s)")
    elif device.type != "cpu":
        backend = getattr(torch, device.type, None)
        if backend is None or not backend.is_available():
            raise DeviceError(f"device {device} was asked for, but it is not available here")
    return device


def resolve_dtype(dtype: str | torch.dtype | None) -> torch.dtype:
    """``None`` -> float32; a floating ``torch.dtype`` or one of the names in ``DTYPES``.

    Raises:
        ConfigError: anything else, with the accepted names.
    """
    if dtype is None:
        return torch.float32
    if isinstance(dtype, torch.dtype) and dtype in DTYPES.values():
        return dtype
    if isinstance(dtype, str) and dtype.lower().removeprefix("torch.") in DTYPES:
        return DTYPES[dtype.lower().removeprefix("torch.")]
    raise ConfigError(f"dtype must be None, torch.float32/bfloat16/float16 or one of {sorted(DTYPES)}, got {dtype!r}")


def amp_dtype(amp: str | torch.dtype | None, device: torch.device) -> torch.dtype | None:
    """The autocast dtype ``amp`` asks for on ``device``: ``"auto"`` is bf16 on CUDA and off elsewhere;
    ``"none"``/None is off; ``"bf16"``, ``"fp16"`` or a dtype name/``torch.dtype`` is that dtype."""
    if amp is None or amp == "none":
        return None
    if amp == "auto":
        return torch.bfloat16 if device.type == "cuda" else None
    if isinstance(amp, str) and amp not in DTYPES:
        raise ConfigError(f"amp must be one of {', '.join(AMP_CHOICES)} or a dtype name, got {amp!r}")
    return resolve_dtype(amp)


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """``torch.autocast`` on ``device`` to ``dtype``; a no-op context when ``dtype`` is None."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)
