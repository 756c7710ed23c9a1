"""Sharing a fine-tuned model: a real `tokshift-zoo train` run on mp4 clips, published to the loopback hub with
`publish-run` (and `convert --push`), then loaded on "another machine" (a fresh process with empty caches) by
timm and the zoo, from ``hf-hub:`` and ``local-dir:``, with the run's own logits and class names."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import timm
import torch
from conftest import link_clips
from huggingface_hub import ModelCard
from safetensors.torch import load_file, save_file

import tokshift_zoo
from tokshift_zoo.cli import main
from tokshift_zoo.convert import ConversionError, publish
from tokshift_zoo.errors import ChecksumError, ConfigError
from tokshift_zoo.publish import publish_run, read_run, stage_run
from tokshift_zoo.weights import sha256_file

pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>'")  # httpx, in huggingface_hub's LFS PUT

REPO = Path(__file__).resolve().parents[1]
BASE = "tokshift_demo_motion.synthetic"  # the bundled demo model: small, and its weights need no network
CLASSES = ["left", "right", "still"]
DATASET = "my-lab/arrows"


@pytest.fixture(scope="module")
def run(clip_folder, tmp_path_factory) -> Path:
    """A one-epoch `tokshift-zoo train` run from the demo model to a new 3-class task, on six of the shared 10-frame
    mp4 clips (conftest's ``clip_folder``: clip i of class i % 3)."""
    root = link_clips(clip_folder, tmp_path_factory.mktemp("clips"))
    rows = [f"clip{i}.mp4,{CLASSES[i % 3]}\n" for i in range(6)]
    (root / "train.csv").write_text("path,label\n" + "".join(rows[:4]))
    (root / "val.csv").write_text("path,label\n" + "".join(rows[3:]))
    output = tmp_path_factory.mktemp("run") / "run"
    # fmt: off
    args = [
        "train", "--model", BASE, "--train-list", str(root / "train.csv"), "--val-list", str(root / "val.csv"),
        "--data-root", str(root), "--output", str(output), "--epochs", "1", "--batch-size", "2", "--lr", "0.05",
        "--num-workers", "0", "--device", "cpu", "--no-progress",
    ]
    # fmt: on
    assert main(args) == 0
    assert (output / "best.safetensors").is_file()
    return output


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """A fixed normalised input batch, (2, 3, 8, 32, 32), in a safetensors file another process can read."""
    path = tmp_path_factory.mktemp("clip") / "clip.safetensors"
    save_file({"clip": torch.randn(2, 3, 8, 32, 32, generator=torch.Generator().manual_seed(0))}, str(path))
    return path


def _reference(run: Path, clip: Path) -> tuple[torch.Tensor, list[str]]:
    """The run's own best.safetensors: its logits on ``clip`` and its class names."""
    model = tokshift_zoo.load(None, checkpoint_path=run / "best.safetensors", device="cpu")
    with torch.no_grad():
        return model(load_file(clip)["clip"]), model.labels


_ANOTHER_MACHINE = """
import json, sys, timm, torch, tokshift_zoo
from safetensors.torch import load_file
name, clip = sys.argv[1], load_file(sys.argv[2])["clip"]
by_timm = timm.create_model(name, pretrained=True).eval()
by_zoo = tokshift_zoo.load(name, device="cpu")
with torch.no_grad():
    out = {"timm": by_timm(clip).tolist(), "zoo": by_zoo(clip).tolist()}
out["timm_labels"] = by_timm.pretrained_cfg["label_names"]
out["zoo_labels"] = by_zoo.labels
out["source"] = by_zoo.load_report.source
print(json.dumps(out))
"""


@pytest.mark.slow  # these use the module's training run (about 15 s, once)
def test_publish_run_then_timm_and_the_zoo_load_it_on_another_machine(run, clip, hub, tmp_path, capsys):
    assert main(["publish-run", str(run), "org/arrows", "--dataset", DATASET]) == 0
    assert "/org/arrows/commit/" in capsys.readouterr().out
    files = set(hub.repos["org/arrows"].commits[hub.repos["org/arrows"].branches["main"]])
    assert {"model.safetensors", "config.json", "README.md", "training/metrics.jsonl"} <= files
    assert any(f.startswith("training/") and "config" in f for f in files)  # the recipe, as the run wrote it

    # config.json: the architecture as a name, the run's model arguments, classes and preprocessing
    config = json.loads(hub.file("org/arrows", "config.json"))
    weights = tmp_path / "published.safetensors"
    weights.write_bytes(hub.file("org/arrows", "model.safetensors"))
    assert config["architecture"] == "tokshift_demo_motion" and config["num_classes"] == 3
    assert config["label_names"] == CLASSES and config["model_args"]["num_classes"] == 3
    video = config["weights"]
    assert video["sha256"] == sha256_file(weights)
    assert (video["meta"]["dataset"], video["filename"], video["meta"]["paper_top1"]) == (
        DATASET,
        "model.safetensors",
        None,
    )
    assert config["preprocessing"]["num_frames"] == 8 and config["preprocessing"]["sampling"] == "uniform"
    published = load_file(weights)
    best = load_file(run / "best.safetensors")
    assert published.keys() == best.keys() and all(torch.equal(published[k], best[k]) for k in best)

    # the card is about this model
    text = hub.file("org/arrows", "README.md").decode()
    card = ModelCard(text)
    row = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()][-1]
    assert card.data.datasets == [DATASET] and card.data.library_name == "timm"
    assert card.data.pipeline_tag == "video-classification"
    (top1, top5) = card.data.eval_results
    assert (top1.metric_type, top1.dataset_split) == ("accuracy", "validation")
    assert top1.metric_value == round(row["val_top1"], 4)
    assert top5.metric_value == round(row["val_top5"], 4)
    assert f"fine-tuned from `{BASE}`" in text and "left, right, still" in text
    install, imports, snippet = (
        text.index('pip install "tokshift-zoo'),
        text.index("import tokshift_zoo"),
        text.index('timm.create_model("hf-hub:org/arrows", pretrained=True)'),
    )
    assert install < imports < snippet
    assert "tokshift_zoo_demo" not in text and "synthetic motion (4 directions)" not in text  # not the demo's card

    # another machine: a fresh process, empty Hugging Face and zoo caches, the run folder gone
    expected, labels = _reference(run, clip)
    moved = run.with_name("run-moved")
    shutil.move(run, moved)
    try:
        env = dict(
            os.environ,
            HF_HOME=str(tmp_path / "other" / "hf"),
            HF_HUB_CACHE=str(tmp_path / "other" / "hf" / "hub"),
            TOKSHIFT_ZOO_CACHE=str(tmp_path / "other" / "zoo"),
            PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
        )
        proc = subprocess.run(
            [sys.executable, "-c", _ANOTHER_MACHINE, "hf-hub:org/arrows", str(clip)],
            capture_output=True,
            text=True,
            timeout=300,
            env=env,
        )
    finally:
        shutil.move(moved, run)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.splitlines()[-1])
    for key in ("timm", "zoo"):
        torch.testing.assert_close(torch.tensor(out[key]), expected)
    assert out["timm_labels"] == out["zoo_labels"] == labels == CLASSES
    assert out["source"].startswith("hf-hub:org/arrows/model.safetensors@")
    assert (tmp_path / "other" / "hf" / "hub" / "models--org--arrows").is_dir()


