#!/usr/bin/env bash
# Fresh machine to a distilled student: installs what is missing, builds, fetches the real data,
# then runs the main job end to end on 2 cores and prints a summary.
#   prepare (Pang & Lee sentence polarity, bert-base-uncased WordPiece) -> teacher training
#   (2 ranks) -> precompute (2 teacher ranks) -> distillation (2 student ranks) -> evaluation on
#   the held-out test split.  SYNTHETIC=1 runs the same job on the synthetic task instead.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
"$ROOT/launch/install-deps.sh"
"$ROOT/launch/build.sh"
"$ROOT/launch/fetch-vocab.sh"
"$ROOT/launch/fetch-data.sh"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
DISTILL="${BUILD_DIR:-$ROOT/.build}/distill"
RUN=.runs/quickstart
NP=${NP:-2}
mpi() { mpirun -np "$NP" --oversubscribe "$DISTILL" "$@"; }
rm -rf "$RUN" && mkdir -p "$RUN"

if [ "${SYNTHETIC:-0}" = 1 ]; then
  echo "== prepare: synthetic marker-counting task"
  "$DISTILL" prepare --synthetic --out "$RUN/dataset.h5" --train 4000 --dev 500 --test 500 --seq 32
  TEACHER=launch/configs/teacher.yaml DISTILL_CFG=launch/configs/distill.yaml
else
  echo "== prepare: Pang & Lee sentence polarity (4,000 sentences), 80/10/10 split"
  "$DISTILL" prepare -i datasets/polarity/polarity.csv --columns label,text --labels=-1,1 \
    --label-names negative,positive --vocab datasets/vocab/bert-base-uncased/vocab.txt --max-length 64 \
    --out "$RUN/dataset.h5" 2>&1 | grep -E "wrote"
  TEACHER=launch/configs/polarity-teacher.yaml DISTILL_CFG=launch/configs/polarity-distill.yaml
fi
echo "== teacher: 4-layer BERT, supervised, $NP ranks"
mpi train -c "$TEACHER" 2>&1 | grep -E "training|dev accuracy|step [0-9]+/[0-9]+ .*" | tail -4
echo "== precompute: $NP teacher ranks write the store"
mpi precompute -c "$DISTILL_CFG" 2>&1 | grep -E "precompute done"
echo "== train: 2-layer student on the teacher's soft targets, $NP student ranks"
mpi train -c "$DISTILL_CFG" 2>&1 | grep -E "training|dev accuracy" | tail -3
echo "== eval on the test split"
mpi eval -c "$DISTILL_CFG" --json 2>/dev/null | sed -n '/^{/,/^}/p' > "$RUN/eval.json"
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
