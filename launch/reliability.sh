#!/usr/bin/env bash
# Reliability trials with counts: kills during checkpointing and during precompute (each followed by
# a resume that must reproduce the uninterrupted result bit for bit), hostile inputs (the seeded
# fuzz tests plus hostile command lines), divergent training, and stopped ranks. Prints a table.
#   KILLS=10 PRECOMPUTE_KILLS=10 HANGS=2 launch/reliability.sh      (outputs under .runs/reliability/)
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="${BUILD_DIR:-$ROOT/.build}"
DISTILL="$BUILD/distill"
W="${WORK_DIR:-$ROOT/.runs/reliability}"
KILLS="${KILLS:-10}" PRECOMPUTE_KILLS="${PRECOMPUTE_KILLS:-10}" HANGS="${HANGS:-2}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
[ -x "$DISTILL" ] || { echo "build first: launch/build.sh" >&2; exit 2; }
rm -rf "$W" && mkdir -p "$W"
run_np() { local np=$1; shift; timeout -k 10 300 mpirun -np "$np" --oversubscribe "$DISTILL" "$@"; }
declare -A TOTAL OK
count() { TOTAL[$1]=$(( ${TOTAL[$1]:-0} + 1 )); [ "$2" = 1 ] && OK[$1]=$(( ${OK[$1]:-0} + 1 )); return 0; }

echo "== fixture: synthetic data, teacher, store"
"$DISTILL" prepare --synthetic --out "$W/data.h5" --train 600 --dev 100 --test 100 --vocab-size 200 --seq 16 >/dev/null
MODEL=(--set student.vocab_size=200 --set student.max_positions=16 --set student.heads=2)
"$DISTILL" train --set data.path="$W/data.h5" "${MODEL[@]}" --set student.hidden=32 --set student.layers=2 \
  --set student.intermediate=64 --set train.out_dir="$W/teacher" --set train.max_steps=60 >/dev/null 2>&1
S=(--set data.path="$W/data.h5" --set teacher.path="$W/teacher/checkpoints" --set store.shard_size=32
   "${MODEL[@]}" --set student.hidden=16 --set student.layers=1 --set student.intermediate=32
   --set train.batch_size=16 --set train.log_every=1 --set train.lr=0.003)
run_np 2 precompute "${S[@]}" --set store.path="$W/store" >/dev/null 2>&1 || { echo "fixture precompute failed"; exit 1; }
T=("${S[@]}" --set store.path="$W/store" --set train.max_steps=40 --set train.checkpoint_every=1 --set train.keep_checkpoints=2)
run_np 2 train "${T[@]}" --set train.out_dir="$W/straight" >/dev/null 2>&1 || { echo "straight run failed"; exit 1; }

echo "== kills during checkpointing (SIGKILL of mpirun at a random moment, then --resume)"
for i in $(seq 1 "$KILLS"); do
  out="$W/kill-$i"
  mpirun -np 2 --oversubscribe "$DISTILL" train "${T[@]}" --set train.out_dir="$out" >"$out.log" 2>&1 &
  mp=$!
  sleep "$(awk -v s="$i" 'BEGIN { srand(s); printf "%.2f", 1.5 + rand() * 4 }')"
  kill -9 "$mp" 2>/dev/null; wait "$mp" 2>/dev/null
  sleep 1.5  # ranks that outlive mpirun end on their own and commit nothing
  run_np 2 train "${T[@]}" --set train.out_dir="$out" --resume >>"$out.log" 2>&1
  same=0
  cmp -s "$W/straight/checkpoints/step-00000040/model.safetensors" "$out/checkpoints/step-00000040/model.safetensors" \
    && cmp -s "$W/straight/checkpoints/step-00000040/optimizer.safetensors" "$out/checkpoints/step-00000040/optimizer.safetensors" \
    && same=1
  count "kills during checkpointing survived (bit-exact resume)" "$same"
done

echo "== kills during precompute (SIGKILL of mpirun, then rerun)"
for i in $(seq 1 "$PRECOMPUTE_KILLS"); do
  st="$W/store-kill-$i"
  mpirun -np 2 --oversubscribe "$DISTILL" precompute "${S[@]}" --set store.path="$st" >"$st.log" 2>&1 &
  mp=$!
  sleep "$(awk -v s="$i" 'BEGIN { srand(100 + s); printf "%.2f", 0.8 + rand() * 2 }')"
  kill -9 "$mp" 2>/dev/null; wait "$mp" 2>/dev/null
  sleep 1.5
  run_np 2 precompute "${S[@]}" --set store.path="$st" >>"$st.log" 2>&1
  same=1
  for f in "$W"/store/shard-*.h5; do
    n=$(basename "$f")
    cmp -s <(h5dump -d /logits -d /example_id "$f" | tail -n +2) <(h5dump -d /logits -d /example_id "$st/$n" 2>/dev/null | tail -n +2) || same=0
  done
  count "kills during precompute survived (identical store)" "$same"
done

