#!/usr/bin/env bash
# The soft-loss kinds on real data: the quickstart's polarity job (teacher 4 x 256, student 2 x 128,
# distill.alpha 0.2, beta 0.8, T 2) distilled with distill.soft_loss kl, reverse_kl, jsd and mse
# from one teacher and store, evaluated on the test split (accuracy, agreement, KL). Needs the
# quickstart's data (launch/fetch-vocab.sh, launch/fetch-data.sh). NP=2 ranks, OUT_DIR; a teacher
# and store already under OUT_DIR are reused. train.precision is fp32 unless PRECISION says otherwise.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
DISTILL="${BUILD_DIR:-$ROOT/.build}/distill"
OUT=${OUT_DIR:-.runs/soft-loss}
NP=${NP:-2}
PY=${PY:-/usr/bin/python3}
PRECISION=${PRECISION:-fp32}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mpi() { mpirun -np "$NP" --oversubscribe "$DISTILL" "$@"; }
mkdir -p "$OUT"
D=(--set data.path="$OUT/dataset.h5" --set train.precision="$PRECISION")
if [ ! -f "$OUT/dataset.h5" ]; then
  "$DISTILL" prepare -i datasets/polarity/polarity.csv --columns label,text --labels=-1,1 \
    --label-names negative,positive --vocab datasets/vocab/bert-base-uncased/vocab.txt --max-length 64 \
    --out "$OUT/dataset.h5" 2>&1 | grep -E "wrote"
fi
if [ ! -f "$OUT/teacher/checkpoints/latest" ]; then
  echo "== teacher"
  mpi train -c launch/configs/polarity-teacher.yaml "${D[@]}" --set train.out_dir="$OUT/teacher" > "$OUT/teacher.log" 2>&1
fi
S=(-c launch/configs/polarity-distill.yaml "${D[@]}" --set teacher.path="$OUT/teacher/checkpoints"
  --set store.path="$OUT/store")
[ -f "$OUT/store/manifest.json" ] || mpi precompute "${S[@]}" > "$OUT/precompute.log" 2>&1
for k in kl reverse_kl jsd mse; do
  echo "== student, distill.soft_loss $k"
  mpi train "${S[@]}" --set distill.soft_loss=$k --set train.out_dir="$OUT/student-$k" > "$OUT/student-$k.log" 2>&1
  mpi eval "${S[@]}" --set distill.soft_loss=$k --set train.out_dir="$OUT/student-$k" --json 2>/dev/null |
    sed -n '/^{/,/^}/p' > "$OUT/eval-$k.json"
done
$PY - "$OUT" <<'PY'
import json, sys
o = sys.argv[1]
print(f"\n=== soft-loss kinds on polarity (test split) ===\n{'kind':<11} {'accuracy':>9} {'agreement':>10} {'KL':>8}")
for k in ("kl", "reverse_kl", "jsd", "mse"):
    e = json.load(open(f"{o}/eval-{k}.json"))
    print(f"{k:<11} {e['accuracy']:>9.4f} {e['agreement']:>10.4f} {e['kl_teacher_student']:>8.4f}")
print(f"teacher    {e['teacher_accuracy']:>9.4f}")
PY
