"""The README's Python quick start runs as pasted: the block is read from the README itself and executed."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def _quick_start_block() -> str:
    section = README.read_text(encoding="utf-8").split("## Quick start", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S)[1]


def test_python_quick_start_runs_as_pasted(tmp_path, monkeypatch):
    code = _quick_start_block()
    assert "OWNER/" not in README.read_text(encoding="utf-8")
    monkeypatch.chdir(tmp_path)  # the block writes clip.mp4 where it runs
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, str(README), "exec"), {"__name__": "__main__"})
    lines = out.getvalue().splitlines()
    assert lines[0] == "moving_left"  # the demo model names the clip's motion
    assert "'label': 'moving_left'" in lines[1] and lines[2].count("'label'") == 2 * 4
    assert "Weights(tokshift_base16_224_8f.k400: dense 8x32, start_rule=authors, views=10x3" in lines[3]
