"""The commands of ``export``: ONNX and ``.pt2`` artefacts."""

from __future__ import annotations

import argparse
import json

from .options import _json_object, _refuse_random_head, _weight_file

ONNX_OPSET = 23  # onnx_attention.ONNX_OPSET (that module imports torch); a test compares


def _cmd_export(args: argparse.Namespace) -> int:
    from ..export import export_model
    from ..ready import load

    model = load(args.name, device="cpu", checkpoint_path=args.checkpoint, **args.model_kwargs)
    _refuse_random_head(args, model)
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


def add_parsers(commands: argparse._SubParsersAction) -> None:
    """The parser of ``export``."""
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
    export.add_argument(
        "--batch",
        choices=["1", "dynamic"],
        default="dynamic",
        help="batch size of the input: dynamic (any B: a video's test views go in one call, as timm's ONNX "
        "exporter defaults to) or a fixed 1",
    )
    export.add_argument("--check-clips", type=int, default=8, help="random clips for the top-1 agreement check")
    export.add_argument(
        "--opset",
        type=int,
        default=ONNX_OPSET,
        help=f"ONNX opset (default {ONNX_OPSET}: one Attention node per block; 18-22 for runtimes without it)",
    )
    export.add_argument("--json", action="store_true", help="print the result and metadata as JSON")
    export.set_defaults(func=_cmd_export)
