#!/usr/bin/env bash
# Masked-LM distillation end to end with the real bert-base-uncased vocabulary: prepare --mlm,
# a small bert_mlm teacher, a top-k store (checked with h5py: uint16 indices, descending values,
# offsets matching the data set's masks, lse above the top value), a student trained from it on
# 2 ranks, eval of token agreement, and a refused temperature mismatch.
source "$(dirname "$0")/common.sh"
VOCAB="${DISTILL_VOCAB:?vocab.txt (launch/fetch-vocab.sh)}"
M="$WORK/mlm"
rm -rf "$M"
mkdir -p "$M"
"$PY" - "$M/corpus.tsv" <<'PY'
import random, sys
random.seed(3)
subjects = ["the cat", "a small dog", "my brother", "the old teacher", "every student", "the river", "a quiet city"]
verbs = ["watches", "follows", "paints", "remembers", "crosses", "finds", "describes"]
objects = ["the green hill", "a long letter", "the morning train", "an empty house", "the bright moon", "a red apple"]
tails = ["before dinner", "in the rain", "with great care", "every morning", "after the storm", "near the bridge"]
with open(sys.argv[1], "w") as f:
    f.write("text\n")
    for _ in range(600):
        f.write(f"{random.choice(subjects)} {random.choice(verbs)} {random.choice(objects)} {random.choice(tails)}\n")
PY
run_np 1 prepare --mlm -i "$M/corpus.tsv" --vocab "$VOCAB" --max-length 16 -o "$M/data.h5" > "$M/prepare.log" 2>&1 ||
  { cat "$M/prepare.log"; fail "prepare --mlm"; }
grep -q "masked LM: .* tokens masked at p = 0.15" "$M/prepare.log" || { cat "$M/prepare.log"; fail "no masking summary"; }
ARCH=(--set data.path="$M/data.h5" --set student.kind=bert_mlm --set student.vocab_size=30522 --set student.max_positions=16
  --set train.log_every=5 --set train.batch_size=32)
run_np 2 train "${ARCH[@]}" --set student.hidden=32 --set student.layers=2 --set student.heads=2 --set student.intermediate=64 \
  --set train.max_steps=40 --set train.lr=0.005 --set train.out_dir="$M/teacher" > "$M/teacher.log" 2>&1 ||
  { cat "$M/teacher.log"; fail "teacher training"; }
S=("${ARCH[@]}" --set teacher.path="$M/teacher/checkpoints" --set store.path="$M/store" --set store.shard_size=128
  --set store.topk=8 --set distill.temperature=2 --set student.hidden=16 --set student.layers=1 --set student.heads=2
  --set student.intermediate=32 --set train.max_steps=12 --set train.lr=0.005 --set train.log_every=1 --set train.out_dir="$M/student")
run_np 2 precompute "${S[@]}" > "$M/precompute.log" 2>&1 || { cat "$M/precompute.log"; fail "precompute"; }
grep -q "masked LM: top-8 teacher logits per masked token (40 bytes each, uint16 indices)" "$M/precompute.log" ||
  { cat "$M/precompute.log"; fail "no top-k summary"; }
"$PY" - "$M" <<'PY'
import glob, json, sys, h5py, numpy as np
M = sys.argv[1]
with h5py.File(f"{M}/data.h5") as f:
    assert f.attrs["task"] == "mlm"
    labels = f["train/mlm_labels"][:]
per_example = (labels != -100).sum(1)
meta = json.load(open(f"{M}/store/manifest.json"))
assert meta["targets"] == "mlm_topk" and meta["layout"]["topk"] == 8 and meta["layout"]["index_dtype"] == "uint16"
tokens, nbytes = 0, 0
for p in sorted(glob.glob(f"{M}/store/shard-*.h5")):
    with h5py.File(p) as f:
        b, e = f.attrs["example_begin"], f.attrs["example_end"]
        off = f["row_offsets"][:]
        assert np.array_equal(np.diff(off), per_example[b:e]), "row_offsets disagree with the data set's masks"
        v, i, lse = f["topk_values"][:].astype(np.float64), f["topk_indices"][:], f["lse"][:]
        assert i.dtype == np.uint16 and v.shape == (off[-1], 8) and i.max() < 30522
        assert np.all(np.diff(v, axis=1) <= 0), "top-k values must be descending"
        assert np.all(lse >= v[:, 0] / 2.0 - 1e-2), "lse must exceed the top logit / T"
        assert np.all(lse <= v[:, 0] / 2.0 + np.log(30522) + 1e-2)
        tokens += off[-1]
    nbytes += sum(s["bytes"] for s in meta["shards"] if s["file"] == p.split("/")[-1])
print(f"top-k store: {tokens} masked tokens, {nbytes / tokens:.1f} bytes per token on disk")
PY
run_np 2 train "${S[@]}" > "$M/student.log" 2>&1 || { cat "$M/student.log"; fail "student from the top-k store"; }
grep -q '"soft_kl":' "$M/student/metrics.jsonl" || fail "no soft_kl term in the metrics"
run_np 2 eval "${S[@]}" --json > "$M/eval.json" 2> "$M/eval.log" || { cat "$M/eval.log"; fail "eval"; }
"$PY" - "$M/eval.json" "$M/data.h5" <<'PY'
import json, sys, h5py
j = json.load(open(sys.argv[1]))
with h5py.File(sys.argv[2]) as f:
    masked = int((f["test/mlm_labels"][:] != -100).sum())
assert j["examples"] == masked, (j["examples"], masked)
assert 0 <= j["agreement"] <= 1 and j["kl_teacher_student"] > 0 and j["teacher_kind"] == "bert_mlm", j
print(f"eval on {masked} masked tokens: agreement {j['agreement']:.3f}, KL {j['kl_teacher_student']:.3f}")
PY
set +e
run_np 2 train "${S[@]}" --set distill.temperature=1 --set train.out_dir="$M/bad" > "$M/bad.log" 2>&1
rc=$?
set -e
[ "$rc" -ne 0 ] || fail "a temperature mismatch was accepted"
grep -q "was precomputed at temperature 2" "$M/bad.log" || { cat "$M/bad.log"; fail "no temperature error"; }
# The teacher as a Hugging Face BertForMaskedLM directory gives the same top-k targets.
run_np 1 export "${S[@]}" --checkpoint "$M/teacher/checkpoints" --out "$M/teacher-hf" > "$M/export.log" 2>&1 ||
  { cat "$M/export.log"; fail "export of the masked LM"; }
grep -q '"BertForMaskedLM"' "$M/teacher-hf/config.json" || fail "not exported as BertForMaskedLM"
run_np 2 precompute "${S[@]}" --set teacher.path="$M/teacher-hf" --set store.path="$M/store-hf" > "$M/precompute-hf.log" 2>&1 ||
  { cat "$M/precompute-hf.log"; fail "precompute from the HF directory"; }
"$PY" - "$M/store" "$M/store-hf" <<'PY'
import glob, sys, h5py, numpy as np
for a in sorted(glob.glob(f"{sys.argv[1]}/shard-*.h5")):
    b = a.replace(sys.argv[1], sys.argv[2])
    with h5py.File(a) as x, h5py.File(b) as y:
        for k in ("row_offsets", "topk_values", "topk_indices", "lse"):
            assert np.array_equal(x[k][:], y[k][:]), (a, k)
print("HF BertForMaskedLM teacher: identical top-k targets")
PY
echo "mlm ok"
