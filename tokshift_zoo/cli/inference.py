"""The commands of classification and embeddings: ``predict`` (with timelines), ``evaluate``, ``embed``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..errors import ConfigError, VideoError
from .options import (
    _add_device_options,
    _add_list_options,
    _add_loader_options,
    _add_model_options,
    _add_runtime_options,
    _add_timeline_options,
    _add_video_input_options,
    _add_view_options,
    _device_of,
    _input_videos,
    _load_model,
    _model_label,
    _positive_int,
    _printable,
    _runtime_label,
)


def _cmd_predict(args: argparse.Namespace) -> int:
    videos, frame_counts = _input_videos(args)  # before torch and the model load: a missing video fails fast
    from ..distributed import process_group
    from ..inference import predict_videos, protocol

    model = _load_model(args)
    if args.timeline is not None:
        return _predict_timelines(args, model, videos)
    name = _model_label(args, model)
    show_bar = (len(videos) > 1 or protocol(model, args.views)["views"] != "1x1") and not args.no_progress
    failed = []

    def show(result: dict[str, Any]) -> None:  # each video as it finishes: an interrupted run keeps what is done
        if "error" in result:  # the other videos go on
            failed.append(result["video"])
            print(f"tokshift-zoo predict: error: {_printable(result['error'])}", file=sys.stderr)
        if args.json:  # JSON escapes control characters itself: the labels stay exact
            print(json.dumps({"video": result["video"], "model": name, "runtime": _runtime_label(args), **result}))
        elif "error" not in result:
            print(_printable(result["video"]))
            for p in result["predictions"]:
                print(f"  {p['score']:7.2%}  {_printable(p['label'])}")
        sys.stdout.flush()

    with process_group(_device_of(model)):  # under torchrun: each rank its share, rank 0 prints every answer
        predict_videos(
            model,
            videos,
            args.views,
            args.topk,
            args.batch_size,
            args.num_workers,
            show_bar,
            amp=args.amp,
            on_result=show,
            frame_counts=frame_counts,
        )
    return 1 if failed else 0


def _predict_timelines(args: argparse.Namespace, model: Any, videos: list[str]) -> int:
    import importlib.util

    from ..distributed import gather_to_main, process_group, ranks, share_of_items
    from ..inference import class_names
    from ..timeline import PLOT_EXTRA, Timeline, plot_timeline, timeline_csv, timeline_windows, window_row
    from ..video.sampling import parse_views

    clips, crops = parse_views(args.views) if args.views else (1, 1)
    if clips != 1:
        raise ConfigError(f"with --timeline each window is one clip: --views 1x1 or 1x3, got {args.views!r}")
    if args.plot and importlib.util.find_spec("matplotlib") is None:
        raise ConfigError(f"--plot needs matplotlib: {PLOT_EXTRA}")
    labels = class_names(model)
    alone = ranks().world_size == 1  # one process prints each window as it is scored
    header = [True]
    failed = []

    def show(rows: list[dict[str, Any]] | None, error: str | None) -> None:
        if error is not None:
            failed.append(error)
            print(f"tokshift-zoo predict: error: {_printable(error)}", file=sys.stderr)
        elif args.csv:
            print(timeline_csv(rows, header=header[0]), end="")  # one header line for all videos
            header[0] = False
        else:
            print("\n".join(json.dumps(row) for row in rows))
        sys.stdout.flush()

    with process_group(_device_of(model)):  # under torchrun: each rank its share of the videos
        done = []
        for n in share_of_items(videos):
            windows, rows = [], []
            try:
                for window in timeline_windows(
                    model,
                    videos[n],
                    args.timeline,
                    args.window,
                    crops,
                    args.batch_size,
                    amp=args.amp,
                    progress=alone and not args.no_progress,
                ):
                    windows.append(window)
                    rows.append(window_row(videos[n], window, labels, args.topk))
                    if alone:
                        show(rows[-1:], None)
            except (VideoError, IndexError, OSError) as err:  # the other videos go on
                done.append((n, None, str(err)))
                if alone:
                    show(None, str(err))
                continue
            if args.plot:
                plot = Path(args.plot)
                if len(videos) > 1:
                    plot = plot.with_name(f"{plot.stem}-{Path(videos[n]).stem}{plot.suffix}")
                print(f"wrote {plot_timeline(Timeline.of_windows(videos[n], windows, labels), plot)}", file=sys.stderr)
            done.append((n, rows, None))
        gathered = gather_to_main(done)
    if gathered is None:  # not rank 0
        return 0
    if not alone:
        for _, rows, error in sorted(item for part in gathered for item in part):
            show(rows, error)
    return 1 if failed else 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from ..distributed import process_group
    from ..inference import class_names, evaluate
    from ..train.datasets import read_label_names, read_video_list

    model = _load_model(args)
    labels = read_label_names(args.labels) if args.labels else class_names(model)
    samples = read_video_list(args.list, args.data_root, label_names=labels, num_classes=model.num_classes)
    with process_group(_device_of(model)):  # under torchrun: each rank its share, merged on rank 0
        result = evaluate(
            model,
            [(str(s.path), s.label, s.num_frames) for s in samples],
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
        print(f"tokshift-zoo evaluate: could not read {_printable(failure)}", file=sys.stderr)
    return 1 if result["failed"] else 0


def add_parsers(commands: argparse._SubParsersAction) -> None:
    """The parsers of ``predict``, ``evaluate`` and ``embed``."""
    predict = commands.add_parser("predict", help="classify video files; labels with scores")
    for add in (_add_model_options, _add_view_options, _add_device_options, _add_runtime_options):
        add(predict)
    _add_video_input_options(predict)
    predict.add_argument("--topk", type=_positive_int, default=5, help="classes to print per video (per window)")
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
    _add_embed_parser(commands)


def _cmd_embed(args: argparse.Namespace) -> int:
    from ..embeddings import embed

    result = embed(
        _input_videos(args)[0],
        args.output,
        model=args.model,
        checkpoint=args.checkpoint,
        views=args.views or "1x1",  # embeddings: one view per video unless asked (the index is per view)
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
