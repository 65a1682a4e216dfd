#!/usr/bin/env bash
# Intermediate-layer distillation with an online teacher on 2 student ranks: hidden states (with
# embeddings, through learned 16 -> 32 projections) and attention maps; a kill and --resume gives
# the same per-step losses and bit-identical weights and projections. A map that does not fit
# is refused before any step.
source "$(dirname "$0")/common.sh"
A="$WORK/layers-straight" B="$WORK/layers-killed"
rm -rf "$A" "$B"
COMMON=("${STUDENT_SET[@]}" --set store.path= --set teacher.online=true --set distill.hidden_map=0:0,1:2
  --set distill.attention_map=last --set distill.hidden_loss=cosine --set train.max_steps=16
  --set train.checkpoint_every=8 --set train.keep_checkpoints=0)
run_np 2 train "${COMMON[@]}" --set train.out_dir="$A"
grep -q '"hidden":' "$A/metrics.jsonl" && grep -q '"attention":' "$A/metrics.jsonl" && grep -q '"soft_kl":' "$A/metrics.jsonl" ||
  fail "metrics lack the hidden, attention or soft_kl terms"
test -f "$A/checkpoints/step-00000016/projections.safetensors" || fail "no projections in the checkpoint"
set +e
DISTILL_FAULT_KILL_AT_STEP=8 run_np 2 train "${COMMON[@]}" --set train.out_dir="$B" > "$WORK/layers-kill.log" 2>&1
rc=$?
set -e
[ "$rc" -ne 0 ] || fail "the killed run exited 0"
run_np 2 train "${COMMON[@]}" --set train.out_dir="$B" --resume
diff <(strip "$A/metrics.jsonl") <(strip "$B/metrics.jsonl") || fail "per-step losses differ after resume"
for f in model projections optimizer; do
  cmp "$A/checkpoints/step-00000016/$f.safetensors" "$B/checkpoints/step-00000016/$f.safetensors" || fail "$f differs"
done
set +e
run_np 2 train "${COMMON[@]}" --set distill.hidden_map=uniform --set student.layers=3 --set train.out_dir="$WORK/layers-bad" \
  > "$WORK/layers-bad.log" 2>&1
rc=$?
set -e
[ "$rc" -ne 0 ] || fail "an impossible map was accepted"
grep -q "distill.hidden_map = uniform needs the teacher's 2 layers to be a multiple of the student's 3" "$WORK/layers-bad.log" ||
  { cat "$WORK/layers-bad.log"; fail "no clear map error"; }
echo "layers ok"

# DistilBERT-style initialisation: embeddings and teacher layer 2 copied into a 1-layer student
# of the teacher's width; with lr 1e-30 (updates below float32 resolution) the student's checkpoint must hold exactly the copied
# tensors. A width mismatch is refused.
run_np 2 train "${COMMON[@]}" --set distill.hidden_map= --set distill.attention_map= --set teacher.online=false \
  --set store.path="$WORK/store" --set student.init="$WORK/teacher/checkpoints" --set student.init_layers=2 \
  --set student.hidden=32 --set student.intermediate=64 --set train.out_dir="$WORK/layers-init" --set train.max_steps=2 --set train.lr=1e-30 \
  > "$WORK/layers-init.log" 2>&1 || { cat "$WORK/layers-init.log"; fail "init_layers run failed"; }
grep -q "student starts from $WORK/teacher/checkpoints: embeddings and layers 2" "$WORK/layers-init.log" || fail "no init log"
"$PY" - "$WORK/teacher/checkpoints" "$WORK/layers-init/checkpoints" <<'PY'
import json, struct, sys, numpy as np
def load(root):
    step = open(f"{root}/latest").read().strip()
    raw = open(f"{root}/{step}/model.safetensors", "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    h = json.loads(raw[8:8 + n])
    return {k: np.frombuffer(raw[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]], np.float32)
            for k, v in h.items() if k != "__metadata__"}
t, s = load(sys.argv[1]), load(sys.argv[2])
copied = 0
for k, v in s.items():
    if k.startswith("bert.embeddings."):
        src = k
    elif k.startswith("bert.encoder.layer.0."):
        src = k.replace("layer.0.", "layer.1.")
    else:
        continue
    assert np.array_equal(v, t[src]), f"{k} is not a copy of the teacher's {src}"
    copied += 1
