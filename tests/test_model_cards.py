"""``model_cards/``: one up-to-date card per registry entry, with the hub's card metadata."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from huggingface_hub import ModelCard

import tokshift_zoo
from tokshift_zoo.model_cards import CARDS_DIR, RunCard, check_cards, main, render_card, render_run_card, write_cards
from tokshift_zoo.models import get_video_cfg

ENTRIES = tokshift_zoo.list_models(pretrained=True)


def front_matter(card: str) -> str:
    match = re.match(r"---\n(.*?)\n---\n", card, re.S)
    assert match, "a card starts with YAML metadata between --- lines"
    return match.group(1)


def test_every_registry_entry_has_an_up_to_date_card():
    problems = check_cards(CARDS_DIR)
    assert problems == [], "run `python -m tokshift_zoo.model_cards` (make cards) and commit:\n" + "\n".join(problems)


@pytest.mark.parametrize("name", ENTRIES)
def test_card_metadata_and_figures(name):
    card = (CARDS_DIR / f"{name}.md").read_text(encoding="utf-8")
    meta = front_matter(card)
    for line in ("library_name: timm", "pipeline_tag: video-classification", "datasets:"):
        assert line in meta.splitlines()
    assert re.search(r"^license: (?!unknown)\S+$", meta, re.M), "the registry entry needs a license"
    video = get_video_cfg(name)
    if video.paper_top1 is not None:
        assert f"value: {video.paper_top1}" in meta and f"| Kinetics-400 top-1 (paper) | {video.paper_top1}% |" in card
    arch = name.split(".")[0]
    if any(get_video_cfg(e).paper_gflops for e in tokshift_zoo.list_models(arch + ".*", pretrained=True)):
        assert re.search(r"\| GFLOPs per view \(paper\) \| \d+\.\d \|", card)
    assert "| sha256 |" in card and "@inproceedings{zhang2021tokshift" in card
    assert f'create_model("{name}", pretrained=True)' in card
    if name.endswith(".k400"):  # the authors' release: its Drive folder, the mirror, the truth about its licence
        assert "drive.google.com/drive/folders/" in card and "TOKSHIFT_ZOO_AUTHORS_MIRROR" in card
        assert "license: other" in meta and "license_name: not-stated-by-the-authors" in meta
        assert "| license | not stated by the authors" in card and "the authors publish none" in card
    elif name.endswith(".in21k"):
        assert "license: apache-2.0" in meta


def test_write_cards_replaces_stale_cards_and_keeps_other_files(tmp_path):
    (tmp_path / "README.md").write_text("notes")
    (tmp_path / "gone_model.k400.md").write_text("an entry that was removed")
    (tmp_path / f"{ENTRIES[0]}.md").write_text("edited by hand")
    assert sorted(check_cards(tmp_path)) == sorted(
        [f"{tmp_path / e}.md: missing" for e in ENTRIES[1:]]
        + [f"{tmp_path / ENTRIES[0]}.md: outdated", f"{tmp_path / 'gone_model.k400.md'}: no registry entry"]
    )
    assert main(["--check", "--out", str(tmp_path)]) == 1
    assert [p.name for p in write_cards(tmp_path)] == [f"{e}.md" for e in ENTRIES]
    assert check_cards(tmp_path) == [] and main(["--check", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "README.md").read_text() == "notes" and not (tmp_path / "gone_model.k400.md").exists()


def test_published_card_says_how_to_load_it_from_its_repo():
    sha = "ab" * 32
    card = render_card(
        "tokshift_base16_224_8f.k400", hf_repo="org/repo", sha256=sha, source={"source_file": "k400_8f.pth"}
    )
    assert 'create_model("hf-hub:org/repo", pretrained=True)' in card and f"| sha256 | `{sha}` |" in card
    assert "converted to safetensors by tokshift-zoo from `k400_8f.pth`" in card
    assert "Google Drive" not in card.split("## Citation")[0]


def test_cards_do_not_depend_on_the_machine():
    card = render_card(ENTRIES[0])
    assert str(Path.home()) not in card and str(CARDS_DIR.parent) not in card


def _run_card(**overrides) -> RunCard:
    fields = dict(
        repo_id="org/kitchen",
        architecture="tokshift_base16_224_8f",
        model_args={"num_classes": 2},
        base_model="tokshift_base16_224_8f.in21k",
        base_hub_id="timm/vit_base_patch16_224.orig_in21k",
        dataset="my-lab/kitchen",
        label_names=["chop", "stir"],
        num_classes=2,
        preprocessing=dict(input_size=[3, 224, 224], num_frames=8, frame_stride=32, sampling="dense", mean=[0.5] * 3,
                           std=[0.5] * 3, interpolation="bicubic", crop_pct=1.0, test_clips=10, test_crops=3),
        sha256="cd" * 32,
        files=["config.json", "model.safetensors", "README.md"],
        install="tokshift-zoo @ git+https://example.org/tokshift-zoo@v1",
    )  # fmt: skip
    return RunCard(**(fields | overrides))


def test_run_card_is_about_the_fine_tuned_model():
    card = ModelCard(render_run_card(_run_card(validation={"val_top1": 87.5, "val_loss": 0.41}, best_epoch=3)))
    assert card.data.base_model == "timm/vit_base_patch16_224.orig_in21k" and card.data.datasets == ["my-lab/kitchen"]
    (top1,) = card.data.eval_results  # no top-5 figure: no top-5 result
    assert (top1.metric_value, top1.dataset_name, top1.metric_name) == (
        87.5,
        "my-lab/kitchen",
        "Top-1 accuracy (validation, epoch 3)",
    )
    text = card.content
    assert "[tokshift_base16_224_8f.in21k](https://huggingface.co/timm/vit_base_patch16_224.orig_in21k)" in text
    assert 'pip install "tokshift-zoo @ git+https://example.org/tokshift-zoo@v1"' in text
    assert 'views="10x3"' in text and 'dense: 8 frames, 32 frames apart ("8x32")' in text and "chop, stir" in text
    assert text.index("pip install") < text.index("import tokshift_zoo") < text.index("timm.create_model(")


def test_run_card_without_validation_says_so_and_claims_no_figures():
    card = ModelCard(render_run_card(_run_card(repo_id=None, label_names=None, base_hub_id=None)))
    assert card.data.eval_results is None and "model-index" not in card.content.split("---")[1]
    assert "no validation figures" in card.content and "integer labels: no class names" in card.content
    assert 'tokshift_zoo.load("local-dir:PATH")' in card.content and "snapshot_download" not in card.content
