"""The ``tokshift-zoo`` command: argument parsing and printing only; each command calls a library function.

Conventions every command follows: options shared between commands come from one ``_add_*_options`` function
each (a new command reuses them); defaults come from the library (``TrainConfig``, ``DEFAULT_MODEL``) and
``--help`` shows them; every error is one line, ``tokshift-zoo CMD: error: ...``; exit code 0 on success, 2 for
a usage error (bad arguments, unknown names, a bad list: ``ConfigError``; a device this machine lacks:
``DeviceError``), 1 for a failure (weights that cannot be had or verified, unreadable videos). Importing this
module imports no torch, so ``--help`` is quick.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from . import __version__
from .errors import ConfigError, DeviceError, TokShiftZooError, VideoError

AMP_CHOICES = ["auto", "bf16", "fp16", "none"]  # devices.AMP_CHOICES (that module imports torch); a test compares

Command = Callable[[argparse.Namespace], int]

_DESCRIPTION = """\
TokShift video transformers (Zhang, Hao, Ngo, ACM MM 2021): the paper's models with their preprocessing and
verified weights; classify, evaluate and fine-tune on your own videos.

Start here:
  tokshift-zoo demo                         write a synthetic clip and classify it (no network needed)
  tokshift-zoo predict clip.mp4 --views 1x3 classify your own videos (default: the bundled demo model)
  tokshift-zoo models                       the zoo's models, their cost and the weights each tag has
  tokshift-zoo COMMAND --help               a command's options, with their defaults
"""


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's default, unless its help already says it or there is none to show (None, a flag)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        nothing = action.default is None or action.default is False or action.default in ("", argparse.SUPPRESS)
        if "default" in text or nothing or not action.option_strings:
            return action.help
        return super()._get_help_string(action)


class _TopHelpFormatter(_HelpFormatter, argparse.RawDescriptionHelpFormatter):
    """The top-level help: its description is laid out by hand."""


class _Parser(argparse.ArgumentParser):
    """argparse with defaults in ``--help`` and one-line usage errors: ``tokshift-zoo CMD: error: ...``, exit 2."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


_VIEWS = re.compile(r"\s*(\d+)\s*[xX]\s*(\d+)\s*")  # video.sampling.parse_views's rule (that module imports torch)


def _views(text: str) -> str:
    """argparse type of ``--views``: CLIPSxCROPS, two positive integers, crops 1 or 3."""
    match = _VIEWS.fullmatch(text)
    if match is None or int(match[1]) < 1 or int(match[2]) not in (1, 3):
        raise argparse.ArgumentTypeError(
            f"expected CLIPSxCROPS, e.g. 1x1, 1x3 or the paper's 10x3 (crops: 1 or 3), got {text!r}"
        )
    return text


def _weight_file(text: str) -> str:
    """argparse type of ``--checkpoint``: an existing file; for a training folder, the files in it to choose."""
    path = Path(text)
    if path.is_file():
        return text
    if path.is_dir():
        found = sorted(p.name for p in [*path.glob("*.safetensors"), *path.glob("checkpoint-epoch*.pt")])
        choose = f"give one of its weight files: {', '.join(found)}" if found else "it holds no weight file"
        raise argparse.ArgumentTypeError(f"{text} is a folder; {choose}")
    raise argparse.ArgumentTypeError(f"no file at {text}")


def _json_object(text: str) -> dict[str, Any]:
    """argparse type of ``--model-kwargs``: a JSON object."""
    try:
        value = json.loads(text) if text else {}
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"expected a JSON object, e.g. '{{\"num_classes\": 174}}': {err}") from err
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r}")
    return value


# --- option blocks shared between commands ---------------------------------------------------------------


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    """--model, --checkpoint, --model-kwargs: which model, with which weights."""
    parser.add_argument(
        "--model",
        help="NAME[.TAG] or hf-hub:ORG/REPO (default: the architecture a zoo --checkpoint names, else the bundled "
        "demo model)",
    )
    parser.add_argument(
        "--checkpoint",
        type=_weight_file,
        help="a local weight file: zoo safetensors (convert's, the trainer's best.safetensors), the trainer's "
        "checkpoint-epochNNN.pt, the authors' .pth, Google .npz",
    )
    parser.add_argument(
        "--model-kwargs",
        type=_json_object,
        default={},
        help="model overrides as JSON, e.g. '{\"num_classes\": 174}'",
    )


