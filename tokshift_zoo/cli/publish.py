"""The command that shares a fine-tuned model: ``publish-run`` (a training run -> a hub repo timm and the zoo load)."""

from __future__ import annotations

import argparse
import sys

from ..errors import ConfigError


def _cmd_publish_run(args: argparse.Namespace) -> int:
    from ..publish import publish_run, stage_run

    options = dict(dataset=args.dataset, install=args.install, license=args.license, card_template=args.card_template)
    if args.dry_run:
        if not args.stage:
            raise ConfigError("--dry-run writes the upload set only: give the folder to write with --stage DIR")
        staged = stage_run(args.run_dir, args.stage, repo_id=args.repo, **options)
        print(staged)
        print(f'nothing uploaded; load it with tokshift_zoo.load("local-dir:{staged.resolve()}")')
        return 0
    published = publish_run(args.run_dir, args.repo, private=args.private or None, stage_dir=args.stage, **options)
    for name in published.files:
        print(f"  {name}", file=sys.stderr)
    print(published.commit_url)
    print(
        f'load it with tokshift_zoo.load("hf-hub:{args.repo}") or timm.create_model("hf-hub:{args.repo}", '
        "pretrained=True) after import tokshift_zoo"
    )
    return 0


def add_dataset_option(parser: argparse.ArgumentParser, required: bool) -> None:
    """``--dataset NAME``: what the fine-tuned model was trained on, for its card."""
    parser.add_argument(
        "--dataset",
        required=required,
        metavar="NAME",
        help="the dataset the run trained and validated on, as the card should name it (a hub dataset id if it has "
        "one)" + ("" if required else "; needed when SRC is a training run's best.safetensors"),
    )


def add_parsers(commands: argparse._SubParsersAction) -> None:
    """The parser of ``publish-run``."""
    run = commands.add_parser(
        "publish-run",
        help="publish a fine-tuned model (a `train` output folder) to ORG/REPO on the hub, with its card",
        description="Upload what a training run made, in one commit: model.safetensors (the run's best weights), "
        "timm's config.json with the architecture, model arguments, class names and preprocessing (the zoo's "
        "video_cfg and preprocessing), README.md (a model card about this model: base model, dataset, the run's "
        "validation figures, how to install and load it) and training/ (the run's settings file and "
        "metrics.jsonl, as the run wrote them, local paths included). Afterwards timm.create_model("
        '"hf-hub:ORG/REPO", pretrained=True) and tokshift_zoo.load("hf-hub:ORG/REPO") load it anywhere. Endpoint '
        "and token: huggingface_hub's HF_ENDPOINT, HF_TOKEN (or `hf auth login`).",
    )
    run.add_argument("run_dir", help="the run folder (tokshift-zoo train --output), or its best.safetensors")
    run.add_argument("repo", metavar="ORG/REPO", help="the hub repo (created if needed)")
    add_dataset_option(run, required=True)
    run.add_argument(
        "--install",
        metavar="SPEC",
        help="what the card's `pip install` line installs (default: the git URL and commit this copy was installed "
        "from, if pip recorded one, else tokshift-zoo>= this version; e.g. 'tokshift-zoo @ git+https://...@v0.1.0')",
    )
    run.add_argument("--license", metavar="ID", help="the card's licence id (default: the base model's, if known)")
    run.add_argument("--card-template", metavar="FILE", help="a Jinja model card template instead of the zoo's")
    run.add_argument(
        "--stage",
        metavar="DIR",
        help="write the upload set to DIR and keep it (a local-dir: model) instead of a temporary folder",
    )
    run.add_argument("--dry-run", action="store_true", help="with --stage: write the upload set only, upload nothing")
    run.add_argument("--private", action="store_true", help="create the repo private")
    run.set_defaults(func=_cmd_publish_run)
