#!/usr/bin/env bash
# prepare -> teacher -> 2-rank precompute -> 2-rank distillation -> 3-rank eval -> inspect -> h5dump.
source "$(dirname "$0")/common.sh"
OUT="$WORK/pipeline"
rm -rf "$OUT"
run_np 2 train "${STUDENT_SET[@]}" --set train.out_dir="$OUT" --set train.epochs=2
test -f "$OUT/checkpoints/latest" || fail "no checkpoint"
grep -q '"soft_kl"' "$OUT/metrics.jsonl" || fail "metrics lack the soft-target term"
grep -q '"samples_per_s"' "$OUT/metrics.jsonl" || fail "metrics lack samples/s"
# 2 epochs of ceil(600 / 32) steps.
test "$(step_lines "$OUT/metrics.jsonl")" -eq 38 || fail "expected 38 step lines, got $(step_lines "$OUT/metrics.jsonl")"
run_np 3 eval "${STUDENT_SET[@]}" --set train.out_dir="$OUT" --json > "$OUT/eval.json"
cat "$OUT/eval.json"
for key in accuracy teacher_accuracy agreement transfer_risk kl_teacher_student student_parameters; do
  grep -q "\"$key\"" "$OUT/eval.json" || fail "eval lacks $key"
done
grep -q '"examples": 100' "$OUT/eval.json" || fail "eval did not cover the 100 test examples once"
# Several held-out sets in one call (same ranks, so the same batches): each row equals the
# single-set eval of that set.
run_np 3 eval "${STUDENT_SET[@]}" --set train.out_dir="$OUT" --split dev --json > "$OUT/eval-dev.json"
run_np 3 eval "${STUDENT_SET[@]}" --set train.out_dir="$OUT" --data "$WORK/data.h5" --data "$WORK/data.h5" \
  --split test --split dev --json > "$OUT/eval-sets.json"
"$PY" - "$OUT/eval.json" "$OUT/eval-dev.json" "$OUT/eval-sets.json" <<'PY'
import json, sys
test, dev, sets = (json.load(open(p)) for p in sys.argv[1:])
assert [s["split"] for s in sets["sets"]] == ["test", "dev"], sets
for one, row in ((test, sets["sets"][0]), (dev, sets["sets"][1])):
    for k in ("examples", "accuracy", "teacher_accuracy", "agreement", "kl_teacher_student"):
        assert abs(one[k] - row[k]) <= 1e-9 * max(1, abs(one[k])), (k, one[k], row[k])
print("eval of several sets matches the single-set evals")
PY
run_np 1 eval "${STUDENT_SET[@]}" --set train.out_dir="$OUT" --split test --split dev | tee "$OUT/eval-table.txt"
grep -q "data.h5 : dev" "$OUT/eval-table.txt" || fail "the eval table lacks the dev row"
set +e
run_np 1 eval "${STUDENT_SET[@]}" --set train.out_dir="$OUT" --data "$WORK/data.h5" --data "$WORK/data.h5" \
  --split test --split dev --split train > "$OUT/eval-bad.log" 2>&1
rc=$?
set -e
[ "$rc" -ne 0 ] && grep -q "give it once (for every data set) or once per --data" "$OUT/eval-bad.log" ||
  fail "unpairable --split was not refused"
"$DISTILL" inspect "$WORK/store" --json | tee "$OUT/store.json"
grep -q '"shards": 10' "$OUT/store.json" || fail "store should hold 10 shards of 64 for 600 examples"
"$DISTILL" inspect "$WORK/data.h5" | grep -q "splits.train.examples: 600" || fail "inspect dataset"
"$DISTILL" inspect "$OUT/checkpoints" --json | grep -q '"world_size": 2' || fail "inspect checkpoint"
h5dump -d /logits "$WORK/store/shard-000000000-000000063.h5" > "$OUT/h5dump.txt" || fail "h5dump cannot read a shard"
grep -q "DATASPACE  SIMPLE { ( 64, 2 )" "$OUT/h5dump.txt" || fail "h5dump shows the wrong shape"
grep -q "H5T_IEEE_F16LE\|16-bit little-endian floating-point" "$OUT/h5dump.txt" || grep -q "H5T_FLOAT" "$OUT/h5dump.txt" || fail "h5dump: not a float type"
echo "pipeline ok"
