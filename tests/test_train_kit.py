"""The fine-tuning kit on real mp4 files and a tiny model: each option changes what it should (layer decay,
freezing, EMA, Mixup/CutMix, RandAugment per clip, multi-view validation, TensorBoard, the YAML config)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY_ARGS, link_clips
from safetensors.torch import load_file
from timm.data import Mixup

import tokshift_zoo
from tokshift_zoo import resolve_data_config
from tokshift_zoo.cli import main as cli_main
from tokshift_zoo.train import TrainConfig, train
from tokshift_zoo.train.config import read_config_file
from tokshift_zoo.train.datasets import VideoClipDataset, read_video_list
from tokshift_zoo.train.loop import _mix
from tokshift_zoo.train.optim import create_optimizer, create_scheduler, freeze_backbone
from tokshift_zoo.video.transforms import VideoTrainTransform

MODEL = "tokshift_base16_224_8f"
MODEL_KWARGS = {k: v for k, v in TINY_ARGS.items() if k != "num_classes"} | {"num_frames": 4}


@pytest.fixture(scope="module")
def video_dir(clip_folder, tmp_path_factory) -> Path:
    """The shared clips whose colour cast is of class a (clip0, 3, 6) or b (clip1, 4, 7): train.txt (four), val.txt
    (two)."""
    root = link_clips(clip_folder, tmp_path_factory.mktemp("kit_videos"))
    lines = [f"clip{i}.mp4 {'ab'[i % 3]}\n" for i in (0, 1, 3, 4, 6, 7)]
    (root / "train.txt").write_text("".join(lines[:4]))
    (root / "val.txt").write_text("".join(lines[4:]))
    return root


def _config(video_dir: Path, output: Path, **overrides) -> TrainConfig:
    settings = dict(
        model=MODEL,
        model_kwargs=dict(MODEL_KWARGS),
        train_list=str(video_dir / "train.txt"),
        val_list=str(video_dir / "val.txt"),
        data_root=str(video_dir),
        output=str(output),
        epochs=1,
        batch_size=2,
        optimizer="adamw",
        lr=1e-2,
        num_workers=0,
        device="cpu",
        progress=False,
    )
    return TrainConfig(**(settings | overrides))


def _tiny() -> torch.nn.Module:
    return tokshift_zoo.create_model(MODEL, **TINY_ARGS)


def test_layer_decay_gives_each_block_its_lr():
    """depth 2, decay 0.5, lr 1: head 1, block 1 (and the final norm: timm's grouping) 0.5, block 0 0.25, the
    embeddings 0.125 (timm's param_groups_layer_decay over the model's group_matcher), applied by timm's schedule
    from the first step."""
    model = _tiny()
    config = TrainConfig(model=MODEL, train_list="l", output="o", optimizer="adamw", lr=1.0, layer_decay=0.5)
    optimizer = create_optimizer(model, config, world_size=1)
    create_scheduler(optimizer, config, updates_per_epoch=3).step_update(0)
    lr_of = {id(p): group["lr"] for group in optimizer.param_groups for p in group["params"]}
    expected = {"head.weight": 1.0, "norm.weight": 0.5, "blocks.1.attn.qkv.weight": 0.5}
    expected |= {"blocks.0.mlp.fc1.weight": 0.25, "patch_embed.proj.weight": 0.125, "pos_embed": 0.125}
    params = dict(model.named_parameters())
    assert {name: lr_of[id(params[name])] for name in expected} == pytest.approx(expected)
    assert len(lr_of) == len(params)  # every parameter trains


def test_freeze_backbone_trains_only_the_head_and_leaves_the_backbone_bit_identical(video_dir, tmp_path):
    torch.manual_seed(0)
    first = tmp_path / "first"
    train(_config(video_dir, first, epochs=1))
    start = load_file(first / "best.safetensors")
    probe = tmp_path / "probe"
    train(_config(video_dir, probe, checkpoint=str(first / "best.safetensors"), freeze_backbone=True, lr=0.5))
    after = load_file(probe / "best.safetensors")
    changed = sorted(k for k in start if not torch.equal(start[k], after[k]))
    assert changed == ["head.bias", "head.weight"]
    assert freeze_backbone(_tiny()) == ["head.weight", "head.bias"]


def test_ema_weights_are_validated_and_kept_as_best_when_asked(video_dir, tmp_path):
    """One epoch: its EMA weights (in the checkpoint, for resume) differ from the raw ones, are validated, and
    are what best.safetensors holds with ema_best; without ema_best the raw weights are."""
    result = train(_config(video_dir, tmp_path / "ema", ema_decay=0.5, ema_best=True))
    state = torch.load(result["checkpoint"], weights_only=True)
    ema = {k.removeprefix("module."): v for k, v in state["ema"].items()}  # ModelEmaV3 holds the copy as .module
    assert set(ema) == set(state["model"])
    assert any(not torch.equal(ema[k], state["model"][k]) for k in state["model"])
    best = load_file(tmp_path / "ema" / "best.safetensors")
    assert all(torch.equal(best[k], ema[k]) for k in best)
    row = json.loads((tmp_path / "ema" / "metrics.jsonl").read_text())
    assert row["best_val_top1"] == row["val_ema_top1"] and "val_ema_loss" in row

    train(_config(video_dir, tmp_path / "raw", ema_decay=0.5))
    state = torch.load(tmp_path / "raw" / "checkpoint-epoch001.pt", weights_only=True)
    best = load_file(tmp_path / "raw" / "best.safetensors")
    assert all(torch.equal(best[k], state["model"][k]) for k in best)


def test_mixup_and_cutmix_mix_whole_clips_and_soften_the_targets():
    torch.manual_seed(0)
    clips = torch.rand(5, 3, 4, 8, 8)  # odd: the last clip is left out
    labels = torch.tensor([0, 1, 2, 3, 0])
    mixed, targets, kept = _mix(Mixup(mixup_alpha=1.0, label_smoothing=0.0, num_classes=4), clips.clone(), labels)
    assert mixed.shape == (4, 3, 4, 8, 8) and torch.equal(kept, labels[:4])
    assert not torch.allclose(mixed, clips[:4]) and (targets.max(dim=1).values < 1).all()
    cut, targets, _ = _mix(
        Mixup(mixup_alpha=0.0, cutmix_alpha=1.0, label_smoothing=0.0, num_classes=4), clips.clone(), labels
    )
    from_partner = (cut == clips[:4].flip(0)) & (cut != clips[:4])  # (4, 3, T, H, W)
    region = from_partner[0].any(dim=0)  # (T, H, W): one box, the same in every frame
    assert region.any() and all(torch.equal(region[t], region[0]) for t in range(4))
    assert (targets.max(dim=1).values < 1).all()


def test_mixup_run_trains(video_dir, tmp_path):
    result = train(_config(video_dir, tmp_path, mixup=0.8, cutmix=1.0))
    assert np.isfinite(result["train_loss"])


def test_rand_augment_draws_once_per_clip(video_dir):
    """A clip of one repeated frame stays a clip of one repeated frame: every frame got the same ops."""
    torch.manual_seed(0)
    frame = torch.randint(0, 256, (1, 3, 40, 48), dtype=torch.uint8)
    for policy in ("rand", "trivial"):
        transform = VideoTrainTransform((32, 32), (32, 40), (0.5,) * 3, (0.5,) * 3, auto_augment=policy)
        plain = VideoTrainTransform((32, 32), (32, 40), (0.5,) * 3, (0.5,) * 3)
        outputs = [transform(frame.expand(4, -1, -1, -1)) for _ in range(8)]  # (3, T, 32, 32)
        assert all(torch.equal(x[:, t], x[:, 0]) for x in outputs for t in range(4))
        torch.manual_seed(1)
        a = plain(frame.expand(4, -1, -1, -1))
        torch.manual_seed(1)
        b = transform(frame.expand(4, -1, -1, -1))
        assert a.shape == b.shape


def test_multi_view_validation_gives_every_view(video_dir, tmp_path):
    model = tokshift_zoo.create_model(MODEL, **MODEL_KWARGS)
    samples = read_video_list(video_dir / "val.txt", data_root=video_dir, label_names=["a", "b"])
    clip, label = VideoClipDataset(samples, resolve_data_config(model), is_training=False, views=(2, 3))[0]
    assert clip.shape == (6, 3, 4, 32, 32)
    result = train(_config(video_dir, tmp_path, val_views="2x3"))
    assert result["val_samples"] == 2


def test_tensorboard_event_file_is_written(video_dir, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    train(_config(video_dir, tmp_path, tensorboard=True, ema_decay=0.9))
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"train/loss", "val/top1", "val_ema/top1", "lr"} <= tags
    row = json.loads((tmp_path / "metrics.jsonl").read_text())
    assert events.Scalars("val/top1")[0].value == pytest.approx(row["val_top1"])


def test_yaml_config_round_trip_and_precedence(video_dir, tmp_path):
    """A run writes config.yaml, which reads back to the same config; the CLI takes --config, a recipe and flags
    (flags > file > recipe)."""
    config = _config(video_dir, tmp_path / "a", layer_decay=0.8, train_scale=(32, 36), lr_steps=(1, 2))
    train(config)
    written = tmp_path / "a" / "config.yaml"
    assert TrainConfig(**read_config_file(written)) == config

    values = read_config_file(written) | {"output": str(tmp_path / "b"), "recipe": "paper", "lr": 0.02}
    values.pop("lr_steps")
    (tmp_path / "run.yaml").write_text(TrainConfig(**values).to_yaml())
    assert cli_main(["train", "--config", str(tmp_path / "run.yaml"), "--lr", "0.03", "--no-progress"]) == 0
    again = read_config_file(tmp_path / "b" / "config.yaml")
    assert again["lr"] == 0.03 and again["layer_decay"] == 0.8 and again["recipe"] == "paper"
    assert again["label_smoothing"] == 0.01  # the file's (the plain default it recorded) wins over the recipe


def test_bad_config_files_are_refused_with_the_file_named(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: m\nlearning_rate: 0.1\n")
    with pytest.raises(ValueError, match=r"bad.yaml sets fields TrainConfig does not have: \['learning_rate'\]"):
        read_config_file(bad)
    bad.write_text("- a list\n")
    with pytest.raises(ValueError, match="bad.yaml must hold a mapping"):
        read_config_file(bad)
