#!/usr/bin/env bash
# Transfer sets end to end:
# - distill curve on a deep linear student of a linear teacher in d = 40 (Phuong & Lampert,
#   Result 1): for n < d the transfer risk equals, within 0.02, the risk of the teacher projected
#   onto the span of the n transfer points (computed here with NumPy); for n >= d it is near 0;
#   2 groups of 1 rank give the same numbers as 1 rank running the sizes one after another;
# - unlabeled data (prepare --unlabeled): alpha > 0 is refused, alpha = 0 trains, eval reports
#   agreement without accuracy;
# - a mix of labeled and unlabeled rows: a killed and resumed run repeats the straight run exactly;
# - augment: feature copies reproducible from the seed; text copies replace the stated share of
#   word pieces, with random pieces and with a masked LM's top-k.
source "$(dirname "$0")/common.sh"
T="$WORK/transfer"
rm -rf "$T" && mkdir -p "$T"

"$PY" - "$T" <<'PY'
import sys, numpy as np
T = sys.argv[1]
rng = np.random.default_rng(11)
d = 40
w = rng.normal(size=d)
w *= 2.0 / np.linalg.norm(w)  # teacher logits of standard deviation 2 on N(0, I) inputs
def write(path, n, labels=True):
    x = rng.normal(size=(n, d))
    y = (rng.random(n) < 1 / (1 + np.exp(-x @ w))).astype(int)
    with open(path, "w") as f:
        for row, label in zip(x, y):
            f.write(",".join(f"{v:.6f}" for v in row) + (f",{label}" if labels else "") + "\n")
write(f"{T}/teacher.csv", 4000)
write(f"{T}/transfer.csv", 1200)
write(f"{T}/unlabeled.csv", 600, labels=False)
PY
run_np 1 prepare --features -i "$T/teacher.csv" -o "$T/teacher.h5" --dev-fraction 0 --test-fraction 0.1 > "$T/p1.log" 2>&1 ||
  { cat "$T/p1.log"; fail "prepare teacher set"; }
run_np 1 prepare --features -i "$T/transfer.csv" -o "$T/transfer.h5" --dev-fraction 0 --test-fraction 0.8 > "$T/p2.log" 2>&1 ||
  { cat "$T/p2.log"; fail "prepare transfer set"; }
grep -q "train 240, dev 0, test 960" "$T/p2.log" || { cat "$T/p2.log"; fail "transfer split sizes"; }

# The linear teacher: one linear layer, full-batch SGD on the labels.
run_np 1 train --set data.path="$T/teacher.h5" --set student.kind=deep_linear --set student.depth=1 \
  --set train.optimizer=sgd --set train.lr=0.5 --set train.batch_size=100000 --set train.epochs=200 \
  --set train.schedule=constant --set train.max_grad_norm=0 --set train.log_every=50 --set data.eval_split=test \
  --set train.out_dir="$T/teacher" --set train.precision=fp32 > "$T/teacher.log" 2>&1 || { cat "$T/teacher.log"; fail "teacher"; }

# --- the transfer-risk curve -----------------------------------------------------------------
S=(--set data.path="$T/transfer.h5" --set teacher.path="$T/teacher/checkpoints" --set store.path="$T/store"
  --set store.shard_size=64 --set student.kind=deep_linear --set student.depth=2 --set student.width=40
  --set student.init_scale=0.01 --set distill.alpha=0 --set distill.beta=1 --set distill.temperature=1
  --set train.optimizer=sgd --set train.momentum=0.9 --set train.lr=0.2 --set train.batch_size=100000 --set train.threads=1
  --set train.epochs=20000 --set train.schedule=constant --set train.max_grad_norm=0 --set train.log_every=5000
  --set train.checkpoint_every=0 --set train.keep_checkpoints=1 --set train.precision=fp32)
run_np 2 precompute "${S[@]}" > "$T/precompute.log" 2>&1 || { cat "$T/precompute.log"; fail "precompute"; }
SIZES=5,10,20,40,80,160
run_np 2 curve "${S[@]}" --sizes $SIZES --groups 2 --split test --out "$T/curve2" > "$T/curve2.log" 2>&1 ||
  { cat "$T/curve2.log"; fail "curve on 2 groups"; }
cat "$T/curve2.log" | grep -v "^\[" || true
run_np 1 curve "${S[@]}" --sizes $SIZES --split test --out "$T/curve1" > "$T/curve1.log" 2>&1 ||
  { cat "$T/curve1.log"; fail "curve on 1 rank"; }
