#!/usr/bin/env bash
# Alternation GPU check (issue 11, item 11): one script, at most ~8 minutes on one GPU.
#   1. the overhead benchmark on CUDA (B-alternation / I-alternation step vs SGD step, ALL-CNN-C case)
#   2. ALL-CNN-C on CIFAR-10 JPEG without augmentation: SGD vs I- vs B-alternation (both readings),
#      the cifar10_jpeg profile's alternation block on a reduced schedule (ALT_EPOCHS, default 8),
#      seed 0; params from benchmarks/gpu_check_params.py (shared with the LLb-SGD check)
#   3. the run records exported to reference_runs/cifar10_jpeg/ (python -m trainrepro.report.reference
#      export; DESIGN.md s.8), with the LLb-SGD check's records when it ran into the same OUT_DIR
# Not run yet: no GPU was lent to the session that wrote it. Usage (repository root):
#   ALT_EPOCHS=8 bash benchmarks/alternation_gpu_check.sh [OUT_DIR]
#   SMOKE=1 bash benchmarks/alternation_gpu_check.sh /tmp/smoke   # CPU plumbing test: digits, 1 epoch
set -euo pipefail
source "$(dirname "$0")/gpu_check_lib.sh" "$@"
gpu_overhead overhead.md timeout 150 python benchmarks/alternation_overhead.py --device cuda --repeats 3
gpu_prepare 120
timeout 330 python stages/train.py alternation --params "$OUT/params.yaml" --prepared "$OUT/prepared" \
    --results "$OUT/results"
timeout 60 python stages/alternation_analysis.py --params "$OUT/params.yaml" --results "$OUT/results" \
    --prepared "$OUT/prepared"
gpu_export alternation_gpu_check
