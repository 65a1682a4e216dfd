#!/usr/bin/env bash
# Schedules of alpha, beta and T on polarity: the quickstart student (2 x 128) distilled from the
# teacher and store of launch/bench_transfer.sh (run that first; OUT_DIR as there) for STEPS (600)
# steps with distill.alpha 0.2, beta 0.8, T 2 held constant, with alpha/beta moved linearly from
# 0.5/0.5 to 0/1, and with T moved by a cosine from 4 to 1; test accuracy, agreement and KL.
source "$(dirname "$0")/polarity_bench_env.sh"
require_transfer_runs
declare -A SCHED=(
  [constant]=""
  [linear-weights]="--set distill.alpha=0.5 --set distill.beta=0.5 --set distill.weight_schedule=linear --set distill.alpha_end=0 --set distill.beta_end=1"
  [cosine-T]="--set distill.temperature=4 --set distill.temperature_schedule=cosine --set distill.temperature_end=1")
for k in constant linear-weights cosine-T; do
  S=(-c launch/configs/polarity-distill.yaml --set data.path="$OUT/set-a.h5" --set teacher.path="$OUT/teacher/checkpoints"
    --set store.path="$OUT/store-a" --set train.max_steps=$STEPS --set train.out_dir="$OUT/schedule-$k" ${SCHED[$k]})
  if [ ! -f "$OUT/schedule-$k.json" ]; then
    echo "== $k"
    mpi train "${S[@]}" > "$OUT/schedule-$k.log" 2>&1
    mpi eval "${S[@]}" --json 2>/dev/null | sed -n '/^{/,/^}/p' > "$OUT/schedule-$k.json"
  fi
done
$PY - "$OUT" <<'PY'
import json, sys
o = sys.argv[1]
print(f"\n=== schedules on polarity (test split) ===\n{'schedule':<16} {'accuracy':>9} {'agreement':>10} {'KL':>8} {'macro-F1':>9}")
for k in ("constant", "linear-weights", "cosine-T"):
    e = json.load(open(f"{o}/schedule-{k}.json"))
    print(f"{k:<16} {e['accuracy']:>9.4f} {e['agreement']:>10.4f} {e['kl_teacher_student']:>8.4f} {e['macro_f1']:>9.4f}")
PY