"$PY" - "$T" <<'PY'
import json, struct, sys, h5py, numpy as np
import xml.etree.ElementTree as ET
T = sys.argv[1]
from safetensors_np import tensors
latest = open(f"{T}/teacher/checkpoints/latest").read().strip()
W = tensors(f"{T}/teacher/checkpoints/{latest}/model.safetensors")["layers.0.weight"]
w = W[1] - W[0]
with h5py.File(f"{T}/transfer.h5") as f:
    x, ids = f["train/features"][:].astype(np.float64), f["train/example_id"][:]
    xt = f["test/features"][:].astype(np.float64)
row = {int(i): r for r, i in enumerate(ids)}
c1, c2 = json.load(open(f"{T}/curve1/curve.json")), json.load(open(f"{T}/curve2/curve.json"))
assert c2["groups"] == 2 and c1["groups"] == 1, (c1["groups"], c2["groups"])
for p1, p2 in zip(c1["points"], c2["points"]):
    assert p1 == p2, ("1 rank and 2 groups differ", p1, p2)
d = x.shape[1]
prev = None
for p in c2["points"]:
    n = p["n"]
    r = json.load(open(f"{T}/curve2/n-{n}/result.json"))
    sub = [row[i] for i in r["example_ids"]]
    assert len(set(sub)) == n
    if prev is not None:
        assert set(prev) <= set(sub), "subsets are not nested"
    prev = sub
    q, _ = np.linalg.qr(x[sub].T)  # an orthonormal basis of the span of the n points
    wp = q @ (q.T @ w)
    projected = np.mean(np.sign(xt @ wp) != np.sign(xt @ w))
    risk = p["sets"][0]["transfer_risk"]
    print(f"n = {n:4d}: transfer risk {risk:.4f}, projected teacher {projected:.4f}")
    if n < d:
        assert abs(risk - projected) <= 0.02, (n, risk, projected)
    else:
        assert risk <= 0.02, (n, risk)
fit = c2["fits"][0]
assert fit["ok"] and fit["points"] == 3 and c2["fit_below"] == 40, fit
assert fit["kappa_low"] <= fit["kappa"] <= fit["kappa_high"], fit
svg = ET.parse(f"{T}/curve2/curve.svg").getroot()
circles = [e for e in svg.iter() if e.tag.endswith("circle") and "point" in e.get("class", "")]
assert len(circles) == 6, len(circles)
print("curve ok: kappa", round(fit["kappa"], 3), [round(fit["kappa_low"], 3), round(fit["kappa_high"], 3)])
PY
grep -q "fit .* : test: risk ~" "$T/curve2.log" || fail "no fit line in the table"
# A finished curve is read back, not retrained.
run_np 1 curve "${S[@]}" --sizes $SIZES --split test --out "$T/curve1" > "$T/curve1b.log" 2>&1 || { cat "$T/curve1b.log"; fail "curve again"; }
test "$(grep -c "already done" "$T/curve1b.log")" -eq 6 || { cat "$T/curve1b.log"; fail "a finished size was retrained"; }

# --- unlabeled rows -------------------------------------------------------------------------
run_np 1 prepare --features --unlabeled --label-names 0,1 -i "$T/unlabeled.csv" -o "$T/unlabeled.h5" \
  --dev-fraction 0 --test-fraction 0.2 > "$T/p3.log" 2>&1 || { cat "$T/p3.log"; fail "prepare --unlabeled"; }
grep -q "(rows unlabeled)" "$T/p3.log" || { cat "$T/p3.log"; fail "no unlabeled note"; }
"$DISTILL" inspect "$T/unlabeled.h5" --json | grep -q '"labeled": 0' || fail "inspect does not show 0 labeled rows"
if run_np 1 prepare --features --unlabeled -i "$T/unlabeled.csv" -o "$T/x.h5" 2> "$T/p4.log"; then fail "no class names accepted"; fi
grep -q "name the classes the teacher will label it with" "$T/p4.log" || { cat "$T/p4.log"; fail "unclear error"; }
U=(--set data.path="$T/unlabeled.h5" --set teacher.path="$T/teacher/checkpoints" --set store.path="$T/store-u"
  --set student.kind=mlp --set student.width=16 --set train.batch_size=32 --set train.max_steps=10
  --set train.log_every=5 --set train.precision=fp32 --set train.out_dir="$T/student-u")
run_np 1 precompute "${U[@]}" > "$T/pu.log" 2>&1 || { cat "$T/pu.log"; fail "precompute unlabeled"; }
if run_np 1 train "${U[@]}" --set distill.alpha=0.5 2> "$T/tu.log"; then fail "alpha > 0 on unlabeled rows accepted"; fi
grep -q "has no labels (an unlabeled transfer set) but distill.alpha = 0.5" "$T/tu.log" || { cat "$T/tu.log"; fail "unclear alpha error"; }
run_np 1 train "${U[@]}" --set distill.alpha=0 > "$T/tu0.log" 2>&1 || { cat "$T/tu0.log"; fail "alpha 0 on unlabeled rows"; }
run_np 1 eval "${U[@]}" --set distill.alpha=0 --data "$T/unlabeled.h5" --data "$T/transfer.h5" --split test --json > "$T/eu.json" 2> "$T/eu.log" ||
  { cat "$T/eu.log"; fail "eval of unlabeled rows"; }
