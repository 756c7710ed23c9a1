"""Every code block of the README works as pasted.

Each ```python and ```bash block is read from the README itself. A block that needs what a test cannot have (the
K400 or ImageNet-21k downloads, the user's own files, GPUs, a hub token) says so in its first line,
``# needs ...``; it is checked without running: Python compiles and uses no name it does not define or import
(a NameError as pasted), each ``tokshift-zoo`` / ``-m tokshift_zoo.cli`` command parses with the real parser
(options that exist, values they accept, no ``[--option]`` brackets pasted literally), and bash parses with
``bash -n``. Every other block runs: the Python ones in a fresh namespace in a temporary folder holding the
videos they name, the bash ones with bash, the ``tokshift-zoo`` command on the PATH.
"""

from __future__ import annotations

import builtins
import contextlib
import io
import os
import re
import shlex
import subprocess
import symtable
import sys
from pathlib import Path

import pytest
from videos import index_frames, write_video

from tokshift_zoo.cli import build_parser

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"


def _blocks(language: str) -> list[tuple[int, str]]:
    """(line number, text) of every ```language block."""
    text = README.read_text(encoding="utf-8")
    return [
        (text[: m.start()].count("\n") + 1, m[1]) for m in re.finditer(rf"^```{language}\n(.*?)^```", text, re.S | re.M)
    ]


def _needs(block: str) -> bool:
    return block.lstrip().startswith("# needs")


def _free_names(code: str) -> set[str]:
    """Names a block reads (at its top level or as globals of its functions, lambdas and comprehensions) that it
    neither assigns nor imports, and which are no builtins: a NameError as pasted."""
    top = symtable.symtable(code, str(README), "exec")
    bound = {s.get_name() for s in top.get_symbols() if s.is_assigned() or s.is_imported()}
    used: set[str] = set()

    def visit(table: symtable.SymbolTable) -> None:
        used.update(s.get_name() for s in table.get_symbols() if s.is_referenced() and (table is top or s.is_global()))
        for child in table.get_children():
            visit(child)

    visit(top)
    return {name for name in used - bound if not hasattr(builtins, name)}


def _commands(block: str) -> list[list[str]]:
    """Each zoo command of a bash block, as argv after ``tokshift-zoo`` (comments, env settings, redirections
    and the ``torchrun ... -m tokshift_zoo.cli`` prefix removed)."""
    joined = re.sub(r"\\\n\s*", " ", block)
    found = []
    for line in joined.splitlines():
        words = shlex.split(line, comments=True)
        words = [w for w in words if not re.fullmatch(r"[A-Z_]+=.*", w)]
        words = words[: words.index(">")] if ">" in words else words
        if words[:1] == ["tokshift-zoo"]:
            found.append(words[1:])
        elif "tokshift_zoo.cli" in words:
            found.append(words[words.index("tokshift_zoo.cli") + 1 :])
    return found


def test_every_block_says_what_it_needs_or_runs_and_no_block_uses_an_undefined_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the weight files the commands name exist (argparse checks --checkpoint's)
    python, bash = _blocks("python"), _blocks("bash")
    assert python and bash
    for line, code in python:
        compile(code, f"{README}:{line}", "exec")
        assert not _free_names(code), f"README.md:{line}: names used but never defined: {_free_names(code)}"
    parser = build_parser()
    for line, block in bash:
        assert subprocess.run(["bash", "-n"], input=block, text=True).returncode == 0, f"README.md:{line}"
        for argv in _commands(block):
            for word in argv:
                if word.endswith((".pth", ".safetensors", ".pt")) and not word.startswith("-"):
                    (tmp_path / word).parent.mkdir(parents=True, exist_ok=True)
                    (tmp_path / word).touch()
            assert not any(w.startswith("[") for w in argv), f"README.md:{line}: brackets pasted literally: {argv}"
            with contextlib.redirect_stderr(io.StringIO()) as err:
                try:
                    parser.parse_args(argv)
                except SystemExit as stop:
                    pytest.fail(f"README.md:{line}: {shlex.join(argv)}: {err.getvalue().strip()} ({stop.code})")
    assert "OWNER/" not in README.read_text(encoding="utf-8")


def test_python_blocks_run_as_pasted(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the blocks write and read their files where they run
    for name in ("a.mp4", "b.mp4"):  # the videos a block names; the quick start writes its own clip.mp4
        write_video(tmp_path / name, index_frames(range(48)), fps=25)
    ran = []
    for line, code in _blocks("python"):
        if _needs(code):
            continue
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(code, f"{README}:{line}", "exec"), {"__name__": "__main__"})
        ran.append(out.getvalue().splitlines())
    quick_start = ran[0]
    assert quick_start[0] == "moving_left"  # the demo model names the clip's motion
    assert "'label': 'moving_left'" in quick_start[1] and quick_start[2].count("'label'") == 2 * 4
    assert "Weights(tokshift_base16_224_8f.k400: dense 8x32, start_rule=authors, views=10x3" in quick_start[3]
    assert (tmp_path / "emb" / "index.jsonl").read_text().count("\n") == 2 and len(ran) == 2


@pytest.mark.slow
def test_bash_blocks_run_as_pasted(tmp_path):
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
        PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]),
    )
    runnable = [(line, block) for line, block in _blocks("bash") if not _needs(block)]
    assert runnable, "the README has a bash block that runs as pasted"
    for line, block in runnable:
        proc = subprocess.run(["bash", "-e", "-c", block], cwd=tmp_path, env=env, capture_output=True, text=True)
        assert proc.returncode == 0, f"README.md:{line}: {proc.stderr}"
        assert "tokshift_base16_224_8f" in proc.stdout and '"predictions"' in proc.stdout
