# Sourced by the polarity benchmarks (bench_transfer.sh, bench_schedules.sh, bench_relation.sh,
# bench_teachers.sh): strict mode, the repository root as working directory, and their settings
# BUILD_DIR (.build), OUT_DIR (.runs/transfer), NP (2 ranks), PY (Debian's python3), STEPS (600);
# mpi ARGS... runs distill ARGS on NP ranks.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
DISTILL="${BUILD_DIR:-$ROOT/.build}/distill"
OUT=${OUT_DIR:-.runs/transfer}
NP=${NP:-2}
PY=${PY:-/usr/bin/python3}
STEPS=${STEPS:-600}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mpi() { mpirun -np "$NP" --oversubscribe "$DISTILL" "$@"; }
# Needs the teacher, data sets and stores of bench_transfer.sh.
require_transfer_runs() {
  [ -f "$OUT/store-a/manifest.json" ] || { echo "run launch/bench_transfer.sh first (OUT_DIR=$OUT)"; exit 1; }
}
