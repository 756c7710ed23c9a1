"""Publishing on a Hugging Face hub: a fine-tuned model with its run (``tokshift-zoo publish-run RUN_DIR ORG/REPO``),
and the paper's Kinetics-400 releases (maintainers, ``tokshift-zoo publish ORG``).

A run folder (what ``tokshift-zoo train --output`` wrote) becomes a repo that timm and the zoo load on any machine:

- ``model.safetensors``: the run's ``best.safetensors`` tensors, with metadata that describes the published model;
- ``config.json``: timm's (``architecture``, ``num_classes``, ``model_args``, ``label_names``, ``pretrained_cfg``)
  plus the zoo's ``video_cfg`` (clip sampling, test views, the sha256 of ``model.safetensors``) and
  ``preprocessing`` (the whole ``DataConfig`` a clip goes through);
- ``README.md``: a model card about this model (``model_cards.render_run_card``);
- ``training/``: the run's recipe and figures as the run wrote them (its config file, ``metrics.jsonl``).

The upload set is written to a staging folder first (a temporary name, renamed when complete), which is itself a
``local-dir:`` model, then committed in one commit with huggingface_hub's ``upload_folder``.

The releases: each is fetched through the zoo's sources (a hub copy, the mirror, the authors' Google Drive),
converted and pinned like any load, then pushed with ``convert.publish``. The printed ``K400_HUB_COPIES`` lines make
the hub copies the first source, with real sha256 pins.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path
from typing import Any

import torch
from huggingface_hub import HfApi
from safetensors.torch import load_file, save_file

from . import __version__
from .atomic import atomic_write
from .convert import publish
from .errors import ConfigError
from .factory import create_model
from .model_cards import RunCard, render_run_card
from .models.registry import VideoCfg, get_entry, list_models
from .video import resolve_data_config
from .weights import download, is_training_output, read_checkpoint_metadata, read_safetensors_metadata, sha256_file

__all__ = [
    "PublishedRelease",
    "PublishedRun",
    "TrainingRun",
    "install_spec",
    "publish_releases",
    "publish_run",
    "read_run",
    "stage_run",
]

_logger = logging.getLogger(__name__)

RUN_WEIGHTS = "best.safetensors"
METRICS_FILE = "metrics.jsonl"
TRAINING_DIR = "training"
# TrainConfig fields that are this machine's paths or settings, or the card says elsewhere: not in its recipe table
_NOT_RECIPE = {"train_list", "val_list", "output", "data_root", "labels", "resume", "device", "num_workers", "progress"}
_NOT_RECIPE |= {"model", "checkpoint", "num_classes"}


@dataclass(frozen=True)
class TrainingRun:
    """What a run folder holds that a published model carries; every part but the weights may be missing.

    Attributes:
        folder: the run folder.
        weights: its best weights (``best.safetensors``).
        metadata: the weights' zoo metadata, JSON-decoded (``architecture``, ``model_kwargs``, ``pretrained_cfg``,
            ``video_cfg``, ``epoch``, ``val_top1``).
        config: the run's training settings (its YAML config file, else the newest checkpoint's), or empty.
        config_file: the run's own config file, uploaded as is; None where the settings come from a checkpoint.
        metrics: the rows of ``metrics.jsonl``, one per epoch.
    """

    folder: Path
    weights: Path
    metadata: dict[str, Any]
    config: dict[str, Any] = field(default_factory=dict)
    config_file: Path | None = None
    metrics: list[dict[str, Any]] = field(default_factory=list)

    @property
    def base_model(self) -> str | None:
        """What the run fine-tuned: its ``model`` (``NAME.TAG``, ``hf-hub:ORG/REPO``), and the name of the
        ``checkpoint`` file it started from instead of that model's weights, if any; None if not recorded."""
        model, checkpoint = self.config.get("model"), self.config.get("checkpoint")
        if checkpoint:
            return f"{model or 'a zoo model'} with the weights of {Path(str(checkpoint)).name}"
        return str(model) if model else None

    @property
    def validation(self) -> dict[str, float]:
        """The validation figures of the epoch whose weights these are: its ``metrics.jsonl`` row's ``val_*``
        numbers, else the weights' own ``val_top1``; empty for a run without validation."""
        epoch = self.metadata.get("epoch")
        rows = [row for row in self.metrics if row.get("epoch") == epoch]
        figures = {k: v for k, v in (rows[-1] if rows else {}).items() if k.startswith("val_") and _is_number(v)}
        if not figures and _is_number(self.metadata.get("val_top1")):
            figures["val_top1"] = self.metadata["val_top1"]
        return figures


