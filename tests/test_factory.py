"""``create_model`` refusing unknown names with the closest ones, and ``resolve_data_config`` of a name."""

from __future__ import annotations

import pytest

import tokshift_zoo
from tokshift_zoo import ConfigError


def test_unknown_names_and_tags_suggest_the_closest():
    with pytest.raises(ConfigError, match=r"model 'tokshift_base16_224_f8': did you mean tokshift_base16_224_8f "):
        tokshift_zoo.create_model("tokshift_base16_224_f8")
    with pytest.raises(ConfigError, match=r"no tag 'in21': did you mean tokshift_base16_224_8f\.in21k\?"):
        tokshift_zoo.create_model("tokshift_base16_224_8f.in21")
    with pytest.raises(ConfigError, match=r"unknown model 'resnet_zz'.*The zoo's models: .*tokshift_demo_motion"):
        tokshift_zoo.create_model("resnet_zz")
    with pytest.raises(ConfigError, match=r"model 'tokshift_bse16_224_8f': did you mean tokshift_base16_224_8f "):
        tokshift_zoo.download("tokshift_bse16_224_8f")  # download names the closest too, before any network
    with pytest.raises(ConfigError, match=r"no tag 'k40': did you mean tokshift_base16_224_8f\.k400\?"):
        tokshift_zoo.download("tokshift_base16_224_8f.k40")


def test_resolve_data_config_takes_a_name_or_a_model(tiny_model):
    by_name = tokshift_zoo.resolve_data_config("tokshift_base16_384_8f")
    assert by_name.input_size == (3, 384, 384) and (by_name.num_frames, by_name.frame_stride) == (8, 32)
    assert (by_name.test_clips, by_name.test_crops, by_name.mean) == (10, 3, (0.5, 0.5, 0.5))
    in21k = tokshift_zoo.resolve_data_config("tokshift_base16_224_16f.in21k", img_size=256)
    assert in21k.input_size == (3, 256, 256) and in21k.num_frames == 16
    assert tokshift_zoo.resolve_data_config(tiny_model).input_size == (3, 32, 32)


def test_an_unknown_video_cfg_key_in_a_files_metadata_is_one_clear_error(tmp_path):
    import json

    from conftest import TINY_ARGS
    from safetensors.torch import save_file

    model = tokshift_zoo.create_model("tokshift_base16_224_8f", **TINY_ARGS)
    path = tmp_path / "tiny.safetensors"
    meta = {"architecture": "tokshift_base16_224_8f", "model_kwargs": json.dumps(TINY_ARGS)}
    meta["video_cfg"] = json.dumps({"num_frames": 8, "frame_strid": 16})
    save_file(model.state_dict(), path, metadata=meta)
    with pytest.raises(
        tokshift_zoo.errors.WeightsError,
        match=r"tiny.safetensors: .*does not know: \['frame_strid'\] \(known: num_frames, frame_stride,",
    ):
        tokshift_zoo.create_model(None, checkpoint_path=path)
