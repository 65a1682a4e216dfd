#!/usr/bin/env bash
# Several teachers (Note [several teachers]): precompute writes a store per teacher; a student
# trains on the weighted mixture from the stores, and from the same teachers online (the first
# steps agree within the stores' float16 rounding); a resumed run repeats the straight one;
# eval reports agreement with each teacher, equal to evaluating against that teacher alone, and
# with the ensemble; mismatched stores and weights, and a resume with a retrained teacher, are
# refused with their names.
source "$(dirname "$0")/common.sh"
M="$WORK/teachers"
rm -rf "$M" && mkdir -p "$M"
"$DISTILL" train "${TEACHER_SET[@]}" --set student.layers=1 --set train.seed=7 --set train.out_dir="$M/teacher2" \
  --set train.max_steps=40 > "$M/teacher2.log" 2>&1 || { cat "$M/teacher2.log"; fail "second teacher"; }
T2="$M/teacher2/checkpoints"
TWO=("${STUDENT_SET[@]}" --set teacher.extra_paths="$T2" --set store.path="$M/store1" --set store.extra_paths="$M/store2"
  --set distill.teacher_weights=3,1)
run_np 2 precompute "${TWO[@]}" > "$M/precompute.log" 2>&1 || { cat "$M/precompute.log"; fail "precompute of two stores"; }
grep -q "teacher 2 of 2" "$M/precompute.log" || fail "precompute did not run the second teacher"
"$PY" - "$M" "$WORK/teacher/checkpoints" "$T2" <<'PY'
import json, sys
m = sys.argv[1]
a, b = (json.load(open(f"{m}/store{i}/manifest.json")) for i in (1, 2))
fa = a.get("teacher_fingerprint") or a["meta"]["teacher_fingerprint"]
fb = b.get("teacher_fingerprint") or b["meta"]["teacher_fingerprint"]
assert fa != fb, "both stores hold the same teacher"
print("two stores, fingerprints", fa[:12], fb[:12])
PY
COMMON=(--set train.max_steps=12 --set train.checkpoint_every=6 --set train.keep_checkpoints=0 --set train.precision=fp32)
run_np 2 train "${TWO[@]}" "${COMMON[@]}" --set train.out_dir="$M/stored" > "$M/stored.log" 2>&1 ||
  { cat "$M/stored.log"; fail "training from two stores"; }
set +e
DISTILL_FAULT_KILL_AT_STEP=6 run_np 2 train "${TWO[@]}" "${COMMON[@]}" --set train.out_dir="$M/killed" > /dev/null 2>&1
set -e
run_np 2 train "${TWO[@]}" "${COMMON[@]}" --set train.out_dir="$M/killed" --resume > "$M/killed.log" 2>&1 ||
  { cat "$M/killed.log"; fail "resumed two-teacher run"; }
diff <(strip "$M/stored/metrics.jsonl") <(strip "$M/killed/metrics.jsonl") || fail "two teachers: losses differ after resume"
cmp "$M/stored/checkpoints/step-00000012/model.safetensors" "$M/killed/checkpoints/step-00000012/model.safetensors" ||
  fail "two teachers: weights differ after resume"
ONLINE=("${STUDENT_SET[@]}" --set store.path= --set teacher.online=true --set teacher.extra_paths="$T2"
  --set distill.teacher_weights=3,1)
run_np 2 train "${ONLINE[@]}" "${COMMON[@]}" --set train.out_dir="$M/online" > "$M/online.log" 2>&1 ||
  { cat "$M/online.log"; fail "training with two online teachers"; }
"$PY" - "$M/stored/metrics.jsonl" "$M/online/metrics.jsonl" <<'PY'
import json, sys
a, b = ([json.loads(l) for l in open(p) if '"loss"' in l] for p in sys.argv[1:])
for x, y in zip(a[:3], b[:3]):
    assert abs(x["soft_kl"] - y["soft_kl"]) <= 2e-3 * max(1.0, abs(x["soft_kl"])), (x, y)
print("stored and online mixtures agree at steps 1-3:", [round(x["soft_kl"], 5) for x in a[:3]])
PY
# eval: each teacher's agreement equals evaluating against that teacher alone.
run_np 2 eval "${TWO[@]}" --set train.out_dir="$M/stored" --json 2>/dev/null | sed -n '/^{/,/^}/p' > "$M/eval.json"
run_np 2 eval "${STUDENT_SET[@]}" --set train.out_dir="$M/stored" --json 2>/dev/null | sed -n '/^{/,/^}/p' > "$M/eval1.json"
run_np 2 eval "${STUDENT_SET[@]}" --set teacher.path="$T2" --set train.out_dir="$M/stored" --json 2>/dev/null |
  sed -n '/^{/,/^}/p' > "$M/eval2.json"
"$PY" - "$M" <<'PY'
import json, sys
m = sys.argv[1]
e, e1, e2 = (json.load(open(f"{m}/{n}.json")) for n in ("eval", "eval1", "eval2"))
t = e["teachers"]
assert len(t) == 2 and abs(t[0]["weight"] - 0.75) < 1e-12 and abs(t[1]["weight"] - 0.25) < 1e-12, t
for mine, alone in zip(t, (e1, e2)):
    for k in ("agreement", "kl_teacher_student", "teacher_accuracy"):
        assert abs(mine[k] - alone[k]) < 1e-9, (k, mine, alone)
assert e["teacher_kind"] == "ensemble" and 0 <= e["agreement"] <= 1
print("agreement with teacher 1 %.4f, teacher 2 %.4f, ensemble %.4f" % (t[0]["agreement"], t[1]["agreement"], e["agreement"]))
PY
refused() {  # refused MESSAGE ARGS...: the run fails and prints MESSAGE
  local want=$1; shift
  set +e
  run_np 2 train "$@" --set train.max_steps=2 --set train.out_dir="$M/refused" > "$M/refused.log" 2>&1
  local rc=$?
  set -e
  [ "$rc" -ne 0 ] && grep -qF "$want" "$M/refused.log" || { cat "$M/refused.log"; fail "expected a refusal: $want"; }
}
refused "gives 3 weights for 2 teachers" "${TWO[@]}" --set distill.teacher_weights=1,1,1
refused "teacher.extra_paths names 1 teachers and store.extra_paths 0 stores" "${TWO[@]}" --set store.extra_paths=
refused "store2" "${TWO[@]}" --set teacher.extra_paths="$WORK/teacher/checkpoints"
refused "layer maps follow one teacher" "${ONLINE[@]}" --set distill.attention_map=1:1
refused "is named twice (or equals store.path)" "${TWO[@]}" --set store.extra_paths="$M/store1"
# A teacher retrained in place is another teacher: resuming the online run from it is refused.
rm -rf "$M/teacher2"
"$DISTILL" train "${TEACHER_SET[@]}" --set student.layers=1 --set train.seed=8 --set train.out_dir="$M/teacher2" \
  --set train.max_steps=20 > "$M/teacher2b.log" 2>&1 || { cat "$M/teacher2b.log"; fail "retraining the second teacher"; }
set +e
run_np 2 train "${ONLINE[@]}" "${COMMON[@]}" --set train.out_dir="$M/online" --resume > "$M/refused.log" 2>&1
rc=$?
set -e
[ "$rc" -ne 0 ] && grep -qF "resume with the same teachers" "$M/refused.log" ||
  { cat "$M/refused.log"; fail "a resume with a retrained teacher was not refused"; }
echo "several teachers ok"
