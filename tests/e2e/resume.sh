#!/usr/bin/env bash
# N steps straight vs N/2 steps + SIGKILL + --resume + N/2 steps, on 2 student ranks: identical
# per-step losses and bit-identical final weights (Note [exact resume]).
source "$(dirname "$0")/common.sh"
A="$WORK/resume-straight" B="$WORK/resume-killed"
rm -rf "$A" "$B"
COMMON=("${STUDENT_SET[@]}" --set train.max_steps=24 --set train.checkpoint_every=12 --set train.keep_checkpoints=0)
run_np 2 train "${COMMON[@]}" --set train.out_dir="$A"
set +e
DISTILL_FAULT_KILL_AT_STEP=12 run_np 2 train "${COMMON[@]}" --set train.out_dir="$B"
rc=$?
set -e
[ "$rc" -ne 0 ] || fail "the killed run exited 0"
[ "$(cat "$B/checkpoints/latest")" = "step-00000012" ] || fail "latest should be step 12 after the kill"
[ ! -d "$B/checkpoints/step-00000024" ] || fail "the killed run went past step 12"
# The resumed run must carry the same config: train.out_dir is part of it, so resume in place.
run_np 2 train "${COMMON[@]}" --set train.out_dir="$B" --resume
strip() { sed -E 's/"samples_per_s":[^,}]*,?//' "$1"; }
diff <(strip "$A/metrics.jsonl") <(strip "$B/metrics.jsonl") || fail "per-step losses differ after resume"
test "$(wc -l < "$B/metrics.jsonl")" -eq 24 || fail "expected 24 metrics lines"
cmp "$A/checkpoints/step-00000024/model.safetensors" "$B/checkpoints/step-00000024/model.safetensors" \
  || fail "final weights differ"
cmp "$A/checkpoints/step-00000024/optimizer.safetensors" "$B/checkpoints/step-00000024/optimizer.safetensors" \
  || fail "final optimizer state differs"
echo "resume ok: identical losses and bit-identical weights"
