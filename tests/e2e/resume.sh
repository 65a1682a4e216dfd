#!/usr/bin/env bash
# N steps straight vs N/2 steps + SIGKILL + --resume + N/2 steps, on 2 student ranks: identical
# per-step losses and bit-identical final weights (Note [exact resume]), in fp32 and in bf16
# (CPU autocast, Note [cpu bf16]); a checkpoint records its precision and a resume that would
# change it is refused.
source "$(dirname "$0")/common.sh"
strip() { sed -E 's/"samples_per_s":[^,}]*,?//' "$1"; }
resume_exactly() {
  local precision=$1 A="$WORK/resume-straight-$1" B="$WORK/resume-killed-$1"
  rm -rf "$A" "$B"
  local COMMON=("${STUDENT_SET[@]}" --set train.max_steps=24 --set train.checkpoint_every=12
    --set train.keep_checkpoints=0 --set train.precision="$precision")
  run_np 2 train "${COMMON[@]}" --set train.out_dir="$A"
  set +e
  DISTILL_FAULT_KILL_AT_STEP=12 run_np 2 train "${COMMON[@]}" --set train.out_dir="$B"
  local rc=$?
  set -e
  [ "$rc" -ne 0 ] || fail "$precision: the killed run exited 0"
  [ "$(cat "$B/checkpoints/latest")" = "step-00000012" ] || fail "$precision: latest should be step 12 after the kill"
  [ ! -d "$B/checkpoints/step-00000024" ] || fail "$precision: the killed run went past step 12"
  grep -q "\"precision\": \"$precision\"" "$B/checkpoints/step-00000012/state.json" ||
    fail "$precision: state.json does not record the precision"
  # The resumed run must carry the same config: train.out_dir is part of it, so resume in place.
  run_np 2 train "${COMMON[@]}" --set train.out_dir="$B" --resume
  diff <(strip "$A/metrics.jsonl") <(strip "$B/metrics.jsonl") || fail "$precision: per-step losses differ after resume"
  test "$(wc -l < "$B/metrics.jsonl")" -eq 24 || fail "$precision: expected 24 metrics lines"
  cmp "$A/checkpoints/step-00000024/model.safetensors" "$B/checkpoints/step-00000024/model.safetensors" \
    || fail "$precision: final weights differ"
  cmp "$A/checkpoints/step-00000024/optimizer.safetensors" "$B/checkpoints/step-00000024/optimizer.safetensors" \
    || fail "$precision: final optimizer state differs"
  echo "resume ok in $precision: identical losses and bit-identical weights"
}
resume_exactly fp32
resume_exactly bf16
cmp -s "$WORK/resume-straight-fp32/checkpoints/step-00000024/model.safetensors" \
  "$WORK/resume-straight-bf16/checkpoints/step-00000024/model.safetensors" && fail "bf16 trained the same bits as fp32"

# train.precision: auto resolves by the CPU. With oneDNN capped below its bf16 units it is fp32;
# where the CPU has them, resuming that run without the cap would switch to bf16: refused.
if grep -qw -e avx512_bf16 -e amx_bf16 /proc/cpuinfo; then
  C="$WORK/resume-auto"
  rm -rf "$C"
  AUTO=("${STUDENT_SET[@]}" --set train.max_steps=4 --set train.precision=auto --set train.out_dir="$C")
  ONEDNN_MAX_CPU_ISA=AVX2 run_np 1 train "${AUTO[@]}" > "$C.log" 2>&1 || { cat "$C.log"; fail "capped auto run failed"; }
  grep -q "train.precision auto -> fp32" "$C.log" || fail "auto under ONEDNN_MAX_CPU_ISA=AVX2 did not resolve to fp32"
  set +e
  run_np 1 train "${AUTO[@]}" --resume > "$C.log" 2>&1
  rc=$?
  set -e
  [ "$rc" -ne 0 ] || fail "a resume that switches fp32 -> bf16 was not refused"
  grep -q "was trained in fp32; train.precision: auto resolves to bf16 here" "$C.log" ||
    { cat "$C.log"; fail "the refusal does not explain the precision"; }
  echo "resume across precisions refused with an explanation"
fi

# Explicit bf16 where oneDNN may not use bf16 units: it runs with a warning that gives the measured
# bf16 and fp32 rates, or, where bf16 products cannot run at all, stops with a clear message.
E="$WORK/bf16-capped"
rm -rf "$E"
set +e
ONEDNN_MAX_CPU_ISA=AVX2 run_np 1 train "${STUDENT_SET[@]}" --set train.max_steps=2 --set train.precision=bf16 \
  --set train.out_dir="$E" > "$E.log" 2>&1
rc=$?
set -e
if [ "$rc" -eq 0 ]; then
  grep -q "bf16 on a CPU without native bf16 units.*bf16 matrix products run at .* GFLOP/s here" "$E.log" ||
    { cat "$E.log"; fail "explicit bf16 without bf16 units did not warn with the measured rates"; }
else
  grep -q "train.precision: bf16 matrix products cannot run on this CPU (.*capped by ONEDNN_MAX_CPU_ISA=AVX2" "$E.log" ||
    { cat "$E.log"; fail "explicit bf16 that cannot run did not say why"; }
fi
echo "explicit bf16 without bf16 units: warned or refused with the reason"