def _add_device_options(parser: argparse.ArgumentParser, amp_default: str = "none") -> None:
    """--device and --amp: where the model runs and whether autocast is on."""
    parser.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda, cuda:1 ...")
    parser.add_argument(
        "--amp",
        choices=AMP_CHOICES,
        default=amp_default,
        help=f"autocast (auto: bf16 on CUDA, off on CPU; default {amp_default})",
    )


def _add_view_options(parser: argparse.ArgumentParser) -> None:
    """--views and --batch-size: the test views of each video and how many go through at once."""
    parser.add_argument("--views", type=_views, default="1x1", help="CLIPSxCROPS per video, e.g. 10x3 (the paper's)")
    parser.add_argument("--batch-size", type=int, default=8, help="views per forward pass")


def _add_runtime_options(parser: argparse.ArgumentParser) -> None:
    """--runtime and --int8: eager PyTorch, or the model exported to ONNX and run by ONNX Runtime."""
    parser.add_argument(
        "--runtime",
        choices=["eager", "onnxruntime"],
        default="eager",
        help="eager PyTorch, or the model exported to ONNX when loaded and run by ONNX Runtime on CPU (needs the "
        "[onnx] extra); JSON output says which ran",
    )
    parser.add_argument("--int8", action="store_true", help="with --runtime onnxruntime: dynamic int8 quantisation")


def _add_list_options(parser: argparse.ArgumentParser, *names: str) -> None:
    """Video lists (``--list``, or ``--train-list``/``--val-list``) with --data-root."""
    for name in names:
        optional = name == "val-list"
        parser.add_argument(
            f"--{name}",
            required=not optional,
            help="'path label' lines, a path,label CSV (labels with spaces) or a frame-folder list"
            + ("; without it: no validation, and best.safetensors is the last epoch's weights" if optional else ""),
        )
    parser.add_argument(
        "--data-root", default="", help="folder the list paths are relative to (default: the current folder)"
    )


def _add_video_input_options(parser: argparse.ArgumentParser) -> None:
    """VIDEO ... and/or --list FILE --data-root DIR; --num-workers, --no-progress: many videos, decoded by workers."""
    parser.add_argument("videos", nargs="*", metavar="VIDEO", help="video files or frame folders")
    parser.add_argument("--list", help="also the videos of a list ('path label' lines, path,label CSV, frame folders)")
    parser.add_argument("--data-root", default="", help="folder the list paths are relative to")
    _add_loader_options(parser)


