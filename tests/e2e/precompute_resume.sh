#!/usr/bin/env bash
# Kill a 2-rank precompute after its first committed shard (leaving a partial file), rerun it:
# every example is stored exactly once, with the values of the uninterrupted store.
source "$(dirname "$0")/common.sh"
S="$WORK/store-killed"
rm -rf "$S"
set +e
DISTILL_FAULT_KILL_AFTER_SHARDS=1 run_np 2 precompute "${STUDENT_SET[@]}" --set store.path="$S"
rc=$?
set -e
[ "$rc" -ne 0 ] || fail "the killed precompute exited 0"
ls "$S"/*.partial-* >/dev/null 2>&1 || fail "the kill should leave a partial shard"
[ ! -f "$S/manifest.json" ] || fail "no manifest may exist before the precompute finished"
run_np 2 precompute "${STUDENT_SET[@]}" --set store.path="$S" 2>&1 | tee "$WORK/precompute-rerun.log"
grep -q "already committed" "$WORK/precompute-rerun.log" || fail "rerun reports no skipped shards"
! ls "$S"/*.partial-* >/dev/null 2>&1 || fail "partial shards left behind"
n=$(ls "$S"/shard-*.h5 | wc -l)
[ "$n" -eq 10 ] || fail "expected 10 shards, found $n"
for f in "$WORK"/store/shard-*.h5; do
  name=$(basename "$f")
  diff <(h5dump -d /logits -d /example_id "$f" | tail -n +2) <(h5dump -d /logits -d /example_id "$S/$name" | tail -n +2) \
    > /dev/null || fail "$name differs from the uninterrupted store"
done
# Coverage exactly once: the manifest ranges tile [0, 600).
"$DISTILL" inspect "$S" --json | grep -q '"examples": 600' || fail "manifest does not cover 600 examples"
run_np 2 train "${STUDENT_SET[@]}" --set store.path="$S" --set train.out_dir="$WORK/train-on-resumed" --set train.max_steps=2
echo "precompute resume ok"
