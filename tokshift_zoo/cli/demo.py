"""The commands of ``demo`` and ``train-demo``: the bundled demo model."""

from __future__ import annotations

import argparse
import json
import os


def _cmd_demo(args: argparse.Namespace) -> int:
    from ..demo import write_demo_clip
    from ..inference import predict
    from ..models.registry import DEFAULT_MODEL
    from ..ready import load

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
    from ..demo import train_demo_model

    for fold_div in (4, 0) if args.with_baseline else (4,):
        result = train_demo_model(args.workdir, fold_div=fold_div, install=args.install and fold_div != 0)
        print(json.dumps(result, indent=2))
    return 0


def add_parsers(commands: argparse._SubParsersAction) -> None:
    """The parsers of ``demo`` and ``train-demo``."""
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