def _add_loader_options(parser: argparse.ArgumentParser) -> None:
    """--num-workers and --no-progress: decoding processes (per process under torchrun), the progress bar."""
    parser.add_argument("--num-workers", type=int, default=0, help="decoding processes (per process under torchrun)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _add_timeline_options(parser: argparse.ArgumentParser) -> None:
    """--timeline SECONDS, --window, --csv, --plot: sliding windows over long videos."""
    parser.add_argument(
        "--timeline",
        type=float,
        metavar="SECONDS",
        help="score sliding windows starting every SECONDS instead of the whole video; one JSON line per window",
    )
    parser.add_argument("--window", type=float, metavar="SECONDS", help="timeline window (default: the clip span)")
    parser.add_argument("--csv", action="store_true", help="timeline as CSV: video,window,start_s,end_s,rank,...")
    parser.add_argument("--plot", metavar="PNG", help="timeline: plot the top classes' scores over time (matplotlib)")


def _input_videos(args: argparse.Namespace) -> list[str]:
    """The videos named on the command line, then those of ``--list``."""
    from .train.datasets import class_names_from_lists, read_video_list

    videos = list(args.videos)
    if args.list:
        labels = class_names_from_lists(args.list)
        videos += [str(sample.path) for sample in read_video_list(args.list, args.data_root, label_names=labels)]
    if not videos:
        raise ConfigError("expected VIDEO arguments or --list FILE, got neither")
    return videos


def _load_model(args: argparse.Namespace) -> Any:
    """The ready model the inference options name; with ``--runtime onnxruntime``, exported and loaded in it."""
    from .distributed import inference_device
    from .models.registry import DEFAULT_MODEL
    from .ready import load

    runtime = getattr(args, "runtime", "eager")
    if getattr(args, "int8", False) and runtime == "eager":
        raise ConfigError("--int8 is ONNX Runtime's dynamic quantisation: it needs --runtime onnxruntime")
    model = load(
        args.model or (None if args.checkpoint else DEFAULT_MODEL),
        device=inference_device(args.device) if runtime == "eager" else "cpu",  # torchrun: the local GPU
        checkpoint_path=args.checkpoint,
        views=args.views,
        **args.model_kwargs,
    )
    if runtime == "eager":
        return model
    from .export import runtime_model

    return runtime_model(model, runtime, int8=args.int8)


def _runtime_label(args: argparse.Namespace) -> str:
    return args.runtime + ("-int8" if args.int8 else "")


def _device_of(model: Any) -> Any:
    """Where the model runs: its parameters' device; CPU for a model run by ONNX Runtime (it has none)."""
    param = next(model.parameters(), None)
    return param.device if param is not None else "cpu"


def _model_label(args: argparse.Namespace, model: Any) -> str:
    return args.checkpoint or args.model or model.pretrained_cfg.get("architecture")


# --- models, weights ---------------------------------------------------------------------------------------


def _cmd_models(args: argparse.Namespace) -> int:
    from .flops import model_table
    from .models.registry import list_models

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
    from .weights import download

    print(download(args.name).path)
    return 0


def _cmd_convert(args: argparse.Namespace) -> int:
    from .convert import convert, publish

    result = convert(args.src, args.dst, args.model, model_kwargs=args.model_kwargs or None, tag=args.tag)
    print(f"{result.path} ({result.architecture}, sha256 {result.sha256})")
    if args.push:
        print(publish(result.path, args.push, private=args.private or None))
        print(f'load it with tokshift_zoo.create_model("hf-hub:{args.push}", pretrained=True)')
    return 0


def _cmd_publish(args: argparse.Namespace) -> int:
    from .publish import publish_releases

    published = publish_releases(args.org, args.models or None, private=args.private or None)
    for release in published:
        print(f"{release.repo_id}: {release.commit_url}", file=sys.stderr)
    print("# paste into K400_HUB_COPIES in tokshift_zoo/models/entries.py:")
    for release in published:
        print(release.registry_line())
    return 0


def _add_models_parsers(commands: argparse._SubParsersAction) -> None:
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
    convert.add_argument("src", help="the authors' .pth (read with weights_only=True)")
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


# --- inference ---------------------------------------------------------------------------------------------


def _cmd_predict(args: argparse.Namespace) -> int:
    from .distributed import process_group
    from .inference import predict_videos

    videos = _input_videos(args)
    model = _load_model(args)
    if args.timeline is not None:
        return _predict_timelines(args, model, videos)
    name = _model_label(args, model)
    show_bar = (len(videos) > 1 or args.views != "1x1") and not args.no_progress
    with process_group(_device_of(model)):  # under torchrun: each rank its share
        results = predict_videos(
            model, videos, args.views, args.topk, args.batch_size, args.num_workers, show_bar, amp=args.amp
        )
    if results is None:  # not rank 0: rank 0 prints every answer
        return 0
    for result in results:
        if "error" in result:  # the other videos go on
            print(f"tokshift-zoo predict: error: {result['error']}", file=sys.stderr)
        if args.json:
            print(json.dumps({"video": result["video"], "model": name, "runtime": _runtime_label(args), **result}))
        elif "error" not in result:
            print(result["video"])
            for p in result["predictions"]:
                print(f"  {p['score']:7.2%}  {p['label']}")
    return 1 if any("error" in result for result in results) else 0


def _predict_timelines(args: argparse.Namespace, model: Any, videos: list[str]) -> int:
    import importlib.util
    from pathlib import Path

    from .distributed import gather_to_main, process_group, share_of_items
    from .timeline import PLOT_EXTRA, plot_timeline, timeline, timeline_csv
    from .video.sampling import parse_views

    clips, crops = parse_views(args.views)
    if clips != 1:
        raise ConfigError(f"with --timeline each window is one clip: --views 1x1 or 1x3, got {args.views!r}")
    if args.plot and importlib.util.find_spec("matplotlib") is None:
        raise ConfigError(f"--plot needs matplotlib: {PLOT_EXTRA}")
    with process_group(_device_of(model)):  # under torchrun: each rank its share of the videos
        done = []
        for n in share_of_items(videos):
            try:
                line = timeline(model, videos[n], args.timeline, args.window, crops, args.batch_size, amp=args.amp)
            except (VideoError, IndexError, OSError) as err:  # the other videos go on
                done.append((n, None, str(err)))
                continue
            if args.plot:
                plot = Path(args.plot)
                if len(videos) > 1:
                    plot = plot.with_name(f"{plot.stem}-{Path(videos[n]).stem}{plot.suffix}")
                print(f"wrote {plot_timeline(line, plot)}", file=sys.stderr)
            done.append((n, line.rows(args.topk), None))
        gathered = gather_to_main(done)
    if gathered is None:  # not rank 0
        return 0
    header = True
    for _, rows, error in sorted(item for part in gathered for item in part):
        if error is not None:
            print(f"tokshift-zoo predict: error: {error}", file=sys.stderr)
        elif args.csv:
            text = timeline_csv(rows)
            print(text if header else text.split("\n", 1)[1], end="")  # one header line for all videos
            header = False
        else:
            print("\n".join(json.dumps(row) for row in rows))
    return 1 if any(error is not None for part in gathered for _, _, error in part) else 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from .distributed import process_group
    from .inference import class_names, evaluate
    from .train.datasets import read_label_names, read_video_list

    model = _load_model(args)
    labels = read_label_names(args.labels) if args.labels else class_names(model)
    samples = read_video_list(args.list, args.data_root, label_names=labels, num_classes=model.num_classes)
    with process_group(_device_of(model)):  # under torchrun: each rank its share, merged on rank 0
        result = evaluate(
            model,
            [(str(s.path), s.label) for s in samples],
            views=args.views,
            batch_size=args.batch_size,
            num_workers=args.num_workers,
            progress=not args.no_progress,
            amp=args.amp,
        )
    if result is None:  # not rank 0
        return 0
    result["model"] = _model_label(args, model)
    result["runtime"] = _runtime_label(args)
    print(json.dumps(result, indent=2))
    for failure in result["failed"]:
        print(f"tokshift-zoo evaluate: could not read {failure}", file=sys.stderr)
    return 1 if result["failed"] else 0


def _add_inference_parsers(commands: argparse._SubParsersAction) -> None:
    predict = commands.add_parser("predict", help="classify video files; labels with scores")
    for add in (_add_model_options, _add_view_options, _add_device_options, _add_runtime_options):
        add(predict)
    _add_video_input_options(predict)
    predict.add_argument("--topk", type=int, default=5, help="classes to print per video (per window)")
    predict.add_argument("--json", action="store_true", help='one JSON object per video: {"video", "model", ...}')
    _add_timeline_options(predict)
    predict.set_defaults(func=_cmd_predict)

    evaluate = commands.add_parser("evaluate", help="top-1, top-5 and mean per-class accuracy on a video list")
    for add in (_add_model_options, _add_view_options, _add_device_options, _add_runtime_options):
        add(evaluate)
    _add_list_options(evaluate, "list")
    evaluate.add_argument("--labels", help="class names, one per line (default: the model's)")
    _add_loader_options(evaluate)
    evaluate.set_defaults(func=_cmd_evaluate)


def _cmd_embed(args: argparse.Namespace) -> int:
    from .embeddings import embed

    result = embed(
        _input_videos(args),
        args.output,
        model=args.model,
        checkpoint=args.checkpoint,
        views=args.views,
        per_view=args.per_view,
        layer=args.layer,
        dtype=args.dtype,
        batch_size=args.batch_size,
        num_workers=args.num_workers,
        shard_size=args.shard_size,
        device=args.device,
        progress=not args.no_progress,
        amp=args.amp,
        **args.model_kwargs,
    )
    if result is None:  # not rank 0
        return 0
    print(json.dumps(result, indent=2))
    return 1 if result["failed"] else 0


def _add_embed_parser(commands: argparse._SubParsersAction) -> None:
    embed = commands.add_parser(
        "embed",
        help="clip embeddings of videos to safetensors shards with a JSONL index (resumable)",
        description="Write each video's pre-logits embedding (the mean over its views, or each view with "
        "--per-view) to OUTPUT/shards/*.safetensors, with OUTPUT/index.jsonl and OUTPUT/manifest.json. Rerunning "
        "the same command skips the videos done. Runs unchanged under torchrun --nproc-per-node N.",
    )
    for add in (_add_video_input_options, _add_model_options, _add_view_options, _add_device_options):
        add(embed)
    embed.add_argument("--output", required=True, help="folder for the shards, index.jsonl and manifest.json")
    embed.add_argument("--per-view", action="store_true", help="keep each view's embedding: (views, D) per video")
    embed.add_argument("--layer", type=int, help="the class token after block K (0-based, -1 the last) instead")
    embed.add_argument("--dtype", choices=["float32", "float16"], default="float32", help="storage dtype")
    embed.add_argument("--shard-size", type=int, default=256, help="videos per shard (what a killed run can lose)")
    embed.set_defaults(func=_cmd_embed)


# --- export ------------------------------------------------------------------------------------------------


def _cmd_export(args: argparse.Namespace) -> int:
    from .export import export_model
    from .ready import load

    model = load(args.name, device="cpu", checkpoint_path=args.checkpoint, **args.model_kwargs)
    result = export_model(
        model,
        args.out,
        args.format,
        int8=args.int8,
        frames=args.frames,
        dynamic_batch=args.batch == "dynamic",
        check_clips=args.check_clips,
        opset=args.opset,
    )
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    meta = result["metadata"]
    print(
        f"wrote {result['path']} ({result['format']}{', int8' if result['int8'] else ''}, {result['size_mb']} MB, "
        f"exported in {result['export_s']} s)"
    )
    print(f"  input {meta['input']['name']} {meta['input']['shape']} float32; outputs logits, embedding")
    print(
        f"  preprocessing: {meta['frames']} frames (trained on {meta['trained_frames']}, {meta['sampling']} sampling"
        f"{', every ' + str(meta['frame_stride']) + ' frames' if meta['sampling'] == 'dense' else ''}), "
        f"{meta['size']} crops, mean {meta['mean']} std {meta['std']}, views {meta['views']}, "
        f"{len(meta['labels']) if meta['labels'] else 0} labels"
    )
    print(
        f"  against eager: max |logit diff| {result['max_abs_diff']:.3g} on one clip; top-1 agreement "
        f"{result['top1_agreement']:g}% and min embedding cosine {result['embedding_cosine_min']:.6f} on "
        f"{result['check_clips']} clips"
    )
    return 0


def _add_export_parser(commands: argparse._SubParsersAction) -> None:
    export = commands.add_parser(
        "export",
        help="export a model to ONNX or torch.export (.pt2) with its preprocessing, checked against eager",
        description="Export NAME[.TAG] (weights from the usual sources, or --checkpoint) to OUT. The artefact "
        "carries the preprocessing (frames, stride, size, mean/std, views) and the labels as metadata (ONNX "
        "metadata_props / the .pt2 extra file tokshift_zoo.json); input clips (B, 3, T, H, W), outputs logits and "
        "embedding. Needs the [onnx] extra for ONNX.",
    )
    export.add_argument("name", help="NAME[.TAG] or hf-hub:ORG/REPO (with --checkpoint, the architecture)")
    export.add_argument("out", help="the file to write (.onnx or .pt2)")
    export.add_argument("--checkpoint", type=_weight_file, help="a local weight file instead of the tag's weights")
    export.add_argument("--model-kwargs", type=_json_object, default={}, help="model overrides as JSON")
    export.add_argument("--format", choices=["onnx", "pt2"], help="default: from OUT's suffix (.pt2, else onnx)")
    export.add_argument("--int8", action="store_true", help="ONNX: dynamic int8 quantisation of the matrix products")
    export.add_argument("--frames", default=None, help="T of the input, or 'dynamic' (default: the model's own)")
    export.add_argument("--batch", choices=["1", "dynamic"], default="1", help="batch size of the input")
    export.add_argument("--check-clips", type=int, default=8, help="random clips for the top-1 agreement check")
    export.add_argument(
        "--opset",
        type=int,
        default=23,
        help="ONNX opset (default 23: one Attention node per block; 18-22 for runtimes without it)",
    )
    export.add_argument("--json", action="store_true", help="print the result and metadata as JSON")
    export.set_defaults(func=_cmd_export)


# --- training ----------------------------------------------------------------------------------------------


def _cmd_train(args: argparse.Namespace) -> int:
    from .train import TrainConfig, train

    fields = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig) if hasattr(args, f.name)}
    result = train(TrainConfig(**fields))
    if os.environ.get("RANK", "0") == "0":
        print(json.dumps(result, indent=2))
    return 0


