#!/usr/bin/env bash
# Regression (one output, float targets): a CSV of feature vectors with a real-valued target is
# prepared with --regression; a linear teacher (deep_linear, depth 1) fits it by full-batch SGD on
# the squared error and must reach NumPy's least-squares weights; its outputs are precomputed on 2
# ranks and a depth-2 deep linear student is distilled with distill.soft_loss: mse. An independent
# NumPy reimplementation of alpha * MSE(label) + beta * MSE(teacher), started from the student's
# step-2 checkpoint, must reach the same weights at step 6, and eval's MSE, Pearson and Spearman
# (1 and 2 ranks) must equal NumPy's from the checkpoints' weights. Then train.select: dev_pearson,
# and the refusals.
source "$(dirname "$0")/common.sh"
R="$WORK/regression"
rm -rf "$R"
mkdir -p "$R"
"$PY" - "$R/points.csv" <<'PY'
import sys, numpy as np
rng = np.random.default_rng(11)
x = rng.normal(size=(401, 5))
w = np.array([1.5, -2.0, 0.5, 0.0, 1.0])
y = x @ w + 0.5 * rng.normal(size=401)
y[::7] = np.round(y[::7])  # ties among the targets (Spearman's mean ranks)
with open(sys.argv[1], "w") as f:
    f.write("f0,f1,f2,f3,f4,target\n")
    for row, t in zip(x, y):
        f.write(",".join(f"{v:.6f}" for v in row) + f",{t:.6f}\n")
PY
run_np 1 prepare --features --regression -i "$R/points.csv" -o "$R/data.h5" --dev-fraction 0.1 --test-fraction 0.1 \
  > "$R/prepare.log" 2>&1 || { cat "$R/prepare.log"; fail "prepare --features --regression"; }
grep -q "401 rows of 5 features, regression target 'target'" "$R/prepare.log" || { cat "$R/prepare.log"; fail "prepare summary"; }
"$PY" - "$R" <<'PY'
import sys, h5py, numpy as np
R = sys.argv[1]
raw = np.loadtxt(f"{R}/points.csv", delimiter=",", skiprows=1)
with h5py.File(f"{R}/data.h5") as f:
    assert f.attrs["regression"] == 1 and f.attrs["label_names"] == '["target"]', dict(f.attrs)
    n = 0
    for s in ("train", "dev", "test"):
        ids, scores, labels = f[s]["example_id"][:], f[s]["scores"][:], f[s]["labels"][:]
        assert scores.dtype == np.float32 and (labels == 0).all(), s
        assert np.array_equal(scores, raw[ids, 5].astype(np.float32)), s
        assert np.allclose(f[s]["features"][:], raw[ids, :5], atol=1e-6), s
        n += len(ids)
    assert n == 401
print("prepare --regression: scores and features equal the CSV's rows")
PY

T=(--set data.path="$R/data.h5" --set student.kind=deep_linear --set student.depth=1 --set train.optimizer=sgd
  --set train.lr=0.2 --set train.batch_size=100000 --set train.epochs=150 --set train.schedule=constant
  --set train.max_grad_norm=0 --set train.log_every=50 --set train.out_dir="$R/teacher" --set train.precision=fp32)
run_np 2 train "${T[@]}" > "$R/teacher.log" 2>&1 || { cat "$R/teacher.log"; fail "teacher training"; }
grep -q "dev at step 150: MSE" "$R/teacher.log" || { cat "$R/teacher.log"; fail "no regression dev line"; }
S=(--set data.path="$R/data.h5" --set teacher.path="$R/teacher/checkpoints" --set store.path="$R/store"
  --set store.shard_size=50 --set student.kind=deep_linear --set student.depth=2 --set student.width=4
  --set student.init_scale=0.5 --set distill.alpha=0.3 --set distill.beta=0.7 --set distill.soft_loss=mse
  --set train.optimizer=sgd --set train.momentum=0.9 --set train.lr=0.02 --set train.batch_size=100000
  --set train.max_steps=6 --set train.schedule=constant --set train.max_grad_norm=0 --set train.log_every=1
  --set train.checkpoint_every=2 --set train.keep_checkpoints=0 --set train.precision=fp32)
run_np 2 precompute "${S[@]}" > "$R/precompute.log" 2>&1 || { cat "$R/precompute.log"; fail "precompute"; }
run_np 2 train "${S[@]}" --set train.out_dir="$R/student2" > "$R/student2.log" 2>&1 || { cat "$R/student2.log"; fail "student"; }
run_np 1 train "${S[@]}" --set train.out_dir="$R/student1" > "$R/student1.log" 2>&1 || { cat "$R/student1.log"; fail "student 1 rank"; }
run_np 2 eval "${S[@]}" --set train.out_dir="$R/student2" --json > "$R/eval2.json" 2> "$R/eval.log" || { cat "$R/eval.log"; fail "eval"; }
run_np 1 eval "${S[@]}" --set train.out_dir="$R/student2" --json > "$R/eval1.json" 2> "$R/eval.log" || { cat "$R/eval.log"; fail "eval 1 rank"; }
run_np 1 eval "${S[@]}" --set train.out_dir="$R/student2" > "$R/eval.txt" 2> "$R/eval.log" || { cat "$R/eval.log"; fail "eval text"; }
grep -q "student Spearman" "$R/eval.txt" && grep -q "Pearson(teacher, student)" "$R/eval.txt" || { cat "$R/eval.txt"; fail "eval text"; }
"$PY" - "$R" <<'PY'
import glob, json, struct, sys, h5py, numpy as np
R = sys.argv[1]
from safetensors_np import tensors
def split(s):
    with h5py.File(f"{R}/data.h5") as f:
        return f[s]["features"][:].astype(np.float64), f[s]["scores"][:].astype(np.float64)
