#!/usr/bin/env bash
# N steps straight vs N/2 steps + SIGKILL + --resume + N/2 steps, on 2 student ranks: identical
# per-step losses and bit-identical final weights (Note [exact resume]), in fp32 and in bf16
# (CPU autocast, Note [cpu bf16]); a checkpoint records its precision and a resume that would
# change it is refused.
source "$(dirname "$0")/common.sh"
resume_exactly() {
  local precision=$1 tag=${2:-$1}
  shift 2 || shift
  local A="$WORK/resume-straight-$tag" B="$WORK/resume-killed-$tag"
  rm -rf "$A" "$B"
  local COMMON=("${STUDENT_SET[@]}" --set train.max_steps=24 --set train.checkpoint_every=12
    --set train.keep_checkpoints=0 --set train.precision="$precision" "$@")
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
  test "$(step_lines "$B/metrics.jsonl")" -eq 24 || fail "$precision: expected 24 metrics lines"
  cmp "$A/checkpoints/step-00000024/model.safetensors" "$B/checkpoints/step-00000024/model.safetensors" \
    || fail "$precision: final weights differ"
  cmp "$A/checkpoints/step-00000024/optimizer.safetensors" "$B/checkpoints/step-00000024/optimizer.safetensors" \
    || fail "$precision: final optimizer state differs"
  echo "resume ok in $precision: identical losses and bit-identical weights"
}
resume_exactly fp32
resume_exactly bf16
# Schedules of alpha, beta and T are functions of the step: logged per step, resumed exactly.
resume_exactly fp32 scheduled --set distill.alpha=0.1 --set distill.beta=0.9 --set distill.weight_schedule=linear \
  --set distill.alpha_end=0.7 --set distill.beta_end=0.3 --set distill.temperature_schedule=cosine \
  --set distill.temperature_end=1
"$PY" - "$WORK/resume-killed-scheduled/metrics.jsonl" <<'PY'
import json, math, sys
rows = [r for r in map(json.loads, open(sys.argv[1])) if "loss" in r]
for r in rows:
    t = (r["step"] - 1) / 23  # the value used by step s (1-based) is that of 0-based step s - 1
    assert abs(r["alpha"] - (0.1 + 0.6 * t)) < 1e-12 and abs(r["beta"] - (0.9 - 0.6 * t)) < 1e-12, r
    assert abs(r["temperature"] - (2 + (1 - 2) * (1 - math.cos(math.pi * t)) / 2)) < 1e-12, r
print("schedules logged per step:", rows[0]["alpha"], rows[-1]["alpha"], rows[0]["temperature"], rows[-1]["temperature"])
PY
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

# train.select / train.patience (Note [best checkpoint]): with a learning rate too small to change
# the dev metric, the first evaluation (step 4) stays the best and patience 2 stops the run after
# step 12; checkpoints/best links to step 4 and rotation keeps it. A run killed after step 8 and
# resumed stops at the same step with the same losses.
S1="$WORK/select-straight" S2="$WORK/select-killed"
rm -rf "$S1" "$S2"
SEL=("${STUDENT_SET[@]}" --set train.max_steps=40 --set train.checkpoint_every=4 --set train.keep_checkpoints=1
  --set train.select=dev_f1 --set train.patience=2 --set train.lr=1e-12 --set train.schedule=constant
  --set train.precision=fp32)
run_np 2 train "${SEL[@]}" --set train.out_dir="$S1" > "$S1.log" 2>&1 || { cat "$S1.log"; fail "select run"; }
grep -q "early stop after step 12: dev_f1 has not improved for 2 evaluations (best .* at step 4)" "$S1.log" ||
  { cat "$S1.log"; fail "no early stop at step 12"; }
[ "$(readlink "$S1/checkpoints/best")" = "step-00000004" ] || fail "checkpoints/best does not link to step 4"
test -f "$S1/checkpoints/best/model.safetensors" || fail "rotation removed the best checkpoint"
[ "$(cat "$S1/checkpoints/latest")" = "step-00000012" ] || fail "latest should be step 12"
grep -q '"stopped_early": true' "$S1/train_summary.json" && grep -q '"best_step": 4' "$S1/train_summary.json" ||
  { cat "$S1/train_summary.json"; fail "summary lacks the best step or the early stop"; }
set +e
DISTILL_FAULT_KILL_AT_STEP=8 run_np 2 train "${SEL[@]}" --set train.out_dir="$S2" > "$S2.log" 2>&1
set -e
run_np 2 train "${SEL[@]}" --set train.out_dir="$S2" --resume > "$S2.log" 2>&1 || { cat "$S2.log"; fail "select resume"; }
grep -q "early stop after step 12" "$S2.log" || { cat "$S2.log"; fail "the resumed run did not stop at step 12"; }
diff <(strip "$S1/metrics.jsonl") <(strip "$S2/metrics.jsonl") || fail "select: losses differ after resume"
run_np 2 eval "${SEL[@]}" --set train.out_dir="$S1" --checkpoint "$S1/checkpoints/best" --json > "$S1.eval" 2>/dev/null ||
  fail "eval of checkpoints/best"
grep -q '"macro_f1"' "$S1.eval" && grep -q '"mcc"' "$S1.eval" || { cat "$S1.eval"; fail "eval lacks macro-F1 / MCC"; }
echo "best checkpoint and early stop ok (resumed exactly)"
