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
echo "errors ok"
