#!/usr/bin/env bash
# Vector students through the normal commands: a linear teacher (deep_linear, depth 1) trained on
# feature vectors, precomputed on 2 ranks, distilled into a depth-3 deep linear student with
# full-batch SGD + momentum on 2 ranks. An independent NumPy reimplementation, started from the
# student's step-2 checkpoint (weights and momentum) with the store's teacher logits, must reach
# the same weights at step 6; 1 rank and 2 ranks must agree too.
source "$(dirname "$0")/common.sh"
V="$WORK/vectors"
rm -rf "$V"
mkdir -p "$V"
"$PY" - "$V/points.csv" <<'PY'
import sys, numpy as np
rng = np.random.default_rng(7)
x = rng.normal(size=(301, 6))
w = rng.normal(size=(6, 3))
y = np.argmax(x @ w + 0.3 * rng.normal(size=(301, 3)), 1)
with open(sys.argv[1], "w") as f:
    f.write("f0,f1,f2,f3,f4,f5,class\n")
    for row, label in zip(x, y):
        f.write(",".join(f"{v:.6f}" for v in row) + f",{label}\n")
PY
run_np 1 prepare --features -i "$V/points.csv" -o "$V/data.h5" --dev-fraction 0.1 --test-fraction 0.1 > "$V/prepare.log" 2>&1 ||
  { cat "$V/prepare.log"; fail "prepare --features"; }
grep -q "301 rows of 6 features, 3 labels" "$V/prepare.log" || { cat "$V/prepare.log"; fail "prepare summary"; }
T=(--set data.path="$V/data.h5" --set student.kind=deep_linear --set student.depth=1 --set train.optimizer=sgd
  --set train.lr=0.5 --set train.batch_size=100000 --set train.epochs=200 --set train.schedule=constant
  --set train.max_grad_norm=0 --set train.log_every=50 --set train.out_dir="$V/teacher" --set train.precision=fp32)
run_np 2 train "${T[@]}" > "$V/teacher.log" 2>&1 || { cat "$V/teacher.log"; fail "teacher training"; }
grep -q "(full batch)" "$V/teacher.log" || fail "no full-batch steps"
S=(--set data.path="$V/data.h5" --set teacher.path="$V/teacher/checkpoints" --set store.path="$V/store"
  --set store.shard_size=50 --set student.kind=deep_linear --set student.depth=3 --set student.width=8
  --set student.init_scale=0.3 --set distill.alpha=0.25 --set distill.beta=0.75 --set distill.temperature=2
  --set train.optimizer=sgd --set train.momentum=0.9 --set train.lr=0.05 --set train.batch_size=100000
  --set train.max_steps=6 --set train.schedule=constant --set train.max_grad_norm=0 --set train.log_every=1
  --set train.checkpoint_every=2 --set train.keep_checkpoints=0 --set train.precision=fp32)
run_np 2 precompute "${S[@]}" > "$V/precompute.log" 2>&1 || { cat "$V/precompute.log"; fail "precompute"; }
run_np 2 train "${S[@]}" --set train.out_dir="$V/student2" > "$V/student2.log" 2>&1 || { cat "$V/student2.log"; fail "student"; }
run_np 1 train "${S[@]}" --set train.out_dir="$V/student1" > "$V/student1.log" 2>&1 || { cat "$V/student1.log"; fail "student 1 rank"; }
"$PY" - "$V" <<'PY'
import glob, json, struct, sys, h5py, numpy as np
V = sys.argv[1]
from safetensors_np import tensors
with h5py.File(f"{V}/data.h5") as f:
    x = f["train/features"][:].astype(np.float64)
    y = f["train/labels"][:]
z = np.zeros((len(y), 3))
for p in glob.glob(f"{V}/store/shard-*.h5"):
    with h5py.File(p) as f:
        z[f.attrs["example_begin"]:f.attrs["example_end"]] = f["logits"][:].astype(np.float64)
w = tensors(f"{V}/student2/checkpoints/step-00000002/model.safetensors")
opt = tensors(f"{V}/student2/checkpoints/step-00000002/optimizer.safetensors")
W = [w[f"layers.{i}.weight"] for i in range(3)]
M = [opt[f"momentum.layers.{i}.weight"] for i in range(3)]
alpha, beta, T, lr, mu, n = 0.25, 0.75, 2.0, 0.05, 0.9, len(y)
def softmax(a):
    e = np.exp(a - a.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)
for step in range(4):
    acts = [x]
    for Wi in W:
        acts.append(acts[-1] @ Wi.T)
    s = acts[-1]
    # d/ds of alpha * CE + beta * T^2 * KL(softmax(z/T) || softmax(s/T)), mean over all n examples
    g = alpha * (softmax(s) - np.eye(3)[y]) + beta * T * (softmax(s / T) - softmax(z / T))
    g /= n
    grads = [None] * 3
    for i in reversed(range(3)):
        grads[i] = g.T @ acts[i]
        g = g @ W[i]
    for i in range(3):
        M[i] = mu * M[i] + grads[i]
        W[i] = W[i] - lr * M[i]
for r in ("student2", "student1"):
    got = tensors(f"{V}/{r}/checkpoints/step-00000006/model.safetensors")
    for i in range(3):
        diff = np.abs(got[f"layers.{i}.weight"] - W[i]).max() / np.abs(W[i]).max()
        assert diff < 2e-5, (r, i, diff)
print("deep linear student matches the NumPy reference after 4 full-batch SGD steps (1 and 2 ranks)")
PY
run_np 2 eval "${S[@]}" --set train.out_dir="$V/student2" --json > "$V/eval.json" 2> "$V/eval.log" || { cat "$V/eval.log"; fail "eval"; }
"$PY" -c "import json,sys; j=json.load(open('$V/eval.json')); assert j['examples'] == 30 and 'agreement' in j, j; print('eval', j['agreement'], j['teacher_kind'])"
echo "vectors ok"
