#!/usr/bin/env bash
# MiniLMv2 relation loss on polarity: the quickstart teacher (4 x 256, 4 heads) run online, and the
# quickstart student with 2 heads (2 x 128), for STEPS (600) steps at the quickstart's alpha, beta
# and T: logits only, against logits plus the Q-Q, K-K and V-V relations of student layer 2 to
# teacher layer 4 and to teacher layer 3 (4 relation heads), distill.attention_weight 1; and the
# 2 -> 3 run again from a store that holds teacher layer 3's queries, keys and values (precomputed
# with attention_loss: relation) instead of the online teacher; test accuracy, agreement and KL.
# Uses the teacher and data of launch/bench_transfer.sh (run it first).
source "$(dirname "$0")/polarity_bench_env.sh"
require_transfer_runs
grep -m1 "model name" /proc/cpuinfo
declare -A MAP=([logits]="" [relation-2to4]="--set distill.attention_map=2:4 --set distill.attention_loss=relation"
  [relation-2to3]="--set distill.attention_map=2:3 --set distill.attention_loss=relation"
  [relation-2to3-stored]="--set distill.attention_map=2:3 --set distill.attention_loss=relation")
STORED=(--set store.path="$OUT/store-relation-2to3" --set teacher.online=false)
for k in logits relation-2to4 relation-2to3 relation-2to3-stored; do
  S=(-c launch/configs/polarity-distill.yaml --set data.path="$OUT/set-a.h5" --set teacher.path="$OUT/teacher/checkpoints"
    --set store.path= --set teacher.online=true --set student.heads=2 --set train.max_steps=$STEPS
    --set train.out_dir="$OUT/relation-$k" ${MAP[$k]})
  if [ "$k" = relation-2to3-stored ]; then
    S+=("${STORED[@]}")
    [ -f "$OUT/store-relation-2to3/manifest.json" ] || { echo "== precompute Q/K/V of teacher layer 3"
      mpi precompute "${S[@]}" > "$OUT/relation-precompute.log" 2>&1; }
  fi
  if [ ! -f "$OUT/relation-$k.json" ]; then
    echo "== $k"
    mpi train "${S[@]}" > "$OUT/relation-$k.log" 2>&1
    mpi eval "${S[@]}" --json 2>/dev/null | sed -n '/^{/,/^}/p' > "$OUT/relation-$k.json"
  fi
done
$PY - "$OUT" <<'PY'
import json, sys
o = sys.argv[1]
print(f"\n=== MiniLMv2 relations, teacher 4 heads, student 2 heads (polarity test split) ===")
print(f"{'student':<21} {'accuracy':>9} {'agreement':>10} {'KL':>8} {'samples/s':>10}")
for k in ("logits", "relation-2to4", "relation-2to3", "relation-2to3-stored"):
    e = json.load(open(f"{o}/relation-{k}.json"))
    t = json.load(open(f"{o}/relation-{k}/train_summary.json"))
    print(f"{k:<21} {e['accuracy']:>9.4f} {e['agreement']:>10.4f} {e['kl_teacher_student']:>8.4f} {t['samples_per_s']:>10.1f}")
PY
