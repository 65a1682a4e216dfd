#!/usr/bin/env bash
# Phuong & Lampert's Result 1 with distill curve: a linear teacher in d = 40 (one linear layer
# trained on 4,000 points with logistic labels), distilled into a depth-2 deep linear student by
# full-batch gradient descent (20,000 steps, soft targets only) on nested subsets n = 5 ... 160 of a
# transfer set, transfer risk measured on 960 held-out points. Prints the curve and, next to it, the
# risk of the teacher projected onto the span of the n points (NumPy), which the student should
# match for n < d; for n >= d both should be near 0. NP=2 ranks run the sizes in 2 groups. OUT_DIR.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
DISTILL="${BUILD_DIR:-$ROOT/.build}/distill"
OUT=${OUT_DIR:-.runs/curve-deep-linear}
NP=${NP:-2}
PY=${PY:-/usr/bin/python3}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mpi() { mpirun -np "$1" --oversubscribe "$DISTILL" "${@:2}"; }
mkdir -p "$OUT"
"$PY" - "$OUT" <<'PY'
import sys, numpy as np
T = sys.argv[1]
rng = np.random.default_rng(11)
d = 40
w = rng.normal(size=d)
w *= 2.0 / np.linalg.norm(w)
def write(path, n):
    x = rng.normal(size=(n, d))
    y = (rng.random(n) < 1 / (1 + np.exp(-x @ w))).astype(int)
    with open(path, "w") as f:
        for row, label in zip(x, y):
            f.write(",".join(f"{v:.6f}" for v in row) + f",{label}\n")
write(f"{T}/teacher.csv", 4000)
write(f"{T}/transfer.csv", 1200)
PY
"$DISTILL" prepare --features -i "$OUT/teacher.csv" -o "$OUT/teacher.h5" --dev-fraction 0 --test-fraction 0.1 2>&1 | grep wrote
"$DISTILL" prepare --features -i "$OUT/transfer.csv" -o "$OUT/transfer.h5" --dev-fraction 0 --test-fraction 0.8 2>&1 | grep wrote
mpi 1 train --set data.path="$OUT/teacher.h5" --set student.kind=deep_linear --set student.depth=1 \
  --set train.optimizer=sgd --set train.lr=0.5 --set train.batch_size=100000 --set train.epochs=200 \
  --set train.schedule=constant --set train.max_grad_norm=0 --set train.log_every=50 --set data.eval_split=test \
  --set train.out_dir="$OUT/teacher" --set train.precision=fp32 > "$OUT/teacher.log" 2>&1
S=(--set data.path="$OUT/transfer.h5" --set teacher.path="$OUT/teacher/checkpoints" --set store.path="$OUT/store"
  --set store.shard_size=64 --set student.kind=deep_linear --set student.depth=2 --set student.width=40
  --set student.init_scale=0.01 --set distill.alpha=0 --set distill.beta=1 --set distill.temperature=1
  --set train.optimizer=sgd --set train.momentum=0.9 --set train.lr=0.2 --set train.batch_size=100000 --set train.threads=1
  --set train.epochs=20000 --set train.schedule=constant --set train.max_grad_norm=0 --set train.log_every=5000
  --set train.checkpoint_every=0 --set train.keep_checkpoints=1 --set train.precision=fp32)
[ -f "$OUT/store/manifest.json" ] || mpi "$NP" precompute "${S[@]}" > "$OUT/precompute.log" 2>&1
mpi "$NP" curve "${S[@]}" --sizes 5,10,20,40,80,160 --groups "$NP" --split test --out "$OUT/curve" 2>&1 | grep -v "^\[" |
  sed -n '/^n /,$p'
"$PY" - "$OUT" <<'PY'
import json, struct, sys, h5py, numpy as np
T = sys.argv[1]
raw = open(f"{T}/teacher/checkpoints/" + open(f"{T}/teacher/checkpoints/latest").read().strip() + "/model.safetensors", "rb").read()
n = struct.unpack("<Q", raw[:8])[0]; h = json.loads(raw[8:8 + n]); v = h["layers.0.weight"]
W = np.frombuffer(raw[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]], np.float32).reshape(v["shape"]).astype(float)
w = W[1] - W[0]
with h5py.File(f"{T}/transfer.h5") as f:
    x, ids, xt = f["train/features"][:].astype(float), f["train/example_id"][:], f["test/features"][:].astype(float)
row = {int(i): r for r, i in enumerate(ids)}
c = json.load(open(f"{T}/curve/curve.json"))
print(f"\n{'n':>4} {'student risk':>13} {'projected teacher risk':>23}")
for p in c["points"]:
    sub = [row[i] for i in json.load(open(f"{T}/curve/n-{p['n']}/result.json"))["example_ids"]]
    q, _ = np.linalg.qr(x[sub].T)
    proj = np.mean(np.sign(xt @ (q @ (q.T @ w))) != np.sign(xt @ w))
    print(f"{p['n']:>4} {p['sets'][0]['transfer_risk']:>13.4f} {proj:>23.4f}")
f = c["fits"][0]
print(f"fit on n < {c['fit_below']:.0f}: kappa {f['kappa']:.3f} [{f['kappa_low']:.3f}, {f['kappa_high']:.3f}], c {f['c']:.3f}; plot {c['svg']}")
PY
