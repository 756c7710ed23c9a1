"""The model against the paper's text: the shift, the block, the video model, timm parity and the weight files."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import timm
import torch
from authors_format import authors_state_dict, save_authors_checkpoint
from conftest import TINY_ARGS
from safetensors.torch import save_file

import tokshift_zoo
from tokshift_zoo.models import token_shift
from tokshift_zoo.models.tokshift import TokShiftBlock

PAPER_NAMES = [
    "vit_base16_224_8f",
    "tokshift_base16_224_8f",
    "tokshift_base16_256_8f",
    "tokshift_base16_384_8f",
    "tokshift_base16_224_16f",
    "tokshift_large16_384_8f",
    "tokshift_large16_384_12f",
]


def reference_shift(x: torch.Tensor, num_frames: int, fold_div: int = 4) -> torch.Tensor:
    """The paper's text, one frame at a time: channels [0, C/4) of the class token take frame t+1's values,
    [C/4, C/2) take frame t-1's, zeros at the ends; patch tokens untouched."""
    bt, n, c = x.shape
    fold = c // fold_div
    clips = x.reshape(bt // num_frames, num_frames, n, c)
    out = clips.clone()
    for t in range(num_frames):
        out[:, t, 0, :fold] = clips[:, t + 1, 0, :fold] if t + 1 < num_frames else 0
        out[:, t, 0, fold : 2 * fold] = clips[:, t - 1, 0, fold : 2 * fold] if t > 0 else 0
    return out.reshape(bt, n, c)


@pytest.mark.parametrize("num_frames", [1, 2, 3, 8])
@pytest.mark.parametrize("fold_div", [4, 8])
def test_shift_matches_the_papers_text(num_frames, fold_div):
    x = torch.randn(2 * num_frames, 5, 16)
    torch.testing.assert_close(token_shift(x, num_frames, fold_div), reference_shift(x, num_frames, fold_div))


def test_shift_refuses_frames_that_are_not_whole_clips():
    with pytest.raises(ValueError, match=r"whole clips of T=4 frames, got 6 frames \(\(6, 3, 8\)\)"):
        token_shift(torch.zeros(6, 3, 8), num_frames=4)
    with pytest.raises(ValueError, match="T=0"):
        token_shift(torch.zeros(6, 3, 8), num_frames=0)


def test_shift_moves_only_class_token_channels_and_has_gradients():
    x = torch.randn(2 * 4, 5, 16, requires_grad=True)
    y = token_shift(x, 4)
    assert torch.equal(y[:, 1:], x[:, 1:])
    assert torch.equal(y[:, 0, 8:], x[:, 0, 8:])
    y[:, 0].sum().backward()
    # each class-token value reaches exactly one output, except those shifted off a clip's ends
    expected = torch.ones(2, 4, 16)
    expected[:, 0, :4] = 0  # frame 0's first quarter only fed frame -1
    expected[:, -1, 4:8] = 0  # the last frame's second quarter only fed frame T
    assert x.grad[:, 1:].abs().sum() == 0
    assert torch.equal(x.grad[:, 0], expected.reshape(8, 16))


def test_block_is_shift_attention_shift_mlp_with_shifted_residual():
    torch.manual_seed(0)
    block = TokShiftBlock(dim=16, num_heads=2).eval()
    x = torch.randn(2 * 3, 5, 16)
    expected = reference_shift(x, 3)
    expected = expected + block.attn(block.norm1(expected))
    expected = reference_shift(expected, 3)
    expected = expected + block.mlp(block.norm2(expected))
    torch.testing.assert_close(block(x, 3), expected)


def test_baseline_is_timm_vit_per_frame_averaged():
    torch.manual_seed(0)
    video = tokshift_zoo.create_model("vit_base16_224_8f", **TINY_ARGS).eval()
    image = timm.create_model("vit_base_patch16_224", **TINY_ARGS).eval()
    image.load_state_dict(video.state_dict())
    clip = torch.randn(2, 3, 5, 32, 32)
    frames = clip.transpose(1, 2).reshape(10, 3, 32, 32)
    expected = image(frames).reshape(2, 5, -1).mean(1)
    with torch.no_grad():
        torch.testing.assert_close(video(clip), expected, rtol=1e-5, atol=1e-5)


def test_tokshift_equals_a_reference_forward_built_from_timm_pieces(tiny_model):
    clip = torch.randn(2, 3, 4, 32, 32)
    m = tiny_model
    with torch.no_grad():
        x = m.patch_embed(clip.transpose(1, 2).reshape(8, 3, 32, 32))
        x = torch.cat([m.cls_token.expand(8, -1, -1), x], dim=1) + m.pos_embed
        for blk in m.blocks:
            x = reference_shift(x, 4)
            x = x + blk.attn(blk.norm1(x))
            x = reference_shift(x, 4)
            x = x + blk.mlp(blk.norm2(x))
        per_frame_logits = m.head(m.norm(x)[:, 0]).reshape(2, 4, -1)
        torch.testing.assert_close(m(clip), per_frame_logits.mean(1), rtol=1e-5, atol=1e-5)


def test_features_and_head_follow_timm(tiny_model):
    clip = torch.randn(3, 3, 2, 32, 32)
    with torch.no_grad():
        features = tiny_model.forward_features(clip)
        assert features.shape == (3, 2, 1 + 16, 32)
        embedding = tiny_model.forward_head(features, pre_logits=True)
        torch.testing.assert_close(embedding, features[:, :, 0].mean(1))
        torch.testing.assert_close(tiny_model.forward_head(features), tiny_model(clip))


@pytest.mark.parametrize("name", PAPER_NAMES)
def test_zero_extra_parameters_against_timm_vit(name):
    with torch.device("meta"):
        video = tokshift_zoo.create_model(name)
        size = "large" if "large" in name else "base"
        res = video.patch_embed.img_size[0]
        image = timm.create_model(f"vit_{size}_patch16_224", num_classes=400, img_size=res)
    ours = {k: v.shape for k, v in video.state_dict().items()}
    timms = {k: v.shape for k, v in image.state_dict().items()}
    assert ours == timms


def test_layer_norm_eps_and_default_config():
    model = tokshift_zoo.create_model("tokshift_base16_224_8f", depth=1)
    assert model.norm.eps == 1e-6 and model.blocks[0].norm1.eps == 1e-6
    cfg = model.pretrained_cfg
    assert cfg["mean"] == (0.5, 0.5, 0.5) and cfg["std"] == (0.5, 0.5, 0.5)
    assert cfg["input_size"] == (3, 224, 224) and cfg["num_classes"] == 400 and cfg["tag"] == "k400"
    assert len(cfg["label_names"]) == 400 and cfg["label_names"][0] == "abseiling"
    assert (model.weights.num_frames, model.weights.frame_stride) == (8, 32)
    assert (model.weights.test_clips, model.weights.test_crops) == (10, 3)


def test_timm_knows_the_zoo():
    demo = {"tokshift_demo_motion"}  # the zoo's own demo model, beside the paper's seven
    assert set(timm.list_models("tokshift*")) == set(PAPER_NAMES) - {"vit_base16_224_8f"} | demo
    assert timm.models.get_pretrained_cfg("tokshift_large16_384_12f").input_size == (3, 384, 384)
    assert set(tokshift_zoo.list_models()) == set(PAPER_NAMES) | demo
    assert "tokshift_base16_224_8f.k400" in tokshift_zoo.list_models("tokshift_base*", pretrained=True)
    with torch.device("meta"):
        model = timm.create_model("tokshift_large16_384_12f", num_classes=174)
    assert model.head.out_features == 174 and model.num_frames == 12


def test_any_number_of_frames_and_overrides():
    model = tokshift_zoo.create_model("tokshift_base16_224_8f", **dict(TINY_ARGS, num_frames=3, drop_path_rate=0.1))
    assert model.num_frames == 3
    for frames in (1, 2, 7):
        assert model(torch.randn(1, 3, frames, 32, 32)).shape == (1, 4)


@pytest.mark.parametrize(
    "shape, message",
    [
        ((2, 3, 32, 32), "4-d"),
        ((1, 1, 4, 32, 32), r"\(B, 3, T, 32, 32\)"),
        ((1, 3, 4, 48, 32), r"\(B, 3, T, 32, 32\)"),
        ((1, 3, 0, 32, 32), r"\(B, 3, T, 32, 32\)"),
    ],
)
def test_wrong_input_shape_says_what_was_expected(tiny_model, shape, message):
    with pytest.raises(ValueError, match=message):
        tiny_model(torch.zeros(shape))


def test_gradient_checkpointing_gives_the_same_gradients(tiny_model):
    clip = torch.randn(2, 3, 4, 32, 32)
    tiny_model.train()
    tiny_model(clip).sum().backward()
    expected = [p.grad.clone() for p in tiny_model.parameters()]
    tiny_model.zero_grad()
    tiny_model.set_grad_checkpointing(True)
    tiny_model(clip).sum().backward()
    for grad, p in zip(expected, tiny_model.parameters(), strict=True):
        torch.testing.assert_close(p.grad, grad)


# --- the three kinds of weight file ---------------------------------------------------------------------------


def save_google_npz(model, path, num_classes):
    """A Google ViT npz as in ViT-B_16.npz (the names timm's loader reads), with pre_logits, from our model."""
    sd = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    heads = model.blocks[0].attn.num_heads
    dim = model.embed_dim
    w = {
        "embedding/kernel": sd["patch_embed.proj.weight"].transpose(2, 3, 1, 0),
        "embedding/bias": sd["patch_embed.proj.bias"],
        "cls": sd["cls_token"],
        "Transformer/posembed_input/pos_embedding": sd["pos_embed"],
        "Transformer/encoder_norm/scale": sd["norm.weight"],
        "Transformer/encoder_norm/bias": sd["norm.bias"],
        "pre_logits/kernel": np.ones((dim, dim), np.float32),
        "pre_logits/bias": np.ones(dim, np.float32),
        "head/kernel": np.full((dim, num_classes), 0.5, np.float32),
        "head/bias": np.full(num_classes, 0.25, np.float32),
    }
    for i in range(len(model.blocks)):
        b, p = f"blocks.{i}.", f"Transformer/encoderblock_{i}/"
        m = p + "MultiHeadDotProductAttention_1/"
        for j, part in enumerate(("query", "key", "value")):
            weight = sd[b + "attn.qkv.weight"][j * dim : (j + 1) * dim]
            w[m + f"{part}/kernel"] = weight.T.reshape(dim, heads, dim // heads)
            w[m + f"{part}/bias"] = sd[b + "attn.qkv.bias"][j * dim : (j + 1) * dim].reshape(heads, dim // heads)
        w[m + "out/kernel"] = sd[b + "attn.proj.weight"].reshape(dim, heads, dim // heads).transpose(1, 2, 0)
        w[m + "out/bias"] = sd[b + "attn.proj.bias"]
        for ln, ours in (("LayerNorm_0", "norm1"), ("LayerNorm_2", "norm2")):
            w[p + f"{ln}/scale"], w[p + f"{ln}/bias"] = sd[b + f"{ours}.weight"], sd[b + f"{ours}.bias"]
        for r in range(2):
            w[p + f"MlpBlock_3/Dense_{r}/kernel"] = sd[b + f"mlp.fc{r + 1}.weight"].T
            w[p + f"MlpBlock_3/Dense_{r}/bias"] = sd[b + f"mlp.fc{r + 1}.bias"]
    np.savez(path, **w)


def assert_same_weights(a, b, skip=("head.",)):
    for key, value in a.state_dict().items():
        if not key.startswith(skip):
            torch.testing.assert_close(b.state_dict()[key], value, msg=key)


def test_zoo_safetensors_loads_with_checkpoint_path_and_timm_overlay(tiny_model, tmp_path):
    path = tmp_path / "tiny.safetensors"
    save_file(tiny_model.state_dict(), path)
    clip = torch.randn(1, 3, 4, 32, 32)
    for model in (
        tokshift_zoo.create_model("tokshift_base16_224_8f", checkpoint_path=path, **TINY_ARGS),
        timm.create_model(
            "tokshift_base16_224_8f", pretrained=True, pretrained_cfg_overlay=dict(file=str(path)), **TINY_ARGS
        ),
    ):
        with torch.no_grad():
            torch.testing.assert_close(model.eval()(clip), tiny_model(clip))


def test_authors_release_format_loads(tiny_model, tmp_path):
    path = tmp_path / "authors.pth"
    save_authors_checkpoint(tiny_model, path)
    model = tokshift_zoo.create_model("tokshift_base16_224_8f", checkpoint_path=path, **TINY_ARGS).eval()
    assert_same_weights(tiny_model, model, skip=())
    overlay = timm.create_model(
        "tokshift_base16_224_8f", pretrained=True, pretrained_cfg_overlay=dict(file=str(path)), **TINY_ARGS
    )
    assert_same_weights(tiny_model, overlay, skip=())


def test_authors_file_with_other_classes_keeps_a_fresh_head(tiny_model, tmp_path):
    path = tmp_path / "authors.pth"
    save_authors_checkpoint(tiny_model, path)
    model = tokshift_zoo.create_model("tokshift_base16_224_8f", checkpoint_path=path, **dict(TINY_ARGS, num_classes=7))
    assert model.head.out_features == 7
    assert_same_weights(tiny_model, model)


def test_unplaceable_authors_keys_are_named(tiny_model, tmp_path):
    state = authors_state_dict(tiny_model)
    state["module.base_model.transformer.encoder.layer.0.adapter.weight"] = torch.zeros(2)
    path = tmp_path / "odd.pth"
    torch.save({"state_dict": state}, path)
    with pytest.raises(tokshift_zoo.WeightsError, match="layer.0.adapter.weight"):
        tokshift_zoo.create_model("tokshift_base16_224_8f", checkpoint_path=path, **TINY_ARGS)


class _Payload:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_pickled_objects_are_refused(tmp_path):
    path = tmp_path / "evil.pth"
    with open(path, "wb") as f:
        pickle.dump({"state_dict": _Payload()}, f, protocol=2)
    # refused, naming what the file holds; torch's advice to load it with weights_only=False is not passed on
    with pytest.raises(ValueError, match="holds a Python object of type print.*never unpickles") as refused:
        tokshift_zoo.create_model("tokshift_base16_224_8f", checkpoint_path=path, **TINY_ARGS)
    assert "weights_only=False" not in str(refused.value)


def test_google_npz_loads_drops_pre_logits_and_a_head_that_does_not_fit(tiny_model, tmp_path):
    path = tmp_path / "ViT-tiny.npz"
    save_google_npz(tiny_model, path, num_classes=21843)
    model = tokshift_zoo.create_model("tokshift_base16_224_8f", checkpoint_path=path, **TINY_ARGS)
    assert_same_weights(tiny_model, model)
    assert model.head.out_features == 4 and not torch.equal(model.head.weight, torch.full((4, 32), 0.5))
    overlay = timm.create_model(
        "tokshift_base16_224_8f", pretrained=True, pretrained_cfg_overlay=dict(file=str(path)), **TINY_ARGS
    )
    assert_same_weights(tiny_model, overlay)


def test_google_npz_head_with_matching_classes_is_loaded(tiny_model, tmp_path):
    path = tmp_path / "ViT-tiny.npz"
    save_google_npz(tiny_model, path, num_classes=4)
    model = tokshift_zoo.create_model("tokshift_base16_224_8f", checkpoint_path=path, **TINY_ARGS)
    assert torch.equal(model.head.weight, torch.full((4, 32), 0.5))


def test_weights_load_at_another_resolution_through_pos_embed_resampling(tiny_model, tmp_path):
    path = tmp_path / "tiny.pth"
    save_authors_checkpoint(tiny_model, path)
    model = tokshift_zoo.create_model("tokshift_base16_224_8f", checkpoint_path=path, **dict(TINY_ARGS, img_size=48))
    assert model.pos_embed.shape == (1, 1 + 36, 32)
    torch.testing.assert_close(model.pos_embed[:, 0], tiny_model.pos_embed[:, 0])
    assert model(torch.randn(1, 3, 2, 48, 48)).shape == (1, 4)


def test_k400_pretrained_offline_and_not_cached_says_how_to_fetch_it():
    with pytest.raises(tokshift_zoo.NotCachedError, match="HF_HUB_OFFLINE is set.*tokshift-zoo download"):
        tokshift_zoo.create_model("tokshift_base16_224_8f", pretrained=True, depth=1)
