"""The zoo's registry entries: the paper's seven models (ImageNet-21k and Kinetics-400 tags) and the demo model.

Each ``name.tag`` is one ``ModelEntry``; ``models/tokshift.py`` registers them and timm's ``default_cfgs`` are
generated from them (``registry.register_entries``).
"""

from __future__ import annotations

from typing import Any

from timm.data import IMAGENET_INCEPTION_MEAN, IMAGENET_INCEPTION_STD

from .registry import KINETICS400_LABELS, ModelEntry, VideoCfg, package_file

__all__ = ["AUTHORS_DRIVE_FOLDERS", "ENTRIES", "K400_HUB_COPIES", "PAPER_TABLE"]

_PAPER = dict(
    paper_name="Token Shift Transformer for Video Classification",
    paper_ids="arXiv:2108.02432",
    origin_url="https://github.com/VideoNetworks/TokShift-Transformer",
)
# The authors' repository has no licence file and its README states none: the Kinetics-400 weights' licence is
# unknown (model cards: `license: other` with a note). Google's ImageNet-21k ViT weights are Apache-2.0.
K400_LICENSE = "unknown"
IN21K_LICENSE = "apache-2.0"

# The authors' Google Drive folder of each model's Kinetics-400 release (from their README).
AUTHORS_DRIVE_FOLDERS = {
    "vit_base16_224_8f": "1Bj5tc9dQmmJbhouytPOIYJlvK6O2yFyE",
    "tokshift_base16_224_8f": "1ty6OqhZpUxSzokXmP1IUFpze5A0Gihuu",
    "tokshift_base16_256_8f": "1xmW8VjYDdw996j17mHZhhjBnA2dJRj7a",
    "tokshift_base16_384_8f": "1QNZWV9VUJuZdUzoU4NUtSZxFgLF3MONm",
    "tokshift_base16_224_16f": "1w2XrDRLNJdDG1e6OczsxKEr6-LuwhVgv",
    "tokshift_large16_384_8f": "1tTXo5NzV4d9FTmnh40sUTXPoyUxWkq-I",
    "tokshift_large16_384_12f": "1vuDcSZLgzsicJr9d1yKSm5089fiN6PX7",
}

# Hub copies of the Kinetics-400 releases: name -> (ORG/REPO[@REVISION], sha256 of its model.safetensors). A
# maintainer fills this with the lines `tokshift-zoo publish ORG` prints; an entry here is the first source.
K400_HUB_COPIES: dict[str, tuple[str, str]] = {}
_IN21K_HUB = {"base": "timm/vit_base_patch16_224.orig_in21k", "large": "timm/vit_large_patch16_224.orig_in21k"}


def _k400_cfg(res: int, **kwargs: Any) -> dict[str, Any]:
    return dict(
        input_size=(3, res, res),
        crop_pct=1.0,
        crop_mode="center",
        interpolation="bicubic",  # the authors' PIL BICUBIC short-side resize (data/augmentation.py)
        mean=(0.5, 0.5, 0.5),
        std=(0.5, 0.5, 0.5),
        num_classes=400,
        label_names=KINETICS400_LABELS,
        first_conv="patch_embed.proj",
        classifier="head",
        fixed_input_size=True,
        description="Kinetics-400 weights released by the authors (Google Drive), converted to safetensors by "
        "tokshift-zoo on first use; licence not stated by the authors.",
        license=K400_LICENSE,
        **_PAPER,
        **kwargs,
    )


def _in21k_cfg(size: str, res: int) -> dict[str, Any]:
    return dict(
        hf_hub_id=_IN21K_HUB[size],
        input_size=(3, res, res),
        crop_pct=1.0,
        interpolation="bicubic",  # fine-tuned on Kinetics-400 by the authors' recipe, which resizes bicubic
        mean=IMAGENET_INCEPTION_MEAN,
        std=IMAGENET_INCEPTION_STD,
        num_classes=0,
        first_conv="patch_embed.proj",
        classifier="head",
        description="Google's ImageNet-21k ViT weights (timm's copy), the paper's starting point; no head.",
        license=IN21K_LICENSE,
        **_PAPER,
    )


# The paper's table: name -> (frames, size, resolution, K400 top-1, GFLOPs per view). The GFLOPs are the paper's,
# kept for comparison only: `tokshift_zoo.flops` counts them from the built model.
PAPER_TABLE = {
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
_DEMO_SHA256 = "addfdd699b3e78944a053d0ea623b640cc47249efc6d9b9a7d202961275c1c70"
_DEMO_CFG = dict(
    file=package_file(_DEMO_FILE),
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


def _paper_entries() -> list[ModelEntry]:
    # in21k first: timm makes the first tag with weights the default unless a later one is starred (k400 is)
    in21k = [
        ModelEntry(name, "in21k", _in21k_cfg(size, res), VideoCfg(num_frames=frames, dataset="imagenet-21k"))
        for name, (frames, size, res, _, _) in PAPER_TABLE.items()
    ]
    k400 = []
    for name, (frames, _, res, top1, gflops) in PAPER_TABLE.items():
        hub_id, sha256 = K400_HUB_COPIES.get(name, (None, None))
        video = VideoCfg(num_frames=frames, dataset="kinetics400", paper_top1=top1, paper_gflops=gflops, sha256=sha256)
        cfg = _k400_cfg(res, **({"hf_hub_id": hub_id} if hub_id else {}))
        k400.append(ModelEntry(name, "k400", cfg, video, default=True, drive_folder=AUTHORS_DRIVE_FOLDERS[name]))
    return in21k + k400


_DEMO_ENTRY = ModelEntry(
    "tokshift_demo_motion",
    "synthetic",
    _DEMO_CFG,
    # 8 frames spread over the whole clip (short clips: no 8x32 wrap-around), no flips: left/right are classes
    VideoCfg(
        num_frames=8,
        sampling="uniform",
        test_clips=1,
        test_crops=3,
        train_hflip=False,
        dataset="tokshift-zoo synthetic motion (4 directions)",
        sha256=_DEMO_SHA256,
        filename=_DEMO_FILE,
    ),
)

ENTRIES: tuple[ModelEntry, ...] = (*_paper_entries(), _DEMO_ENTRY)
