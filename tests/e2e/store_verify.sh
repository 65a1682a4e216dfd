#!/usr/bin/env bash
# Verified stores: inspect reports the coverage found and fails on a broken store; a corrupt shard
# is refused by train (digest) and redone by precompute; manifest entries cannot name other files;
# a resumed precompute with another teacher.batch_size is refused; a NaN teacher stores nothing.
source "$(dirname "$0")/common.sh"
V="$WORK/verify"
rm -rf "$V" && mkdir -p "$V"
expect_fail() {  # expect_fail NAME PATTERN -- COMMAND...: non-zero exit and PATTERN in the output
  local name=$1 pattern=$2; shift 3
  set +e
  "$@" > "$V/$name.log" 2>&1
  local rc=$?
  set -e
  [ "$rc" -ne 0 ] || { cat "$V/$name.log"; fail "$name: exited 0"; }
  [ "$rc" -ne 124 ] && [ "$rc" -ne 137 ] || fail "$name: hung"
  grep -Eq "$pattern" "$V/$name.log" || { cat "$V/$name.log"; fail "$name: no output matching '$pattern'"; }
  echo "$name: $(grep -Em1 "$pattern" "$V/$name.log")"
}
TRAIN=(train "${STUDENT_SET[@]}" --set train.out_dir="$V/t" --set train.max_steps=1)

# The fixture's store is healthy, digests included.
"$DISTILL" inspect "$WORK/store" --verify --json > "$V/healthy.json"
grep -q '"status": "healthy"' "$V/healthy.json" || fail "fixture store not reported healthy"
grep -q '"examples": 600' "$V/healthy.json" || fail "fixture store does not cover 600 examples"
grep -q '"digests": "ok: 10 of 10' "$V/healthy.json" || fail "digests not reported ok"

# A flipped byte in the middle of a shard: inspect --verify and train refuse it, naming the shard.
S="$V/store-flip"
cp -r "$WORK/store" "$S"
F=shard-000000064-000000127.h5
"$PY" - "$S/$F" <<'PY'
import sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
b[len(b) // 2] ^= 0x10
open(p, "wb").write(bytes(b))
PY
expect_fail inspect_flip "broken.*$F" -- "$DISTILL" inspect "$S" --verify
expect_fail train_flip "$F.*(digest|unreadable)" -- run_np 2 "${TRAIN[@]}" --set store.path="$S"
# Rerunning precompute redoes exactly that shard, and the store is healthy again.
run_np 2 precompute "${STUDENT_SET[@]}" --set store.path="$S" > "$V/redo.log" 2>&1 || { cat "$V/redo.log"; fail "redo failed"; }
grep -q "redoing .*$F" "$V/redo.log" || { cat "$V/redo.log"; fail "precompute did not redo $F"; }
"$DISTILL" inspect "$S" --verify | grep -q '^status: "healthy"' || fail "store not healthy after the redo"

# A missing shard: the header still says 600, inspect reports what is covered and exits non-zero.
S="$V/store-gap"
cp -r "$WORK/store" "$S" && rm "$S/shard-000000128-000000191.h5"
expect_fail inspect_gap 'is broken.*cover 536 of 600' -- "$DISTILL" inspect "$S" --json
grep -q '"examples": 536' "$V/inspect_gap.log" || fail "inspect does not report the 536 covered examples"
grep -q '"split_examples": 600' "$V/inspect_gap.log" || fail "inspect does not report the split's 600 examples"

# Manifest entries name shard files of the store only.
S="$V/store-paths"
cp -r "$WORK/store" "$S"
"$PY" - "$S/manifest.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
m["shards"][0]["file"] = "/etc/passwd"
json.dump(m, open(sys.argv[1], "w"))
PY
expect_fail train_paths 'manifest.json: shard entry "/etc/passwd"' -- run_np 2 "${TRAIN[@]}" --set store.path="$S"
expect_fail inspect_paths 'broken.*shard entry "/etc/passwd"' -- "$DISTILL" inspect "$S"

# One teacher.batch_size per store: a resume with another is refused, with or without a manifest.
S="$V/store-batch"
run_np 2 precompute "${STUDENT_SET[@]}" --set store.path="$S" --set teacher.batch_size=8 > "$V/batch8.log" 2>&1 \
  || { cat "$V/batch8.log"; fail "precompute with teacher.batch_size=8 failed"; }
expect_fail batch_resume 'teacher.batch_size 8, expected 2' -- \
  run_np 2 precompute "${STUDENT_SET[@]}" --set store.path="$S" --set teacher.batch_size=2
rm "$S/manifest.json"
expect_fail batch_resume_shards 'shard-.*teacher.batch_size 8, this precompute uses 2' -- \
  run_np 2 precompute "${STUDENT_SET[@]}" --set store.path="$S" --set teacher.batch_size=2
run_np 2 precompute "${STUDENT_SET[@]}" --set store.path="$S" --set teacher.batch_size=8 > /dev/null 2>&1 \
  || fail "resume with the same teacher.batch_size failed"
"$DISTILL" inspect "$S" --json | grep -q '"teacher_batch_size": 8' || fail "inspect does not show teacher_batch_size"

# A teacher with a NaN weight: precompute refuses, naming examples and the shard, and stores nothing.
N="$V/nan-teacher"
mkdir -p "$N"
step=$(cat "$WORK/teacher/checkpoints/latest")
cp "$WORK/teacher/checkpoints/$step"/* "$N/"
"$PY" - "$N/model.safetensors" <<'PY'
import json, struct, sys
p = sys.argv[1]
raw = bytearray(open(p, "rb").read())
n = struct.unpack("<Q", raw[:8])[0]
h = json.loads(raw[8:8 + n])
name = next(k for k in h if k.endswith("classifier.bias"))
b, e = h[name]["data_offsets"]
assert h[name]["dtype"] == "F32", h[name]
raw[8 + n + b:8 + n + e] = struct.pack("<f", float("nan")) * ((e - b) // 4)
open(p, "wb").write(bytes(raw))
PY
expect_fail nan_teacher 'non-finite logits .* of shard shard-[0-9-]+\.h5 \(rows \[[0-9]+, [0-9]+\)\), first at example ids [0-9]' -- \
  run_np 2 precompute "${STUDENT_SET[@]}" --set store.path="$V/store-nan" --set teacher.path="$N"
! ls "$V/store-nan"/shard-*.h5 > /dev/null 2>&1 || fail "a NaN teacher left committed shards"
[ ! -f "$V/store-nan/manifest.json" ] || fail "a NaN teacher left a manifest"
echo "store verify ok"
