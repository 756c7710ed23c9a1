"""Option types and option blocks shared by the commands, the parser class, and helpers that load a model or
list the videos from parsed options. Imports no torch."""

from __future__ import annotations

import argparse
import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from ..errors import ConfigError, VideoError

AMP_CHOICES = ["auto", "bf16", "fp16", "none"]  # devices.AMP_CHOICES (that module imports torch); a test compares


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's default, unless its help already says it or there is none to show (None, a flag)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        nothing = action.default is None or action.default is False or action.default in ("", argparse.SUPPRESS)
        flag = action.nargs == 0  # store_true / store_false: the flag's name says what it does
        if "default" in text or nothing or flag or not action.option_strings:
            return action.help
        return super()._get_help_string(action)


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


def _int_at_least(low: int) -> Callable[[str], int]:
    """argparse type of whole numbers of at least ``low``, with one error wording for every count option."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if value < low:
            raise argparse.ArgumentTypeError(f"expected a whole number of at least {low}, got {text!r}")
        return value

    return parse


_positive_int = _int_at_least(1)  # --batch-size, --topk
_count = _int_at_least(0)  # --num-workers


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
    parser.add_argument(
        "--views",
        type=_views,
        default=None,
        help="CLIPSxCROPS per video, e.g. 1x1 (fast) or 10x3; default: the weights' test protocol (10x3 for k400)",
    )
    parser.add_argument("--batch-size", type=_positive_int, default=8, help="views per forward pass")


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
    parser.add_argument(
        "videos", nargs="*", metavar="VIDEO", help="video files, frame folders, or folders of those (searched)"
    )
    parser.add_argument("--list", help="also the videos of a list ('path label' lines, path,label CSV, frame folders)")
    parser.add_argument("--data-root", default="", help="folder the list paths are relative to")
    _add_loader_options(parser)


def _add_loader_options(parser: argparse.ArgumentParser) -> None:
    """--num-workers and --no-progress: decoding processes (per process under torchrun), the progress bar."""
    parser.add_argument("--num-workers", type=_count, default=0, help="decoding processes (per process under torchrun)")
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


def _input_videos(args: argparse.Namespace) -> tuple[list[str], list[int | None]]:
    """The videos named on the command line (a folder: the videos and frame folders in it, as ``embed`` finds
    them), then those of ``--list``, each with the frame count its list gives (a frame folder of an authors'
    ``dir num_frames label`` list, sampled from that count as ``evaluate`` does; None otherwise); checked before
    any model loads (or torch is imported): none there is an error."""
    if not args.videos and not args.list:
        raise ConfigError("expected VIDEO arguments or --list FILE, got neither")
    if args.videos and not args.list and not any(Path(v).exists() for v in args.videos):
        more = f" (nor any of the other {len(args.videos) - 1})" if len(args.videos) > 1 else ""
        raise VideoError(f"no video at {args.videos[0]}{more}")
    from ..embeddings import find_videos
    from ..train.datasets import class_names_from_lists, read_video_list

    videos = find_videos(args.videos)
    for folder in (v for v in args.videos if Path(v).is_dir()):
        if not any(f == folder or f.startswith(os.path.join(folder, "")) for f in videos):
            raise VideoError(f"{folder}: expected video files or frame folders (img_00001.jpg, ...) in it, found none")
    counts: list[int | None] = [None] * len(videos)
    if args.list:
        samples = read_video_list(args.list, args.data_root, label_names=class_names_from_lists(args.list))
        videos += [str(sample.path) for sample in samples]
        counts += [sample.num_frames for sample in samples]
    return videos, counts


def _refuse_random_head(args: argparse.Namespace, model: Any) -> None:
    """A model whose weights did not give its head would answer with random classes: a usage error."""
    report = getattr(model, "load_report", None)
    head = sorted(k for k in getattr(report, "reinitialised", ()) if k.startswith("head."))
    if head:
        source = args.checkpoint or getattr(args, "model", None) or getattr(args, "name", None)
        raise ConfigError(
            f"the weights of {source} hold no head for {model.num_classes} classes, so {', '.join(head)} would be "
            "random: drop num_classes from --model-kwargs to use the weights' own head, or fine-tune it first "
            "(tokshift-zoo train)"
        )


def _load_model(args: argparse.Namespace) -> Any:
    """The ready model the inference options name; with ``--runtime onnxruntime``, exported and loaded in it."""
    from ..distributed import inference_device
    from ..models.registry import DEFAULT_MODEL
    from ..ready import load

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
    _refuse_random_head(args, model)
    if runtime == "eager":
        return model
    from ..export import runtime_model

    return runtime_model(model, runtime, int8=args.int8)


def _runtime_label(args: argparse.Namespace) -> str:
    return args.runtime + ("-int8" if args.int8 else "")


def _device_of(model: Any) -> Any:
    """Where the model runs: its parameters' device; CPU for a model run by ONNX Runtime (it has none)."""
    param = next(model.parameters(), None)
    return param.device if param is not None else "cpu"


def _model_label(args: argparse.Namespace, model: Any) -> str:
    return args.checkpoint or args.model or model.pretrained_cfg.get("architecture")


def _printable(text: str, newlines: bool = False) -> str:
    """``text`` for a terminal: control characters (ANSI escapes included) and other unprintable ones written as
    Python escapes (``\\x1b``), so a label or a file name cannot move the cursor or recolour the screen; with
    ``newlines``, line breaks are kept (a message that lists one problem per line)."""
    return "".join(c if c.isprintable() or (newlines and c == "\n") else repr(c)[1:-1] for c in text)
