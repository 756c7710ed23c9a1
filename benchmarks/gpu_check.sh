#!/usr/bin/env bash
# The GPU check (`make gpu-check`): on a machine with CUDA, run the cuda-marked tests and every benchmark suite on
# the GPU, and say where the results went. The python comes from $PYTHON (default python3); it needs torch and
# timm (and the [onnx] extra for the runtime suite, which reports itself skipped without it), and runs this
# checkout's tokshift_zoo. Results go to $GPU_CHECK_DIR (default gpu_check/<UTC date and time>).
# GPU_CHECK_BENCH_ARGS replaces the benchmark's default arguments (--suite all --compile), e.g. to fit a short lease.
# Exit status: 0 when the tests and the benchmark both succeeded.
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
OUT="${GPU_CHECK_DIR:-gpu_check/$(date -u +%Y%m%dT%H%MZ)}"
read -r -a BENCH_ARGS <<< "${GPU_CHECK_BENCH_ARGS:---suite all --compile}"
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

if ! "$PYTHON" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
    echo "gpu-check: $PYTHON has no torch, or torch sees no CUDA device; nothing run" >&2
    exit 1
fi
"$PYTHON" -c 'import torch; print(f"gpu-check: {torch.cuda.get_device_name()}, torch {torch.__version__}, CUDA {torch.version.cuda}")'

status=0
echo "gpu-check: the cuda-marked tests -> $OUT/tests.txt"
"$PYTHON" -m pytest -m cuda -q -rs 2>&1 | tee "$OUT/tests.txt" || status=1
echo "gpu-check: benchmark ${BENCH_ARGS[*]} on the GPU (all suites: tens of minutes) -> $OUT/benchmark.txt, $OUT/benchmark.json"
"$PYTHON" -m tokshift_zoo.cli benchmark --device cuda "${BENCH_ARGS[@]}" --json "$OUT/benchmark.json" 2>&1 \
    | tee "$OUT/benchmark.txt" || status=1

echo
echo "gpu-check: results in $OUT/"
echo "  tests.txt       the cuda-marked tests (pytest -m cuda)"
echo "  benchmark.txt   the figures as printed"
echo "  benchmark.json  every figure with the environment (GPU, CUDA, torch); record them in docs/benchmarks.md"
[ "$status" -eq 0 ] || echo "gpu-check: something failed; see the files above" >&2
exit "$status"
