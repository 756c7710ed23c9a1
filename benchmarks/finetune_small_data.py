"""Fine-tuning on a few hundred clips: the ``small-data`` recipe, training from scratch and a linear probe, in one
run on the same clips of a task the demo model never saw (is the object approaching, receding or keeping its
distance: 3 classes); see ``tokshift_zoo/benchmark/finetune.py`` for the task and the three runs,
docs/benchmarks.md for the figures. Run:

    .venv/bin/python benchmarks/finetune_small_data.py --workdir runs/finetune [--train-clips 320]
        [--val-clips 160] [--epochs 12] [--seed 0] [--num-workers 1] [--json OUT]
"""

from __future__ import annotations

import argparse
import json

from tokshift_zoo.benchmark.finetune import finetune_suite
from tokshift_zoo.benchmark.runner import format_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--train-clips", type=int, default=320)
    parser.add_argument("--val-clips", type=int, default=160)
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num-workers", type=int, default=1)
    parser.add_argument("--json")
    args = parser.parse_args()
    result = finetune_suite(args.workdir, args.train_clips, args.val_clips, args.epochs, args.seed, args.num_workers)
    print(json.dumps(result["environment"]))
    print(json.dumps(result["task"]))
    print(
        format_table(result["rows"], ["method", "top1", "best_top1", "train_top1", "epochs", "seconds", "loadavg_1min"])
    )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
