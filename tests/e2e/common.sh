# Shared setup for the end-to-end tests: paths, a bounded mpirun, and small-model settings.
set -euo pipefail
DISTILL="${DISTILL:?path to the distill binary}"
WORK="${E2E_DIR:?shared work directory}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
# Every launch is bounded: a hang fails the test instead of blocking CI.
run_np() { local np=$1; shift; timeout -k 10 300 mpirun -np "$np" --oversubscribe "$DISTILL" "$@"; }
# Debian's python3 (python3-torch, python3-h5py), not another python3 earlier on PATH.
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
# Python helpers shared by the scripts (safetensors_np.py).
export PYTHONPATH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)${PYTHONPATH:+:$PYTHONPATH}"
fail() { echo "FAIL: $*" >&2; exit 1; }
# metrics.jsonl without its timings (wall time, samples/s, wait shares), which differ from run to run.
strip() { sed -E 's/"(samples_per_s|wall_time|input_wait_share|comm_wait_share)":[^,}]*,?//g' "$1"; }
# The number of logged steps in a metrics.jsonl (evaluation lines have no loss).
step_lines() { grep -c '"loss"' "$1"; }

TEACHER_SET=(--set data.path="$WORK/data.h5" --set student.vocab_size=200 --set student.hidden=32
  --set student.layers=2 --set student.heads=2 --set student.intermediate=64 --set student.max_positions=16
  --set train.batch_size=16 --set train.log_every=5 --set train.lr=0.002)
STUDENT_SET=(--set data.path="$WORK/data.h5" --set teacher.path="$WORK/teacher/checkpoints"
  --set store.path="$WORK/store" --set store.shard_size=64 --set student.vocab_size=200 --set student.hidden=16
  --set student.layers=1 --set student.heads=2 --set student.intermediate=32 --set student.max_positions=16
  --set train.batch_size=16 --set train.log_every=1 --set train.lr=0.003 --set distill.temperature=2)