assert copied == 5 + 16, copied
print(f"init_layers copied {copied} tensors exactly")
PY
set +e
run_np 2 train "${COMMON[@]}" --set student.init="$WORK/teacher/checkpoints" --set student.init_layers=2 \
  --set train.out_dir="$WORK/layers-init-bad" > "$WORK/layers-init-bad.log" 2>&1
rc=$?
set -e
[ "$rc" -ne 0 ] || fail "init_layers accepted mismatched widths"
grep -q "the widths must match" "$WORK/layers-init-bad.log" || { cat "$WORK/layers-init-bad.log"; fail "no width error"; }
echo "init_layers ok"

# Intermediate targets in the store: only the mapped teacher layers, float16, one chunk per
# example; the estimate is printed and store.max_bytes is enforced; a student trained from the
# store sees the same layer losses as with the online teacher (up to float16 rounding).
S="$WORK/store-layers"
rm -rf "$S"
STORE_SET=("${STUDENT_SET[@]}" --set store.path="$S" --set distill.hidden_map=0:0,1:2 --set distill.attention_map=last
  --set distill.hidden_loss=cosine)
set +e
run_np 2 precompute "${STORE_SET[@]}" --set store.max_bytes=100000 > "$WORK/layers-max.log" 2>&1
rc=$?
set -e
[ "$rc" -ne 0 ] || fail "a store over store.max_bytes was started"
grep -q "more than store.max_bytes = 100000; raise store.max_bytes, map fewer layers, or use teacher.online: true" \
  "$WORK/layers-max.log" || { cat "$WORK/layers-max.log"; fail "no max_bytes error"; }
[ ! -e "$S/manifest.json" ] || fail "a refused precompute left a manifest"
run_np 2 precompute "${STORE_SET[@]}" > "$WORK/layers-store.log" 2>&1 || { cat "$WORK/layers-store.log"; fail "precompute with layers"; }
# 2 labels x 2 + 8 (id) + hidden 0 and 2 (16 x 32 x 2 each) + attention 2 (2 x 16 x 16 x 2)
grep -q "store estimate: 3084 bytes per example (2 hidden layers, 1 attention layers, 0 query/key/value layers)" \
  "$WORK/layers-store.log" ||
  { cat "$WORK/layers-store.log"; fail "no or wrong estimate"; }
"$PY" - "$S" "$WORK/data.h5" <<'PY'
import glob, json, sys, h5py, numpy as np
store, data = sys.argv[1], sys.argv[2]
m = json.load(open(f"{store}/manifest.json"))
assert m["layout"]["hidden_layers"] == [0, 2] and m["layout"]["attention_layers"] == [2], m["layout"]
n = 0
for path in sorted(glob.glob(f"{store}/shard-*.h5")):
    with h5py.File(path) as f:
        c = f["example_id"].shape[0]
        assert sorted(f["hidden"].keys()) == ["0", "2"] and list(f["attention"].keys()) == ["2"]
        assert f["hidden/2"].dtype == np.float16 and f["hidden/2"].shape == (c, 16, 32), f["hidden/2"].shape
        assert f["hidden/2"].chunks == (1, 16, 32), f["hidden/2"].chunks
        a = f["attention/2"][:].astype(np.float64)
        assert a.shape == (c, 2, 16, 16)
        assert np.allclose(a.sum(-1), 1.0, atol=1e-2), "attention rows must be distributions"
        n += c
assert n == m["num_examples"]
print(f"store holds layers for {n} examples")
PY
run_np 2 train "${STORE_SET[@]}" --set train.max_steps=4 --set train.out_dir="$WORK/layers-from-store" \
  > "$WORK/layers-from-store.log" 2>&1 || { cat "$WORK/layers-from-store.log"; fail "training from stored layers"; }
"$PY" - "$A/metrics.jsonl" "$WORK/layers-from-store/metrics.jsonl" <<'PY'
import json, sys
online, stored = (json.loads(open(p).readline()) for p in sys.argv[1:])
for k in ("hidden", "attention", "soft_kl", "hard_ce"):
    assert abs(online[k] - stored[k]) <= 2e-3 * max(1.0, abs(online[k])), (k, online[k], stored[k])
