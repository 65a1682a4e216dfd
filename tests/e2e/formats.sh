#!/usr/bin/env bash
# Users' formats: the e2e teacher exported as a Hugging Face directory and, from that directory,
# re-implemented in plain PyTorch and traced to TorchScript (tests/e2e/hf_to_torchscript.py).
# Both serve as teachers: the HF store equals the original store, the TorchScript store matches
# it within float16 rounding and trains a student; an exported student re-imports with the same
# metrics; an HF encoder initialises a student; an ill-fitting HF directory is refused.
source "$(dirname "$0")/common.sh"
W="$WORK/formats"
rm -rf "$W" && mkdir -p "$W"
"$DISTILL" export "${TEACHER_SET[@]}" --set train.out_dir="$WORK/teacher" --out "$W/teacher_hf"
for f in config.json model.safetensors; do test -f "$W/teacher_hf/$f" || fail "export wrote no $f"; done
"$PY" "$(dirname "$0")/hf_to_torchscript.py" "$W/teacher_hf" "$WORK/data.h5" "$W/teacher.pt"

run_np 2 precompute "${STUDENT_SET[@]}" --set teacher.path="$W/teacher_hf" --set store.path="$W/store_hf"
run_np 2 precompute "${STUDENT_SET[@]}" --set teacher.path="$W/teacher.pt" --set store.path="$W/store_ts"
"$PY" - "$WORK/store" "$W/store_hf" "$W/store_ts" <<'PY'
import glob, sys, h5py, numpy as np
def logits(store):
    out = {}
    for p in sorted(glob.glob(f"{store}/shard-*.h5")):
        with h5py.File(p, "r") as f:
            for i, z in zip(f["example_id"][:], f["logits"][:].astype(np.float32)):
                out[int(i)] = z
    return out
ref, hf, ts = (logits(s) for s in sys.argv[1:4])
assert ref.keys() == hf.keys() == ts.keys() and len(ref) == 600, (len(ref), len(hf), len(ts))
ids = sorted(ref)
R, H, T = (np.stack([d[i] for i in ids]) for d in (ref, hf, ts))
assert np.array_equal(R, H), f"HF-directory teacher differs from the checkpoint: max {np.abs(R - H).max()}"
err = np.abs(R - T) / np.maximum(1.0, np.abs(R))
assert err.max() <= 2e-3, f"TorchScript teacher differs by {err.max()} (relative) at example {ids[err.max(1).argmax()]}"
print(f"stores agree: HF exactly, TorchScript within {err.max():.2e} (float16 storage)")
PY

# A student trained on the TorchScript teacher's store, evaluated against that teacher.
run_np 2 train "${STUDENT_SET[@]}" --set teacher.path="$W/teacher.pt" --set store.path="$W/store_ts" \
  --set train.out_dir="$W/student" --set train.epochs=3
run_np 2 eval "${STUDENT_SET[@]}" --set teacher.path="$W/teacher.pt" --set train.out_dir="$W/student" --json \
  2>/dev/null | sed -n '/^{/,/^}/p' > "$W/eval_ts.json"
# Round trip: the student exported as an HF directory evaluates exactly like its checkpoint.
"$DISTILL" export "${STUDENT_SET[@]}" --set train.out_dir="$W/student" --out "$W/student_hf"
run_np 2 eval "${STUDENT_SET[@]}" --set teacher.path="$W/teacher_hf" --checkpoint "$W/student_hf" --json \
  2>/dev/null | sed -n '/^{/,/^}/p' > "$W/eval_hf.json"
"$PY" - "$W/eval_ts.json" "$W/eval_hf.json" <<'PY'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
assert a["teacher_kind"] == "torchscript" and b["teacher_kind"] == "bert", (a["teacher_kind"], b["teacher_kind"])
assert a["accuracy"] == b["accuracy"], ("exported student", a["accuracy"], b["accuracy"])
assert abs(a["agreement"] - b["agreement"]) <= 0.011, (a["agreement"], b["agreement"])
assert abs(a["kl_teacher_student"] - b["kl_teacher_student"]) <= 1e-3, (a["kl_teacher_student"], b["kl_teacher_student"])
assert a["agreement"] >= 0.6, f"student trained on the TorchScript store agrees only {a['agreement']}"
print(f"TorchScript-taught student: accuracy {a['accuracy']:.3f}, agreement {a['agreement']:.3f}; HF round trip exact")
PY

# An HF encoder initialises a student (its architecture comes from the directory).
"$DISTILL" train "${STUDENT_SET[@]}" --set student.init="$W/teacher_hf" --set train.out_dir="$W/init" \
  --set train.max_steps=3 > "$W/init.log" 2>&1
grep -q "student starts from $W/teacher_hf: 2 layers, hidden 32" "$W/init.log" ||
  { cat "$W/init.log"; fail "student.init did not start from the HF directory"; }

# A tensor renamed in the HF directory: refused, naming missing and unexpected tensors; no store.
cp -r "$W/teacher_hf" "$W/bad_hf"
sed -i 's/attention.self.query.weight/attention.self.qqqqq.weight/' "$W/bad_hf/model.safetensors"
if run_np 2 precompute "${STUDENT_SET[@]}" --set teacher.path="$W/bad_hf" --set store.path="$W/store_bad" 2> "$W/bad.log"; then
  fail "precompute accepted an ill-fitting HF directory"
fi
grep -q "missing:" "$W/bad.log" && grep -q "bert.encoder.layer.0.attention.self.query.weight" "$W/bad.log" &&
  grep -q "unexpected:" "$W/bad.log" || { cat "$W/bad.log"; fail "error does not list the ill-fitting tensors"; }
test ! -e "$W/store_bad/manifest.json" || fail "a failed precompute left a manifest"
echo "formats ok"
