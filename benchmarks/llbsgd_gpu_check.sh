#!/usr/bin/env bash
# LLb-SGD GPU check (issue 10, item 9): one script, at most ~8 minutes on one GPU.
#   1. the overhead benchmark on CUDA (LLb-SGD / Path-SGD / ESGD step vs the SGD step, ResNet-34 case)
#   2. the reduced CIFAR-10 JPEG Fig. 5 comparison: the cifar10_jpeg profile's llbsgd block (ResNet-34,
#      no augmentation, SGD vs LLb-SGD (reconstruction) vs Adam, seeds 0 and 1) cut to LLB_EPOCHS epochs
#      (default 4), RUNS_PER_GPU runs sharing the GPU (default 3); params from
#      benchmarks/gpu_check_params.py (shared with the alternation check)
#   3. the run records exported to reference_runs/cifar10_jpeg/ (python -m trainrepro.report.reference
#      export; DESIGN.md s.8), with the alternation check's records when it ran into the same OUT_DIR
# Not run yet: no GPU was lent to the session that wrote it. Usage (repository root):
#   LLB_EPOCHS=4 bash benchmarks/llbsgd_gpu_check.sh [OUT_DIR]
#   SMOKE=1 bash benchmarks/llbsgd_gpu_check.sh /tmp/smoke   # CPU plumbing test: digits, small_cnn, 1 epoch
set -euo pipefail
source "$(dirname "$0")/gpu_check_lib.sh" "$@"
gpu_overhead llbsgd_overhead.md timeout 100 python benchmarks/llbsgd_overhead.py --device cuda --repeats 5
gpu_prepare 90
timeout 300 python stages/train.py llbsgd --params "$OUT/params.yaml" --prepared "$OUT/prepared" \
    --results "$OUT/results"
timeout 30 python stages/llbsgd_analysis.py --params "$OUT/params.yaml" --results "$OUT/results"
gpu_export llbsgd_gpu_check