# TrainConfig field -> (help, extra argparse keywords); the default always comes from TrainConfig
_TRAIN_HELP: dict[str, tuple[str, dict[str, Any]]] = {
    "epochs": ("epochs to train", {}),
    "batch_size": ("clips per process and step", {}),
    "accum_steps": ("gradient accumulation steps", {}),
    "optimizer": ("sgd: step lr; adamw: cosine lr", {"choices": ["sgd", "adamw"]}),
    "lr": ("learning rate (default 0.1 for sgd, 1e-4 for adamw)", {}),
    "weight_decay": ("weight decay (default 0 for sgd, 0.05 for adamw)", {}),
    "momentum": ("sgd momentum", {}),
    "lr_steps": ("sgd: epochs where the lr is multiplied by --lr-gamma", {"nargs": "+"}),
    "lr_gamma": ("sgd: the lr factor at each of --lr-steps", {}),
    "warmup_epochs": ("linear warm-up epochs", {}),
    "min_lr": ("adamw: the cosine schedule's floor", {}),
    "label_smoothing": ("label smoothing of the loss", {}),
    "clip_grad": ("max gradient norm (0: off)", {}),
    "amp": ("autocast: auto is bf16 on GPU, off on CPU", {"choices": AMP_CHOICES}),
    "num_workers": ("data-loading processes per training process", {}),
    "device": ("auto (CUDA if present), cpu, cuda, cuda:1 ...", {}),
    "seed": ("random seed", {}),
    "resume": ("'auto' (the newest checkpoint in --output, if any) or a checkpoint path", {}),
    "keep_checkpoints": ("epoch checkpoints kept", {}),
}
_TRAIN_FLAGS = {
    "fsdp": "shard the model with FSDP (for the Large models)",
    "grad_checkpointing": "recompute blocks to save memory",
    "deterministic": "deterministic kernels (slower)",
}


