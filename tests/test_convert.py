"""``tokshift-zoo convert``: the authors' .pth -> the zoo's safetensors, refusals, atomic writes, and --push."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import timm
import torch
from authors_format import authors_state_dict, save_authors_checkpoint
from conftest import TINY_ARGS
from safetensors import safe_open

import tokshift_zoo
from tokshift_zoo import convert as convert_module
from tokshift_zoo.cli import main
from tokshift_zoo.convert import ConversionError, convert, detect_architecture, publish
from tokshift_zoo.model_cards import render_card

ARCH = "tokshift_base16_224_8f"
MODEL_KWARGS = {k: v for k, v in TINY_ARGS.items() if k != "num_classes"}


def test_authors_file_converts_and_loads_back_with_the_same_outputs(tiny_model, tmp_path):
    src = save_authors_checkpoint(tiny_model, tmp_path / "authors.pth")
    dst = tmp_path / "out" / "tiny.safetensors"
    result = convert(src, dst, ARCH, model_kwargs=MODEL_KWARGS)
    assert result.path == dst and result.architecture == ARCH
    assert result.sha256 == hashlib.sha256(dst.read_bytes()).hexdigest()
    with safe_open(dst, framework="pt") as f:
        metadata = f.metadata()
        assert set(f.keys()) == set(tiny_model.state_dict())
    assert metadata["architecture"] == ARCH and metadata["tag"] == "k400"
    assert metadata["source_sha256"] == hashlib.sha256(src.read_bytes()).hexdigest() == result.source_sha256
    assert (metadata["source_file"], metadata["source_epoch"], metadata["source_best_acc1"]) == (
        "authors.pth",
        "18",
        "77.28",
    )
    assert json.loads(metadata["model_kwargs"]) == dict(MODEL_KWARGS, num_classes=4)

    model = tokshift_zoo.create_model(ARCH, checkpoint_path=dst, **TINY_ARGS).eval()
    clip = torch.randn(2, 3, 4, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(clip), tiny_model(clip), rtol=0, atol=0)


def test_converting_the_same_file_twice_gives_the_same_bytes(tiny_model, tmp_path):
    src = save_authors_checkpoint(tiny_model, tmp_path / "authors.pth")
    hashes = {convert(src, tmp_path / f"out{i}.safetensors", ARCH, model_kwargs=MODEL_KWARGS).sha256 for i in range(4)}
    assert len(hashes) == 1  # safetensors writes its metadata map in a random order; the zoo sorts it
    header = (tmp_path / "out0.safetensors").read_bytes()
    metadata = json.loads(header[8 : 8 + int.from_bytes(header[:8], "little")])["__metadata__"]
    assert list(metadata) == sorted(metadata)


def test_keys_it_cannot_place_are_refused_and_named(tiny_model, tmp_path):
    extra = {
        "module.base_model.transformer.encoder.layer.0.adapter.weight": torch.zeros(2),
        "module.new_fc.weight": torch.zeros(2),
    }
    src = save_authors_checkpoint(tiny_model, tmp_path / "odd.pth", **extra)
    dst = tmp_path / "odd.safetensors"
    with pytest.raises(ConversionError) as err:
        convert(src, dst, ARCH, model_kwargs=MODEL_KWARGS)
    assert "transformer.encoder.layer.0.adapter.weight" in str(err.value) and "new_fc.weight" in str(err.value)
    assert list(tmp_path.iterdir()) == [src]


def test_missing_weights_are_refused_and_named(tiny_model, tmp_path):
    state = authors_state_dict(tiny_model)
    del state["module.base_model.transformer.encoder.layer.1.ffn.fc2.bias"]
    del state["module.base_model.transformer.encoder.layer.0.attn.key.weight"]
    src = tmp_path / "partial.pth"
    torch.save({"state_dict": state}, src)
    with pytest.raises(ConversionError) as err:
        convert(src, tmp_path / "partial.safetensors", ARCH, model_kwargs=MODEL_KWARGS)
    assert "blocks.0.attn.qkv.weight" in str(err.value)
    state.pop("module.base_model.transformer.encoder.layer.0.attn.query.weight")
    state.pop("module.base_model.transformer.encoder.layer.0.attn.value.weight")
    torch.save({"state_dict": state}, src)
    with pytest.raises(ConversionError, match=r"model weights missing from the file: \[.*blocks.1.mlp.fc2.bias"):
        convert(src, tmp_path / "partial.safetensors", ARCH, model_kwargs=MODEL_KWARGS)
    assert not (tmp_path / "partial.safetensors").exists()


def test_wrong_architecture_is_refused_with_both_shapes(tiny_model, tmp_path):
    src = save_authors_checkpoint(tiny_model, tmp_path / "authors.pth")
    with pytest.raises(ConversionError, match="width 32, 8x8 patches, 2 blocks, 17 tokens.*width 768"):
        convert(src, tmp_path / "x.safetensors", ARCH)
    with pytest.raises(ConversionError, match="no zoo model fits these weights"):
        convert(src, tmp_path / "x.safetensors")
    with pytest.raises(ConversionError, match="not a zoo model"):
        convert(src, tmp_path / "x.safetensors", "resnet50", model_kwargs=MODEL_KWARGS)


def test_destination_is_never_left_half_written(tiny_model, tmp_path, monkeypatch):
    src = save_authors_checkpoint(tiny_model, tmp_path / "authors.pth")
    dst = tmp_path / "tiny.safetensors"
    dst.write_bytes(b"the previous good file")

    def save_half_then_fail(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(convert_module, "save_file", save_half_then_fail)
    with pytest.raises(OSError, match="disk full"):
        convert(src, dst, ARCH, model_kwargs=MODEL_KWARGS)
    assert dst.read_bytes() == b"the previous good file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["authors.pth", "tiny.safetensors"]


def meta_authors_state_dict(name: str) -> dict[str, torch.Tensor]:
    with torch.device("meta"):
        return authors_state_dict(timm.create_model(name))


def test_architecture_is_detected_from_the_shapes_where_it_can_be(caplog):
    assert detect_architecture(meta_authors_state_dict("tokshift_base16_256_8f")) == "tokshift_base16_256_8f"
    assert detect_architecture(meta_authors_state_dict("tokshift_base16_384_8f")) == "tokshift_base16_384_8f"
    # 224: the baseline, 8 and 16 frames have the same shapes; the default is taken, with a warning
    assert detect_architecture(meta_authors_state_dict("tokshift_base16_224_16f")) == ARCH
    assert "tokshift_base16_224_16f" in caplog.text and "--model" in caplog.text
    with pytest.raises(ConversionError, match="tokshift_large16_384_12f, tokshift_large16_384_8f; choose one"):
        detect_architecture(meta_authors_state_dict("tokshift_large16_384_8f"))


def test_convert_command(tiny_model, tmp_path, capsys):
    src = save_authors_checkpoint(tiny_model, tmp_path / "authors.pth")
    dst = tmp_path / "tiny.safetensors"
    kwargs = json.dumps(MODEL_KWARGS)
    assert main(["convert", str(src), str(dst), "--model", ARCH, "--model-kwargs", kwargs]) == 0
    assert str(dst) in capsys.readouterr().out and dst.is_file()

    odd = save_authors_checkpoint(
        tiny_model, tmp_path / "odd.pth", **{"module.base_model.extra.weight": torch.zeros(1)}
    )
    assert main(["convert", str(odd), str(tmp_path / "odd.safetensors"), "--model-kwargs", kwargs]) == 1
    assert "extra.weight" in capsys.readouterr().err and not (tmp_path / "odd.safetensors").exists()


@pytest.mark.filterwarnings("ignore:Use 'content=<...>'")  # huggingface_hub's LFS PUT, inside httpx
def test_push_then_load_back_from_the_hub(hub, tiny_model, tmp_path, capsys):
    src = save_authors_checkpoint(tiny_model, tmp_path / "authors.pth")
    dst = tmp_path / "tiny.safetensors"
    args = ["convert", str(src), str(dst), "--model", ARCH, "--model-kwargs", json.dumps(MODEL_KWARGS)]
    assert main([*args, "--push", "org/tokshift-tiny"]) == 0
    assert "/org/tokshift-tiny/commit/" in capsys.readouterr().out

    assert hub.file("org/tokshift-tiny", "model.safetensors") == dst.read_bytes()
    config = json.loads(hub.file("org/tokshift-tiny", "config.json"))
    sha = hashlib.sha256(dst.read_bytes()).hexdigest()
    assert config["architecture"] == ARCH and config["num_classes"] == 4
    assert config["model_args"]["embed_dim"] == 32 and config["video_cfg"]["sha256"] == sha
    assert config["pretrained_cfg"]["mean"] == [0.5, 0.5, 0.5] and config["pretrained_cfg"]["tag"] == "k400"
    readme = hub.file("org/tokshift-tiny", "README.md").decode()
    metadata = {"source_file": "authors.pth", "source_sha256": hashlib.sha256(src.read_bytes()).hexdigest()}
    assert readme == render_card(f"{ARCH}.k400", hf_repo="org/tokshift-tiny", sha256=sha, source=metadata)

    clip = torch.randn(2, 3, 4, 32, 32)
    for create in (tokshift_zoo.create_model, timm.create_model):
        model = create("hf-hub:org/tokshift-tiny", pretrained=True).eval()
        assert model.video_cfg.sha256 == sha
        with torch.no_grad():
            torch.testing.assert_close(model(clip), tiny_model(clip), rtol=0, atol=0)

    # publishing the same files again makes no new commit and answers the current one
    head = hub.repos["org/tokshift-tiny"].branches["main"]
    assert publish(dst, "org/tokshift-tiny").endswith(f"/org/tokshift-tiny/commit/{head}")
    assert hub.repos["org/tokshift-tiny"].branches["main"] == head
