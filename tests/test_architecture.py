"""The package's shape: one-way imports (checked on the source with ``ast``), every module importable alone, one
error family, the public API, a quick command line, and one weights record per ``name.tag``."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

import tokshift_zoo
from tokshift_zoo import errors

PACKAGE = Path(tokshift_zoo.__file__).parent
REPO = PACKAGE.parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """The package modules ``path`` imports, at the top or inside functions (call-time imports count)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("tokshift_zoo")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if not module.startswith("tokshift_zoo"):
                continue
            for alias in node.names:  # `from . import x` may name a submodule
                sub = f"{module}.{alias.name}"
                found.add(sub if (REPO / Path(*sub.split("."))).with_suffix(".py").exists() else module)
    return found - {name}


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
GRAPH = {name: _imports(path) for name, path in MODULES.items()}


def _reaches(start: str, goal: str) -> bool:
    seen, todo = set(), [start]
    while todo:
        node = todo.pop()
        for nxt in GRAPH.get(node, ()):
            if nxt == goal:
                return True
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return False


def test_the_import_graph_has_no_cycle():
    cycles = [name for name in GRAPH if _reaches(name, name)]
    assert cycles == [], f"modules on an import cycle: {cycles}"


@pytest.mark.parametrize(
    ("lower", "forbidden"),
    [
        ("tokshift_zoo.errors", ("tokshift_zoo.",)),
        ("tokshift_zoo.video", ("tokshift_zoo.models", "tokshift_zoo.weights", "tokshift_zoo.train")),
        ("tokshift_zoo.models", ("tokshift_zoo.weights", "tokshift_zoo.video", "tokshift_zoo.factory")),
        ("tokshift_zoo.weights", ("tokshift_zoo.factory", "tokshift_zoo.ready", "tokshift_zoo.train")),
        ("tokshift_zoo.factory", ("tokshift_zoo.ready", "tokshift_zoo.inference", "tokshift_zoo.train")),
    ],
)
def test_arrows_run_one_way(lower, forbidden):
    """registry <- models <- weights <- factory <- ready/inference <- train <- cli; video knows no models."""
    wrong = {
        f"{name} -> {target}"
        for name, targets in GRAPH.items()
        if name.startswith(lower)
        for target in targets
        if target.startswith((*forbidden, "tokshift_zoo.cli"))
    }
    assert wrong == set()


def test_nothing_imports_the_command_line():
    # ``python -m tokshift_zoo`` is the command's other entry point, as the console script is
    outside = [name for name in GRAPH if not name.startswith("tokshift_zoo.cli") and name != "tokshift_zoo.__main__"]
    assert [name for name in outside if any(t.startswith("tokshift_zoo.cli") for t in GRAPH[name])] == []


def test_every_module_imports_alone():
    """Each module first in a fresh interpreter (forked after the third-party imports, two at a time, so it takes
    seconds, not minutes): no zoo module is imported before the one under test."""
    script = (
        "import os, sys, importlib\n"
        "import torch, torchvision, timm, av, huggingface_hub, requests, safetensors, numpy, tqdm, yaml  # shared\n"
        "assert not [m for m in sys.modules if m.startswith('tokshift_zoo')]\n"
        "failed, running, names = [], {}, sys.argv[1:]\n"
        "while names or running:\n"
        "    if names and len(running) < 2:\n"
        "        name = names.pop(0)\n"
        "        pid = os.fork()\n"
        "        if pid == 0:\n"
        "            try:\n"
        "                importlib.import_module(name)\n"
        "            except BaseException as err:\n"
        "                print(name, repr(err), file=sys.stderr); os._exit(1)\n"
        "            os._exit(0)\n"
        "        running[pid] = name\n"
        "        continue\n"
        "    pid, status = os.wait()\n"
        "    if status:\n"
        "        failed.append(running[pid])\n"
        "    del running[pid]\n"
        "print(sorted(failed))\n"
    )
    if not hasattr(os, "fork"):
        pytest.skip("needs os.fork")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run(
        [sys.executable, "-c", script, *MODULES], capture_output=True, text=True, timeout=600, cwd=REPO, env=env
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "[]", proc.stderr[-3000:]


def test_command_line_help_imports_no_torch():
    code = "import sys, tokshift_zoo.cli as c\nc.build_parser()\n"
    code += "print([m for m in ('torch', 'timm') if m in sys.modules])"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0 and proc.stdout.strip() == "[]", proc.stderr
    from tokshift_zoo.cli import AMP_CHOICES
    from tokshift_zoo.devices import AMP_CHOICES as LIBRARY_AMP_CHOICES

    assert tuple(AMP_CHOICES) == LIBRARY_AMP_CHOICES
    from tokshift_zoo.cli.export import ONNX_OPSET
    from tokshift_zoo.onnx_attention import ONNX_OPSET as LIBRARY_ONNX_OPSET

    assert ONNX_OPSET == LIBRARY_ONNX_OPSET


def test_import_then_timm_registers_the_models():
    code = "import tokshift_zoo, timm; print(timm.is_model('tokshift_base16_224_8f'))"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert proc.stdout.strip() == "True", proc.stderr


def test_one_error_family_each_also_the_builtin():
    builtins = {
        errors.ConfigError: ValueError,
        errors.DeviceError: RuntimeError,
        errors.WeightsError: ValueError,
        errors.ChecksumError: ValueError,
        errors.DownloadError: OSError,
        errors.NotCachedError: FileNotFoundError,
        errors.VideoError: ValueError,
        errors.WriteError: OSError,
    }
    for cls, builtin in builtins.items():
        assert issubclass(cls, errors.TokShiftZooError) and issubclass(cls, builtin)
        assert getattr(tokshift_zoo, cls.__name__) is cls and cls.__name__ in tokshift_zoo.__all__
    from tokshift_zoo.convert import ConversionError
    from tokshift_zoo.train import VideoListError
    from tokshift_zoo.video import VideoReadError

    assert issubclass(VideoReadError, errors.VideoError) and issubclass(VideoListError, errors.ConfigError)
    assert issubclass(ConversionError, errors.WeightsError)


def test_public_api():
    from importlib.metadata import version

    assert tokshift_zoo.__version__ == version("tokshift-zoo")
    for name in tokshift_zoo.__all__:
        assert getattr(tokshift_zoo, name) is not None
    for name in ("evaluate", "download", "load", "create_model", "TrainConfig", "get_weights", "Weights"):
        assert name in tokshift_zoo.__all__
    for gone in ("VideoCfg", "DataConfig"):  # the one weights record replaced them
        assert gone not in tokshift_zoo.__all__


def test_a_name_tag_is_registered_once_and_generates_timms_cfg():
    import timm

    from tokshift_zoo.models.entries import RECORDS
    from tokshift_zoo.models.registry import get_weights, register_weights

    with pytest.raises(errors.ConfigError, match="tokshift_base16_224_8f.k400.*registered twice"):
        register_weights([get_weights("tokshift_base16_224_8f.k400")])
    for record in RECORDS:
        assert timm.models.get_pretrained_cfg(record.key).to_dict() == record.timm_cfg()


def test_usage_errors_exit_2_and_failures_exit_1(capsys):
    from tokshift_zoo.cli import main

    assert main(["download", "no_such_model"]) == 2
    assert "no_such_model" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main(["predict", "x.mp4", "--model-kwargs", "{not json"])
    assert exit_.value.code == 2 and "expected a JSON object" in capsys.readouterr().err
    assert main(["download", "tokshift_base16_224_8f.k400"]) == 1  # no source can serve it here