"$PY" - "$T/eu.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
u, l = j["sets"]
assert u["labeled"] == 0 and u["accuracy"] is None and u["teacher_accuracy"] is None and 0 <= u["agreement"] <= 1, u
assert l["labeled"] == l["examples"] == 960 and l["accuracy"] is not None, l
print("unlabeled eval ok:", u["agreement"], l["accuracy"])
PY

# --- a mixed transfer set, killed and resumed ------------------------------------------------
run_np 1 mix --source "$T/transfer.h5:train:1" --source "$T/unlabeled.h5:train:0.5" -o "$T/mix.h5" > "$T/mix.log" 2>&1 ||
  { cat "$T/mix.log"; fail "mix"; }
grep -q "train 480 rows (240 labeled), dev 0, test 960" "$T/mix.log" || { cat "$T/mix.log"; fail "mix sizes"; }
run_np 1 mix --source "$T/transfer.h5" --source "$WORK/data.h5" -o "$T/bad-mix.h5" 2> "$T/mixbad.log" && fail "mixed text into features"
grep -q "cannot mix .*data.h5:train into .*transfer.h5:train: task features vs sequence" "$T/mixbad.log" ||
  { cat "$T/mixbad.log"; fail "unclear mix error"; }
test ! -e "$T/bad-mix.h5" || fail "a refused mix left a file"
M=(--set data.path="$T/mix.h5" --set teacher.path="$T/teacher/checkpoints" --set store.path="$T/store-mix"
  --set student.kind=mlp --set student.width=16 --set distill.alpha=0.5 --set train.batch_size=16 --set train.max_steps=24
  --set train.checkpoint_every=12 --set train.keep_checkpoints=0 --set train.log_every=1 --set train.precision=fp32)
run_np 2 precompute "${M[@]}" > "$T/pm.log" 2>&1 || { cat "$T/pm.log"; fail "precompute mix"; }
run_np 2 train "${M[@]}" --set train.out_dir="$T/mix-a" > "$T/ma.log" 2>&1 || { cat "$T/ma.log"; fail "mix straight"; }
set +e
DISTILL_FAULT_KILL_AT_STEP=12 run_np 2 train "${M[@]}" --set train.out_dir="$T/mix-b" > "$T/mb.log" 2>&1
rc=$?
set -e
[ "$rc" -ne 0 ] || fail "the killed mix run exited 0"
run_np 2 train "${M[@]}" --set train.out_dir="$T/mix-b" --resume > "$T/mb2.log" 2>&1 || { cat "$T/mb2.log"; fail "mix resume"; }
diff <(strip "$T/mix-a/metrics.jsonl") <(strip "$T/mix-b/metrics.jsonl") || fail "mix: losses differ after resume"
cmp "$T/mix-a/checkpoints/step-00000024/model.safetensors" "$T/mix-b/checkpoints/step-00000024/model.safetensors" ||
  fail "mix: weights differ after resume"
echo "mix resume ok"

# --- augment --------------------------------------------------------------------------------
for mode in "--noise 0.1" "--mixup 0.4"; do
  run_np 1 augment -i "$T/transfer.h5" -o "$T/aug1.h5" --copies 3 --seed 5 $mode > "$T/a1.log" 2>&1 || { cat "$T/a1.log"; fail "augment $mode"; }
  run_np 1 augment -i "$T/transfer.h5" -o "$T/aug2.h5" --copies 3 --seed 5 $mode > "$T/a2.log" 2>&1 || { cat "$T/a2.log"; fail "augment $mode"; }
  h1=$("$DISTILL" inspect "$T/aug1.h5" --json | grep content_hash) && h2=$("$DISTILL" inspect "$T/aug2.h5" --json | grep content_hash)
  [ "$h1" = "$h2" ] || fail "augment $mode is not reproducible"
  "$PY" - "$T" "$mode" <<'PY'
import json, sys, h5py, numpy as np
T, mode = sys.argv[1], sys.argv[2]
with h5py.File(f"{T}/transfer.h5") as f:
    x, ids = f["train/features"][:], f["train/example_id"][:]
with h5py.File(f"{T}/aug1.h5") as f:
    a, aid, y = f["train/features"][:], f["train/example_id"][:], f["train/labels"][:]
    meta = f.attrs["augment"]
    meta = json.loads(meta.decode() if isinstance(meta, bytes) else meta)
