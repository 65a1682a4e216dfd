#!/usr/bin/env bash
# Intermediate-layer distillation with an online teacher on 2 student ranks: hidden states (with
# embeddings, through learned 16 -> 32 projections) and attention maps; a kill and --resume gives
# the same per-step losses and bit-identical weights and projections. A map that does not fit
# is refused before any step.
source "$(dirname "$0")/common.sh"
A="$WORK/layers-straight" B="$WORK/layers-killed"
rm -rf "$A" "$B"
COMMON=("${STUDENT_SET[@]}" --set store.path= --set teacher.online=true --set distill.hidden_map=0:0,1:2
  --set distill.attention_map=last --set distill.hidden_loss=cosine --set train.max_steps=16
  --set train.checkpoint_every=8 --set train.keep_checkpoints=0)
run_np 2 train "${COMMON[@]}" --set train.out_dir="$A"
grep -q '"hidden":' "$A/metrics.jsonl" && grep -q '"attention":' "$A/metrics.jsonl" && grep -q '"soft_kl":' "$A/metrics.jsonl" ||
  fail "metrics lack the hidden, attention or soft_kl terms"
test -f "$A/checkpoints/step-00000016/projections.safetensors" || fail "no projections in the checkpoint"
set +e
DISTILL_FAULT_KILL_AT_STEP=8 run_np 2 train "${COMMON[@]}" --set train.out_dir="$B" > "$WORK/layers-kill.log" 2>&1
rc=$?
set -e
[ "$rc" -ne 0 ] || fail "the killed run exited 0"
run_np 2 train "${COMMON[@]}" --set train.out_dir="$B" --resume
strip() { sed -E 's/"samples_per_s":[^,}]*,?//' "$1"; }
diff <(strip "$A/metrics.jsonl") <(strip "$B/metrics.jsonl") || fail "per-step losses differ after resume"
for f in model projections optimizer; do
  cmp "$A/checkpoints/step-00000016/$f.safetensors" "$B/checkpoints/step-00000016/$f.safetensors" || fail "$f differs"
done
set +e
run_np 2 train "${COMMON[@]}" --set distill.hidden_map=uniform --set student.layers=3 --set train.out_dir="$WORK/layers-bad" \
  > "$WORK/layers-bad.log" 2>&1
rc=$?
set -e
[ "$rc" -ne 0 ] || fail "an impossible map was accepted"
grep -q "distill.hidden_map = uniform needs the teacher's 2 layers to be a multiple of the student's 3" "$WORK/layers-bad.log" ||
  { cat "$WORK/layers-bad.log"; fail "no clear map error"; }
echo "layers ok"
