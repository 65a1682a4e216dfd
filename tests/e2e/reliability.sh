#!/usr/bin/env bash
# Reliability: non-finite steps stop the job (or are skipped up to a limit) and leave the last finite
# checkpoint; eval refuses a NaN student; a stopped rank ends the job within train.comm_timeout + 10 s;
# one job per out_dir (lock file, stale lock taken over); a full disk is named, leaves no partial
# checkpoint, and the run resumes once there is space.
source "$(dirname "$0")/common.sh"
R="$WORK/reliability"
rm -rf "$R" && mkdir -p "$R"
expect_fail() {  # expect_fail LOG PATTERN CMD...: CMD must fail and LOG must match PATTERN
  local log=$1 pat=$2; shift 2
  set +e; "$@" >"$log" 2>&1; local rc=$?; set -e
  [ "$rc" -ne 0 ] || { cat "$log"; fail "expected failure: $*"; }
  grep -q -- "$pat" "$log" || { cat "$log"; fail "expected '$pat' in the output of: $*"; }
}
all_finite() {  # all_finite FILE.safetensors: every float tensor is finite
  "$PY" - "$1" <<'PY'
import json, struct, sys, numpy as np
b = open(sys.argv[1], "rb").read(); n = struct.unpack("<Q", b[:8])[0]; h = json.loads(b[8:8 + n])
for k, v in h.items():
    if k == "__metadata__" or v["dtype"] != "F32": continue
    s, e = v["data_offsets"]; a = np.frombuffer(b[8 + n + s:8 + n + e], dtype=np.float32)
    if not np.isfinite(a).all(): sys.exit("non-finite " + k)
PY
}

# 1. Divergence (lr 1e6) with checkpoints every 2 steps, keeping 2: stopped with step and rank named,
#    the checkpoints left are finite and `latest` names one of them.
D="$R/diverge"
expect_fail "$R/diverge.log" "non-finite" run_np 2 train "${STUDENT_SET[@]}" --set train.out_dir="$D" \
  --set train.lr=1e6 --set train.max_steps=40 --set train.checkpoint_every=2 --set train.keep_checkpoints=2
grep -q "at step [0-9]*: rank [01]" "$R/diverge.log" || { cat "$R/diverge.log"; fail "no step and rank named"; }
grep -q "batch example ids" "$R/diverge.log" || fail "no example ids named"
if [ -f "$D/checkpoints/latest" ]; then
  latest=$(cat "$D/checkpoints/latest")
  [ -d "$D/checkpoints/$latest" ] || fail "latest names a missing checkpoint"
  for f in "$D"/checkpoints/step-*/model.safetensors; do all_finite "$f" || fail "$f is not finite"; done
fi
! grep -q -i "nan\|inf" "$D/metrics.jsonl" 2>/dev/null || fail "metrics.jsonl logged a non-finite step"

# 2. train.nonfinite: skip counts skipped updates and stops past train.max_skipped_steps.
expect_fail "$R/skip.log" "more than train.max_skipped_steps = 3" run_np 2 train "${STUDENT_SET[@]}" \
  --set train.out_dir="$R/skip" --set train.lr=1e6 --set train.max_steps=60 \
  --set train.nonfinite=skip --set train.max_skipped_steps=3
[ "$(grep -c "update skipped" "$R/skip.log")" -eq 3 ] || { cat "$R/skip.log"; fail "expected 3 skipped updates"; }

# 3. Eval of a student with NaN weights is refused.
G="$R/good"
run_np 2 train "${STUDENT_SET[@]}" --set train.out_dir="$G" --set train.max_steps=4 >"$R/good.log" 2>&1 \
  || { cat "$R/good.log"; fail "a normal run failed"; }
