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
OUT=${1:-${OUT:-/tmp/gpu_check}}
ALT_EPOCHS=${ALT_EPOCHS:-8}
LLB_EPOCHS=${LLB_EPOCHS:-4}
RUNS_PER_GPU=${RUNS_PER_GPU:-3}
SMOKE=${SMOKE:-}
mkdir -p "$OUT"
export PYTHONPATH="$PWD/src:$PWD/benchmarks${PYTHONPATH:+:$PYTHONPATH}"
if [ -z "$SMOKE" ]; then
    timeout 100 python benchmarks/llbsgd_overhead.py --device cuda --repeats 5 | tee "$OUT/llbsgd_overhead.md"
fi
python benchmarks/gpu_check_params.py "$OUT/params.yaml" --alt-epochs "$ALT_EPOCHS" --llb-epochs "$LLB_EPOCHS" \
    --runs-per-gpu "$RUNS_PER_GPU" ${SMOKE:+--smoke}
timeout 90 python stages/prepare.py --params "$OUT/params.yaml" --out "$OUT/prepared"
timeout 300 python stages/train.py llbsgd --params "$OUT/params.yaml" --prepared "$OUT/prepared" \
    --results "$OUT/results"
timeout 30 python stages/llbsgd_analysis.py --params "$OUT/params.yaml" --results "$OUT/results"
if [ -n "$SMOKE" ]; then
    echo "llbsgd_gpu_check: SMOKE run done in $OUT (nothing exported)"
    exit 0
fi
# the small run records + provenance (commit, device, date, params/profile hash), written by the
# export command; an existing reference_runs/cifar10_jpeg/ is replaced only with REPLACE=1
python -m trainrepro.report.reference export --profile cifar10_jpeg --params "$OUT/params.yaml" \
    --results "$OUT/results" --out reference_runs ${REPLACE:+--replace}
