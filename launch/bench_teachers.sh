#!/usr/bin/env bash
# Two teachers on polarity: teacher A (the 4 x 256 teacher of launch/bench_transfer.sh, seed 11)
# and teacher B (2 x 256, seed 29, trained here), each with its store of the polarity train split;
# the quickstart student (2 x 128) distilled for STEPS (600) steps at the quickstart's alpha, beta
# and T from A alone, from B alone, and from both (equal weights). Every student is evaluated on
# the test split against A, against B and against their ensemble. Run launch/bench_transfer.sh first.
source "$(dirname "$0")/polarity_bench_env.sh"
require_transfer_runs
grep -m1 "model name" /proc/cpuinfo
A="$OUT/teacher/checkpoints" B="$OUT/teacher-b/checkpoints"
if [ ! -f "$B/latest" ]; then
  echo "== teacher B"
  mpi train -c launch/configs/polarity-teacher.yaml --set data.path="$OUT/dataset.h5" --set student.layers=2 \
    --set train.seed=29 --set train.out_dir="$OUT/teacher-b" > "$OUT/teacher-b.log" 2>&1
fi
BASE=(-c launch/configs/polarity-distill.yaml --set data.path="$OUT/set-a.h5" --set train.max_steps=$STEPS)
[ -f "$OUT/store-ab-b/manifest.json" ] || { echo "== precompute B"; mpi precompute "${BASE[@]}" --set teacher.path="$B" \
  --set store.path="$OUT/store-ab-b" > "$OUT/precompute-ab-b.log" 2>&1; }
declare -A RUN=([a]="--set teacher.path=$A --set store.path=$OUT/store-a"
  [b]="--set teacher.path=$B --set store.path=$OUT/store-ab-b"
  [ab]="--set teacher.path=$A --set store.path=$OUT/store-a --set teacher.extra_paths=$B --set store.extra_paths=$OUT/store-ab-b")
for k in a b ab; do
  if [ ! -f "$OUT/teachers-$k.json" ]; then
    echo "== student from $k"
    mpi train "${BASE[@]}" ${RUN[$k]} --set train.out_dir="$OUT/teachers-$k" > "$OUT/teachers-$k.log" 2>&1
    # Evaluated against A, B and their ensemble (equal weights), whichever taught it.
    mpi eval "${BASE[@]}" ${RUN[ab]} --set train.out_dir="$OUT/teachers-$k" --json 2>/dev/null |
      sed -n '/^{/,/^}/p' > "$OUT/teachers-$k.json"
  fi
done
$PY - "$OUT" <<'PY'
import json, sys
o = sys.argv[1]
e = json.load(open(f"{o}/teachers-ab.json"))
ta, tb = e["teachers"]
print(f"\n=== two teachers on polarity (test split of {e['examples']}) ===")
print(f"teacher accuracy: A {ta['teacher_accuracy']:.4f}, B {tb['teacher_accuracy']:.4f}, ensemble {e['teacher_accuracy']:.4f}")
print(f"{'student from':<14} {'accuracy':>9} {'agree A':>8} {'agree B':>8} {'agree A+B':>10} {'KL A+B':>8}")
for k, name in (("a", "A"), ("b", "B"), ("ab", "A + B")):
    e = json.load(open(f"{o}/teachers-{k}.json"))
    ta, tb = e["teachers"]
    print(f"{name:<14} {e['accuracy']:>9.4f} {ta['agreement']:>8.4f} {tb['agreement']:>8.4f} {e['agreement']:>10.4f} "
          f"{e['kl_teacher_student']:>8.4f}")
PY
