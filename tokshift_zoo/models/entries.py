"""The zoo's weights records: the paper's seven models (ImageNet-21k and Kinetics-400 tags) and the demo model.

Each ``name.tag`` is one ``Weights`` record; ``models/tokshift.py`` registers them and timm's ``default_cfgs`` are
generated from them (``registry.register_weights``). The figures are the paper's (top-1, GFLOPs per view) or
counted from the built model (``num_params``, checked by tests/test_registry.py); the protocol of the k400 tags
is the authors' config file named in ``meta["recipe"]`` and their test code (``data/dataset.py`` ``read_clip``).
"""

from __future__ import annotations

from typing import Any

from timm.data import IMAGENET_INCEPTION_MEAN, IMAGENET_INCEPTION_STD

from .registry import KINETICS400_LABELS, Weights, package_file

__all__ = ["AUTHORS_DRIVE_FOLDERS", "AUTHORS_RECIPES", "K400_HUB_COPIES", "PAPER_TABLE", "RECORDS"]

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

# The authors' config of each model (their repository at the commit mirrored for the zoo's tests): T_SIZE x
# T_STEP dense sampling, VAL_SHORT_SIDE = VAL_PATCH_SIZE (crop_pct 1), VAL_TEST_AUG 3 crops, VAL_SAMPLE_TIMES 10
# "when evaluating", TRN_SHORT_SIDE_RANGE the training short side.
_AUTHORS_COMMIT = "a7abb7e085a01768e59bb13569294c8def404957"
AUTHORS_RECIPES = {
    "vit_base16_224_8f": "k400_vit_8x32_224.yml",
    "tokshift_base16_224_8f": "k400_tokshift_div4_8x32_base_224.yml",
    "tokshift_base16_256_8f": "k400_tokshift_div4_8x32_base_256.yml",
    "tokshift_base16_384_8f": "k400_tokshift_div4_8x32_base_384.yml",
    "tokshift_base16_224_16f": "k400_tokshift_div4_16x32_base_224.yml",
    "tokshift_large16_384_8f": "k400_tokshift_div4_8x32_large_384.yml",
    "tokshift_large16_384_12f": "k400_tokshift_div4_12x32_large_384.yml",
}

# Hub copies of the Kinetics-400 releases: name -> (ORG/REPO[@REVISION], sha256 of its model.safetensors). A
# maintainer fills this with the lines `tokshift-zoo publish ORG` prints; an entry here is the first source.
K400_HUB_COPIES: dict[str, tuple[str, str]] = {}
_IN21K_HUB = {"base": "timm/vit_base_patch16_224.orig_in21k", "large": "timm/vit_large_patch16_224.orig_in21k"}

# The paper's table: name -> (frames, size, resolution, K400 top-1, GFLOPs per view, training short side, params
# with the 400-class head). The GFLOPs are the paper's, kept for comparison: `tokshift_zoo.flops` counts them from
# the built model; the short side is the authors' TRN_SHORT_SIDE_RANGE; the parameters are counted.
PAPER_TABLE = {
    "vit_base16_224_8f": (8, "base", 224, 76.02, 134.7, (224, 330), 86_106_256),
    "tokshift_base16_224_8f": (8, "base", 224, 77.28, 134.7, (224, 330), 86_106_256),
    "tokshift_base16_256_8f": (8, "base", 256, 77.68, 175.8, (256, 380), 86_152_336),
    "tokshift_base16_384_8f": (8, "base", 384, 78.14, 394.7, (384, 512), 86_398_096),
    "tokshift_base16_224_16f": (16, "base", 224, 78.18, 268.5, (224, 330), 86_106_256),
    "tokshift_large16_384_8f": (8, "large", 384, 79.83, 1397.6, (384, 512), 304_100_752),
    "tokshift_large16_384_12f": (12, "large", 384, 80.40, 2096.4, (384, 512), 304_100_752),
}
_HEAD_PARAMS = {"base": 768 * 400 + 400, "large": 1024 * 400 + 400}


