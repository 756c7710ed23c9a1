"""The weights records: one per ``name.tag``, each with a working preset and metadata, the source of timm's cfgs,
and ``model.weights`` as the record of what a model was built and loaded with."""

from __future__ import annotations

import json

import pytest
import timm
import torch
from conftest import TINY_ARGS

import tokshift_zoo
from tokshift_zoo.errors import ConfigError
from tokshift_zoo.models.registry import START_RULES, Weights
from tokshift_zoo.video import sampling
from tokshift_zoo.video.transforms import VideoEvalTransform, VideoTrainTransform, frame_indices

KEYS = tokshift_zoo.list_models(pretrained=True)


@pytest.mark.parametrize("key", KEYS)
def test_every_record_has_a_preset_and_meta_that_fit_its_model(key):
    record = tokshift_zoo.get_weights(key)
    assert isinstance(record, Weights) and record.key == key
    with torch.device("meta"):
        model = timm.create_model(key)
    assert record.meta["num_params"] == sum(p.numel() for p in model.parameters())
    assert record.input_size == (3, *model.patch_embed.img_size) and record.num_frames == model.num_frames
    categories = record.categories or ()
    assert len(categories) == model.num_classes and record.meta["license"] and record.meta["recipe"]
    assert {"gflops", "paper_top1", "dataset"} <= record.meta.keys()
    preset = record.transforms()
    assert isinstance(preset, VideoEvalTransform) and preset.num_crops == record.test_crops
    assert isinstance(record.transforms(is_training=True), VideoTrainTransform)
    side = record.input_size[-1]
    frames = torch.randint(0, 256, (record.num_frames, 3, side, side * 4 // 3), dtype=torch.uint8)
    assert preset(frames).shape == (record.test_crops, 3, record.num_frames, side, side)
    assert "VideoEvalTransform(" in repr(preset) and f"interpolation={record.interpolation}" in repr(preset)
    assert timm.models.get_pretrained_cfg(key).to_dict() == record.timm_cfg()  # timm's cfg comes from here


@pytest.mark.parametrize("key", [k for k in KEYS if k.endswith((".k400", ".in21k"))])
def test_the_papers_records_carry_the_authors_protocol(key):
    record = tokshift_zoo.get_weights(key)
    assert (record.sampling, record.frame_stride, record.start_rule, record.views) == ("dense", 32, "authors", "10x3")
    assert (record.interpolation, record.crop_pct) == ("bicubic", 1.0)
    if key.endswith(".k400"):
        assert record.meta["recipe"].endswith(".yml") and "TokShift-Transformer/blob/" in record.meta["recipe"]
        assert record.categories == tokshift_zoo.models.registry.KINETICS400_LABELS and record.meta["paper_top1"]
        assert record.drive_folder and record.default


def test_the_start_rule_reaches_the_sampler():
    assert START_RULES == sampling.START_RULES  # models/ cannot import video/: the two lists must agree
    authors = tokshift_zoo.get_weights("tokshift_base16_224_8f.k400")
    even = authors.replace(start_rule="even")
    for record in (authors, even):
        expected = sampling.dense_indices(300, 8, 32, 10, start_rule=record.start_rule)
        assert torch.equal(frame_indices(record, 300), expected)
    assert frame_indices(authors, 300)[:, 0].tolist() == [0, 30] + [45] * 8
    assert frame_indices(even, 300)[:, 0].tolist() == [i * 44 // 9 for i in range(10)]
    with pytest.raises(ConfigError, match="start_rule must be one of"):
        authors.replace(start_rule="tsm")


def test_get_weights_suggests_close_names_and_refuses_unknown_tags():
    assert tokshift_zoo.get_weights("tokshift_base16_224_8f").tag == "k400"  # the default tag
    with pytest.raises(ConfigError, match="did you mean tokshift_base16_224_8f"):
        tokshift_zoo.get_weights("tokshift_base16_224_8")
    with pytest.raises(ConfigError, match="no tag 'k40'"):
        tokshift_zoo.get_weights("tokshift_base16_224_8f.k40")


def test_a_record_round_trips_through_json_and_reads_the_former_video_cfg():
    record = tokshift_zoo.get_weights("tokshift_demo_motion.synthetic")
    assert Weights.from_dict(json.loads(json.dumps(record.to_dict()))) == record
    legacy = {"num_frames": 4, "frame_stride": 2, "test_clips": 2, "paper_top1": 50.0, "dataset": "x", "junk": 1}
    old = Weights.from_dict(legacy, name="a", tag="b")
    assert (old.num_frames, old.views, old.meta["paper_top1"], old.meta["dataset"]) == (4, "2x3", 50.0, "x")
    known = Weights.known_keys()  # what a saved record may hold: every field, then the former keys
    assert set(known) == set(record.to_dict()) | {"dataset", "paper_top1", "paper_gflops"}
    assert known[:2] == ("num_frames", "frame_stride") and known[-3:] == ("dataset", "paper_top1", "paper_gflops")


def test_unpacking_a_record_into_timm_says_what_to_call_instead(tiny_model):
    record = tokshift_zoo.resolve_data_config(tiny_model)  # the zoo's one resolve_data_config: the record
    assert record == tiny_model.weights
    with pytest.raises(ConfigError, match=r"not timm's image data config.*record\.transforms\(\)"):
        timm.data.create_transform(**record)
    assert tokshift_zoo.resolve_data_config("tokshift_base16_224_8f.in21k", img_size=64).input_size == (3, 64, 64)


def test_model_weights_follow_the_build_the_head_and_the_load(tmp_path):
    shipped = tokshift_zoo.create_model("tokshift_demo_motion", pretrained=True)
    assert shipped.weights.sha256 == tokshift_zoo.get_weights("tokshift_demo_motion").sha256  # verified at load
    assert tokshift_zoo.create_model("tokshift_demo_motion").weights.sha256 is None  # nothing was loaded
    model = tokshift_zoo.create_model("tokshift_base16_224_8f", **dict(TINY_ARGS, num_frames=6))
    assert (model.weights.input_size, model.weights.num_frames, model.weights.categories) == ((3, 32, 32), 6, None)
    assert model.weights.meta["paper_top1"] is None and model.weights.meta["recipe"]  # the 4-class head is new
    named = tokshift_zoo.create_model(
        "tokshift_base16_224_8f", **TINY_ARGS, pretrained_cfg_overlay=dict(label_names=("a", "b", "c", "d"))
    )
    assert named.weights.categories == ("a", "b", "c", "d")
