"""FLOPs counted from the built models reproduce the paper's table."""

from __future__ import annotations

import json

import pytest
import timm
import torch

import tokshift_zoo
from tokshift_zoo.cli import main
from tokshift_zoo.flops import architecture_size, count_flops, model_table
from tokshift_zoo.models import get_weights, list_models
from tokshift_zoo.models.tokshift import MODEL_ARGS


@pytest.fixture(scope="module")
def table():
    return {row["name"]: row for row in model_table()}


def test_counted_gflops_match_the_paper_within_half_a_percent(table):
    paper_models = [name for name in table if name != "tokshift_demo_motion"]
    assert len(paper_models) == 7
    for name in paper_models:
        row, paper = table[name], get_weights(f"{name}.k400").meta.get("gflops")
        assert abs(row["gflops"] - paper) / paper < 0.005, (name, row["gflops"], paper)
        assert row["gflops_full"] > row["gflops"]


def test_count_matches_hand_arithmetic_for_a_tiny_model():
    model = tokshift_zoo.create_model(
        "tokshift_base16_224_8f", img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=2, num_classes=4
    )
    tokens, dim, frames = 17, 32, 8
    per_block = tokens * (3 * dim * dim + dim * dim + 2 * 4 * dim * dim)
    patch = 16 * (3 * 8 * 8) * dim
    head = dim * 4  # one class-token row per clip after the time average
    attention = 2 * tokens * tokens * dim  # q @ k^T and attn @ v
    flops = count_flops(model)
    assert flops["gflops"] * 1e9 == pytest.approx(frames * (2 * per_block + patch) + head)
    assert (flops["gflops_full"] - flops["gflops"]) * 1e9 == pytest.approx(frames * 2 * attention)
    assert next(model.parameters()).device == torch.device("cpu")  # counted on a meta copy


def test_table_columns_and_tags(table):
    row = table["tokshift_large16_384_12f"]
    assert (row["frames"], row["resolution"], row["params_m"]) == (12, 384, 304.1)
    assert row["available"] == {"in21k": True, "k400": True}  # k400: the authors' release


def test_models_command_prints_json(capsys):
    assert main(["models", "--filter", "tokshift_base16_224_*", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == ["tokshift_base16_224_16f", "tokshift_base16_224_8f"]
    assert rows[1]["gflops"] == pytest.approx(134.7, rel=0.005)


def _built_size(model: torch.nn.Module) -> dict[str, float]:
    return dict(count_flops(model), params=sum(p.numel() for p in model.parameters()))


@pytest.mark.parametrize("name", list_models())
def test_the_table_sizes_each_registered_model_as_counted_from_the_built_one(table, name):
    with torch.device("meta"):
        model = timm.create_model(name)
    built = _built_size(model)
    sizing = ("depth", "embed_dim", "img_size", "patch_size", "num_frames")
    size = architecture_size(num_classes=model.num_classes, **{k: MODEL_ARGS[name][k] for k in sizing})
    assert size["params"] == built["params"]
    assert size["gflops"] * 1e9 == pytest.approx(built["gflops"] * 1e9, rel=1e-12, abs=0.5)  # multiply-adds exact
    assert size["gflops_full"] * 1e9 == pytest.approx(built["gflops_full"] * 1e9, rel=1e-12, abs=0.5)
    row = table[name]
    assert (row["params_m"], row["gflops"], row["gflops_full"]) == (
        round(built["params"] / 1e6, 1),
        round(built["gflops"], 1),
        round(built["gflops_full"], 1),
    )
    assert (row["frames"], row["resolution"]) == (model.num_frames, model.patch_embed.img_size[0])


def test_the_arithmetic_follows_every_sizing_argument():
    args = dict(depth=3, embed_dim=48, img_size=(32, 48), patch_size=8, num_frames=5, in_chans=1, mlp_ratio=2.5)
    for num_classes in (7, 0):
        model = tokshift_zoo.create_model("tokshift_base16_224_8f", num_heads=4, num_classes=num_classes, **args)
        built = _built_size(model)
        size = architecture_size(num_classes=num_classes, **args)
        assert size["params"] == built["params"]
        assert size["gflops"] == pytest.approx(built["gflops"], rel=1e-12)
        assert size["gflops_full"] == pytest.approx(built["gflops_full"], rel=1e-12)