def _add_train_parser(commands: argparse._SubParsersAction) -> None:
    from .train.config import TrainConfig

    train = commands.add_parser(
        "train",
        help="fine-tune a model on a video list (one process, or any number under torchrun)",
        description="Fine-tune a zoo model. Defaults are the paper's recipe: SGD momentum 0.9, lr 0.1 divided by "
        "10 at epochs 10 and 15 of 18, label smoothing 0.01, gradient clipping 1.0. Run under `torchrun "
        "--nproc_per_node N -m tokshift_zoo.cli train ...` for DistributedDataParallel (or --fsdp).",
    )
    train.add_argument("--model", required=True, help="NAME (random init), NAME.TAG (its weights) or hf-hub:ORG/REPO")
    train.add_argument(
        "--model-kwargs",
        type=_json_object,
        default={},
        help="model overrides as JSON, e.g. '{\"drop_path_rate\": 0.1}'",
    )
    train.add_argument(
        "--checkpoint", type=_weight_file, help="start from this local weight file instead of the tag's weights"
    )
    _add_list_options(train, "train-list", "val-list")
    train.add_argument("--output", required=True, help="folder for checkpoints, best.safetensors and metrics.jsonl")
    train.add_argument(
        "--labels",
        help="class names, one per line in index order (default: the weights' names if they cover the names in "
        "the lists, else the lists' names sorted)",
    )
    train.add_argument("--num-classes", type=int, help="class count when the lists give integer labels")
    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    for name, (help_text, extra) in _TRAIN_HELP.items():
        default = fields[name].default
        value_type = type(default[0]) if isinstance(default, tuple) else type(default)
        if default is None:  # lr, weight_decay: floats; resume: a string
            value_type = str if name == "resume" else float
        default = list(default) if isinstance(default, tuple) else default
        shown = "" if default is None else f" (default: {default})"
        train.add_argument(
            f"--{name.replace('_', '-')}", type=value_type, default=default, help=help_text + shown, **extra
        )
    for name, help_text in _TRAIN_FLAGS.items():
        train.add_argument(f"--{name.replace('_', '-')}", action="store_true", help=help_text)
    train.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    train.set_defaults(func=_cmd_train)


