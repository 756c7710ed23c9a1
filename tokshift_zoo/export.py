"""Deploy: ONNX and ``torch.export`` artefacts that carry their preprocessing, int8, and an ONNX Runtime runner.

An artefact holds the model's graph and weights and, as metadata, everything a server needs to turn a video into
its input: clip length, frame stride and sampling, crop size, interpolation, mean/std, the test views, and the
class names (ONNX: the model's ``metadata_props``; ``.pt2``: the extra file ``tokshift_zoo.json``). Its input is
``clips``, float32 (B, 3, T, H, W) normalised as the metadata says; its outputs are ``logits`` (B, classes) and
``embedding`` (B, D), the time-averaged class token the head reads.

``export_model`` writes one (``torch.onnx.export(..., dynamo=True)``, opset 23 with each attention one node
(``onnx_attention``), or ``torch.export``; int8: ONNX Runtime's dynamic quantisation of the matrix products'
weights) and checks it against the eager model. ``OnnxRuntimeModel``
runs an ONNX artefact with ONNX Runtime behind the model interface ``predict`` and ``evaluate`` use;
``runtime_model`` exports a loaded model for it. onnx, onnxscript and onnxruntime are the ``[onnx]`` extra and are
imported only here, when used.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import importlib
import io
import json
import logging
import os
import re
import tempfile
import time
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from .atomic import atomic_write
from .errors import ConfigError, TokShiftZooError
from .onnx_attention import ONNX_OPSET, ONNX_TRANSLATIONS, with_export_attention
from .video.transforms import DataConfig, resolve_data_config

__all__ = [
    "FORMATS",
    "RUNTIMES",
    "ExportError",
    "ExtraNotInstalledError",
    "ExportedModel",
    "LogitsAndEmbedding",
    "OnnxRuntimeModel",
    "UnsafeArtefactError",
    "artefact_metadata",
    "check_artefact",
    "check_pt2_archive",
    "export_model",
    "load_artefact",
    "read_metadata",
    "require",
    "runtime_model",
]

FORMATS = ("onnx", "pt2")
RUNTIMES = ("eager", "onnxruntime")
METADATA_FILE = "tokshift_zoo.json"  # the .pt2 extra file holding the metadata
INPUT_NAME, OUTPUT_NAMES = "clips", ("logits", "embedding")
_MAX_BATCH, _MAX_FRAMES = 4096, 1024  # bounds of the dynamic dimensions
_MIN_OPSET = 18  # the oldest opset torch.onnx's dynamo exporter writes


class ExportError(TokShiftZooError, RuntimeError):
    """The exporter (torch.export, or torch.onnx's translation) could not capture the model as asked."""


class ExtraNotInstalledError(TokShiftZooError, ImportError):
    """A module of the ``[onnx]`` extra (onnx, onnxscript, onnxruntime) is not installed."""


def require(module: str) -> Any:
    """Import one of the ``[onnx]`` extra's modules (onnx, onnxscript, onnxruntime) or say how to install it.

    Raises:
        ExtraNotInstalledError: an ImportError naming the module and ``pip install 'tokshift-zoo[onnx]'``.
    """
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ExtraNotInstalledError(
            f"ONNX export and ONNX Runtime need the {module.split('.')[0]} package, which is not installed: "
            "pip install 'tokshift-zoo[onnx]'"
        ) from err


# --- metadata -------------------------------------------------------------------------------------------------


def artefact_metadata(
    model: nn.Module, frames: int | None, dynamic_batch: bool, int8: bool = False, fmt: str = "onnx"
) -> dict[str, Any]:
    """What a server needs besides the graph: preprocessing, views, labels and the input's shape.

    Args:
        model: the zoo model being exported.
        frames: T of the exported input, or None for a dynamic T.
        dynamic_batch: whether B is dynamic (else 1).

    Returns:
        A JSON-ready dict; ``data_config`` is ``DataConfig``'s fields (``DataConfig(**data_config)`` rebuilds it).
    """
    from . import __version__

    config = resolve_data_config(model)
    labels = getattr(model, "labels", None) or model.pretrained_cfg.get("label_names")
    cfg = model.pretrained_cfg
    name = cfg.get("architecture", "") + (f".{cfg['tag']}" if cfg.get("tag") else "")
    height, width = config.crop_size
    return {
        "format": fmt,
        "model": name,
        "int8": int8,
        "tokshift_zoo_version": __version__,
        "torch_version": torch.__version__,
        "input": {
            "name": INPUT_NAME,
            "shape": ["batch" if dynamic_batch else 1, config.input_size[0], frames or "frames", height, width],
            "dtype": "float32",
            "layout": "(B, C, T, H, W): RGB frames scaled to [0, 1], then (x - mean) / std per channel",
        },
        "outputs": {OUTPUT_NAMES[0]: ["batch", model.num_classes], OUTPUT_NAMES[1]: ["batch", model.num_features]},
        "frames": frames or "dynamic",
        "trained_frames": config.num_frames,
        "frame_stride": config.frame_stride,
        "sampling": config.sampling,
        "size": [height, width],
        "interpolation": config.interpolation,
        "crop_pct": config.crop_pct,
        "mean": list(config.mean),
        "std": list(config.std),
        "views": f"{config.test_clips}x{config.test_crops}",
        "view_averaging": "mean of the views' logits, then softmax",
        "labels": list(labels) if labels is not None and len(labels) == model.num_classes else None,
        "data_config": json.loads(json.dumps(dataclasses.asdict(config))),
    }


def _metadata_config(metadata: dict[str, Any]) -> DataConfig:
    fields = dict(metadata["data_config"])
    for key in ("input_size", "mean", "std", "train_scale"):
        if fields.get(key) is not None:
            fields[key] = tuple(fields[key])
    return DataConfig(**fields)


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The metadata of an ``.onnx`` or ``.pt2`` artefact (see ``artefact_metadata``), read without running or
    unpickling anything: a ``.pt2`` is a zip archive whose ``extra/tokshift_zoo.json`` member is read as text.

    Raises:
        ConfigError: (a ValueError) the file is not an artefact written by ``export_model``.
    """
    path = Path(path)
    if _format_of(path) == "pt2":
        text = _pt2_extra_file(path, METADATA_FILE)
    else:
        onnx = require("onnx")
        props = {p.key: p.value for p in onnx.load(path, load_external_data=False).metadata_props}
        text = props.get("tokshift_zoo", "")
    if not text:
        raise ConfigError(f"{path}: no tokshift_zoo metadata; expected an artefact written by `tokshift-zoo export`")
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise ConfigError(f"{path}: its tokshift_zoo metadata is not JSON ({err})") from err


# --- .pt2 archives: what torch.export.load would unpickle -------------------------------------------------------

# the members torch.export.save writes for one program without pickled payloads, under the archive's root folder;
# any other (legacy .pt weights, AOTInductor libraries, custom or opaque objects, ...) is refused
_PT2_MEMBERS = re.compile(
    r"archive_format|archive_version|byteorder|\.data/version|\.data/serialization_id|models/model\.json"
    r"|data/weights/(weight_\d+|model_weights_config\.json)|data/constants/(tensor_\d+|model_constants_config\.json)"
    r"|data/sample_inputs/model\.pt|extra/[\w.-]+"
)
_PT2_CONFIGS = ("data/weights/model_weights_config.json", "data/constants/model_constants_config.json")


class UnsafeArtefactError(ConfigError):
    """A ``.pt2`` that ``torch.export.load`` would unpickle (and so could run code from); it was not loaded."""


def _pt2_members(path: Path) -> tuple[zipfile.ZipFile, str]:
    """The archive open for reading and its root folder (``torch.export.save`` puts every member under one)."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as err:
        raise ConfigError(f"{path}: not a .pt2 archive (torch.export.save writes a zip file): {err}") from err
    roots = {name.split("/", 1)[0] for name in archive.namelist()}
    if len(roots) != 1:
        archive.close()
        raise ConfigError(f"{path}: not a .pt2 archive (expected one root folder, found {sorted(roots)[:5]})")
    return archive, roots.pop()


def _pt2_extra_file(path: Path, name: str) -> str:
    """The text of an extra file of a ``.pt2`` (``extra_files`` of ``torch.export.save``); empty when absent."""
    archive, root = _pt2_members(path)
    with archive:
        member = f"{root}/extra/{name}"
        if member not in archive.namelist():
            return ""
        try:
            return archive.read(member).decode("utf-8")
        except (zipfile.BadZipFile, UnicodeDecodeError) as err:  # a CRC that does not match, or not text
            raise ConfigError(f"{path}: its {name} is damaged ({err})") from err


def check_pt2_archive(path: str | os.PathLike) -> None:
    """Refuse a ``.pt2`` from which ``torch.export.load`` would unpickle anything (pickle can run any code).

    Checked before loading, on the zip archive itself: every member is one ``torch.export.save`` writes for
    plain tensors (no legacy ``.pt`` payloads, AOTInductor libraries, custom or opaque objects); no weight or
    constant is marked ``use_pickle``; every member's CRC matches; and the sample inputs load with
    ``weights_only=True`` (torch retries them with ``weights_only=False`` otherwise).

    Raises:
        UnsafeArtefactError: (a ConfigError) the first such payload found, by name.
        ConfigError: the file is not a ``.pt2`` archive, or it is damaged.
    """
    path = Path(path)
    archive, root = _pt2_members(path)

    def refuse(what: str) -> UnsafeArtefactError:
        return UnsafeArtefactError(
            f"{path}: refusing to load it: {what}, which torch.export.load would unpickle, and unpickling can run "
            "any code. Artefacts written by `tokshift-zoo export` hold plain tensors only; re-export the model, "
            "or load the file yourself with torch.export.load only if you trust whoever wrote it."
        )

    with archive:
        names = [name.split("/", 1)[1] for name in archive.namelist() if not name.endswith("/")]
        for name in names:
            if not _PT2_MEMBERS.fullmatch(name):
                raise refuse(f"it holds {name!r}, a member that is not a plain tensor")
        try:
            damaged = archive.testzip()
        except (zipfile.BadZipFile, OSError, EOFError) as err:
            damaged = f"({err})"
        if damaged is not None:
            raise ConfigError(f"{path}: damaged: member {damaged} does not match its CRC")
        for config_name in _PT2_CONFIGS:
            if config_name not in names:
                continue
            try:
                payloads = json.loads(archive.read(f"{root}/{config_name}"))["config"]
            except (ValueError, KeyError, TypeError) as err:
                raise ConfigError(f"{path}: {config_name} is not torch.export's payload config ({err})") from err
            for fqn, meta in payloads.items():
                if not isinstance(meta, dict) or meta.get("use_pickle") is not False:
                    raise refuse(f"its payload {fqn!r} is marked as pickled (use_pickle)")
        if "data/sample_inputs/model.pt" in names:
            try:
                torch.load(io.BytesIO(archive.read(f"{root}/data/sample_inputs/model.pt")), weights_only=True)
            except Exception as err:  # noqa: BLE001 - any failure means torch would retry with full unpickling
                raise refuse("its sample inputs are not plain tensors") from err


def _format_of(path: Path, fmt: str | None = None) -> str:
    fmt = fmt or ("pt2" if path.suffix == ".pt2" else "onnx")
    if fmt not in FORMATS:
        raise ConfigError(f"format must be one of {FORMATS}, got {fmt!r}")
    return fmt


# --- export -------------------------------------------------------------------------------------------------


class LogitsAndEmbedding(nn.Module):
    """The graph that is exported: clips -> (logits, embedding); the head reads the embedding, so both come at
    the cost of one forward."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, clips: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        embedding = self.model.forward_head(self.model.forward_features(clips), pre_logits=True)
        return self.model.head(embedding), embedding


def _dynamic_shapes(frames: int | None, dynamic_batch: bool) -> dict[str, dict[int, Any]] | None:
    dims: dict[int, Any] = {}
    if dynamic_batch:
        dims[0] = torch.export.Dim("batch", min=1, max=_MAX_BATCH)
    if frames is None:
        dims[2] = torch.export.Dim("frames", min=1, max=_MAX_FRAMES)
    return {INPUT_NAME: dims} if dims else None


def _example(model: nn.Module, frames: int | None, dynamic_batch: bool, seed: int = 0) -> torch.Tensor:
    # a dynamic dimension is traced at a size other than 1, which torch.export would specialise on
    batch = 2 if dynamic_batch else 1
    num_frames = frames or max(model.num_frames, 2)
    height, width = model.patch_embed.img_size
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, model.in_chans, num_frames, height, width, generator=generator)


class _DropQuantizerAdvice(logging.Filter):
    """onnxruntime.quantization logs on the root logger: a line per tensor at INFO, and advice to pre-process the
    model first (shape inference for static quantisation), which dynamic quantisation does not need."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno > logging.INFO and "pre-processing before quantization" not in record.getMessage()


@contextlib.contextmanager
def _quantizer_advice_dropped() -> Iterator[None]:
    root, advice = logging.getLogger(), _DropQuantizerAdvice()
    root.addFilter(advice)
    try:
        yield
    finally:
        root.removeFilter(advice)


@contextlib.contextmanager
def _quiet_loggers(*names: str) -> Iterator[None]:
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _write_onnx(
    module: nn.Module,
    example: torch.Tensor,
    path: Path,
    dynamic: Any,
    metadata: dict[str, Any],
    int8: bool,
    opset: int,
) -> None:
    onnx = require("onnx")
    require("onnxscript")  # torch.onnx's dynamo exporter translates with it
    with _quiet_loggers("onnxscript", "onnx_ir"):  # its optimiser logs every rewrite at INFO (`tokshift-zoo -v`)
        program = torch.onnx.export(
            module,
            (example,),
            dynamo=True,
            input_names=[INPUT_NAME],
            output_names=list(OUTPUT_NAMES),
            dynamic_shapes=dynamic,
            opset_version=opset,
            custom_translation_table=ONNX_TRANSLATIONS if opset >= ONNX_OPSET else None,
            optimize=True,
            verbose=False,
        )
    proto = program.model_proto
    if int8:
        quantization = require("onnxruntime.quantization")
        with tempfile.TemporaryDirectory() as tmp, _quantizer_advice_dropped():
            # dynamic quantisation: int8 weights of the matrix products, activations quantised on the fly
            quantization.quantize_dynamic(
                proto,
                Path(tmp) / "int8.onnx",
                op_types_to_quantize=["MatMul", "Gemm"],
                weight_type=quantization.QuantType.QInt8,
            )
            proto = onnx.load(Path(tmp) / "int8.onnx")
    del proto.metadata_props[:]
    onnx.helper.set_model_props(proto, {"tokshift_zoo": json.dumps(metadata)})
    atomic_write(path, lambda tmp: onnx.save(proto, tmp))


def _write_pt2(module: nn.Module, example: torch.Tensor, path: Path, dynamic: Any, metadata: dict[str, Any]) -> None:
    program = torch.export.export(module, (example,), dynamic_shapes=dynamic)
    atomic_write(path, lambda tmp: torch.export.save(program, tmp, extra_files={METADATA_FILE: json.dumps(metadata)}))


def export_model(
    model: nn.Module,
    out: str | os.PathLike,
    fmt: str | None = None,
    int8: bool = False,
    frames: int | str | None = None,
    dynamic_batch: bool = False,
    check: bool = True,
    check_clips: int = 8,
    opset: int = ONNX_OPSET,
) -> dict[str, Any]:
    """Export a zoo model to an ONNX or ``.pt2`` artefact with its preprocessing metadata, and check it.

    Args:
        model: a zoo model (its weights as loaded); exported in eval mode, float32, on CPU.
        out: the file to write (written to a temporary name, then renamed).
        fmt: ``"onnx"`` or ``"pt2"``; by default from ``out``'s suffix (``.pt2``, else ONNX).
        int8: ONNX only: ONNX Runtime's dynamic int8 quantisation of the MatMul/Gemm weights.
        frames: T of the input: an int, ``"dynamic"`` (any T from 1 to 1024), or None (the model's own).
        dynamic_batch: any batch size (1 to 4096) instead of 1.
        check: run the artefact against the eager model (see ``check_artefact``).
        check_clips: clips for the top-1 agreement (int8).
        opset: ONNX opset (18-23). From 23 on, each attention is one ``Attention`` node on (B, N, C) tensors
            (``onnx_attention``; fewer copies: faster in ONNX Runtime); below 23, for runtimes that do not read
            opset 23 yet, it is timm's graph (a head split, matrix products and a softmax).

    Returns:
        ``{"path", "format", "int8", "frames", "dynamic_batch", "export_s", "size_mb", "metadata"}`` plus, when
        checked, ``check_artefact``'s figures.

    Raises:
        ConfigError: (a ValueError) an unknown format or frames value, or int8 with ``.pt2``.
        ExportError: the exporter could not capture the model (e.g. a dynamic T it cannot keep symbolic).
        ExtraNotInstalledError: (an ImportError) onnx / onnxscript / onnxruntime missing.
    """
    path = Path(out)
    fmt = _format_of(path, fmt)
    if int8 and fmt != "onnx":
        raise ConfigError("--int8 is ONNX Runtime's dynamic quantisation: it needs --format onnx, got pt2")
    if fmt == "onnx" and not _MIN_OPSET <= opset <= ONNX_OPSET:
        raise ConfigError(f"opset must be {_MIN_OPSET} to {ONNX_OPSET} (torch.onnx's exporter), got {opset}")
    for module in ("onnx", "onnxscript", "onnxruntime") if fmt == "onnx" else ():
        require(module)  # before minutes of export, not after
    if frames == "dynamic":
        num_frames = None
    elif frames is None:
        num_frames = model.num_frames
    elif isinstance(frames, int) or (isinstance(frames, str) and frames.isdigit()):
        num_frames = int(frames)
        if num_frames < 1:
            raise ConfigError(f"frames must be at least 1 or 'dynamic', got {frames}")
    else:
        raise ConfigError(f"frames must be a number of frames or 'dynamic', got {frames!r}")
    param = next(model.parameters())
    if param.device.type != "cpu" or param.dtype != torch.float32 or model.training:
        model = copy.deepcopy(model).to("cpu", torch.float32).eval()  # leave the caller's model as it was
    metadata = artefact_metadata(model, num_frames, dynamic_batch, int8, fmt)
    # ONNX: each attention as one Attention node on (B, N, C) tensors, without the head split's copies
    fused = fmt == "onnx" and opset >= ONNX_OPSET
    module = LogitsAndEmbedding(with_export_attention(model) if fused else model).eval()
    example = _example(model, num_frames, dynamic_batch)
    dynamic = _dynamic_shapes(num_frames, dynamic_batch)
    started = time.perf_counter()
    with torch.no_grad():
        try:
            if fmt == "onnx":
                _write_onnx(module, example, path, dynamic, metadata, int8, opset)
            else:
                _write_pt2(module, example, path, dynamic, metadata)
        except (ImportError, OSError, TokShiftZooError):
            raise
        except Exception as err:  # torch.export's and the ONNX translator's many error types: say what failed
            shape = metadata["input"]["shape"]
            detail = "; ".join(line.strip() for line in str(err).strip().splitlines()[:3])
            raise ExportError(f"could not export {metadata['model']} to {fmt} for input {shape}: {detail}") from err
    result: dict[str, Any] = {
        "path": str(path),
        "format": fmt,
        "int8": int8,
        "frames": num_frames or "dynamic",
        "dynamic_batch": dynamic_batch,
        **({"opset": opset} if fmt == "onnx" else {}),
        "export_s": round(time.perf_counter() - started, 1),
        "size_mb": round(path.stat().st_size / 1e6, 1),
    }
    if check:
        result.update(check_artefact(model, load_artefact(path), num_frames or model.num_frames, check_clips))
    result["metadata"] = metadata
    return result


# --- running artefacts ------------------------------------------------------------------------------------------


class _ArtefactModel(nn.Module):
    """What ``predict`` and ``evaluate`` read from a model, taken from an artefact's metadata."""

    def __init__(self, metadata: dict[str, Any]) -> None:
        super().__init__()
        self.metadata = metadata
        self.data_config = _metadata_config(metadata)
        self.num_classes = metadata["outputs"][OUTPUT_NAMES[0]][-1]
        self.labels = metadata["labels"]
        self.pretrained_cfg = {"architecture": metadata["model"], "label_names": metadata["labels"]}
        self.num_frames = metadata["frames"] if isinstance(metadata["frames"], int) else None
        self.batch = metadata["input"]["shape"][0] if isinstance(metadata["input"]["shape"][0], int) else None

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        """Clips (B, 3, T, H, W), normalised -> logits (B, num_classes) float32."""
        return self.run(clips)[0]

    def embed(self, clips: torch.Tensor) -> torch.Tensor:
        """Clips (B, 3, T, H, W), normalised -> clip embeddings (B, D) float32."""
        return self.run(clips)[1]

    def run(self, clips: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Clips -> (logits, embedding); a fixed-batch artefact is run in chunks of its batch, the last padded."""
        clips = clips.detach().to("cpu", torch.float32)
        if self.batch is None or clips.shape[0] == self.batch:
            return self._run(clips)
        outputs = []
        for chunk in clips.split(self.batch):
            padded = torch.cat([chunk, chunk.new_zeros(self.batch - chunk.shape[0], *chunk.shape[1:])])
            outputs.append([out[: chunk.shape[0]] for out in self._run(padded)])
        return torch.cat([o[0] for o in outputs]), torch.cat([o[1] for o in outputs])

    def _run(self, clips: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def extra_repr(self) -> str:
        return f"model={self.metadata['model']!r}, format={self.metadata['format']}, int8={self.metadata['int8']}"


class OnnxRuntimeModel(_ArtefactModel):
    """An ONNX artefact run by ONNX Runtime (CPU), with the interface ``predict`` and ``evaluate`` use.

    Args:
        path: an ``.onnx`` file written by ``export_model``.
        threads: ONNX Runtime's intra-op threads (default: torch's thread count, so both use the same cores).
        providers: execution providers (default CPU).
    """

    def __init__(
        self, path: str | os.PathLike, threads: int | None = None, providers: Sequence[str] = ("CPUExecutionProvider",)
    ) -> None:
        ort = require("onnxruntime")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.log_severity_level = 3  # errors only
        session = ort.InferenceSession(os.fspath(path), options, providers=list(providers))
        text = session.get_modelmeta().custom_metadata_map.get("tokshift_zoo")
        if not text:
            raise ConfigError(f"{path}: no tokshift_zoo metadata; expected an artefact of `tokshift-zoo export`")
        super().__init__(json.loads(text))
        self.session = session
        self.runtime = "onnxruntime-int8" if self.metadata["int8"] else "onnxruntime"

    def _run(self, clips: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits, embedding = self.session.run(list(OUTPUT_NAMES), {INPUT_NAME: clips.contiguous().numpy()})
        return torch.from_numpy(logits), torch.from_numpy(embedding)


class ExportedModel(_ArtefactModel):
    """A ``.pt2`` artefact (``torch.export``) run by PyTorch, with the interface ``predict`` and ``evaluate`` use."""

    def __init__(self, path: str | os.PathLike) -> None:
        check_pt2_archive(path)  # torch.export.load unpickles what it finds: look first
        extra = {METADATA_FILE: ""}
        program = torch.export.load(path, extra_files=extra)
        if not extra[METADATA_FILE]:
            raise ConfigError(f"{path}: no {METADATA_FILE}; expected an artefact written by `tokshift-zoo export`")
        super().__init__(json.loads(extra[METADATA_FILE]))
        self.program = program.module()
        self.runtime = "torch.export"

    def _run(self, clips: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            logits, embedding = self.program(clips)
        return logits, embedding


def load_artefact(path: str | os.PathLike, threads: int | None = None) -> _ArtefactModel:
    """An ``.onnx`` (ONNX Runtime) or ``.pt2`` (PyTorch) artefact, ready for ``predict`` / ``evaluate``.

    A ``.pt2`` is checked first (``check_pt2_archive``): one holding any pickled payload is refused, so a file
    from elsewhere runs no code while loading. (Its graph then runs PyTorch operators only, as ONNX Runtime runs
    an ``.onnx``'s.)

    Raises:
        UnsafeArtefactError: a ``.pt2`` that holds pickled payloads.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such artefact (expected an .onnx or .pt2 file)")
    return ExportedModel(path) if _format_of(path) == "pt2" else OnnxRuntimeModel(path, threads)


def check_artefact(
    model: nn.Module, artefact: nn.Module, num_frames: int, clips: int = 8, seed: int = 0
) -> dict[str, Any]:
    """The artefact against the eager model on random clips (B=1, T=``num_frames``).

    Returns:
        ``{"max_abs_diff"}`` of the logits on the first clip, ``{"top1_agreement"}`` (% of ``clips`` clips whose
        top-1 class is the same), and ``{"embedding_cosine_min"}`` (the smallest cosine similarity of the clip
        embeddings), ``"check_clips"``.
    """
    generator = torch.Generator().manual_seed(seed)
    height, width = model.patch_embed.img_size
    batch = torch.randn(clips, model.in_chans, num_frames, height, width, generator=generator)
    agree, cosines, first_diff = 0, [], None
    for clip in batch.split(1):
        with torch.no_grad():
            features = model.forward_head(model.forward_features(clip), pre_logits=True)
            expected = model.head(features)
        logits, embedding = artefact.run(clip)
        if first_diff is None:
            first_diff = float((logits - expected).abs().max())
        agree += int(logits.argmax(-1).item() == expected.argmax(-1).item())
        cosines.append(float(torch.nn.functional.cosine_similarity(embedding, features).min()))
    return {
        "max_abs_diff": first_diff,
        "top1_agreement": round(100.0 * agree / clips, 2),
        "embedding_cosine_min": round(min(cosines), 6),
        "check_clips": clips,
    }


def runtime_model(
    model: nn.Module, runtime: str = "eager", int8: bool = False, threads: int | None = None
) -> nn.Module:
    """``model`` itself for ``"eager"``; for ``"onnxruntime"`` the model exported (dynamic batch, its own T) to
    ONNX, int8 if asked, and loaded in ONNX Runtime: pass the result to ``predict`` or ``evaluate``.

    Raises:
        ConfigError: (a ValueError) an unknown runtime, or int8 with eager.
    """
    if runtime not in RUNTIMES:
        raise ConfigError(f"runtime must be one of {RUNTIMES}, got {runtime!r}")
    if runtime == "eager":
        if int8:
            raise ConfigError("int8 is ONNX Runtime's dynamic quantisation: use it with runtime='onnxruntime'")
        return model
    require("onnxruntime")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.onnx"
        export_model(model, path, "onnx", int8=int8, dynamic_batch=True, check=False)
        return OnnxRuntimeModel(path, threads)  # the session holds the graph: the file may go