assert len(a) == 3 * len(x) and (y == -100).all() and meta["copies"] == 3, (len(a), meta)
src = {int(i): r for r, i in enumerate(ids)}
gap = [np.abs(a[k] - x[src[int(i) // 3]]).mean() for k, i in enumerate(aid)]
assert 0 < np.mean(gap) < 1.0, np.mean(gap)
print("augment", mode, "ok: mean |copy - source|", round(float(np.mean(gap)), 4))
PY
done

# Text: a small labeled corpus with the real vocabulary; random pieces, then a tiny masked LM.
VOCAB="${DISTILL_VOCAB:?vocab.txt (launch/fetch-vocab.sh)}"
"$PY" - "$T/corpus.tsv" <<'PY'
import random, sys
random.seed(5)
good = ["a warm and moving film", "funny , sharp and kind", "the best acting of the year", "a delightful surprise"]
bad = ["a dull , lifeless mess", "the plot goes nowhere", "painfully slow and boring", "an unfunny waste of time"]
with open(sys.argv[1], "w") as f:
    f.write("label\ttext\n")
    for i in range(300):
        y = random.randint(0, 1)
        f.write(f"{y}\t{random.choice(good if y else bad)} {random.choice(good + bad)}\n")
PY
run_np 1 prepare -i "$T/corpus.tsv" --vocab "$VOCAB" --max-length 24 -o "$T/text.h5" > "$T/pt.log" 2>&1 || { cat "$T/pt.log"; fail "prepare text"; }
run_np 1 augment -i "$T/text.h5" -o "$T/text-aug.h5" --copies 2 --share 0.3 --seed 3 --vocab "$VOCAB" > "$T/at.log" 2>&1 ||
  { cat "$T/at.log"; fail "augment text"; }
run_np 1 prepare --mlm -i "$T/corpus.tsv" --text-column text --vocab "$VOCAB" --max-length 24 -o "$T/mlm.h5" > "$T/pm2.log" 2>&1 ||
  { cat "$T/pm2.log"; fail "prepare --mlm"; }
run_np 1 train --set data.path="$T/mlm.h5" --set student.kind=bert_mlm --set student.vocab_size=30522 \
  --set student.max_positions=24 --set student.hidden=16 --set student.layers=1 --set student.heads=2 \
  --set student.intermediate=32 --set train.max_steps=30 --set train.lr=0.01 --set train.batch_size=32 \
  --set train.log_every=10 --set train.out_dir="$T/mlm" > "$T/tm.log" 2>&1 || { cat "$T/tm.log"; fail "tiny masked LM"; }
run_np 1 augment -i "$T/text.h5" -o "$T/text-mlm.h5" --copies 2 --share 0.3 --seed 3 --vocab "$VOCAB" \
  --mlm "$T/mlm/checkpoints" --top-k 20 > "$T/am.log" 2>&1 || { cat "$T/am.log"; fail "augment with a masked LM"; }
grep -q "from the masked LM" "$T/am.log" || { cat "$T/am.log"; fail "no masked-LM count"; }
"$PY" - "$T" "$VOCAB" <<'PY'
import json, sys, h5py, numpy as np
T, vocab = sys.argv[1], [l.rstrip("\n") for l in open(sys.argv[2], encoding="utf-8")]
special = np.array([t.startswith("[") and t.endswith("]") for t in vocab])
cont = np.array([t.startswith("##") for t in vocab])
with h5py.File(f"{T}/text.h5") as f:
    x, m, ids = f["train/input_ids"][:], f["train/attention_mask"][:], f["train/example_id"][:]
src = {int(i): r for r, i in enumerate(ids)}
for name in ("text-aug", "text-mlm"):
    with h5py.File(f"{T}/{name}.h5") as f:
        a, aid = f["train/input_ids"][:], f["train/example_id"][:]
        meta = f.attrs["augment"]
        meta = json.loads(meta.decode() if isinstance(meta, bytes) else meta)
    assert len(a) == 2 * len(x)
    changed = total = 0
    for k, i in enumerate(aid):
        r = src[int(i) // 2]
        real = (m[r] == 1) & ~special[x[r]]
        diff = a[k] != x[r]
        assert not (diff & ~real).any(), "a special token or padding changed"
        want = max(1, int(np.floor(0.3 * real.sum() + 0.5)))
        assert diff.sum() == want, (name, k, int(diff.sum()), want)
        assert (cont[a[k][diff]] == cont[x[r][diff]]).all(), "a piece changed kind"
        changed += int(diff.sum()); total += int(real.sum())
    assert meta["replaced"] == changed and meta["replaceable"] == total, meta
    print(f"{name}: {changed} of {total} pieces replaced ({changed / total:.3f}), from the model: {meta.get('from_model')}")
    if name == "text-mlm":
        assert meta["from_model"] > 0, meta
PY
echo "transfer ok"
