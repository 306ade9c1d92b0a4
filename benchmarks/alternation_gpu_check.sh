#!/usr/bin/env bash
# Alternation GPU check (issue 11, item 11): one script, at most ~8 minutes on one GPU.
#   1. the overhead benchmark on CUDA (B-alternation / I-alternation step vs SGD step, ALL-CNN-C case)
#   2. ALL-CNN-C on CIFAR-10 JPEG without augmentation: SGD vs I- vs B-alternation (both readings),
#      the cifar10_jpeg profile's alternation block on a reduced schedule (EPOCHS, default 8), seed 0
#   3. the run records exported to reference_runs/cifar10_jpeg/ (python -m trainrepro.report.reference
#      export; DESIGN.md s.8)
# Not run yet: no GPU was lent to the session that wrote it. Usage (repository root):
#   EPOCHS=8 bash benchmarks/alternation_gpu_check.sh [OUT_DIR]
set -euo pipefail
OUT=${1:-${OUT:-/tmp/alternation_gpu}}
EPOCHS=${EPOCHS:-8}
mkdir -p "$OUT"
export PYTHONPATH="$PWD/src:$PWD/benchmarks${PYTHONPATH:+:$PYTHONPATH}"
timeout 150 python benchmarks/alternation_overhead.py --device cuda --repeats 3 | tee "$OUT/overhead.md"
python - "$OUT/params.yaml" "$EPOCHS" <<'PY'
import sys, yaml
p = yaml.safe_load(open("params.yaml"))
p["profile"] = "cifar10_jpeg"
prof = p["profiles"]["cifar10_jpeg"]
prof["studies"] = {"alternation": prof["studies"]["alternation"]}
for block in prof["studies"]["alternation"]:
    block["train"]["epochs"] = int(sys.argv[2])
prof["label"] += f" (reduced: alternation study only, {sys.argv[2]} epochs, benchmarks/alternation_gpu_check.sh)"
yaml.safe_dump(p, open(sys.argv[1], "w"), sort_keys=False)
PY
timeout 120 python stages/prepare.py --params "$OUT/params.yaml" --out "$OUT/prepared"
timeout 330 python stages/train.py alternation --params "$OUT/params.yaml" --prepared "$OUT/prepared" \
    --results "$OUT/results"
timeout 60 python stages/alternation_analysis.py --params "$OUT/params.yaml" --results "$OUT/results"
# the small run records + provenance (commit, device, date, params/profile hash), written by the
# export command; an existing reference_runs/cifar10_jpeg/ is replaced only with REPLACE=1
python -m trainrepro.report.reference export --profile cifar10_jpeg --params "$OUT/params.yaml" \
    --results "$OUT/results" --out reference_runs --studies alternation ${REPLACE:+--replace}