print("step 1 from the store:", {k: round(stored[k], 5) for k in ("hidden", "attention")}, "online:",
      {k: round(online[k], 5) for k in ("hidden", "attention")})
PY
set +e
run_np 2 train "${STORE_SET[@]}" --set distill.hidden_map=0:0,1:1 --set train.out_dir="$WORK/layers-store-bad" \
  > "$WORK/layers-store-bad.log" 2>&1
rc=$?
set -e
[ "$rc" -ne 0 ] || fail "a map needing unstored layers was accepted"
grep -q "needs teacher hidden state 1, which the store does not hold" "$WORK/layers-store-bad.log" ||
  { cat "$WORK/layers-store-bad.log"; fail "no unstored-layer error"; }
# MiniLMv2 relations from the store: precompute keeps the mapped layer's queries, keys and values
# (not its attention maps), and a student trained from them sees the online teacher's relation
# loss (up to float16 rounding).
Q="$WORK/store-relation"
rm -rf "$Q"
REL=(--set distill.attention_map=last --set distill.attention_loss=relation --set train.max_steps=2)
run_np 2 precompute "${STUDENT_SET[@]}" "${REL[@]}" --set store.path="$Q" > "$WORK/relation-store.log" 2>&1 ||
  { cat "$WORK/relation-store.log"; fail "precompute for the relation loss"; }
# 2 labels x 2 + 8 (id) + query, key and value of layer 2 (16 x 32 x 2 each)
grep -q "store estimate: 3084 bytes per example (0 hidden layers, 0 attention layers, 1 query/key/value layers)" \
  "$WORK/relation-store.log" || { cat "$WORK/relation-store.log"; fail "no or wrong relation estimate"; }
run_np 2 train "${STUDENT_SET[@]}" "${REL[@]}" --set store.path= --set teacher.online=true \
  --set train.out_dir="$WORK/relation-online" > "$WORK/relation-online.log" 2>&1 ||
  { cat "$WORK/relation-online.log"; fail "relation loss, online teacher"; }
run_np 2 train "${STUDENT_SET[@]}" "${REL[@]}" --set store.path="$Q" --set train.out_dir="$WORK/relation-stored" \
  > "$WORK/relation-stored.log" 2>&1 || { cat "$WORK/relation-stored.log"; fail "relation loss from the store"; }
"$PY" - "$Q" "$WORK/relation-online/metrics.jsonl" "$WORK/relation-stored/metrics.jsonl" <<'PY'
import glob, json, sys, h5py, numpy as np
store = sys.argv[1]
m = json.load(open(f"{store}/manifest.json"))
assert m["layout"]["qkv_layers"] == [2] and m["layout"]["attention_layers"] == [], m["layout"]
for path in sorted(glob.glob(f"{store}/shard-*.h5")):
    with h5py.File(path) as f:
        c = f["example_id"].shape[0]
        assert "attention" not in f and "hidden" not in f, list(f.keys())
        for part in ("query", "key", "value"):
            d = f[f"{part}/2"]
            assert d.dtype == np.float16 and d.shape == (c, 16, 32) and d.chunks == (1, 16, 32), (part, d)
online, stored = ([json.loads(l) for l in open(p) if '"loss"' in l] for p in sys.argv[2:])
for a, b in zip(online, stored):
    for k in ("attention", "soft_kl", "hard_ce"):
        assert abs(a[k] - b[k]) <= 2e-3 * max(1.0, abs(a[k])), (a["step"], k, a[k], b[k])
print("relation loss from stored Q/K/V:", [round(r["attention"], 5) for r in stored], "online:",
      [round(r["attention"], 5) for r in online])
PY
# A store of attention maps cannot serve the relation loss.
set +e
run_np 2 train "${STORE_SET[@]}" --set distill.attention_loss=relation --set train.out_dir="$WORK/relation-bad" \
  > "$WORK/relation-bad.log" 2>&1
rc=$?
set -e
[ "$rc" -ne 0 ] || fail "a store without Q/K/V served the relation loss"
grep -q "needs teacher queries, keys and values (attention_loss: relation) of layer 2, which the store does not hold" \
  "$WORK/relation-bad.log" || { cat "$WORK/relation-bad.log"; fail "no missing-Q/K/V error"; }
echo "stored layers ok"