cp -r "$G/checkpoints/step-00000004" "$R/nan-student"
"$PY" - "$R/nan-student/model.safetensors" <<'PY'
import json, struct, sys, numpy as np
p = sys.argv[1]; b = bytearray(open(p, "rb").read()); n = struct.unpack("<Q", b[:8])[0]; h = json.loads(b[8:8 + n])
k = next(k for k, v in h.items() if k != "__metadata__" and v["dtype"] == "F32" and "classifier.weight" in k)
s, e = h[k]["data_offsets"]; b[8 + n + s:8 + n + e] = np.full((e - s) // 4, np.nan, np.float32).tobytes()
open(p, "wb").write(bytes(b))
PY
expect_fail "$R/eval-nan.log" "outputs are not finite" run_np 2 eval "${STUDENT_SET[@]}" --checkpoint "$R/nan-student"

rank_pid() {  # rank_pid PATTERN RANK: the pid of that world rank among processes whose command line has PATTERN
  local p
  for p in $(pgrep -f -- "$1"); do
    tr '\0' '\n' < "/proc/$p/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$2" && { echo "$p"; return; }
  done
}
# 4. A stopped rank (SIGSTOP, as a stalled node would) ends the job within comm_timeout + 10 s.
hang_trial() {  # hang_trial NAME NP STOP_INDEX ARGS...: stops the STOP_INDEX-th rank once training runs
  local name=$1 np=$2 idx=$3; shift 3
  local out="$R/$name" log="$R/$name.log"
  timeout -k 5 240 mpirun -np "$np" --oversubscribe "$DISTILL" "$@" --set train.out_dir="$out" \
    --set train.comm_timeout=5 --set train.max_steps=100000 >"$log" 2>&1 &
  local mp=$!
  for _ in $(seq 1 600); do grep -q "step 1/" "$log" 2>/dev/null && break; sleep 0.1; done
  grep -q "step 1/" "$log" || { cat "$log"; fail "$name: training did not start"; }
  local victim; victim=$(rank_pid "train.out_dir=$out" "$idx")
  [ -n "$victim" ] || fail "$name: no process of rank $idx under mpirun"
  local t0; t0=$(date +%s)
  kill -STOP "$victim"
  set +e; wait "$mp"; local rc=$?; set -e
  local took=$(( $(date +%s) - t0 ))
  [ "$rc" -ne 0 ] || fail "$name: the job exited 0"
  [ "$rc" -ne 124 ] && [ "$rc" -ne 137 ] || { cat "$log"; fail "$name: the job hung until the test's timeout"; }
  [ "$took" -le 15 ] || { cat "$log"; fail "$name: the job took ${took}s to end (limit comm_timeout 5 + 10 s)"; }
  grep -q "did not complete within 5 s" "$log" || { cat "$log"; fail "$name: no watchdog message"; }
  echo "$name: stopped rank ended the job in ${took}s"
}
hang_trial hang-train 2 1 train "${STUDENT_SET[@]}" --set train.log_every=1
hang_trial hang-run 3 2 run --teacher-ranks 1 "${STUDENT_SET[@]}" --set store.path="$R/hang-store" \
  --set train.log_every=1

# 5. One job per out_dir: a live holder is refused, a dead one's lock is taken over.
L="$R/locked"; mkdir -p "$L"
sleep 300 & holder=$!
printf '{"host":"%s","pid":%d,"ppid":%d,"job":"distill train -c x.yaml","started":1}\n' "$(hostname)" "$holder" "$$" > "$L/.distill.lock"
expect_fail "$R/lock-live.log" "is held by pid $holder" run_np 2 train "${STUDENT_SET[@]}" --set train.out_dir="$L" \
  --set train.max_steps=2
kill "$holder"; wait "$holder" 2>/dev/null || true
mkdir -p "$L/checkpoints/step-00000009.tmp-4242" && echo partial > "$L/checkpoints/step-00000009.tmp-4242/model.safetensors"
run_np 2 train "${STUDENT_SET[@]}" --set train.out_dir="$L" --set train.max_steps=2 >"$R/lock-stale.log" 2>&1 \
  || { cat "$R/lock-stale.log"; fail "a stale lock was not taken over"; }
grep -q "taking over the lock" "$R/lock-stale.log" || fail "no warning on taking over a stale lock"
[ ! -e "$L/checkpoints/step-00000009.tmp-4242" ] || fail "a stale *.tmp-* checkpoint was not removed"
[ ! -e "$L/.distill.lock" ] || fail "the lock file was left after a clean exit"
other=$(mktemp -d "$R/other-host.XXXX")
printf '{"host":"node-elsewhere","pid":1,"ppid":1,"job":"distill train","started":1}\n' > "$other/.distill.lock"
expect_fail "$R/lock-host.log" "held by pid 1 on node-elsewhere" run_np 2 train "${STUDENT_SET[@]}" \
  --set train.out_dir="$other" --set train.max_steps=2

# 6. A full disk: the error names the cause and the path, no partial checkpoint is left, and the
#    run resumes once there is room.
F="$R/full"; mkdir -p "$F"
if mount -t tmpfs -o size=600k tmpfs "$F" 2>/dev/null; then
  trap 'umount "$F" 2>/dev/null || true' EXIT
  # About 120 kB left: room for the first checkpoint (~80 kB) but not the second.
  dd if=/dev/zero of="$F/filler" bs=1k count=480 status=none 2>/dev/null || true
  expect_fail "$R/full.log" "No space left on device" run_np 2 train "${STUDENT_SET[@]}" --set train.out_dir="$F/run" \
    --set train.max_steps=6 --set train.checkpoint_every=2 --set train.keep_checkpoints=0
  grep "No space left on device" "$R/full.log" | grep -q "$F/run" || fail "the error does not name the path"
  ! ls -d "$F"/run/checkpoints/*.tmp-* 2>/dev/null || fail "a partial checkpoint was left on the full disk"
  if [ -f "$F/run/metrics.jsonl" ]; then
    "$PY" -c "import json,sys; [json.loads(l) for l in open(sys.argv[1])]" "$F/run/metrics.jsonl" \
      || fail "metrics.jsonl has a torn line"
  fi
  rm -f "$F/filler"; mount -o remount,size=8m "$F"
  run_np 2 train "${STUDENT_SET[@]}" --set train.out_dir="$F/run" --set train.max_steps=6 \
    --set train.checkpoint_every=2 --set train.keep_checkpoints=0 --resume >"$R/full-resume.log" 2>&1 \
    || { cat "$R/full-resume.log"; fail "no resume after the disk had room again"; }
  [ "$(cat "$F/run/checkpoints/latest")" = "step-00000006" ] || fail "the resumed run did not finish"
  umount "$F"; trap - EXIT
  echo "disk full: named and recovered"
else
  echo "disk full: not checked (no tmpfs mount allowed here)"
fi
echo "reliability ok"