def _paper_record(name: str, tag: str, **kwargs: Any) -> Weights:
    """A record of one of the paper's models: the authors' protocol (8x32-style dense sampling, their clip
    starts, 10 clips x 3 crops, short side resized to the crop with a bicubic filter as their PIL code does)."""
    frames, _, res, _, gflops, short_side, _ = PAPER_TABLE[name]
    meta = dict(kwargs.pop("meta"), gflops=gflops, **_PAPER)
    return Weights(
        name,
        tag,
        num_frames=frames,
        frame_stride=32,
        sampling="dense",
        start_rule="authors",
        test_clips=10,
        test_crops=3,
        input_size=(3, res, res),
        interpolation="bicubic",
        crop_pct=1.0,
        train_scale=short_side,
        meta=meta,
        **kwargs,
    )


def _in21k(name: str) -> Weights:
    _, size, _, _, _, _, params = PAPER_TABLE[name]
    return _paper_record(
        name,
        "in21k",
        hf_hub_id=_IN21K_HUB[size],
        mean=IMAGENET_INCEPTION_MEAN,
        std=IMAGENET_INCEPTION_STD,
        meta=dict(
            categories=None,
            num_params=params - _HEAD_PARAMS[size],
            paper_top1=None,
            recipe="https://github.com/google-research/vision_transformer (ViT-*/16 on ImageNet-21k, via timm)",
            license=IN21K_LICENSE,
            dataset="imagenet-21k",
            description="Google's ImageNet-21k ViT weights (timm's copy), the paper's starting point; no head.",
        ),
    )


def _k400(name: str) -> Weights:
    _, _, _, top1, _, _, params = PAPER_TABLE[name]
    hub_id, sha256 = K400_HUB_COPIES.get(name, (None, None))
    recipe = f"{_PAPER['origin_url']}/blob/{_AUTHORS_COMMIT}/config/custom/kinetics400/{AUTHORS_RECIPES[name]}"
    return _paper_record(
        name,
        "k400",
        hf_hub_id=hub_id,
        sha256=sha256,
        drive_folder=AUTHORS_DRIVE_FOLDERS[name],
        default=True,
        meta=dict(
            categories=KINETICS400_LABELS,
            num_params=params,
            paper_top1=top1,
            recipe=recipe,
            license=K400_LICENSE,
            dataset="kinetics400",
            description="Kinetics-400 weights released by the authors (Google Drive), converted to safetensors by "
            "tokshift-zoo on first use; licence not stated by the authors.",
        ),
    )


# The bundled demo model: trained by the zoo on its synthetic motion task (tokshift_zoo.synthetic) with the recipe
# in docs/demo_model.md; the weights ship in the package, pinned by sha256.
_DEMO_FILE = "tokshift_demo_motion.safetensors"
_DEMO = Weights(
    "tokshift_demo_motion",
    "synthetic",
    file=package_file(_DEMO_FILE),
    filename=_DEMO_FILE,
    sha256="addfdd699b3e78944a053d0ea623b640cc47249efc6d9b9a7d202961275c1c70",
    # 8 frames spread over the whole clip (short clips: no 8x32 wrap-around), no flips: left/right are classes
    num_frames=8,
    sampling="uniform",
    test_clips=1,
    test_crops=3,
    input_size=(3, 32, 32),
    interpolation="bilinear",
    train_hflip=False,
    meta=dict(
        categories=("moving_left", "moving_right", "moving_up", "moving_down"),
        num_params=691_876,
        gflops=None,
        paper_top1=None,
        file_size=2_775_712,
        recipe="docs/demo_model.md (tokshift-zoo's synthetic motion task, tokshift_zoo.synthetic)",
        license="apache-2.0",
        dataset="tokshift-zoo synthetic motion (4 directions)",
        description="A small TokShift trained by tokshift-zoo on its synthetic motion task; shipped in the package.",
        origin_url=_PAPER["origin_url"],
    ),
)

# in21k first: timm makes the first tag with weights the default unless a later one is starred (k400 is)
RECORDS: tuple[Weights, ...] = (*map(_in21k, PAPER_TABLE), *map(_k400, PAPER_TABLE), _DEMO)
