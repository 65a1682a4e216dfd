#!/usr/bin/env bash
# Each bad input gives a one-line error naming the culprit and a non-zero exit on every rank,
# without a hang (every launch is bounded by a timeout; 124 = hung).
source "$(dirname "$0")/common.sh"
E="$WORK/errors"
rm -rf "$E" && mkdir -p "$E"
expect_error() {  # expect_error NAME PATTERN -- ARGS...
  local name=$1 pattern=$2; shift 3
  set +e
  run_np 2 "$@" > "$E/$name.log" 2>&1
  local rc=$?
  set -e
  [ "$rc" -ne 0 ] || fail "$name: exited 0"
  [ "$rc" -ne 124 ] && [ "$rc" -ne 137 ] || fail "$name: hung"
  grep -E "distill: error on rank [0-9]+/2 .*$pattern" "$E/$name.log" | head -1 | grep -q . \
    || { cat "$E/$name.log"; fail "$name: no one-line error matching '$pattern'"; }
  echo "$name: $(grep -m1 '^distill: error' "$E/$name.log")"
}
printf 'train:\n  learning_rat: 0.1\n' > "$E/bad.yaml"
expect_error unknown_key "unknown config key 'train.learning_rat'.*did you mean 'train.lr'" -- train -c "$E/bad.yaml"
"$DISTILL" train "${TEACHER_SET[@]}" --set train.out_dir="$E/teacher2" --set train.max_steps=2 --set train.seed=99 >/dev/null 2>&1
expect_error other_teacher "was made by teacher .*precompute into a new store.path" -- \
  train "${STUDENT_SET[@]}" --set teacher.path="$E/teacher2/checkpoints" --set train.out_dir="$E/t"
"$DISTILL" prepare --synthetic --out "$E/data2.h5" --train 600 --dev 100 --test 100 --vocab-size 200 --seq 16 --seed 5 >/dev/null 2>&1
expect_error other_dataset "was made from data set" -- \
  train "${STUDENT_SET[@]}" --set data.path="$E/data2.h5" --set train.out_dir="$E/t"
expect_error label_count "holds 2 labels, the student expects 3" -- \
  train "${STUDENT_SET[@]}" --set student.num_labels=3 --set train.out_dir="$E/t"
cp -r "$WORK/store" "$E/store-missing" && rm "$E/store-missing/shard-000000128-000000191.h5"
expect_error missing_shard "shard-000000128-000000191.h5 .*missing" -- \
  train "${STUDENT_SET[@]}" --set store.path="$E/store-missing" --set train.out_dir="$E/t"
cp -r "$WORK/store" "$E/store-cut" && truncate -s 700 "$E/store-cut/shard-000000064-000000127.h5"
expect_error truncated_shard "shard-000000064-000000127.h5 is 700 bytes" -- \
  train "${STUDENT_SET[@]}" --set store.path="$E/store-cut" --set train.out_dir="$E/t"
expect_error missing_dataset "data set .*nope.h5 does not exist" -- \
  train "${STUDENT_SET[@]}" --set data.path="$E/nope.h5" --set train.out_dir="$E/t"
expect_error precompute_other_teacher "was made by teacher" -- \
  precompute "${STUDENT_SET[@]}" --set teacher.path="$E/teacher2/checkpoints"
# Hostile inputs: refused with a one-line error naming the key or file.
expect_error threads_limit "train.threads = 100000 exceeds 1024" -- \
  train "${STUDENT_SET[@]}" --set train.threads=100000 --set train.out_dir="$E/t"
expect_error lr_inf "train.lr = 'inf' is not a finite number" -- \
  train "${STUDENT_SET[@]}" --set train.lr=inf --set train.out_dir="$E/t"
expect_error beta_inf "distill.beta = 'inf' is not a finite number" -- \
  train "${STUDENT_SET[@]}" --set distill.beta=inf --set train.out_dir="$E/t"
printf 'train:\n  lr: 0.1\n  lr: 0.2\n' > "$E/dup.yaml"
expect_error duplicate_key "dup.yaml: train.lr is given twice" -- train -c "$E/dup.yaml"
printf 'word\tdefinition\tlabel\nfilm\tgood film\t1\nbad\tbad film\t0\n' > "$E/glosses.tsv"
expect_error text_column "glosses.tsv: the header has no text column 'gloss' \(columns: word, definition, label\)" -- \
  prepare -i "$E/glosses.tsv" --vocab "$DISTILL_VOCAB" --text-column gloss -o "$E/g.h5"
! grep -q "skip-bad-rows" "$E/text_column.log" || fail "text_column: a header error suggests --skip-bad-rows"
# An empty dev split: training skips evaluation with a warning (no dev_accuracy); eval refuses it.
"$DISTILL" prepare --synthetic --out "$E/nodev.h5" --train 200 --dev 0 --test 50 --vocab-size 200 --seq 16 --seed 5 >/dev/null 2>&1
run_np 2 train "${TEACHER_SET[@]}" --set data.path="$E/nodev.h5" --set train.out_dir="$E/nodev" --set train.max_steps=2 \
  > "$E/nodev.log" 2>&1 || { cat "$E/nodev.log"; fail "training with an empty dev split failed"; }
grep -q "split 'dev' is empty: nothing to evaluate" "$E/nodev.log" || { cat "$E/nodev.log"; fail "no empty-split warning"; }
! grep -q dev_accuracy "$E/nodev/train_summary.json" || fail "an empty dev split reported a dev_accuracy"
# 2 ranks, each with its own cores or sharing the node's, with default threads are not oversubscribed.
! grep -q OVERSUBSCRIBED "$E/nodev.log" || { grep threads "$E/nodev.log"; fail "default threads reported OVERSUBSCRIBED"; }
expect_error eval_empty "nodev.h5: split 'dev' is empty: nothing to evaluate" -- \
  eval "${TEACHER_SET[@]}" --set data.path="$E/nodev.h5" --set train.out_dir="$E/nodev" --split dev
echo "errors ok"