# --- benchmark ---------------------------------------------------------------------------------------------


def _cmd_benchmark(args: argparse.Namespace) -> int:
    from .benchmark import SUITES, format_table, run_benchmarks

    suites = [s.strip() for s in args.suite.split(",") if s.strip()]
    suites = list(SUITES) if "all" in suites else suites
    unknown = sorted(set(suites) - set(SUITES))
    dtypes = [d.strip() for d in args.dtypes.split(",")] if args.dtypes else None
    if unknown or any(d not in ("fp32", "bf16", "fp16") for d in dtypes or ()):
        message = f"suites are {','.join(SUITES)},all; dtypes fp32,bf16,fp16"
        print(f"tokshift-zoo benchmark: error: {message}", file=sys.stderr)
        return 2

    def report(suite: str, result: object) -> None:
        print(f"\n== {suite}")
        if isinstance(result, dict) and suite == "shift":
            print(format_table([result["models"]]))
            print(
                f"\nthe shift alone at {result['shift_shape']}; matches the authors' result: "
                f"{result['matches_authors']}; class-token channels moved: {result['class_token_channels']} "
                f"of {result['tokens_elements']} elements"
            )
            print(format_table(result["shift"]))
        elif isinstance(result, dict):
            for key, value in result.items():
                if isinstance(value, list) and value and isinstance(value[0], dict):
                    print(f"-- {key}\n{format_table(value)}")
                else:
                    print(f"{key}: {value}")
        else:
            print(format_table(result))
        sys.stdout.flush()

    try:
        results = run_benchmarks(
            suites,
            models=args.models,
            device=args.device,
            dtypes=dtypes,
            compile=args.compile,
            batch_size=args.batch_size,
            num_frames=args.frames,
            reps=args.reps,
            video=args.video,
            video_seconds=args.video_seconds,
            workers=[int(w) for w in args.workers.split(",")],
            workdir=args.workdir,
            report=report,
        )
    except (RuntimeError, ValueError) as err:
        print(f"tokshift-zoo benchmark: error: {err}", file=sys.stderr)
        return 1
    if args.json:
        with open(args.json, "w", encoding="utf-8") as file:
            json.dump(results, file, indent=2)
        print(f"\nwrote {args.json}")
    return 0


