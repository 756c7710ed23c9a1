"""timm's generic model contract (its ``tests/test_models.py``), on every zoo model, adapted to (B, C, T, H, W) clips.

Each registered builder runs for real, shrunk where compute would be heavy (3 blocks, 32 wide, 32x32 frames in the
builder's own patch size); the bundled demo model runs at its own size. Also here: ``features_only`` in timm's
feature classes, ``forward_intermediates``, torch.fx (torchvision's and timm's feature extractors), torch.export and
an ONNX Runtime round trip with dynamic batch and frames, ``in_chans != 3`` with pretrained weights, and the head's
configuration after a new ``num_classes``.
"""

from __future__ import annotations

import math

import pytest
import timm
import torch
from authors_format import save_authors_checkpoint
from conftest import TINY_ARGS
from safetensors.torch import save_file
from torch.export import Dim
from torchvision.models.feature_extraction import NodePathTracer, create_feature_extractor, get_graph_node_names

import tokshift_zoo

MODELS = tokshift_zoo.list_models()
DEMO = "tokshift_demo_motion"
FRAMES = 3


def small_args(name: str) -> dict:
    """Builder overrides that keep a test fast: the paper's models shrunk (patch size kept), the demo as it is."""
    return {} if name == DEMO else dict(img_size=32, embed_dim=32, depth=3, num_heads=2)


# Tracing and exporting cost grows with the blocks, and two show what one block hands the next.
TRACE_DEPTH = 2


def make(name: str, **kwargs) -> torch.nn.Module:
    torch.manual_seed(0)
    return tokshift_zoo.create_model(name, **dict(small_args(name), **kwargs))


def clip_for(model: torch.nn.Module, batch: int = 2, frames: int = FRAMES, chans: int = 3) -> torch.Tensor:
    height, width = model.patch_embed.img_size
    return torch.randn(batch, chans, frames, height, width, generator=torch.Generator().manual_seed(1))


def test_every_registered_model_is_covered():
    assert len(MODELS) == 8 and DEMO in MODELS and set(timm.list_models("tokshift*")) <= set(MODELS)


