"""Model cards generated from the registry, one per ``name.tag``, so they cannot drift from it.

``python -m tokshift_zoo.model_cards`` rewrites ``model_cards/`` (``--check`` only reports stale or missing
cards and exits 1). ``render_card`` also writes the README of a repo that ``tokshift-zoo convert --push``
publishes. Each card has Hugging Face card metadata (license, ``library_name: timm``, ``pipeline_tag:
video-classification``, datasets, the paper's top-1 as ``model-index``), the paper's top-1 and GFLOPs, the
preprocessing, the sha256, how to load the weights, and the citation. Nothing in a card depends on the machine.

``render_run_card`` writes the card of a fine-tuned model that ``tokshift-zoo publish-run`` publishes, from the
Jinja template ``data/run_model_card.md`` through huggingface_hub's ``ModelCard``: the base model, the dataset,
the run's validation figures (as ``EvalResult`` entries), the preprocessing, the recipe, and how to install the
package and load the model.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import timm
from huggingface_hub import EvalResult, ModelCard, ModelCardData

from .models.registry import VideoCfg, get_entry, get_video_cfg, list_models

__all__ = [
    "CARDS_DIR",
    "RUN_CARD_TEMPLATE",
    "RunCard",
    "check_cards",
    "render_card",
    "render_run_card",
    "write_cards",
]

CARDS_DIR = Path(__file__).resolve().parents[1] / "model_cards"
RUN_CARD_TEMPLATE = Path(__file__).resolve().parent / "data" / "run_model_card.md"

# registry dataset name -> (display name, Hugging Face dataset id used in card metadata)
_DATASETS = {"kinetics400": ("Kinetics-400", "kinetics-400"), "imagenet-21k": ("ImageNet-21k", "imagenet-21k")}

_CITATION = """\
@inproceedings{zhang2021tokshift,
  title     = {Token Shift Transformer for Video Classification},
  author    = {Zhang, Hao and Hao, Yanbin and Ngo, Chong-Wah},
  booktitle = {Proceedings of the 29th ACM International Conference on Multimedia (MM '21)},
  year      = {2021}
}"""

_VIT_CITATION = """\
@inproceedings{dosovitskiy2021vit,
  title     = {An Image is Worth 16x16 Words: Transformers for Image Recognition at Scale},
  author    = {Dosovitskiy, Alexey and Beyer, Lucas and Kolesnikov, Alexander and Weissenborn, Dirk and
               Zhai, Xiaohua and Unterthiner, Thomas and Dehghani, Mostafa and Minderer, Matthias and
               Heigold, Georg and Gelly, Sylvain and Uszkoreit, Jakob and Houlsby, Neil},
  booktitle = {International Conference on Learning Representations (ICLR)},
  year      = {2021}
}"""


def _q(text: str) -> str:
    """A YAML double-quoted scalar (JSON strings are valid YAML)."""
    return json.dumps(text)


def _paper_gflops(arch: str, video: VideoCfg) -> float | None:
    """The paper's GFLOPs of this architecture (the figure is per architecture, whatever the tag)."""
    if video.paper_gflops is not None:
        return video.paper_gflops
    figures = [get_video_cfg(e).paper_gflops for e in list_models(arch + ".*", pretrained=True)]
    return next((f for f in figures if f is not None), None)


def _source(cfg: Mapping, hf_repo: str | None, drive_folder: str | None = None) -> tuple[str, str]:
    """(where the weights are, in words; the load instructions' Python code)."""
    name = f"{cfg['architecture']}.{cfg['tag']}"
    if hf_repo:
        return f"this repository, [{hf_repo}](https://huggingface.co/{hf_repo})", f"hf-hub:{hf_repo}"
    hub_id, url, file = cfg.get("hf_hub_id"), cfg.get("url"), cfg.get("file")
    if file and str(file).startswith("package://"):
        return f"bundled in the package: `{str(file).removeprefix('package://')}`", name
    if hub_id:
        repo, _, revision = hub_id.partition("@")
        at = f" at revision `{revision}`" if revision else ""
        return f"[{repo}](https://huggingface.co/{repo}){at} on the Hugging Face hub", name
    if url:
        return f"<{url}>", name
    origin = cfg.get("origin_url") or "the authors"
    if drive_folder:
        return (
            f"the authors' release ([Google Drive](https://drive.google.com/drive/folders/{drive_folder}), linked "
            f"from <{origin}>, or a mirror named by `TOKSHIFT_ZOO_AUTHORS_MIRROR`), converted to safetensors on "
            "first use",
            name,
        )
    return f"not on a hub yet: the authors, <{origin}>", ""


def _license(cfg: Mapping) -> tuple[list[str], str]:
    """(card metadata lines, the licence in words). The authors state no licence for their weights."""
    license_id = cfg.get("license")
    if license_id and license_id != "unknown":
        return [f"license: {license_id}"], license_id
    origin = cfg.get("origin_url") or ""
    words = f"not stated by the authors (their repository, <{origin}>, has no licence file and its README names none)"
    return ["license: other", "license_name: not-stated-by-the-authors", f"license_link: {origin}"], words


def _metadata(name: str, cfg: Mapping, video: VideoCfg, dataset: tuple[str, str]) -> list[str]:
    lines = [
        "---",
        *_license(cfg)[0],
        "library_name: timm",
        "pipeline_tag: video-classification",
        "tags:",
        "- timm",
        "- tokshift-zoo",
        "- video-classification",
        "- vision-transformer",
        "datasets:",
        f"- {dataset[1]}",
    ]
    if video.paper_top1 is not None:
        lines += [
            "metrics:",
            "- accuracy",
            "model-index:",
            f"- name: {_q(name)}",
            "  results:",
            "  - task:",
            "      type: video-classification",
            "    dataset:",
            f"      name: {_q(dataset[0])}",
            f"      type: {dataset[1]}",
            "    metrics:",
            "    - type: accuracy",
            f"      value: {video.paper_top1}",
            f"      name: {_q(f'Top-1 accuracy ({video.test_clips}x{video.test_crops} views, paper)')}",
            "    source:",
            f"      name: {_q(cfg.get('paper_name') or 'paper')}",
            f"      url: https://arxiv.org/abs/{str(cfg.get('paper_ids', '')).removeprefix('arXiv:')}",
        ]
    return lines + ["---"]


def render_card(
    name: str,
    *,
    hf_repo: str | None = None,
    sha256: str | None = None,
    source: Mapping[str, str] | None = None,
) -> str:
    """The model card of registry entry ``name`` (``architecture.tag``), as Markdown with card metadata.

    Args:
        name: a ``list_models(pretrained=True)`` entry.
        hf_repo: for a card published with the weights: the repo (``ORG/REPO``) that holds them.
        sha256: the weights' sha256 when the registry does not pin one (a published converted file).
        source: a converted file's metadata (``source_file``, ``source_sha256``), recorded in the card.
    """
    arch, _, tag = name.partition(".")
    entry = get_entry(name)
    cfg, video = entry.timm_cfg(), entry.video
    sha256 = sha256 or video.sha256
    dataset = _DATASETS.get(video.dataset, (video.dataset or "unknown", video.dataset or "unknown"))
    where, load_name = _source(cfg, hf_repo, entry.drive_folder)
    summary = (timm.models.model_entrypoint(arch).__doc__ or "").strip().splitlines()[0]
    res = cfg["input_size"][-1]
    classes = cfg.get("num_classes", 0)
    gflops = _paper_gflops(arch, video)
    top1 = f"{video.paper_top1}%" if video.paper_top1 is not None else "not applicable"

    lines = _metadata(name, cfg, video, dataset)
    lines += ["", f"# {name}", "", summary, ""]
    if hf_repo:  # a published copy: the registry's words about where the weights live do not apply
        origin = f" from `{source['source_file']}`" if source and source.get("source_file") else ""
        lines += [f"The {name} weights, converted to safetensors by tokshift-zoo{origin}.", ""]
    elif cfg.get("description"):
        lines += [cfg["description"], ""]
    if video.dataset == "imagenet-21k" and res != 224:
        grid = res // 16  # every in21k source is a ViT-*/16 at 224
        lines += [f"Loading resamples the 224-pixel weights' 14x14 position embeddings to {grid}x{grid}.", ""]
    lines += [
        "A TokShift video transformer (Zhang, Hao, Ngo, ACM MM 2021): a ViT runs on every frame, and in every block "
        "the class token of each frame exchanges a quarter of its channels with the next frame and a quarter with "
        "the previous one, at zero extra parameters. Logits are averaged over the frames.",
        "",
        "## Weights",
        "",
        "| | |",
        "|---|---|",
        f"| source | {where} |",
        f"| file | `{video.filename}` |",
    ]
    if sha256:
        lines.append(f"| sha256 | `{sha256}` |")
    elif entry.drive_folder and not hf_repo:
        lines.append(
            "| sha256 | the authors publish none: the first download prints the file's sha256 and pins it, with "
            "the converted file's, in your cache; every later load is checked against those pins |"
        )
    elif load_name:
        lines.append("| sha256 | not pinned: every download is checked against the hub's LFS sha256 |")
    else:
        lines.append("| sha256 | none yet (no hub copy) |")
    if source:
        lines.append(
            f"| converted from | `{source.get('source_file', '?')}` (sha256 `{source.get('source_sha256', '?')}`) |"
        )
    lines += [
        f"| trained on | {dataset[0]} |",
        f"| license | {_license(cfg)[1]} |",
        "",
        "## Model",
        "",
        "| | |",
        "|---|---|",
        f"| architecture | `{arch}` |",
        f"| input | clips of shape (B, 3, T, {res}, {res}), T = {video.num_frames} for these weights |",
        f"| classes | {f'{classes} ({dataset[0]})' if classes else 'none: a backbone without a head'} |",
        f"| frame sampling | {video.sampling}, {video.num_frames} frames"
        + (f" every {video.frame_stride}" if video.sampling == "dense" else "")
        + " |",
        f"| test views | {video.test_clips} clips x {video.test_crops} crops |",
        f"| GFLOPs per view (paper) | {gflops if gflops is not None else 'not reported'} |",
        f"| Kinetics-400 top-1 (paper) | {top1} |",
        f"| preprocessing | resize ({cfg['interpolation']}) and crop {res}x{res} (crop_pct {cfg['crop_pct']}), "
        f"normalise with mean {tuple(cfg['mean'])}, std {tuple(cfg['std'])} |",
        "",
        "## How to load",
        "",
    ]
    if load_name:
        packaged = str(cfg.get("file") or "").startswith("package://") and not hf_repo
        how = "from the package" if packaged else "downloaded once, then cached"
        lines += [
            "```python",
            "import tokshift_zoo",
            "",
            f'model = tokshift_zoo.create_model("{load_name}", pretrained=True).eval()  # {how}, sha256-checked',
            f"logits = model(clips)  # clips: (B, 3, {video.num_frames}, {res}, {res}), normalised",
            "```",
            "",
            f'`timm.create_model("{load_name}", pretrained=True)` works too once `tokshift_zoo` is imported.',
        ]
        if not packaged:
            lines[-1] += (
                " To fetch the weights ahead of time (afterwards `HF_HUB_OFFLINE=1` works): "
                f"`tokshift-zoo download {load_name}`."
            )
    else:
        lines += [
            "The paper's checkpoint is only on the authors' Google Drive, so `pretrained=True` raises an error that "
            "gives this route. Download the `.pth` there, then either load it directly:",
            "",
            "```python",
            "import tokshift_zoo",
            "",
            f'model = tokshift_zoo.create_model("{arch}", checkpoint_path="AUTHORS_FILE.pth").eval()',
            "```",
            "",
            "or convert it once to safetensors (and optionally publish it, then load it as `hf-hub:ORG/REPO`):",
            "",
            "```bash",
            f"tokshift-zoo convert AUTHORS_FILE.pth {arch}.{tag}.safetensors --model {arch} [--push ORG/REPO]",
            "```",
        ]
    lines += ["", "## Citation", "", "```bibtex", _CITATION, "```"]
    if video.dataset == "imagenet-21k":
        lines += ["", "The ImageNet-21k weights are Google's ViT:", "", "```bibtex", _VIT_CITATION, "```"]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class RunCard:
    """What the card of a fine-tuned model says; ``publish.stage_run`` fills it from the run and its config.

    Attributes:
        repo_id: the hub repo (``ORG/REPO``) the snippets load; None: a ``local-dir:`` snippet.
        architecture, model_args: the builder and its arguments (timm's ``config.json``).
        base_model: what the run fine-tuned (``NAME.TAG``, ``hf-hub:ORG/REPO`` or a file name); base_hub_id:
            its hub repo, the card metadata's ``base_model``, when it has one.
        dataset: the dataset's name, as the publisher gave it.
        label_names, num_classes: the classes.
        preprocessing: the ``DataConfig`` as a dict (``config.json``'s ``preprocessing``).
        validation: the validation figures of the epoch the weights come from (``val_top1``, ``val_top5``, ...,
            top-1/top-5 in %), empty without validation; best_epoch, epochs: that epoch and the run's count.
        recipe: the run's settings shown in the card; recipe_file: the settings file in the repo, if any.
        sha256: of ``model.safetensors``; files: the repo's files.
        install: what ``pip install`` needs to get the package; license: the card's licence id, if known.
    """

    repo_id: str | None
    architecture: str
    model_args: Mapping[str, Any]
    base_model: str | None
    base_hub_id: str | None
    dataset: str
    label_names: Sequence[str] | None
    num_classes: int
    preprocessing: Mapping[str, Any]
    validation: Mapping[str, float] = field(default_factory=dict)
    best_epoch: int | None = None
    epochs: int | None = None
    recipe: Mapping[str, Any] = field(default_factory=dict)
    recipe_file: str | None = None
    sha256: str = ""
    files: Sequence[str] = ()
    install: str = "tokshift-zoo"
    license: str | None = None


def _run_eval_results(card: RunCard) -> list[EvalResult]:
    """The card metadata's ``model-index``: top-1 (and top-5) on the validation split, as the run measured."""
    results = []
    for key, metric_type, words in (("val_top1", "accuracy", "Top-1"), ("val_top5", "top_5_accuracy", "Top-5")):
        if key in card.validation:
            results.append(
                EvalResult(
                    task_type="video-classification",
                    dataset_type=card.dataset,
                    dataset_name=card.dataset,
                    dataset_split="validation",
                    metric_type=metric_type,
                    metric_value=round(float(card.validation[key]), 4),
                    metric_name=f"{words} accuracy (validation, epoch {card.best_epoch})",
                )
            )
    return results


def render_run_card(card: RunCard, template: str | os.PathLike | None = None) -> str:
    """The model card of a fine-tuned model, as Markdown with Hugging Face card metadata.

    The metadata (``ModelCardData``): ``library_name: timm``, ``pipeline_tag: video-classification``, the
    dataset, the base model's hub repo, the licence, and the validation top-1/top-5 as ``EvalResult`` entries.
    The text comes from ``template`` (default ``RUN_CARD_TEMPLATE``), a Jinja template rendered by
    ``ModelCard.from_template`` with ``card_data`` (the YAML), ``card`` (this ``RunCard``), ``title``,
    ``load_name`` (``hf-hub:ORG/REPO``), ``views`` (the test views, ``"CLIPSxCROPS"``) and ``citation``.
    """
    results = _run_eval_results(card)
    data = ModelCardData(
        library_name="timm",
        pipeline_tag="video-classification",
        tags=["timm", "tokshift-zoo", "video-classification", "vision-transformer"],
        datasets=[card.dataset],
        base_model=card.base_hub_id,
        license=card.license,
        metrics=["accuracy"] if results else None,
        model_name=card.repo_id or card.architecture,
        eval_results=results or None,
    )
    prep = card.preprocessing
    rendered = ModelCard.from_template(
        data,
        template_path=str(template or RUN_CARD_TEMPLATE),
        card=card,
        title=card.repo_id or f"{card.architecture} fine-tuned on {card.dataset}",
        load_name=f"hf-hub:{card.repo_id}" if card.repo_id else "local-dir:PATH",
        views=f"{prep.get('test_clips', 1)}x{prep.get('test_crops', 1)}",
        citation=_CITATION,
    )
    return str(rendered).rstrip("\n") + "\n"


def _cards_in(out_dir: Path) -> set[Path]:
    """The ``NAME.TAG.md`` files in ``out_dir`` (a README.md or other notes there are left alone)."""
    return {p for p in out_dir.glob("*.*.md")}


def write_cards(out_dir: str | Path = CARDS_DIR) -> list[Path]:
    """Write ``NAME.TAG.md`` for every registry entry and remove cards of entries that no longer exist."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    entries = list_models(pretrained=True)
    for stale in _cards_in(out_dir) - {out_dir / f"{e}.md" for e in entries}:
        stale.unlink()
    written = []
    for entry in entries:
        path = out_dir / f"{entry}.md"
        path.write_text(render_card(entry), encoding="utf-8")
        written.append(path)
    return written


def check_cards(out_dir: str | Path = CARDS_DIR) -> list[str]:
    """Problems with ``out_dir``: entries with a missing or outdated card, cards with no entry. Empty if none."""
    out_dir = Path(out_dir)
    entries = list_models(pretrained=True)
    problems = []
    for entry in entries:
        path = out_dir / f"{entry}.md"
        if not path.is_file():
            problems.append(f"{path}: missing")
        elif path.read_text(encoding="utf-8") != render_card(entry):
            problems.append(f"{path}: outdated")
    for extra in sorted(_cards_in(out_dir) - {out_dir / f"{e}.md" for e in entries}):
        problems.append(f"{extra}: no registry entry")
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tokshift_zoo.model_cards", description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=str(CARDS_DIR), help="the cards folder (default: %(default)s)")
    parser.add_argument("--check", action="store_true", help="only report missing or outdated cards (exit 1)")
    args = parser.parse_args(argv)
    if args.check:
        problems = check_cards(args.out)
        for problem in problems:
            print(problem)
        return 1 if problems else 0
    for path in write_cards(args.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
