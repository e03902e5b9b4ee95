#!/usr/bin/env bash
# The GPU path, proven on the first GPU machine at hand (about 8 minutes; run it after
# `make install`, from anywhere):
#   1. the conformance kit on CUDA: every variant trains 2 steps (train.device auto picks
#      the GPU), checkpoints, resumes and exports with onnxruntime parity;
#   2. benchmarks/gpu_check.py: CPU vs CUDA fp32 vs CUDA bf16 training steps/s, NCCL
#      data-parallel training over every GPU, onnxruntime's CUDA provider in generation
#      and in GANSynthesize against the CPU provider; writes benchmarks/results/gpu.{json,md}.
# Without a GPU it still runs: the GPU rows say why they were skipped.
# Environment: PYTHON (default: .venv/bin/python when present, else python),
# GPU_CHECK_STEPS (default 300), and $OUT: where a copy of the results goes, if set.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -z "${PYTHON:-}" ]]; then
  if [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; else PYTHON=python; fi
fi
"$PYTHON" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || true
status=0
timeout 300 "$PYTHON" -m pytest -q -p no:cacheprovider -x tests/test_conformance.py || status=$?
timeout 300 "$PYTHON" benchmarks/gpu_check.py --steps "${GPU_CHECK_STEPS:-300}" || status=$?
if [[ -n "${OUT:-}" ]]; then cp benchmarks/results/gpu.json benchmarks/results/gpu.md "$OUT"/; fi
exit "$status"