@pytest.mark.slow
def test_local_dir_loads_the_staged_upload_set_like_the_run(run, clip, tmp_path, capsys):
    staged = tmp_path / "arrows"
    assert main(["publish-run", str(run), "org/arrows", "--dataset", DATASET, "--stage", str(staged), "--dry-run"]) == 0
    assert f"local-dir:{staged}" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["arrows"]  # no temporary folder left beside it

    expected, labels = _reference(run, clip)
    by_timm = timm.create_model(f"local-dir:{staged}", pretrained=True).eval()
    by_zoo = tokshift_zoo.load(f"local-dir:{staged}", device="cpu")
    with torch.no_grad():
        torch.testing.assert_close(by_timm(load_file(clip)["clip"]), expected, rtol=0, atol=0)
        torch.testing.assert_close(by_zoo(load_file(clip)["clip"]), expected, rtol=0, atol=0)
    assert by_timm.pretrained_cfg["label_names"] == by_zoo.labels == labels == CLASSES
    assert "the folder's config.json pin" in by_zoo.load_report.source
    config = json.loads((staged / "config.json").read_text())
    prepared = tokshift_zoo.resolve_data_config(by_zoo)
    assert json.loads(json.dumps(prepared.preprocessing())) == config["preprocessing"]
    assert by_zoo.weights.meta["dataset"] == DATASET

    # the folder's own pin is checked; a folder without config.json says what it lacks
    data = bytearray((staged / "model.safetensors").read_bytes())
    data[-1] ^= 0xFF
    (staged / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(ChecksumError, match="does not match the pin in .*config.json"):
        tokshift_zoo.load(f"local-dir:{staged}", device="cpu")
    (staged / "config.json").unlink()
    with pytest.raises(FileNotFoundError, match="config.json"):
        timm.create_model(f"local-dir:{staged}", pretrained=True)


@pytest.mark.slow
def test_staging_replaces_a_folder_whole_or_not_at_all(run, tmp_path):
    staged = stage_run(run, tmp_path / "up", dataset=DATASET)
    before = {p.name: p.read_bytes() for p in staged.iterdir() if p.is_file()}
    with pytest.raises(FileNotFoundError):  # a card template that is not there: fails after the weights are written
        stage_run(run, staged, dataset="other", card_template=tmp_path / "missing.md")
    assert {p.name: p.read_bytes() for p in staged.iterdir() if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["up"]
    (tmp_path / "my_card.md").write_text("---\n{{ card_data }}\n---\n\n# {{ card.dataset }} {{ load_name }}\n")
    stage_run(run, staged, dataset="other", card_template=tmp_path / "my_card.md")
    assert (staged / "README.md").read_text().endswith("# other local-dir:PATH\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["my_card.md", "up"]


@pytest.mark.slow
def test_convert_push_of_a_run_file_publishes_the_run(run, hub, tmp_path, capsys):
    best, dst = run / "best.safetensors", tmp_path / "copy.safetensors"
    with pytest.raises(ConversionError, match="publish-run RUN_DIR ORG/REPO"):  # not "Unknown model"
        publish(best, "org/x")
    assert main(["convert", str(best), str(dst), "--push", "org/conv"]) == 2  # no --dataset
    assert "--dataset NAME" in capsys.readouterr().err

    assert main(["convert", str(best), str(dst), "--push", "org/conv", "--dataset", DATASET]) == 0
    assert "/org/conv/commit/" in capsys.readouterr().out
    config = json.loads(hub.file("org/conv", "config.json"))
    assert config["label_names"] == CLASSES and config["weights"]["meta"]["dataset"] == DATASET
    copied = tokshift_zoo.load(None, checkpoint_path=dst, device="cpu")  # the copy keeps the run's classes
    assert copied.labels == CLASSES
    assert all(torch.equal(v, load_file(best)[k]) for k, v in load_file(dst).items())
    model = tokshift_zoo.load("hf-hub:org/conv", device="cpu")
    assert model.labels == CLASSES and model.pretrained_cfg["architecture"] == "tokshift_demo_motion"

    # publishing again: training/ becomes this run's (an earlier run's file goes), the repo's other files stay
    hub.commit("org/conv", {"training/config.yaml": b"lr: 9\n", "notes.md": b"mine\n"})
    published = publish_run(run, "org/conv", dataset=DATASET)
    files = set(hub.repos["org/conv"].commits[hub.repos["org/conv"].branches["main"]])
    assert "notes.md" in files and "training/metrics.jsonl" in files
    # the earlier file is replaced by this run's own settings file (every run writes config.yaml)
    assert hub.file("org/conv", "training/config.yaml") == (run / "config.yaml").read_bytes() != b"lr: 9\n"
    assert published.files == sorted(files - {"notes.md"})


@pytest.mark.slow
def test_a_run_is_read_defensively_and_refused_clearly(run, tiny_model, tmp_path):
    # only the weights: no metrics, no config; the weights' own val_top1 is the card's figure
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(run / "best.safetensors", alone)
    training = read_run(alone / "best.safetensors")
    assert training.config == {} and training.metrics == [] and set(training.validation) == {"val_top1"}
    staged = stage_run(alone, tmp_path / "staged", dataset=DATASET)
    assert sorted(p.name for p in staged.iterdir()) == ["README.md", "config.json", "model.safetensors", "training"]

    # a settings file the run wrote back is uploaded as is and shown in the card
    (alone / "config.yaml").write_text("model: tokshift_demo_motion.synthetic\nlr: 0.05\nema: true\n")
    (alone / "metrics.jsonl").write_text('{"epoch": 1, "val_top1": 12.5}\nnot json\n')
    text = (stage_run(alone, tmp_path / "staged", dataset=DATASET) / "README.md").read_text()
    assert (tmp_path / "staged" / "training" / "config.yaml").read_bytes() == (alone / "config.yaml").read_bytes()
    assert "| ema | `true` |" in text and "| val_top1 | 12.5 |" in text and "`training/config.yaml`" in text

    with pytest.raises(FileNotFoundError, match="no best.safetensors in"):
        read_run(tmp_path / "staged" / "training")
    save_file(tiny_model.state_dict(), str(tmp_path / "plain.safetensors"))  # weights without the trainer's metadata
    with pytest.raises(ConfigError, match="plain.safetensors: not a training run's weights"):
        read_run(tmp_path / "plain.safetensors")
    with pytest.raises(ConfigError, match="--dataset NAME"):
        stage_run(run, tmp_path / "x", dataset=" ")
    assert main(["publish-run", str(run), "org/x", "--dataset", DATASET, "--dry-run"]) == 2


class _Distribution:
    """What ``importlib.metadata.distribution`` gives, for a given ``direct_url.json`` (PEP 610)."""

    def __init__(self, direct_url: dict | None) -> None:
        self.direct_url = direct_url

    def read_text(self, name: str) -> str | None:
        return json.dumps(self.direct_url) if name == "direct_url.json" and self.direct_url else None


@pytest.mark.parametrize(
    ("direct_url", "expected"),
    [
        (  # pip install git+https://...@v0.1.0: another machine can install the same commit
            {"url": "https://github.com/org/tokshift-zoo", "vcs_info": {"vcs": "git", "commit_id": "ab" * 20}},
            f"tokshift-zoo @ git+https://github.com/org/tokshift-zoo@{'ab' * 20}",
        ),
        ({"url": "file:///work/main", "dir_info": {"editable": True}}, "tokshift-zoo>=0.1.0"),  # a local folder
        (None, "tokshift-zoo>=0.1.0"),  # from PyPI: no direct_url.json
    ],
)
def test_the_cards_install_line_is_one_another_machine_can_run(direct_url, expected, monkeypatch):
    import tokshift_zoo.publish as publish_module

    monkeypatch.setattr(publish_module, "__version__", "0.1.0")
    monkeypatch.setattr(publish_module, "distribution", lambda name: _Distribution(direct_url))
    assert publish_module.install_spec() == expected