def _add_benchmark_parser(commands: argparse._SubParsersAction) -> None:
    bench = commands.add_parser(
        "benchmark",
        help="speed, FLOP rate, the shift's cost, attention, decoding and memory, each against a same-run reference",
        description="Each figure is measured in rounds interleaved with its reference (a GEMM of the model's MLP "
        "shape, timm's plain ViT on the same frames, decoding every frame, ...) and reported as a ratio, so it "
        "survives a busy machine. Defaults: on CPU the Base-224 8-frame models in fp32, batch 1; on GPU all "
        "models, fp32 and bf16, batch 8.",
    )
    bench.add_argument("--models", help="glob on zoo model names (default: '*base16_224_8f' on CPU, '*' on GPU)")
    bench.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="where the models run")
    bench.add_argument("--dtypes", help="comma list of fp32, bf16, fp16 (default: fp32 on CPU, fp32,bf16 on GPU)")
    bench.add_argument("--compile", action="store_true", help="also time torch.compile'd models")
    bench.add_argument("--batch-size", type=int, help="clips per forward (default: 1 on CPU, 8 on GPU)")
    bench.add_argument("--frames", type=int, help="frames per clip (default: each model's own)")
    bench.add_argument("--reps", type=int, help="measurement rounds (default: 3 on CPU, 10 on GPU; 2 for decode)")
    bench.add_argument(
        "--suite",
        default="model,breakdown,shift,attention",  # benchmark.DEFAULT_SUITES (not imported: torch is slow to load)
        help="comma list of model,breakdown,shift,attention,decode,loader,memory,runtime,scale, or all (default: "
        "the first four; all takes 10-20 minutes on two CPU cores, the first time 3 more to write the synthetic "
        "videos, and scale 10-20 more; runtime needs the [onnx] extra)",
    )
    bench.add_argument("--video", help="decode suite: a long video file (default: write a synthetic 720p30 one)")
    bench.add_argument("--video-seconds", type=float, default=300.0, help="length of the synthetic video")
    bench.add_argument("--workdir", help="folder for the synthetic videos (default ~/.cache/tokshift_zoo/benchmark)")
    bench.add_argument("--workers", default="0,1,2", help="loader suite: comma list of worker counts")
    bench.add_argument("--json", metavar="OUT", help="also write every figure and the environment to this file")
    bench.set_defaults(func=_cmd_benchmark)


