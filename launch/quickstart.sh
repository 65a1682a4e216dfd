#!/usr/bin/env bash
# Fresh machine to a distilled student: installs what is missing, builds, then runs the main job
# end to end on 2 cores and prints a summary.
#   prepare (synthetic task) -> teacher training (2 ranks) -> precompute (2 teacher ranks)
#   -> distillation (2 student ranks) -> evaluation on the held-out test split
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
"$ROOT/launch/install-deps.sh"
"$ROOT/launch/build.sh"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
DISTILL="${BUILD_DIR:-$ROOT/.build}/distill"
RUN=.runs/quickstart
NP=${NP:-2}
mpi() { mpirun -np "$NP" --oversubscribe "$DISTILL" "$@"; }
rm -rf "$RUN" && mkdir -p "$RUN"

echo "== prepare: synthetic marker-counting task"
"$DISTILL" prepare --synthetic --out "$RUN/dataset.h5" --train 4000 --dev 500 --test 500 --seq 32
echo "== teacher: 4-layer BERT, supervised, $NP ranks"
mpi train -c launch/configs/teacher.yaml 2>&1 | grep -E "training|dev accuracy|step [0-9]+/[0-9]+ .*" | tail -4
echo "== precompute: $NP teacher ranks write the store"
mpi precompute -c launch/configs/distill.yaml 2>&1 | grep -E "precompute done"
echo "== train: 2-layer student on the teacher's soft targets, $NP student ranks"
mpi train -c launch/configs/distill.yaml 2>&1 | grep -E "training|dev accuracy" | tail -3
echo "== eval on the test split"
mpi eval -c launch/configs/distill.yaml --json 2>/dev/null | sed -n '/^{/,/^}/p' > "$RUN/eval.json"
"$DISTILL" inspect "$RUN/store" --json > "$RUN/store.json"

python3 - "$RUN" <<'PY'
import json, sys
run = sys.argv[1]
ev = json.load(open(f"{run}/eval.json"))
st = json.load(open(f"{run}/store.json"))
tr = json.load(open(f"{run}/student/train_summary.json"))
te = json.load(open(f"{run}/teacher/train_summary.json"))
print("\n=== distill quickstart summary ===")
print(f"teacher accuracy (test)      {ev['teacher_accuracy']:.4f}   ({ev['teacher_parameters']:,} parameters)")
print(f"student accuracy (test)      {ev['accuracy']:.4f}   ({ev['student_parameters']:,} parameters, "
      f"{ev['teacher_parameters'] / ev['student_parameters']:.1f}x smaller)")
print(f"top-1 agreement              {ev['agreement']:.4f}   (transfer risk {ev['transfer_risk']:.4f})")
print(f"KL(teacher || student)       {ev['kl_teacher_student']:.4f}")
print(f"store                        {st['bytes']:,} bytes in {st['shards']} shards "
      f"({st['bytes_per_example']:.1f} bytes/example, {st['dtype']})")
print(f"teacher training             {te['samples_per_s']:.0f} samples/s on {te['ranks']} ranks")
print(f"student training             {tr['samples_per_s']:.0f} samples/s on {tr['ranks']} ranks")
PY