@dataclass(frozen=True)
class PublishedRun:
    """What ``publish_run`` pushed: the repo, the commit, the sha256 of ``model.safetensors`` and the files."""

    repo_id: str
    commit_url: str
    sha256: str
    files: list[str]


def read_run(run: str | os.PathLike) -> TrainingRun:
    """Read a training run: its folder, or its weights file (``best.safetensors``) in the folder.

    The weights must be the trainer's (their metadata names the architecture, classes and video settings); the
    rest is read if present: a ``*.yaml`` / ``*.yml`` config file (the run's settings written back), else the
    ``config`` of the newest ``checkpoint-epoch*.pt``, and ``metrics.jsonl``.

    Raises:
        FileNotFoundError: no such folder or weights file.
        ConfigError: the file is not a training run's weights (e.g. a ``convert`` output: publish that with
            ``convert --push``).
    """
    path = Path(run)
    weights = path / RUN_WEIGHTS if path.is_dir() else path
    if not weights.is_file():
        raise FileNotFoundError(f"no {RUN_WEIGHTS} in {path}: expected a run folder written by `tokshift-zoo train`")
    if not is_training_output(weights):
        raise ConfigError(
            f"{weights}: not a training run's weights (its metadata has no pretrained_cfg and video_cfg, which "
            "`tokshift-zoo train` writes); a converted file is published with `tokshift-zoo convert SRC DST --push`"
        )
    folder = weights.parent
    config, config_file = _run_config(folder)
    return TrainingRun(folder, weights, read_checkpoint_metadata(weights), config, config_file, _metrics(folder))


def _run_config(folder: Path) -> tuple[dict[str, Any], Path | None]:
    """The run's settings: its own YAML file if it wrote one, else the newest checkpoint's ``config``."""
    for path in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]):
        try:
            import yaml

            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except Exception as err:  # no PyYAML, or not YAML: uploaded as is, the card's recipe table stays empty
            _logger.warning("%s: not read (%s); it is published as is", path, err)
            return {}, path
        return (loaded if isinstance(loaded, dict) else {}), path
    checkpoints = sorted(folder.glob("checkpoint-epoch*.pt"))
    if checkpoints:
        try:  # mmap: the weights and the optimiser state are not read
            state = torch.load(checkpoints[-1], map_location="cpu", weights_only=True, mmap=True)
            return json.loads(state["config"]), None
        except Exception as err:  # another format, or a file being written: the card says less
            _logger.warning("%s: no training config read (%s)", checkpoints[-1], err)
    return {}, None


def _metrics(folder: Path) -> list[dict[str, Any]]:
    path = folder / METRICS_FILE
    if not path.is_file():
        return []
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        try:
            row = json.loads(line) if line.strip() else None
        except json.JSONDecodeError:
            _logger.warning("%s:%d: not JSON, skipped", path, number)
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


def _base_hub_id(base: str | None) -> str | None:
    """The hub repo of the base model, for the card's ``base_model`` (the hub links fine-tunes to it)."""
    if not base:
        return None
    if base.startswith("hf-hub:"):
        return base.removeprefix("hf-hub:").partition("@")[0]
    if base in list_models(pretrained=True):
        hub_id = get_entry(base).pretrained_cfg.get("hf_hub_id")
        return str(hub_id).partition("@")[0] if hub_id else None
    return None