# --- demo --------------------------------------------------------------------------------------------------


def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo import write_demo_clip
    from .inference import predict
    from .models.registry import DEFAULT_MODEL
    from .ready import load

    os.makedirs(args.output, exist_ok=True)
    path = os.path.join(args.output, "demo_clip.mp4")
    truth = write_demo_clip(path, args.direction, args.seed)
    model = load(DEFAULT_MODEL, device=args.device)
    predictions = predict(model, path, views="1x3", topk=4)
    print(f"wrote {path}: a synthetic clip of an object {truth.replace('_', ' ')}")
    print(f"{DEFAULT_MODEL} says:")
    for p in predictions:
        print(f"  {p['score']:7.2%}  {p['label']}")
    return 0


def _cmd_train_demo(args: argparse.Namespace) -> int:
    from .demo import train_demo_model

    for fold_div in (4, 0) if args.with_baseline else (4,):
        result = train_demo_model(args.workdir, fold_div=fold_div, install=args.install and fold_div != 0)
        print(json.dumps(result, indent=2))
    return 0


def _add_demo_parsers(commands: argparse._SubParsersAction) -> None:
    demo = commands.add_parser("demo", help="write a synthetic motion clip and classify it with the bundled model")
    demo.add_argument("--output", default="demo_out", help="folder for the clip")
    demo.add_argument(
        "--direction",
        choices=["moving_left", "moving_right", "moving_up", "moving_down"],
        help="the motion in the clip (default: drawn with --seed)",
    )
    demo.add_argument("--seed", type=int, default=0, help="the clip's random seed")
    demo.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda ...")
    demo.set_defaults(func=_cmd_demo)

    train_demo = commands.add_parser(
        "train-demo", help="train the bundled demo model from scratch (the recipe), and score it on fresh clips"
    )
    train_demo.add_argument("--workdir", default="runs/demo", help="folder for data, checkpoints and metrics")
    train_demo.add_argument("--with-baseline", action="store_true", help="also train the same-size plain ViT")
    train_demo.add_argument("--install", action="store_true", help="copy the TokShift weights into the package")
    train_demo.set_defaults(func=_cmd_train_demo)


# --- the parser and the entry point ------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every ``tokshift-zoo`` command."""
    parser = _Parser(prog="tokshift-zoo", description=_DESCRIPTION, formatter_class=_TopHelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    parsers = (_add_models_parsers, _add_train_parser, _add_inference_parsers, _add_embed_parser, _add_export_parser)
    for add in (*parsers, _add_demo_parsers):
        add(commands)
    _add_benchmark_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``tokshift-zoo`` console script; returns the exit code (0, 1 failure, 2 usage)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    try:
        return args.func(args)
    except (ConfigError, DeviceError) as err:  # a usage error: bad names, settings, lists or devices
        print(f"tokshift-zoo {args.command}: error: {err}", file=sys.stderr)
        return 2
    except (TokShiftZooError, OSError) as err:  # weights that cannot be had or verified, files that cannot be read
        print(f"tokshift-zoo {args.command}: error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
