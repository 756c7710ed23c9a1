"""``tokshift_zoo.load`` and the torch.hub entry points: one call to a ready model with its weights record."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch
from conftest import TINY_ARGS
from safetensors.torch import save_file
from videos import index_frames, write_video

import tokshift_zoo
from tokshift_zoo.cli import main
from tokshift_zoo.inference import views_of
from tokshift_zoo.ready import resolve_device, resolve_dtype

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def checkpoint(tiny_model, tmp_path):
    path = tmp_path / "tiny.safetensors"
    save_file(tiny_model.state_dict(), path)
    return path


@pytest.fixture
def clip_file(tmp_path):
    return write_video(tmp_path / "clip.mp4", index_frames(range(90)), fps=30)


def test_load_returns_an_eval_model_with_its_record_and_labels(checkpoint, clip_file, tiny_model):
    model = tokshift_zoo.load("tokshift_base16_224_8f", device="cpu", checkpoint_path=checkpoint, **TINY_ARGS)
    assert not model.training and model.labels is None  # 4 classes: the K400 names do not apply
    assert model.weights.key == "tokshift_base16_224_8f.k400" and model.weights.file == str(checkpoint)
    batch = views_of(model, clip_file)  # the k400 record's test protocol: 10 clips x 3 crops
    assert batch.shape == (30, 3, 8, 32, 32) and batch.device.type == "cpu"
    with torch.no_grad():
        torch.testing.assert_close(model(batch), tiny_model(batch))
    frames = tokshift_zoo.load_video(clip_file)  # (T, H, W, 3) uint8, as PyAV decodes
    torch.testing.assert_close(views_of(model, frames), batch)
    torch.testing.assert_close(views_of(model, frames.permute(0, 3, 1, 2)), batch)


def test_same_logits_through_load_cli_and_torch_hub(checkpoint, clip_file, capsys):
    model = tokshift_zoo.load("tokshift_base16_224_8f", device="cpu", checkpoint_path=checkpoint, **TINY_ARGS)
    with torch.no_grad():
        scores = model(views_of(model, clip_file)).mean(0).softmax(-1)  # the 10x3 views' mean, as predict

    argv = ["predict", str(clip_file), "--model", "tokshift_base16_224_8f", "--checkpoint", str(checkpoint)]
    assert main(argv + ["--model-kwargs", json.dumps(TINY_ARGS), "--topk", "4", "--json"]) == 0
    cli = {p["index"]: p["score"] for p in json.loads(capsys.readouterr().out)["predictions"]}
    torch.testing.assert_close(torch.tensor([cli[i] for i in range(4)]), scores, atol=1e-5, rtol=0)

    hub_model = torch.hub.load(
        str(REPO), "tokshift_base16_224_8f", source="local", device="cpu", checkpoint_path=checkpoint, **TINY_ARGS
    )
    with torch.no_grad():
        torch.testing.assert_close(hub_model(views_of(hub_model, clip_file)).mean(0).softmax(-1), scores)


def test_hubconf_offers_every_zoo_model():
    import importlib.util

    spec = importlib.util.spec_from_file_location("hubconf", REPO / "hubconf.py")
    hubconf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hubconf)
    # torch.hub.list's rule: public callables of hubconf.py
    entries = {name for name in dir(hubconf) if callable(getattr(hubconf, name)) and not name.startswith("_")}
    assert entries == set(tokshift_zoo.list_models())
    assert "k400" in hubconf.tokshift_large16_384_12f.__doc__


def test_views_and_dtype_follow_the_arguments(checkpoint, clip_file):
    model = tokshift_zoo.load(
        "tokshift_base16_224_8f", device="cpu", dtype="bf16", checkpoint_path=checkpoint, views="2x3", **TINY_ARGS
    )
    assert next(model.parameters()).dtype == torch.bfloat16 and model.weights.views == "2x3"
    batch = views_of(model, clip_file)
    assert batch.shape == (6, 3, 8, 32, 32) and batch.dtype == torch.bfloat16
    assert model(batch).shape == (6, 4)
    result = tokshift_zoo.predict(model, clip_file)  # the views load was given, not the record's 10x3
    assert tokshift_zoo.inference.protocol(model)["views"] == "2x3" and len(result) == 4


def test_a_new_class_count_gives_a_fresh_head_in_train_mode_and_says_so(checkpoint, tiny_model, caplog):
    with caplog.at_level(logging.INFO, logger="tokshift_zoo"):
        model = tokshift_zoo.load(
            "tokshift_base16_224_8f", device="cpu", checkpoint_path=checkpoint, **dict(TINY_ARGS, num_classes=7)
        )
    assert model.training and model.head.out_features == 7 and model.labels is None
    assert model.load_report.reinitialised == ["head.weight", "head.bias"]
    torch.testing.assert_close(model.blocks[0].attn.qkv.weight, tiny_model.blocks[0].attn.qkv.weight)
    assert "re-initialised: head.weight, head.bias" in caplog.text


def test_predict_follows_the_model_after_to(checkpoint, clip_file):
    model = tokshift_zoo.load(
        "tokshift_base16_224_8f", device="cpu", checkpoint_path=checkpoint, views="1x3", **TINY_ARGS
    )
    full = tokshift_zoo.predict(model, clip_file, topk=4)
    model.to(torch.bfloat16)  # load's own dtype was float32: the views now follow the model, not load's arguments
    assert views_of(model, clip_file).dtype == torch.bfloat16
    half = tokshift_zoo.predict(model, clip_file, topk=4)
    assert half[0]["index"] == full[0]["index"]
    scores = {p["index"]: p["score"] for p in half}
    assert all(abs(scores[p["index"]] - p["score"]) < 0.05 for p in full)


@pytest.mark.cuda
def test_a_model_moved_to_cuda_after_load_predicts_there(checkpoint, clip_file):
    model = tokshift_zoo.load(
        "tokshift_base16_224_8f", device="cpu", checkpoint_path=checkpoint, views="1x3", **TINY_ARGS
    )
    cpu = tokshift_zoo.predict(model, clip_file, topk=4)
    model.to("cuda")
    assert views_of(model, clip_file).is_cuda
    gpu = tokshift_zoo.predict(model, clip_file, topk=4)
    assert [p["index"] for p in gpu] == [p["index"] for p in cpu]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without CUDA")
def test_unavailable_device_is_a_clear_error():
    with pytest.raises(RuntimeError, match="cuda.*0 CUDA device"):
        resolve_device("cuda")
    assert resolve_device("auto") == torch.device("cpu")


@pytest.mark.cuda
def test_cuda_model_and_batch(checkpoint, clip_file):
    model = tokshift_zoo.load(
        "tokshift_base16_224_8f", device="cuda", dtype="bf16", checkpoint_path=checkpoint, **TINY_ARGS
    )
    batch = views_of(model, clip_file)
    assert batch.is_cuda and batch.dtype == torch.bfloat16 and model(batch).is_cuda


def test_bad_dtype_is_a_clear_error():
    assert resolve_dtype(None) == torch.float32 and resolve_dtype("fp16") == torch.float16
    with pytest.raises(ValueError, match="bf16.*got 'int8'"):
        resolve_dtype("int8")
    with pytest.raises(ValueError, match="got torch.int64"):
        resolve_dtype(torch.int64)
