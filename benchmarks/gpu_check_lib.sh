# Shared steps of the GPU checks (benchmarks/alternation_gpu_check.sh, llbsgd_gpu_check.sh), sourced
# by them with their arguments: the settings (OUT_DIR = $1, ALT_EPOCHS, LLB_EPOCHS, RUNS_PER_GPU,
# SMOKE, REPLACE), the shared params (gpu_check_params.py) and prepared data, and the export.
set -euo pipefail
OUT=${1:-${OUT:-/tmp/gpu_check}}
ALT_EPOCHS=${ALT_EPOCHS:-8}
LLB_EPOCHS=${LLB_EPOCHS:-4}
RUNS_PER_GPU=${RUNS_PER_GPU:-3}
SMOKE=${SMOKE:-}
mkdir -p "$OUT"
export PYTHONPATH="$PWD/src:$PWD/benchmarks${PYTHONPATH:+:$PYTHONPATH}"

# gpu_overhead FILE CMD...: the CUDA overhead benchmark, its table teed to $OUT/FILE (not with SMOKE)
gpu_overhead() {
    local file=$1; shift
    if [ -z "$SMOKE" ]; then
        "$@" | tee "$OUT/$file"
    fi
}

# gpu_prepare SECONDS: the shared reduced cifar10_jpeg params and its prepared datasets
gpu_prepare() {
    python benchmarks/gpu_check_params.py "$OUT/params.yaml" --alt-epochs "$ALT_EPOCHS" \
        --llb-epochs "$LLB_EPOCHS" --runs-per-gpu "$RUNS_PER_GPU" ${SMOKE:+--smoke}
    timeout "$1" python stages/prepare.py --params "$OUT/params.yaml" --out "$OUT/prepared"
}

# gpu_export NAME: the small run records + provenance (commit, device, date, params/profile hash)
# of every study in $OUT/results, written by the export command; an existing
# reference_runs/cifar10_jpeg/ is replaced only with REPLACE=1. SMOKE runs are not exported.
gpu_export() {
    if [ -n "$SMOKE" ]; then
        echo "$1: SMOKE run done in $OUT (nothing exported)"
        return 0
    fi
    python -m trainrepro.report.reference export --profile cifar10_jpeg --params "$OUT/params.yaml" \
        --results "$OUT/results" --out reference_runs ${REPLACE:+--replace}
}
