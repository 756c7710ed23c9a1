"""The small-data fine-tuning benchmark: its task's clips, and the three runs end to end on a handful of clips."""

from __future__ import annotations

from collections import Counter

import pytest

from tokshift_zoo.benchmark.finetune import LOOMING_LABELS, finetune_suite, write_looming_task
from tokshift_zoo.video import read_video_info


def test_looming_task_is_balanced_real_video_and_reused(tmp_path):
    list_file = write_looming_task(tmp_path, 15, seed=3, name="train")
    lines = list_file.read_text().splitlines()
    assert Counter(line.split()[1] for line in lines) == Counter({label: 5 for label in LOOMING_LABELS})
    assert read_video_info(tmp_path / lines[0].split()[0]).num_frames >= 8
    stamp = list_file.stat().st_mtime_ns
    assert write_looming_task(tmp_path, 15, seed=3, name="train") == list_file
    assert list_file.stat().st_mtime_ns == stamp


@pytest.mark.slow
def test_suite_runs_the_recipe_scratch_and_probe_on_the_same_clips(tmp_path):
    result = finetune_suite(tmp_path, train_clips=8, val_clips=8, epochs=1)
    assert [row["method"] for row in result["rows"]] == ["recipe", "scratch", "linear_probe"]
    assert all(0 <= row["top1"] <= 100 for row in result["rows"])
    assert result["task"]["labels"] == list(LOOMING_LABELS)