# --- forward, backward, default cfgs ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", MODELS)
def test_forward_and_grad_checkpointing(name):
    model = make(name).eval()
    clip = clip_for(model, batch=1)
    with torch.no_grad():
        out = model(clip)
        assert out.shape == (1, model.num_classes) and not out.isnan().any()
        model.set_grad_checkpointing()
        torch.testing.assert_close(model(clip), out, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", MODELS)
def test_backward_reaches_every_parameter(name):
    model = make(name, num_classes=42).train()
    out = model(clip_for(model))
    out.mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing and out.shape == (2, 42) and not out.isnan().any()


@pytest.mark.parametrize("name", MODELS)
def test_default_cfgs_features_head_and_pooling(name):
    model = make(name).eval()
    cfg = model.pretrained_cfg
    clip = clip_for(model)
    grid = model.patch_embed.grid_size
    assert model.num_classes >= 0 and model.num_features == model.head_hidden_size == model.embed_dim > 0
    with torch.no_grad():
        features = model.forward_features(clip)
        pre_logits = model.forward_head(features, pre_logits=True)
        assert features.shape == (2, FRAMES, 1 + grid[0] * grid[1], model.num_features)
        assert pre_logits.shape == (2, model.head_hidden_size)
        model.reset_classifier(0)  # no head: forward gives the pooled embedding
        assert model.num_classes == 0 and torch.equal(model(clip), pre_logits)
        model.reset_classifier(0, "")  # no head, no pooling: the tokens
        assert torch.equal(model(clip), features)
        unpooled = make(name, num_classes=0, global_pool="").eval()
        unpooled.load_state_dict(model.state_dict())
        assert torch.equal(unpooled(clip), features)
    state_dict = model.state_dict()
    if cfg.get("num_classes"):
        assert cfg["classifier"] + ".weight" in make(name).state_dict()
    assert cfg["first_conv"] + ".weight" in state_dict


# --- features_only and forward_intermediates ----------------------------------------------------------------


def expected_map_shape(model, batch: int, channels: int, reduction: int) -> tuple[int, ...]:
    height, width = model.patch_embed.img_size
    return batch, channels, FRAMES, math.ceil(height / reduction), math.ceil(width / reduction)


@pytest.mark.parametrize("feature_cls", [None, "getter"])
@pytest.mark.parametrize("name", MODELS)
def test_features_only_gives_video_maps(name, feature_cls):
    extra = {} if feature_cls is None else dict(feature_cls=feature_cls)
    full = make(name).eval()
    features = make(name, features_only=True, **extra).eval()
    info = features.feature_info
    depth = len(full.blocks)
    assert info.module_name() == [f"blocks.{i}" for i in range(depth - 3, depth)]  # timm ViT's default: last 3
    assert info.channels() == [full.embed_dim] * 3 and info.reduction() == [full.patch_embed.patch_size[0]] * 3
    assert "num_classes" not in features.pretrained_cfg and not features.pretrained_cfg.get("label_names")
    assert features.weights.num_frames == full.weights.num_frames and features.weights.meta["paper_top1"] is None
    clip = clip_for(full)
    with torch.no_grad():
        maps = features(clip)
        expected = full.forward_intermediates(clip, indices=3, intermediates_only=True)
    assert len(maps) == 3
    for out, ref, chans, reduction in zip(maps, expected, info.channels(), info.reduction(), strict=True):
        assert out.shape == expected_map_shape(full, 2, chans, reduction) and not out.isnan().any()
        assert torch.equal(out, ref)


@pytest.mark.parametrize("name", [DEMO, "tokshift_base16_224_8f"])
def test_features_only_out_indices_and_tokens(name):
    full = make(name).eval()
    clip = clip_for(full)
    features = make(name, features_only=True, out_indices=(0, -2), feature_cfg=dict(output_fmt="NLC")).eval()
    depth = len(full.blocks)
    assert features.feature_info.module_name() == ["blocks.0", f"blocks.{depth - 2}"]
    assert len(features.model.blocks) == depth - 1  # pruned after the last block asked for, as timm does
    with torch.no_grad():
        tokens = features(clip)
        expected = full.forward_intermediates(clip, indices=[0, -2], output_fmt="NLC", intermediates_only=True)
    grid = full.patch_embed.grid_size
    assert [t.shape for t in tokens] == [(2, FRAMES * grid[0] * grid[1], full.embed_dim)] * 2
    assert all(torch.equal(a, b) for a, b in zip(tokens, expected, strict=True))


@pytest.mark.parametrize("name", MODELS)
def test_forward_intermediates_follow_timm(name):
    model = make(name).eval()
    info = timm.models.FeatureInfo(model.feature_info, len(model.feature_info))
    clip = clip_for(model)
    with torch.no_grad():
        final, intermediates = model.forward_intermediates(clip)
        assert len(intermediates) == len(model.blocks) >= 3
        for out, chans, reduction in zip(intermediates, info.channels(), info.reduction(), strict=True):
            assert out.shape == expected_map_shape(model, 2, chans, reduction) and not out.isnan().any()
        assert torch.equal(final, model.forward_features(clip))
        model.set_grad_checkpointing()
        final_checkpointed, _ = model.forward_intermediates(clip)
        torch.testing.assert_close(final_checkpointed, final, rtol=1e-4, atol=1e-5)


def test_forward_intermediates_layouts_prefix_tokens_and_options(tiny_model):
    clip = torch.randn(2, 3, 4, 32, 32)
    with torch.no_grad():
        final, maps = tiny_model.forward_intermediates(clip, indices=[0, 1])
        nlc = tiny_model.forward_intermediates(
            clip, indices=2, output_fmt="NLC", return_prefix_tokens=True, intermediates_only=True
        )
        # the two layouts hold the same patch tokens: (B, C, T, H', W') <-> (B, T*H'*W', C), frame-major
        for grid, (tokens, cls) in zip(maps, nlc, strict=True):
            assert grid.shape == (2, 32, 4, 4, 4) and tokens.shape == (2, 4 * 16, 32) and cls.shape == (2, 4, 32)
            assert torch.equal(grid.permute(0, 2, 3, 4, 1).reshape(2, -1, 32), tokens)
        # the last block's normed class tokens, averaged over time, are the clip embedding
        (_, cls), *_ = tiny_model.forward_intermediates(
            clip, indices=[-1], norm=True, output_fmt="NLC", return_prefix_tokens=True, intermediates_only=True
        )
        torch.testing.assert_close(cls.mean(1), tiny_model.forward_head(final, pre_logits=True))
        # timm's 'NCHW' name (what its feature wrappers pass) is the same video maps
        nchw = tiny_model.forward_intermediates(clip, indices=[0, 1], output_fmt="NCHW", intermediates_only=True)
        assert all(torch.equal(a, b) for a, b in zip(nchw, maps, strict=True))
        out = tiny_model.forward_intermediates(clip, indices=1, output_dict=True, return_prefix_tokens=True)
        assert set(out) == {"image_intermediates", "image_intermediates_prefix", "image_features"}
        assert torch.equal(out["image_features"], final) and torch.equal(out["image_intermediates"][0], maps[1])
        calls = []
        tiny_model.blocks[1].register_forward_hook(lambda *_: calls.append(1))
        early = tiny_model.forward_intermediates(clip, indices=[0], stop_early=True, intermediates_only=True)
        assert not calls and torch.equal(early[0], maps[0])
    with pytest.raises(ValueError, match="output_fmt"):
        tiny_model.forward_intermediates(clip, output_fmt="NHWC")


def test_prune_intermediate_layers_keeps_the_outputs(tiny_model):
    clip = torch.randn(1, 3, 2, 32, 32)
    with torch.no_grad():
        expected = tiny_model.forward_intermediates(clip, indices=[0], intermediates_only=True)
        assert tiny_model.prune_intermediate_layers([0], prune_norm=True) == [0]
        assert len(tiny_model.blocks) == 1 and tiny_model.num_classes == 0
        assert torch.equal(tiny_model.forward_intermediates(clip, indices=[0], intermediates_only=True)[0], expected[0])


# --- torch.fx, torch.export, ONNX ---------------------------------------------------------------------------


def fx_model(model: torch.nn.Module, train: bool = False) -> torch.nn.Module:
    """timm's ``_create_fx_model``: torchvision's extractor returning the graph's output node."""
    kwargs = dict(
        leaf_modules=timm.models.get_notrace_modules(),
        autowrap_functions=timm.models.get_notrace_functions(),
        param_shapes_constant=True,
    )
    train_nodes, eval_nodes = get_graph_node_names(model, tracer_kwargs=kwargs)
    train_return = [train_nodes[-1]]
    if train:
        graph = NodePathTracer(**kwargs).trace(model)
        nodes = list(reversed(graph.nodes))
        names = [n.name for n in nodes]
        train_return = [train_nodes[-names.index(n.name)] for n in nodes[0]._input_nodes]
    return create_feature_extractor(
        model, train_return_nodes=train_return, eval_return_nodes=[eval_nodes[-1]], tracer_kwargs=kwargs
    )


@pytest.mark.parametrize("name", MODELS)
def test_fx_forward_and_block_outputs(name):
    model = make(name, depth=TRACE_DEPTH).eval()
    clip = clip_for(model, batch=1)
    with torch.inference_mode():
        assert torch.equal(torch.cat(tuple(fx_model(model)(clip).values())), model(clip))
        blocks = create_feature_extractor(model, {f"blocks.{i}": str(i) for i in range(len(model.blocks))})(clip)
        nlc = model.forward_intermediates(clip, output_fmt="NLC", return_prefix_tokens=True, intermediates_only=True)
    for out, (tokens, cls) in zip(blocks.values(), nlc, strict=True):  # the shift is in the graph, not lost
        assert torch.equal(out[:, 1:].unflatten(0, (1, FRAMES)).flatten(1, 2), tokens)
        assert torch.equal(out[:, :1].unflatten(0, (1, FRAMES)).flatten(1, 2), cls)


@pytest.mark.parametrize("name", ["tokshift_base16_224_8f", "vit_base16_224_8f"])
def test_fx_backward_in_train_mode(name):
    train_model = make(name, depth=TRACE_DEPTH, num_classes=42).train()
    graph = fx_model(train_model, train=True)
    out = torch.cat(tuple(graph(clip_for(train_model)).values()))
    out.mean().backward()
    assert out.shape[-1] == 42 and all(p.grad is not None for p in graph.parameters())


def test_timm_fx_and_hook_feature_classes(tiny_model):
    clip = torch.randn(2, 3, 4, 32, 32)
    with torch.no_grad():
        tokens = tiny_model.forward_intermediates(clip, output_fmt="NLC", intermediates_only=True)
        for feature_cls in ("fx", "hook"):
            torch.manual_seed(0)  # the tiny_model fixture's weights
            features = tokshift_zoo.create_model(
                "tokshift_base16_224_8f", features_only=True, feature_cls=feature_cls, out_indices=(0, 1), **TINY_ARGS
            )
            for raw, ref in zip(features.eval()(clip), tokens, strict=True):  # raw block outputs (B*T, N, C)
                assert torch.equal(raw[:, 1:].unflatten(0, (2, 4)).flatten(1, 2), ref)
    with pytest.raises(ValueError, match="getter"):
        tokshift_zoo.create_model("tokshift_base16_224_8f", features_only=True, feature_cls="list", **TINY_ARGS)


@pytest.mark.parametrize("num_frames", [1, 2, 3, 8])
def test_traced_shift_is_the_eager_shift_bit_for_bit(num_frames):
    from tokshift_zoo.models.tokshift import _padded, _rolled

    moving = torch.randn(3, num_frames, 2 * 5)
    moving[0, 0, 0] = -0.0  # signs of zero survive too
    eager, traced = _padded(moving, num_frames, 5), _rolled(moving, num_frames, 5)
    assert torch.equal(eager.view(torch.int32), traced.view(torch.int32))


def test_fx_graph_checks_the_input(tiny_model):
    graph = torch.fx.symbolic_trace(tiny_model)
    with pytest.raises(AssertionError, match=r"\(B, 3, T, 32, 32\)"):
        graph(torch.zeros(2, 3, 32, 32))


DYNAMIC = ({0: Dim("batch", min=1, max=64), 2: Dim("frames", min=1, max=64)},)


@pytest.mark.parametrize("name", MODELS)
def test_torch_export_with_dynamic_batch_and_frames(name):
    model = make(name, depth=TRACE_DEPTH).eval()
    program = torch.export.export(model, (clip_for(model, batch=2, frames=4),), dynamic_shapes=DYNAMIC)
    exported = program.module()
    for batch, frames in ((1, 1), (3, 2), (2, 9)):
        clip = clip_for(model, batch=batch, frames=frames)
        with torch.no_grad():
            torch.testing.assert_close(exported(clip), model(clip), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["tokshift_base16_224_8f", "vit_base16_224_8f"])
def test_onnx_round_trip_with_dynamic_batch_and_frames(name, tmp_path):
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime is the [onnx] extra")
    pytest.importorskip("onnxscript", reason="torch.onnx.export(dynamo=True) needs onnxscript, the [onnx] extra")
    model = make(name, depth=1).eval()
    path = tmp_path / f"{name}.onnx"
    torch.onnx.export(
        model,
        (clip_for(model, frames=4),),
        str(path),
        dynamo=True,
        dynamic_shapes=DYNAMIC,
        input_names=["clip"],
        output_names=["logits"],
        verbose=False,
    )
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for batch, frames in ((1, 1), (3, 2), (2, 8)):
        clip = clip_for(model, batch=batch, frames=frames)
        (logits,) = session.run(None, {"clip": clip.numpy()})
        with torch.no_grad():
            torch.testing.assert_close(torch.from_numpy(logits), model(clip), rtol=1e-4, atol=1e-5)


# --- pretrained weights with in_chans != 3, and the head's configuration ---------------------------------------


@pytest.mark.parametrize("name", MODELS)
def test_pretrained_load_adapts_the_patch_embedding_to_in_chans(name, tmp_path):
    source = make(name)
    path = tmp_path / "weights.safetensors"
    save_file(source.state_dict(), path)
    rgb = source.patch_embed.proj.weight.detach()
    overlay = dict(pretrained_cfg_overlay=dict(file=str(path)), **small_args(name))
    for in_chans, num_classes in ((1, 5), (1, 0), (2, 5)):
        model = timm.create_model(name, pretrained=True, in_chans=in_chans, num_classes=num_classes, **overlay)
        expected = timm.models.adapt_input_conv(in_chans, rgb)
        assert torch.equal(model.patch_embed.proj.weight.detach(), expected)
        assert torch.equal(model.blocks[0].attn.qkv.weight, source.blocks[0].attn.qkv.weight)
        out = model.eval()(clip_for(model, batch=1, chans=in_chans))
        assert out.shape == ((1, num_classes) if num_classes else (1, model.num_features))
    gray = clip_for(source, batch=1).mean(1, keepdim=True)  # one channel: the summed filters see the mean x 3
    with torch.no_grad():
        torch.testing.assert_close(
            timm.create_model(name, pretrained=True, in_chans=1, **overlay).eval()(gray),
            source.eval()(gray.expand(-1, 3, -1, -1, -1)),
            rtol=1e-4,
            atol=1e-4,
        )


def test_authors_and_google_files_adapt_to_in_chans(tiny_model, tmp_path):
    from test_tokshift import save_google_npz  # Google's format, written for real

    save_authors_checkpoint(tiny_model, tmp_path / "authors.pth")
    save_google_npz(tiny_model, tmp_path / "ViT-tiny.npz", num_classes=4)
    summed = tiny_model.patch_embed.proj.weight.sum(1, keepdim=True)
    for path in (tmp_path / "authors.pth", tmp_path / "ViT-tiny.npz"):
        model = tokshift_zoo.create_model("tokshift_base16_224_8f", checkpoint_path=path, **dict(TINY_ARGS, in_chans=1))
        torch.testing.assert_close(model.patch_embed.proj.weight, summed, msg=str(path))


def test_a_checkpoint_loads_before_the_feature_wrapper(tiny_model, tmp_path):
    path = tmp_path / "tiny.safetensors"
    save_file(tiny_model.state_dict(), path)
    features = tokshift_zoo.create_model(
        "tokshift_base16_224_8f", checkpoint_path=path, features_only=True, out_indices=(0, 1), **TINY_ARGS
    )
    clip = torch.randn(1, 3, 2, 32, 32)
    with torch.no_grad():
        expected = tiny_model.forward_intermediates(clip, intermediates_only=True)
        assert all(torch.equal(a, b) for a, b in zip(features.eval()(clip), expected, strict=True))
    assert features.load_report.loaded


def test_shipped_demo_weights_load_with_one_channel_and_as_features():
    shipped = tokshift_zoo.create_model(DEMO, pretrained=True)
    gray = tokshift_zoo.create_model(DEMO, pretrained=True, in_chans=1)
    summed = shipped.patch_embed.proj.weight.sum(1, keepdim=True)
    assert torch.allclose(gray.patch_embed.proj.weight, summed)
    features = tokshift_zoo.create_model(DEMO, pretrained=True, features_only=True)
    assert torch.equal(features.model.blocks[0].attn.qkv.weight, shipped.blocks[0].attn.qkv.weight)
    assert features.weights.num_frames == shipped.weights.num_frames and "num_classes" not in features.pretrained_cfg


def test_a_new_head_drops_the_old_label_names():
    small = small_args("tokshift_base16_224_8f")
    kinetics = tokshift_zoo.create_model("tokshift_base16_224_8f", **small)
    assert len(kinetics.pretrained_cfg["label_names"]) == 400 and kinetics.weights.meta["paper_top1"] == 77.28
    for model in (
        tokshift_zoo.create_model("tokshift_base16_224_8f", **small, num_classes=174),
        timm.create_model("tokshift_base16_224_8f", **small, num_classes=174),
    ):
        cfg = model.pretrained_cfg
        assert cfg["num_classes"] == 174 and cfg["label_names"] is None and cfg["tag"] == "k400"  # weights' tag
        assert model.weights.meta["paper_top1"] is None and model.weights.num_frames == 8  # sampling still applies
    kinetics.reset_classifier(10)
    assert kinetics.pretrained_cfg["label_names"] is None and kinetics.pretrained_cfg["num_classes"] == 10
    named = tokshift_zoo.create_model(
        "tokshift_base16_224_8f", **small, num_classes=2, pretrained_cfg_overlay=dict(label_names=("a", "b"))
    )
    assert named.pretrained_cfg["label_names"] == ("a", "b") and named.pretrained_cfg["tag"] == "k400"


def test_reset_classifier_honours_or_refuses_global_pool(tiny_model):
    clip = torch.randn(2, 3, 4, 32, 32)
    with torch.no_grad():
        tokens = tiny_model.forward_features(clip)
        tiny_model.reset_classifier(0, "avg")  # timm's mean of each frame's patch tokens, then over time
        torch.testing.assert_close(tiny_model(clip), tokens[:, :, 1:].mean((1, 2)))
        tiny_model.reset_classifier(3, "max")
        assert tiny_model(clip).shape == (2, 3) and tiny_model.global_pool == "max"
    for pool in ("map", "prr", "mean"):
        with pytest.raises(ValueError, match="global_pool must be one of"):
            tiny_model.reset_classifier(3, pool)
    with pytest.raises(ValueError, match="global_pool 'token'"):
        tokshift_zoo.create_model("tokshift_base16_224_8f", **dict(TINY_ARGS, global_pool="avg"))


# --- timm's own paths: checkpoint_path, pretrained_cfg_overlay(file=...), resolve_data_config/create_transform ---


def test_timms_own_paths_load_the_authors_google_and_zoo_files(tiny_model, tmp_path):
    from test_tokshift import save_google_npz  # Google's format, written for real

    files = {
        "authors": save_authors_checkpoint(tiny_model, tmp_path / "authors.pth"),
        "google": tmp_path / "ViT-tiny.npz",
        "zoo": tmp_path / "zoo.safetensors",
    }
    save_google_npz(tiny_model, files["google"], num_classes=4)
    save_file(tiny_model.state_dict(), files["zoo"])
    clip = torch.randn(1, 3, 8, 32, 32)
    with torch.no_grad():
        tokens, logits = tiny_model.forward_features(clip), tiny_model(clip)
    for kind, path in files.items():
        for how, model in (
            ("checkpoint_path", timm.create_model("tokshift_base16_224_8f", checkpoint_path=str(path), **TINY_ARGS)),
            ("overlay", timm.create_model(
                "tokshift_base16_224_8f", pretrained=True, pretrained_cfg_overlay=dict(file=str(path)), **TINY_ARGS
            )),
        ):  # fmt: skip
            with torch.no_grad():
                torch.testing.assert_close(model.eval().forward_features(clip), tokens, msg=f"{kind} {how}")
                if kind != "google":  # the npz's head is its own (0.5 everywhere), loaded as it fits
                    torch.testing.assert_close(model(clip), logits, msg=f"{kind} {how}")
            if how == "overlay":
                assert model.weights.file == str(path) and model.weights.sha256 is None  # the user's file: unpinned


def test_a_state_dict_in_the_zoos_names_loads_untouched_and_strict_loads_still_refuse(tiny_model):
    other = tokshift_zoo.create_model("tokshift_base16_224_8f", **TINY_ARGS)
    other.load_state_dict(tiny_model.state_dict())  # the pre-hook leaves the zoo's own names alone
    assert all(
        torch.equal(a, b) for a, b in zip(other.state_dict().values(), tiny_model.state_dict().values(), strict=True)
    )
    with pytest.raises(RuntimeError, match="Missing key"):
        other.load_state_dict({k: v for k, v in tiny_model.state_dict().items() if k != "norm.weight"})


def test_timms_data_config_of_a_zoo_model_is_the_records_centre_view_of_a_frame(tiny_model):
    from PIL import Image

    record = tiny_model.weights
    cfg = timm.data.resolve_data_config(model=tiny_model)
    assert (cfg["input_size"], cfg["interpolation"], cfg["crop_pct"]) == (
        record.input_size,
        record.interpolation,
        record.crop_pct,
    )
    assert tuple(cfg["mean"]) == record.mean and tuple(cfg["std"]) == record.std and cfg["crop_mode"] == "center"
    per_image = timm.data.create_transform(**cfg)  # timm's image transform: one frame, one centre crop
    frame = torch.randint(0, 256, (32, 48, 3), dtype=torch.uint8)  # short side = crop: no resize either way
    ours = record.with_views(1, 1).transforms()(frame.permute(2, 0, 1)[None])  # (1 crop, 3, T=1, 32, 32)
    torch.testing.assert_close(per_image(Image.fromarray(frame.numpy())), ours[0, :, 0], atol=2 / 255 / 0.5, rtol=0)