def _base_license(base: str | None) -> str | None:
    if base and base in list_models(pretrained=True):
        license_id = get_entry(base).pretrained_cfg.get("license")
        return license_id if license_id and license_id != "unknown" else None
    return None


def _published_model(run: TrainingRun, dataset: str) -> tuple[torch.nn.Module, VideoCfg]:
    """The run's model on the meta device (settings only) and the ``VideoCfg`` of the published weights."""
    meta = run.metadata
    cfg = {k: v for k, v in meta["pretrained_cfg"].items() if k not in ("file", "url", "hf_hub_id", "source")}
    with torch.device("meta"):
        model = create_model(meta["architecture"], **dict(meta.get("model_kwargs") or {}), pretrained_cfg_overlay=cfg)
    known = {f.name for f in dataclasses.fields(VideoCfg)}
    video = VideoCfg(**{k: v for k, v in meta["video_cfg"].items() if k in known})
    # the paper's figures and the base weights' file and pin describe other weights
    video = dataclasses.replace(
        video, dataset=dataset, paper_top1=None, paper_gflops=None, sha256=None, filename="model.safetensors"
    )
    model.video_cfg = video
    return model, video


def _hub_config(model: torch.nn.Module, video: VideoCfg, description: str, sha256: str) -> dict[str, Any]:
    """timm's ``config.json`` of the published model, with the zoo's ``video_cfg`` and ``preprocessing``."""
    from timm.models._hub import save_config_for_hf

    labels = model.pretrained_cfg.get("label_names")
    model_config: dict[str, Any] = {"pretrained_cfg": {"description": description}}
    if labels:
        model_config["label_names"] = list(labels)
    with tempfile.TemporaryDirectory() as tmp:
        save_config_for_hf(model, f"{tmp}/config.json", model_config=model_config)
        config = json.loads(Path(f"{tmp}/config.json").read_text(encoding="utf-8"))
    config["video_cfg"] = dataclasses.replace(video, sha256=sha256).to_dict()
    config["preprocessing"] = dataclasses.asdict(resolve_data_config(model))
    return json.loads(json.dumps(config))  # tuples -> lists, as a reader of the file sees them