x, y = split("train")
# The teacher: full-batch gradient descent on the mean squared error converges to least squares.
wt = tensors(f"{R}/teacher/checkpoints/step-00000150/model.safetensors")["layers.0.weight"]
ls = np.linalg.lstsq(x, y, rcond=None)[0]
assert np.abs(wt[0] - ls).max() < 1e-4, (wt, ls)
z = np.zeros(len(y))
for p in glob.glob(f"{R}/store/shard-*.h5"):
    with h5py.File(p) as f:
        z[f.attrs["example_begin"]:f.attrs["example_end"]] = f["logits"][:, 0].astype(np.float64)
pred = x @ wt[0]
assert (np.abs(z - pred) <= 1e-3 * np.maximum(1, np.abs(pred))).all(), "store outputs differ from the teacher's (float16)"
w = tensors(f"{R}/student2/checkpoints/step-00000002/model.safetensors")
opt = tensors(f"{R}/student2/checkpoints/step-00000002/optimizer.safetensors")
W = [w[f"layers.{i}.weight"] for i in range(2)]
M = [opt[f"momentum.layers.{i}.weight"] for i in range(2)]
alpha, beta, lr, mu, n = 0.3, 0.7, 0.02, 0.9, len(y)
for step in range(4):
    acts = [x]
    for Wi in W:
        acts.append(acts[-1] @ Wi.T)
    s = acts[-1][:, 0]
    # d/ds of alpha * mean (s - y)^2 + beta * mean (s - z)^2
    g = ((2 * alpha * (s - y) + 2 * beta * (s - z)) / n)[:, None]
    grads = [None] * 2
    for i in reversed(range(2)):
        grads[i] = g.T @ acts[i]
        g = g @ W[i]
    for i in range(2):
        M[i] = mu * M[i] + grads[i]
        W[i] = W[i] - lr * M[i]
for r in ("student2", "student1"):
    got = tensors(f"{R}/{r}/checkpoints/step-00000006/model.safetensors")
    for i in range(2):
        diff = np.abs(got[f"layers.{i}.weight"] - W[i]).max() / np.abs(W[i]).max()
        assert diff < 2e-5, (r, i, diff)
print("deep linear student matches the NumPy reference of the regression objective (1 and 2 ranks)")

def ranks(v):
    order = np.argsort(v, kind="mergesort")
    r = np.empty(len(v))
    r[order] = np.arange(1, len(v) + 1)
    for u in np.unique(v):
        r[v == u] = r[v == u].mean()
    return r
def fit(p, t):
    return {"mse": np.mean((p - t) ** 2), "pearson": np.corrcoef(p, t)[0, 1],
            "spearman": np.corrcoef(ranks(p), ranks(t))[0, 1]}
xt, yt = split("test")
assert len(np.unique(yt)) < len(yt), "the test targets should hold ties"
ws = tensors(f"{R}/student2/checkpoints/step-00000006/model.safetensors")
ps = xt @ ws["layers.0.weight"].T @ ws["layers.1.weight"].T
ps = ps[:, 0]
pt = xt @ wt[0]
want = {**fit(ps, yt), **{"teacher_" + k: v for k, v in fit(pt, yt).items()},
        "mse_teacher_student": np.mean((ps - pt) ** 2), "pearson_teacher_student": np.corrcoef(ps, pt)[0, 1]}
for f in ("eval1.json", "eval2.json"):
    j = json.load(open(f"{R}/{f}"))
    assert j["task"] == "regression" and j["examples"] == 40 and j["labeled"] == 40 and "accuracy" not in j, j
    for k, v in want.items():
        assert abs(j[k] - v) <= 1e-5 * max(1.0, abs(v)), (f, k, j[k], v)
print("eval (1 and 2 ranks) equals NumPy's MSE, Pearson and Spearman:",
      {k: round(v, 4) for k, v in want.items()})
PY

# train.select: dev_pearson keeps the best checkpoint; evaluation lines carry the regression metrics.
run_np 2 train "${S[@]}" --set train.out_dir="$R/select" --set train.select=dev_pearson > "$R/select.log" 2>&1 ||
  { cat "$R/select.log"; fail "select dev_pearson"; }
[ -e "$R/select/checkpoints/best" ] || fail "no checkpoints/best"
grep -q '"dev_pearson"' "$R/select/metrics.jsonl" && grep -q '"dev_spearman"' "$R/select/metrics.jsonl" ||
  fail "evaluation lines lack dev_pearson / dev_spearman"
