"""The commands of models, weights, conversion and publishing: ``models``, ``download``, ``convert``, ``publish``."""

from __future__ import annotations

import argparse
import json
import sys

from .options import _json_object
from .publish import add_dataset_option


def _cmd_models(args: argparse.Namespace) -> int:
    from ..flops import model_table
    from ..models.registry import list_models

    rows = model_table(args.filter)
    if not rows:
        if args.json:
            print("[]")
        known = ", ".join(list_models())
        print(f"tokshift-zoo models: error: no model matches {args.filter!r}; the models: {known}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    columns = ["name", "params_m", "gflops", "gflops_full", "paper_gflops", "frames", "resolution", "tags"]
    table = [[str(row[c]) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in table)) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    for r in table:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)))
    return 0


def _cmd_download(args: argparse.Namespace) -> int:
    from ..weights import download

    print(download(args.name).path)
    return 0


def _cmd_convert(args: argparse.Namespace) -> int:
    from ..convert import convert, publish
    from ..publish import publish_run
    from ..weights import is_training_output

    result = convert(args.src, args.dst, args.model, model_kwargs=args.model_kwargs or None, tag=args.tag)
    print(f"{result.path} ({result.architecture}, sha256 {result.sha256})")
    if args.push and is_training_output(args.src):  # a fine-tuned model: published with its run and card
        print(publish_run(args.src, args.push, dataset=args.dataset or "", private=args.private or None).commit_url)
        print(f'load it with tokshift_zoo.load("hf-hub:{args.push}")')
    elif args.push:
        print(publish(result.path, args.push, private=args.private or None))
        print(f'load it with tokshift_zoo.create_model("hf-hub:{args.push}", pretrained=True)')
    return 0


def _cmd_publish(args: argparse.Namespace) -> int:
    from ..publish import publish_releases

    published = publish_releases(args.org, args.models or None, private=args.private or None)
    for release in published:
        print(f"{release.repo_id}: {release.commit_url}", file=sys.stderr)
    print("# paste into K400_HUB_COPIES in tokshift_zoo/models/entries.py:")
    for release in published:
        print(release.registry_line())
    return 0


def add_parsers(commands: argparse._SubParsersAction) -> None:
    """The parsers of ``models``, ``download``, ``convert`` and ``publish``."""
    models = commands.add_parser("models", help="list the zoo's models with params, FLOPs and weights")
    models.add_argument(
        "--filter", default="", help="glob on model names, e.g. 'tokshift_large*' (default: every model)"
    )
    models.add_argument("--json", action="store_true", help="print JSON instead of a table")
    models.set_defaults(func=_cmd_models)

    download = commands.add_parser(
        "download",
        help="fetch and verify a model's weights into the cache; print the local path",
        description="Download NAME[.TAG] or hf-hub:ORG/REPO[@REVISION] into the Hugging Face cache (plain URLs and "
        "the authors' Kinetics-400 releases, converted: beside it), check its sha256, and print where it is. "
        "Afterwards HF_HUB_OFFLINE=1 loads it with no network.",
    )
    download.add_argument("name", help="NAME[.TAG] (see `tokshift-zoo models`) or hf-hub:ORG/REPO[@REVISION]")
    download.set_defaults(func=_cmd_download)

    convert = commands.add_parser(
        "convert",
        help="convert an authors'-format .pth to the zoo's safetensors (optionally publish it)",
        description="Convert the authors' release (torch.save of {'epoch', 'state_dict', ...}) to the zoo's "
        "safetensors, with the architecture and the source's sha256 in its metadata. Keys with no place in the "
        "model are refused and listed; DST is written atomically.",
    )
    convert.add_argument(
        "src",
        help="the authors' .pth (read with weights_only=True), or a training run's best.safetensors (copied with its "
        "classes; --push then publishes the run as publish-run does)",
    )
    convert.add_argument("dst", help="the .safetensors to write")
    convert.add_argument(
        "--model", help="the architecture (default: detected from the shapes, else tokshift_base16_224_8f)"
    )
    convert.add_argument(
        "--model-kwargs", type=_json_object, default={}, help="builder overrides as JSON, e.g. '{\"depth\": 6}'"
    )
    convert.add_argument("--tag", default="k400", help="registry tag whose preprocessing and labels apply")
    convert.add_argument("--push", metavar="ORG/REPO", help="then publish model.safetensors, config.json, README.md")
    convert.add_argument("--private", action="store_true", help="with --push: create the repo private")
    add_dataset_option(convert, required=False)
    convert.set_defaults(func=_cmd_convert)

    publish = commands.add_parser(
        "publish",
        help="(maintainers) push the paper's Kinetics-400 releases to ORG/NAME on the hub; print the registry lines",
        description="Fetch each of the paper's Kinetics-400 releases (hub copy, TOKSHIFT_ZOO_AUTHORS_MIRROR or the "
        "authors' Google Drive), convert it, push model.safetensors, config.json and the model card to ORG/NAME "
        "(endpoint and token: huggingface_hub's HF_ENDPOINT, HF_TOKEN), and print the K400_HUB_COPIES lines (hub id "
        "and sha256 pin) to paste into the registry.",
    )
    publish.add_argument("org", help="the hub user or organisation")
    publish.add_argument("--models", nargs="+", metavar="NAME", help="only these architectures (default: all seven)")
    publish.add_argument("--private", action="store_true", help="create the repos private")
    publish.set_defaults(func=_cmd_publish)
