"""The zoo's own registry entries, kept beside timm's ``PretrainedCfg``.

timm's ``PretrainedCfg`` is a fixed dataclass that holds the image settings (input size, mean/std, crop,
classes, label names, license, paper ids, weight location). What a video model needs on top - the clip length,
frame stride and sampling, the test views, the paper's figures and the sha256 pin of each weight file - lives
here, one ``VideoCfg`` per ``name.tag``, reachable from a built model as ``model.video_cfg``.
"""

from __future__ import annotations

import fnmatch
from dataclasses import asdict, dataclass
from importlib import resources
from typing import Any

import timm

__all__ = ["DEFAULT_MODEL", "VideoCfg", "register_video_cfgs", "get_video_cfg", "list_models", "KINETICS400_LABELS"]


@dataclass(frozen=True)
class VideoCfg:
    """Video settings of one ``name.tag`` that timm's ``PretrainedCfg`` cannot hold.

    Attributes:
        num_frames: frames per clip the weights were trained with.
        frame_stride: the S of dense "NxS" sampling (every S-th frame); unused by uniform sampling.
        sampling: "dense" (N frames every S-th, the paper's 8x32) or "uniform" (one frame per N equal segments).
        test_clips: clips per video in the paper's test protocol (spread evenly over the video).
        test_crops: spatial crops per clip in the test protocol (3: left, centre, right after resizing the
            short side to the crop size; 1: centre).
        train_hflip: whether fine-tuning may flip clips horizontally (False where left and right are classes).
        dataset: what the weights were trained on.
        paper_top1: top-1 (%) reported in the paper for these weights, None if not reported.
        paper_gflops: GFLOPs per view reported in the paper (multiply-adds of linear and conv layers).
        sha256: hex sha256 of the weight file; a download that does not match is refused and removed.
        filename: the weight file's name at its source (hub repo file, URL basename or package file).
    """

    num_frames: int
    frame_stride: int = 32
    sampling: str = "dense"
    test_clips: int = 10
    test_crops: int = 3
    train_hflip: bool = True
    dataset: str = ""
    paper_top1: float | None = None
    paper_gflops: float | None = None
    sha256: str | None = None
    filename: str = "model.safetensors"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_VIDEO_CFGS: dict[str, VideoCfg] = {}

# The model `tokshift-zoo predict` and `make demo` use when none is named: trained by the zoo on its synthetic
# motion task, its weights ship inside the package, so it works offline.
DEFAULT_MODEL = "tokshift_demo_motion.synthetic"


def register_video_cfgs(cfgs: dict[str, VideoCfg]) -> None:
    """Add ``name.tag -> VideoCfg`` entries (done once per model family, beside its timm default cfgs)."""
    _VIDEO_CFGS.update(cfgs)


def get_video_cfg(model_or_name: Any) -> VideoCfg:
    """The ``VideoCfg`` of a built model or of a ``name[.tag]`` (default tag when omitted).

    A model built from settings the zoo does not know (an ``hf-hub:`` repo, a custom size) gets one made from
    its ``num_frames`` and the defaults (dense 8x32-style sampling, 10x3 test views).
    """
    if isinstance(model_or_name, str):
        name, _, tag = model_or_name.partition(".")
        if not tag:
            tag = timm.models.get_pretrained_cfg(name).tag if timm.is_model(name) else ""
        key = f"{name}.{tag}"
        if key not in _VIDEO_CFGS:
            raise KeyError(f"no zoo entry {key!r}; known: {sorted(_VIDEO_CFGS)}")
        return _VIDEO_CFGS[key]
    existing = getattr(model_or_name, "video_cfg", None)
    if isinstance(existing, VideoCfg):
        return existing
    pretrained_cfg = getattr(model_or_name, "pretrained_cfg", {}) or {}
    key = f"{pretrained_cfg.get('architecture')}.{pretrained_cfg.get('tag')}"
    if key in _VIDEO_CFGS:
        return _VIDEO_CFGS[key]
    return VideoCfg(num_frames=getattr(model_or_name, "num_frames", 8))


def list_models(filter: str = "", pretrained: bool = False) -> list[str]:  # noqa: A002 - timm's argument name
    """Names of the zoo's models, or with ``pretrained=True`` its ``name.tag`` entries, matching a glob ``filter``."""
    entries = sorted(_VIDEO_CFGS) if pretrained else sorted({k.split(".")[0] for k in _VIDEO_CFGS})
    return [e for e in entries if fnmatch.fnmatch(e, filter or "*")]


def _read_labels(filename: str) -> tuple[str, ...]:
    text = resources.files("tokshift_zoo").joinpath("data", filename).read_text(encoding="utf-8")
    return tuple(line.strip() for line in text.splitlines() if line.strip())


KINETICS400_LABELS: tuple[str, ...] = _read_labels("kinetics400_labels.txt")
