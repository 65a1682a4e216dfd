#!/usr/bin/env bash
# TensorBoard events (Note [tensorboard events]): out_dir/tb mirrors metrics.jsonl, checked with an
# independent reader (tb_events.py: its own CRC32C and protobuf descriptors), for a straight run
# and for one killed at a checkpoint, left with a line past it (as a crash between checkpoints
# leaves), and resumed; train.tensorboard: false writes no events.
source "$(dirname "$0")/common.sh"
A="$WORK/tb-straight" B="$WORK/tb-killed" C="$WORK/tb-off"
rm -rf "$A" "$B" "$C"
COMMON=("${STUDENT_SET[@]}" --set train.max_steps=24 --set train.checkpoint_every=8 --set train.keep_checkpoints=0
  --set train.select=dev_agreement)
run_np 2 train "${COMMON[@]}" --set train.out_dir="$A" > "$A.log" 2>&1 || { cat "$A.log"; fail "straight run"; }
"$PY" "$(dirname "$0")/tb_events.py" "$A" || fail "events of the straight run"
set +e
DISTILL_FAULT_KILL_AT_STEP=16 run_np 2 train "${COMMON[@]}" --set train.out_dir="$B" > "$B.log" 2>&1
rc=$?
set -e
[ "$rc" -ne 0 ] || fail "the killed run exited 0"
# A step logged after the checkpoint, then lost with the crash.
echo '{"step":17,"epoch":0,"wall_time":1.0,"loss":9.0,"hard_ce":9.0,"lr":0.1,"grad_norm":1.0}' >> "$B/metrics.jsonl"
run_np 2 train "${COMMON[@]}" --set train.out_dir="$B" --resume > "$B.resume.log" 2>&1 ||
  { cat "$B.resume.log"; fail "resumed run"; }
"$PY" "$(dirname "$0")/tb_events.py" "$B" || fail "events of the resumed run"
diff <(strip "$A/metrics.jsonl") <(strip "$B/metrics.jsonl") || fail "metrics differ after resume"
"$PY" - "$B/metrics.jsonl" <<'PY'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
evals = [l["step"] for l in lines if "eval_split" in l]
assert evals == [8, 16, 24], evals
assert all(0 <= l["input_wait_share"] <= 1 and 0 <= l["comm_wait_share"] <= 1 for l in lines if "loss" in l)
assert all("dev_agreement" in l and "dev_accuracy" in l and "dev_kl" in l for l in lines if "eval_split" in l)
print("evaluation lines at steps", evals)
PY
run_np 1 train "${STUDENT_SET[@]}" --set train.max_steps=2 --set train.tensorboard=false --set train.out_dir="$C" \
  > "$C.log" 2>&1 || { cat "$C.log"; fail "run without tensorboard"; }
[ ! -e "$C/tb" ] || fail "train.tensorboard: false wrote $C/tb"
echo "tensorboard ok"
