#!/usr/bin/env bash
# Cold and no-op `dvc repro` of the default (quick) profile in a fresh clone of the repository.
# Usage: bash benchmarks/pipeline_times.sh [profile]      (prints one line per measurement)
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git clone -q "$src" "$work/repo"
[ -d "$src/../shared" ] && ln -s "$(cd "$src/../shared" && pwd)" "$work/shared"
cd "$work/repo"
if [ -n "${1:-}" ]; then sed -i "s/^profile: .*/profile: $1/" params.yaml; fi
stamp() { date +%s.%N; }
t0=$(stamp); dvc repro > "$work/cold.log" 2>&1 || { tail -30 "$work/cold.log"; exit 1; }; t1=$(stamp)
dvc repro > "$work/noop.log" 2>&1; t2=$(stamp)
python - "$t0" "$t1" "$t2" <<'PY'
import sys, platform, os
t0, t1, t2 = map(float, sys.argv[1:])
print(f"cold dvc repro: {t1 - t0:.1f} s; no-op dvc repro: {t2 - t1:.2f} s "
      f"({os.cpu_count()} CPUs, {platform.machine()})")
PY
grep -E "^(train|foundation|mentornet|lgl|aggregate|prepared|report|mentor)" "$work/cold.log" | head -40 || true
