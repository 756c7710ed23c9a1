"""TensorBoard logging of a run (``torch.utils.tensorboard``), beside ``metrics.jsonl``; the ``tensorboard`` extra."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import ConfigError

__all__ = ["TensorBoardLog", "TENSORBOARD_DIR"]

TENSORBOARD_DIR = "tensorboard"


class TensorBoardLog:
    """Event files in ``output/tensorboard``: every number of an epoch's metrics row, as ``train/loss``,
    ``val/top1``, ``val_ema/top1``, ``lr``, ... at step = epoch."""

    def __init__(self, output: str | Path) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ConfigError(
                "tensorboard=True (--tensorboard) needs the tensorboard package: "
                "pip install 'tokshift-zoo[tensorboard]'"
            ) from None
        self.writer = SummaryWriter(log_dir=str(Path(output) / TENSORBOARD_DIR))

    def epoch(self, row: dict[str, Any]) -> None:
        """Log the numbers of one ``metrics.jsonl`` row."""
        for key, value in row.items():
            if key == "epoch" or isinstance(value, bool) or not isinstance(value, int | float):
                continue
            for prefix in ("train_", "val_ema_", "val_"):
                if key.startswith(prefix):
                    key = f"{prefix[:-1]}/{key[len(prefix) :]}"
                    break
            self.writer.add_scalar(key, value, row["epoch"])
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