def stage_run(
    run: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    dataset: str,
    repo_id: str | None = None,
    install: str | None = None,
    license: str | None = None,  # noqa: A002 - the card metadata's name
    card_template: str | os.PathLike | None = None,
) -> Path:
    """Write what ``publish_run`` uploads into ``out_dir``: a ``local-dir:`` model, complete or absent.

    The files are written into a temporary folder beside ``out_dir`` and renamed to it when complete; an existing
    ``out_dir`` is replaced.

    Args:
        run: the run folder, or its ``best.safetensors``.
        out_dir: the folder to write (``timm.create_model(f"local-dir:{out_dir}", pretrained=True)`` loads it).
        dataset: the name of the data the run was trained and validated on, for the card (e.g. a hub dataset id).
        repo_id: the hub repo the card's snippets name (default: a ``local-dir:`` snippet only).
        install: what ``pip install`` needs to get the package (default: ``install_spec()``).
        license: the card's licence id (default: the base model's, when the registry states one).
        card_template: a Jinja template for the card instead of the zoo's (see ``model_cards.render_run_card``).

    Returns:
        ``out_dir``.

    Raises:
        FileNotFoundError, ConfigError: see ``read_run``; ConfigError also for an empty ``dataset``.
    """
    if not dataset or not dataset.strip():
        raise ConfigError("a published model needs the name of its dataset (--dataset NAME): the card states it")
    training = read_run(run)
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".incomplete", dir=out_dir.parent))
    try:
        _write_upload_set(training, tmp, dataset, repo_id, install, license, card_template)
        if out_dir.exists():  # replaced: the old folder is moved aside first, so out_dir is never half-written
            old = out_dir.with_name(f".{out_dir.name}.{os.getpid()}.old")
            os.replace(out_dir, old)
            os.replace(tmp, out_dir)
            shutil.rmtree(old)
        else:
            os.replace(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


def _write_upload_set(
    run: TrainingRun,
    folder: Path,
    dataset: str,
    repo_id: str | None,
    install: str | None,
    license: str | None,  # noqa: A002
    card_template: str | os.PathLike | None,
) -> None:
    base = run.base_model
    description = f"fine-tuned by tokshift-zoo from {base or 'a zoo model'} on {dataset}"
    model, video = _published_model(run, dataset)

    tensors = load_file(run.weights)
    kept = read_safetensors_metadata(run.weights)  # architecture, model_kwargs, epoch, val_top1, as the run wrote them
    metadata = {k: v for k, v in kept.items() if k not in ("pretrained_cfg", "video_cfg")}
    metadata["pretrained_cfg"] = json.dumps(dict(model.pretrained_cfg, description=description))
    metadata["video_cfg"] = json.dumps(video.to_dict())
    metadata["dataset"] = json.dumps(dataset)
    weights = folder / "model.safetensors"
    atomic_write(weights, lambda tmp: save_file(tensors, str(tmp), metadata=metadata))
    sha256 = sha256_file(weights)

    config = _hub_config(model, video, description, sha256)
    atomic_write(folder / "config.json", lambda tmp: tmp.write_text(json.dumps(config, indent=2) + "\n"))
    training = folder / TRAINING_DIR
    training.mkdir()
    if run.config_file is not None:
        shutil.copyfile(run.config_file, training / run.config_file.name)
    elif run.config:
        (training / "train_config.json").write_text(json.dumps(run.config, indent=2) + "\n", encoding="utf-8")
    if (run.folder / METRICS_FILE).is_file():
        shutil.copyfile(run.folder / METRICS_FILE, training / METRICS_FILE)

    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    card = RunCard(
        repo_id=repo_id,
        architecture=config["architecture"],
        model_args=config.get("model_args", {}),
        base_model=base,
        base_hub_id=_base_hub_id(base),
        dataset=dataset,
        label_names=config.get("label_names"),
        num_classes=config["num_classes"],
        preprocessing=config["preprocessing"],
        validation=run.validation,
        best_epoch=run.metadata.get("epoch"),
        epochs=len(run.metrics) or None,
        recipe={k: v for k, v in run.config.items() if k not in _NOT_RECIPE and _is_shown(v)},
        recipe_file=f"{TRAINING_DIR}/{run.config_file.name}" if run.config_file else None,
        sha256=sha256,
        files=[*files, "README.md"],
        install=install or install_spec(),
        license=license or _base_license(base),
    )
    text = render_run_card(card, template=card_template)
    (folder / "README.md").write_text(text, encoding="utf-8")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def install_spec() -> str:
    """What ``pip install`` needs to get this package on another machine, for a card's install line.

    The VCS URL and commit this copy was installed from when pip recorded one (PEP 610 ``direct_url.json``:
    ``git+URL@COMMIT``); otherwise (installed from PyPI, or from a local folder another machine does not have)
    the distribution name at this version or later.
    """
    try:
        direct = json.loads(distribution("tokshift-zoo").read_text("direct_url.json") or "{}")
    except (PackageNotFoundError, json.JSONDecodeError):
        direct = {}
    vcs = direct.get("vcs_info") or {}
    if vcs.get("vcs") == "git" and direct.get("url", "").startswith(("https://", "ssh://", "git@")):
        return f"tokshift-zoo @ git+{direct['url']}@{vcs.get('commit_id') or vcs.get('requested_revision') or 'HEAD'}"
    return f"tokshift-zoo>={__version__}" if "unknown" not in __version__ else "tokshift-zoo"


def _is_shown(value: Any) -> bool:
    """A setting the card's recipe table shows: a scalar, or a short non-empty list or mapping (None is unset)."""
    if isinstance(value, str | int | float | bool):
        return True
    return isinstance(value, list | tuple | dict) and 0 < len(value) and len(json.dumps(value, default=str)) <= 80


def publish_run(
    run: str | os.PathLike,
    repo_id: str,
    *,
    dataset: str,
    private: bool | None = None,
    token: str | None = None,
    commit_message: str | None = None,
    install: str | None = None,
    license: str | None = None,  # noqa: A002 - the card metadata's name
    card_template: str | os.PathLike | None = None,
    stage_dir: str | os.PathLike | None = None,
) -> PublishedRun:
    """Publish a fine-tuned model with its run: weights, timm config, preprocessing, recipe, figures and card.

    The upload set is staged (``stage_run``), then committed to ``main`` of ``repo_id`` (created if needed) in
    one commit with huggingface_hub's ``upload_folder``; the endpoint and token are huggingface_hub's
    (``HF_ENDPOINT``, ``HF_TOKEN`` or ``hf auth login``). Afterwards, on any machine with the package,
    ``timm.create_model(f"hf-hub:{repo_id}", pretrained=True)`` and ``tokshift_zoo.load(f"hf-hub:{repo_id}")``
    give the run's logits and class names.

    Args:
        run, dataset, install, license, card_template: see ``stage_run``.
        stage_dir: keep the staged upload set there (default: a temporary folder, removed afterwards).

    Returns:
        The repo, the commit's URL, the sha256 of the uploaded ``model.safetensors`` and the files uploaded.
    """
    with tempfile.TemporaryDirectory(prefix="tokshift-zoo-publish-") as tmp:
        staged = stage_run(
            run,
            stage_dir or Path(tmp) / "upload",
            dataset=dataset,
            repo_id=repo_id,
            install=install,
            license=license,
            card_template=card_template,
        )
        files = sorted(p.relative_to(staged).as_posix() for p in staged.rglob("*") if p.is_file())
        sha256 = sha256_file(staged / "model.safetensors")
        api = HfApi(token=token)
        api.create_repo(repo_id, private=private, exist_ok=True)
        info = api.upload_folder(
            repo_id=repo_id,
            folder_path=staged,
            commit_message=commit_message or f"Add a TokShift model fine-tuned on {dataset} (tokshift-zoo)",
        )
    _logger.info("published %s to %s: %s", run, repo_id, info.commit_url)
    return PublishedRun(repo_id, info.commit_url, sha256, files)


@dataclass(frozen=True)
class PublishedRelease:
    """One model ``publish_releases`` pushed: its hub repo, the sha256 of its ``model.safetensors``, the commit."""

    name: str
    repo_id: str
    sha256: str
    commit_url: str

    def registry_line(self) -> str:
        """The line to paste into ``K400_HUB_COPIES`` (``models/entries.py``)."""
        return f'    "{self.name}": ("{self.repo_id}", "{self.sha256}"),'


def publish_releases(
    org: str,
    names: list[str] | None = None,
    *,
    private: bool | None = None,
    token: str | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> list[PublishedRelease]:
    """Fetch the paper's Kinetics-400 releases (from any source: hub copy, mirror, the authors' Drive), convert
    them, and push each to ``ORG/NAME`` with timm's ``config.json`` and the generated model card.

    Args:
        org: the hub user or organisation.
        names: architectures (default: every entry with an authors' release).

    Returns:
        One ``PublishedRelease`` per model; ``registry_line()`` gives the ``K400_HUB_COPIES`` line to paste so
        that the hub copy becomes the first source, with its sha256 pin.
    """
    if names is None:
        names = [n for n in list_models() if f"{n}.k400" in list_models(pretrained=True)]
        names = [n for n in names if get_entry(f"{n}.k400").drive_folder]
    published = []
    for name in names:
        fetched = download(f"{name}.k400", cache_dir=cache_dir)
        repo_id = f"{org}/{name}"
        commit_url = publish(fetched.path, repo_id, private=private, token=token)
        published.append(PublishedRelease(name, repo_id, sha256_file(fetched.path), commit_url))
    return published