grep -q '"dev_pearson"' "$R/select/train_summary.json" || fail "train_summary.json lacks dev_pearson"
"$PY" - "$R/select" <<'PY'
import json, os, sys
d = sys.argv[1]
ev = [json.loads(l) for l in open(f"{d}/metrics.jsonl") if '"eval_split"' in l]
s = json.load(open(f"{d}/train_summary.json"))
best = max(ev, key=lambda e: e["dev_pearson"])  # the first of equal maxima: only a strictly better one replaces it
assert [e["step"] for e in ev] == [2, 4, 6], ev
assert s["best_step"] == best["step"] and abs(s["best_metric"] - best["dev_pearson"]) < 1e-12, (s, ev)
assert os.path.realpath(f"{d}/checkpoints/best").endswith(f"step-{best['step']:08d}"), os.path.realpath(f"{d}/checkpoints/best")
print("train.select: dev_pearson kept step", best["step"], "of", [round(e["dev_pearson"], 4) for e in ev])
PY

# Text regression: real sentences (polarity) with a made-up target, prepared on 1 and 2 ranks (the
# in-memory and the parallel path give the same data set), trained and evaluated as a BERT regressor.
"$PY" - "${DISTILL_POLARITY:?}" "$R/texts.tsv" <<'PY'
import csv, sys
rows = list(csv.reader(open(sys.argv[1], encoding="utf-8-sig")))[:300]
with open(sys.argv[2], "w") as f:
    f.write("text\tvalence\n")
    for label, text in rows:
        f.write(f"{' '.join(text.split())}\t{int(label) + len(text.split()) / 20:.3f}\n")
PY
TP=(-i "$R/texts.tsv" --vocab "${DISTILL_VOCAB:?}" --regression --label-column valence --label-names score --max-length 16)
run_np 1 prepare "${TP[@]}" -o "$R/texts1.h5" > "$R/texts1.log" 2>&1 || { cat "$R/texts1.log"; fail "prepare text --regression"; }
run_np 2 prepare "${TP[@]}" -o "$R/texts2.h5" > "$R/texts2.log" 2>&1 || { cat "$R/texts2.log"; fail "prepare text --regression, 2 ranks"; }
grep -q "regression target 'score'" "$R/texts2.log" || { cat "$R/texts2.log"; fail "text prepare summary"; }
h1=$("$DISTILL" inspect "$R/texts1.h5" --json | "$PY" -c "import json,sys; j=json.load(sys.stdin); assert j['regression']; print(j['content_hash'])")
h2=$("$DISTILL" inspect "$R/texts2.h5" --json | "$PY" -c "import json,sys; print(json.load(sys.stdin)['content_hash'])")
[ "$h1" = "$h2" ] || fail "1 and 2 ranks prepared different text regression data ($h1 vs $h2)"
TS=(--set data.path="$R/texts2.h5" --set student.vocab_size=30522 --set student.hidden=16 --set student.layers=1
  --set student.heads=2 --set student.intermediate=32 --set student.max_positions=16 --set train.batch_size=16
  --set train.max_steps=6 --set train.log_every=2 --set train.out_dir="$R/texts-run")
run_np 2 train "${TS[@]}" > "$R/texts-train.log" 2>&1 || { cat "$R/texts-train.log"; fail "text regression training"; }
run_np 2 eval "${TS[@]}" --json > "$R/texts-eval.json" 2> "$R/texts-eval.log" || { cat "$R/texts-eval.log"; fail "text eval"; }
"$PY" - "$R/texts-eval.json" <<'PY'
import json, math, sys
j = json.load(open(sys.argv[1]))
assert j["task"] == "regression" and j["examples"] == 30 and j["labeled"] == 30, j
assert all(math.isfinite(j[k]) for k in ("mse", "pearson", "spearman")), j
print("text regression eval:", {k: round(j[k], 4) for k in ("mse", "pearson", "spearman")})
PY

# Refusals, each naming what to change.
expect_error() {  # expect_error PATTERN LOG args...
  local pattern=$1 log=$2
  shift 2
  if run_np 1 "$@" > "$R/$log" 2>&1; then fail "$log: succeeded"; fi
  grep -q -- "$pattern" "$R/$log" || { cat "$R/$log"; fail "$log: no '$pattern'"; }
}
expect_error "set distill.soft_loss: mse" kl.log train "${S[@]}" --set distill.soft_loss=kl --set train.out_dir="$R/kl"
expect_error "train.select: dev_accuracy is for classification" select.log train "${S[@]}" \
  --set train.select=dev_accuracy --set train.out_dir="$R/sel"
printf 'f0,target\n1.0,2.0\n2.0,nan\n' > "$R/bad.csv"
expect_error "bad.csv:3: label nan is not a finite number" bad.log prepare --features --regression -i "$R/bad.csv" \
  -o "$R/bad.h5"
[ ! -e "$R/bad.h5" ] || fail "a refused prepare left $R/bad.h5"
expect_error "distill curve measures top-1 agreement" curve.log curve "${S[@]}" --sizes 50,100 --out "$R/curve"
echo "regression ok"