echo "== hostile inputs: seeded fuzz tests (safetensors, manifest, config, dataset readers)"
for t in distill_fuzz_tests distill_store_tests; do
  [ -x "$BUILD/tests/$t" ] || continue
  (cd "$ROOT" && DISTILL_FIXTURES="$ROOT/tests/fixtures" "$BUILD/tests/$t") >"$W/$t.log" 2>&1; rc=$?
  grep -E "^\[fuzz\]|bit flip|silent" "$W/$t.log" | sed 's/^/   /' || true
  count "fuzz and corruption suites passed (no crash, hang or silent acceptance)" "$([ $rc -eq 0 ] && echo 1 || echo 0)"
done

echo "== hostile command lines"
hostile() {  # hostile NAME PATTERN ARGS...: must end non-zero, in time, with a one-line error matching PATTERN
  local name=$1 pat=$2; shift 2
  run_np 2 "$@" >"$W/hostile-$name.log" 2>&1; local rc=$?
  local ok=0
  [ $rc -ne 0 ] && [ $rc -ne 124 ] && [ $rc -ne 137 ] && [ $rc -lt 128 ] \
    && grep -E "^distill: error .*$pat" "$W/hostile-$name.log" | head -1 | grep -q . && ok=1
  [ $ok = 1 ] || echo "   not refused as expected: $name (rc $rc)"
  count "hostile inputs refused with a clear error" "$ok"
}
hostile lr_inf "train.lr" train "${S[@]}" --set store.path="$W/store" --set train.lr=inf --set train.out_dir="$W/h"
hostile beta_inf "distill.beta" train "${S[@]}" --set store.path="$W/store" --set distill.beta=inf --set train.out_dir="$W/h"
hostile threads "train.threads" train "${S[@]}" --set store.path="$W/store" --set train.threads=100000 --set train.out_dir="$W/h"
hostile comm_timeout "train.comm_timeout" train "${S[@]}" --set store.path="$W/store" --set train.comm_timeout=0 --set train.out_dir="$W/h"
hostile nonfinite_policy "train.nonfinite" train "${S[@]}" --set store.path="$W/store" --set train.nonfinite=ignore --set train.out_dir="$W/h"
printf 'train:\n  lr: 0.1\n  lr: 0.2\n' >"$W/dup.yaml"
hostile duplicate_key "lr" train -c "$W/dup.yaml"
mkdir -p "$W/evil-store" && cp "$W"/store/*.h5 "$W/store/manifest.json" "$W/evil-store/"
/usr/bin/python3 - "$W/evil-store/manifest.json" <<'PY'
import json, sys
p = sys.argv[1]; m = json.load(open(p)); m["shards"][0]["file"] = "../../../../../etc/passwd"
json.dump(m, open(p, "w"))
PY
hostile manifest_escape "manifest" train "${S[@]}" --set store.path="$W/evil-store" --set train.out_dir="$W/h"

echo "== divergence (train.lr 1e6): stopped, last finite checkpoint kept"
run_np 2 train "${S[@]}" --set store.path="$W/store" --set train.lr=1e6 --set train.max_steps=40 \
  --set train.checkpoint_every=2 --set train.keep_checkpoints=2 --set train.out_dir="$W/nan" >"$W/nan.log" 2>&1
rc=$?
ok=0
[ $rc -ne 0 ] && grep -q "non-finite" "$W/nan.log" && ok=1
count "non-finite training stopped" "$ok"

rank_pid() {  # rank_pid PATTERN RANK: the pid of that world rank among processes whose command line has PATTERN
  local p
  for p in $(pgrep -f -- "$1"); do
    tr '\0' '\n' < "/proc/$p/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$2" && { echo "$p"; return; }
  done
}
echo "== stopped ranks (SIGSTOP one rank, train.comm_timeout 5)"
for i in $(seq 1 "$HANGS"); do
  log="$W/hang-$i.log"
  timeout -k 5 200 mpirun -np 2 --oversubscribe "$DISTILL" train "${S[@]}" --set store.path="$W/store" \
    --set train.out_dir="$W/hang-$i" --set train.comm_timeout=5 --set train.max_steps=100000 >"$log" 2>&1 &
  mp=$!
  for _ in $(seq 1 600); do grep -q "step 1/" "$log" 2>/dev/null && break; sleep 0.1; done
  t0=$(date +%s)
  kill -STOP "$(rank_pid "train.out_dir=$W/hang-$i" $(( i % 2 )))" 2>/dev/null
  wait "$mp"; rc=$?
  took=$(( $(date +%s) - t0 ))
  ok=0
  [ $rc -ne 0 ] && [ $rc -ne 124 ] && [ "$took" -le 15 ] && grep -q "did not complete within" "$log" && ok=1
  echo "   stopped rank $(( i % 2 )): job ended in ${took}s (rc $rc)"
  count "stopped ranks ended the job within comm_timeout + 10 s" "$ok"
done

echo
echo "| trial | passed | of |"
echo "| --- | --- | --- |"
fails=0
for k in "${!TOTAL[@]}"; do
  echo "| $k | ${OK[$k]:-0} | ${TOTAL[$k]} |"
  [ "${OK[$k]:-0}" -eq "${TOTAL[$k]}" ] || fails=1
done
exit $fails
