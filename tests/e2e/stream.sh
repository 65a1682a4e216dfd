#!/usr/bin/env bash
# Streaming on real polarity data: `distill run` with 2 teacher + 2 student ranks in one mpirun.
# The per-step losses do not depend on the teachers' speed; the students start before the
# teachers finish; a kill and rerun of the same command ends with the same weights; a dead
# teacher ends the job within a bounded time and a rerun completes it; the store then trains 3
# student ranks.
source "$(dirname "$0")/common.sh"
VOCAB="${DISTILL_VOCAB:?vocab.txt (launch/fetch-vocab.sh)}"
POL="${DISTILL_POLARITY:?polarity.csv (launch/fetch-data.sh)}"
[ -f "$POL" ] || fail "$POL missing: run launch/fetch-data.sh"
S="$WORK/stream"
rm -rf "$S"
mkdir -p "$S"
run_np 1 prepare -i "$POL" --columns label,text --labels=-1,1 --vocab "$VOCAB" --max-length 32 -o "$S/data.h5" \
  > "$S/prepare.log" 2>&1 || { cat "$S/prepare.log"; fail "prepare polarity"; }
ARCH=(--set data.path="$S/data.h5" --set student.vocab_size=30522 --set student.max_positions=32 --set train.batch_size=16)
run_np 2 train "${ARCH[@]}" --set student.hidden=32 --set student.layers=2 --set student.heads=2 \
  --set student.intermediate=64 --set train.max_steps=40 --set train.lr=0.002 --set train.out_dir="$S/teacher" \
  > "$S/teacher.log" 2>&1 || { cat "$S/teacher.log"; fail "teacher training"; }
RUN=("${ARCH[@]}" --set teacher.path="$S/teacher/checkpoints" --set teacher.batch_size=100 --set store.shard_size=200
  --set store.window=2 --set student.hidden=16 --set student.layers=1 --set student.heads=2 --set student.intermediate=32
  --set train.epochs=2 --set train.lr=0.003 --set train.log_every=1 --set train.checkpoint_every=40
  --set train.keep_checkpoints=0 --set teacher.stream_timeout=60)
final=step-00000200  # 3200 rows / (2 ranks x 16) = 100 steps per epoch

run_np 4 run "${RUN[@]}" --teacher-ranks 2 --set store.path="$S/storeA" --set train.out_dir="$S/A" > "$S/A.log" 2>&1 ||
  { cat "$S/A.log"; fail "streamed run A"; }
grep -q "balance: students waited" "$S/A.log" || { cat "$S/A.log"; fail "no balance report"; }
grep -q "teacher_ranks_to_keep_students_busy" "$S/A/train_summary.json" || fail "no balance in the summary"
DISTILL_FAULT_TEACHER_DELAY_MS=400 run_np 4 run "${RUN[@]}" --teacher-ranks 2 --set store.path="$S/storeB" \
  --set train.out_dir="$S/B" > "$S/B.log" 2>&1 || { cat "$S/B.log"; fail "streamed run B (slow teachers)"; }
line=$(grep -o "first batch ready after [0-9.]*s with [0-9]* of 16 shards committed" "$S/B.log") ||
  { cat "$S/B.log"; fail "no first-batch line"; }
n=$(echo "$line" | sed -E 's/.* with ([0-9]+) of 16.*/\1/')
[ "$n" -lt 16 ] || fail "the students did not start before the teachers finished ($line)"
echo "slow teachers: $line"
diff <(strip "$S/A/metrics.jsonl") <(strip "$S/B/metrics.jsonl") > /dev/null || fail "losses depend on the teachers' speed"
cmp "$S/A/checkpoints/$final/model.safetensors" "$S/B/checkpoints/$final/model.safetensors" || fail "weights differ (A, B)"

# Kill the whole job at step 40 (students mid-way, teachers slowed so some shards are still missing), rerun.
set +e
DISTILL_FAULT_TEACHER_DELAY_MS=400 DISTILL_FAULT_KILL_AT_STEP=40 run_np 4 run "${RUN[@]}" --teacher-ranks 2 \
  --set store.path="$S/storeC" --set train.out_dir="$S/C" > "$S/C-kill.log" 2>&1
rc=$?
set -e
[ "$rc" -ne 0 ] || fail "the killed streamed run exited 0"
test -f "$S/C/checkpoints/step-00000040/model.safetensors" || fail "no checkpoint before the kill"
run_np 4 run "${RUN[@]}" --teacher-ranks 2 --set store.path="$S/storeC" --set train.out_dir="$S/C" > "$S/C.log" 2>&1 ||
  { cat "$S/C.log"; fail "rerun after the kill"; }
grep -q "resumed from" "$S/C.log" || fail "the rerun did not resume the students"
diff <(strip "$S/A/metrics.jsonl") <(strip "$S/C/metrics.jsonl") > /dev/null || fail "losses differ after kill + rerun"
cmp "$S/A/checkpoints/$final/model.safetensors" "$S/C/checkpoints/$final/model.safetensors" || fail "weights differ after kill + rerun"

# A teacher rank dies after 2 shards: the job ends within a bounded time; a rerun completes it.
start=$(date +%s)
set +e
DISTILL_FAULT_TEACHER_DELAY_MS=200 DISTILL_FAULT_KILL_AFTER_SHARDS=2 run_np 4 run "${RUN[@]}" --teacher-ranks 2 \
  --set store.path="$S/storeE" --set train.out_dir="$S/E" > "$S/E-kill.log" 2>&1
rc=$?
set -e
elapsed=$(( $(date +%s) - start ))
[ "$rc" -ne 0 ] || fail "a job whose teacher died exited 0"
[ "$elapsed" -lt 120 ] || fail "a dead teacher took ${elapsed}s to end the job"
echo "dead teacher: job ended with status $rc after ${elapsed}s"
run_np 4 run "${RUN[@]}" --teacher-ranks 2 --set store.path="$S/storeE" --set train.out_dir="$S/E" > "$S/E.log" 2>&1 ||
  { cat "$S/E.log"; fail "rerun after a dead teacher"; }
cmp "$S/A/checkpoints/$final/model.safetensors" "$S/E/checkpoints/$final/model.safetensors" || fail "weights differ (A, E)"
test -f "$S/storeE/manifest.json" || fail "no manifest after the rerun"

# The store of 2 teacher ranks trains 3 student ranks; a checkpoint of 2 does not resume on 3.
run_np 3 train "${RUN[@]}" --set store.path="$S/storeA" --set train.out_dir="$S/D3" > "$S/D3.log" 2>&1 ||
  { cat "$S/D3.log"; fail "3 student ranks on the 2-teacher store"; }
grep -q '"ranks": 3' "$S/D3/train_summary.json" || fail "not 3 ranks"
set +e
run_np 3 train "${RUN[@]}" --set store.path="$S/storeA" --set train.out_dir="$S/A" --resume > "$S/bad.log" 2>&1
rc=$?
set -e
[ "$rc" -ne 0 ] || fail "a 2-rank checkpoint resumed on 3 ranks"
grep -q "was written by 2 student ranks; resume it with the same number (this run has 3)" "$S/bad.log" ||
  { cat "$S/bad.log"; fail "no clear resume error"; }
echo "stream ok"
