#!/usr/bin/env bash
# `distill prepare` throughput on the WordNet glosses (117,659 texts, max length 64) with 1 and 2
# ranks, in alternating rounds, side by side with Hugging Face tokenizers' batch encode of the same
# texts on one thread (npm `tokenizers`, launch/bench_hf_tokenize.js; skipped when not installed:
# npm install --prefix /tmp/hf-tok tokenizers@0.23.2). distill's figure covers the whole prepare:
# reading, tokenizing, splitting and writing dataset.h5; HF's covers tokenizing only.
#   ROUNDS=2 OUT_DIR=.runs/bench-prepare HF_TOK=/tmp/hf-tok/node_modules
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
DISTILL="${BUILD_DIR:-$ROOT/.build}/distill"
OUT_DIR=${OUT_DIR:-.runs/bench-prepare}
ROUNDS=${ROUNDS:-2}
HF_TOK=${HF_TOK:-/tmp/hf-tok/node_modules}
VOCAB=datasets/vocab/bert-base-uncased/vocab.txt
TSV=datasets/wordnet/glosses.tsv
[ -f "$TSV" ] || "$ROOT/launch/fetch-data.sh"
[ -f "$VOCAB" ] || "$ROOT/launch/fetch-vocab.sh"
mkdir -p "$OUT_DIR"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-), $(nproc) cores"
rate() { grep -o "prepared .* texts/s" | grep -o "[0-9.]* texts/s" | cut -d' ' -f1; }
for r in $(seq 1 "$ROUNDS"); do
  for np in 1 2; do
    v=$(mpirun -np $np --oversubscribe --bind-to core "$DISTILL" prepare -i "$TSV" --vocab "$VOCAB" --max-length 64 \
      -o "$OUT_DIR/glosses-np$np.h5" 2>&1 | rate)
    echo "round $r: distill prepare, $np rank(s): $v texts/s"
    echo "$v" >> "$OUT_DIR/distill_np$np.txt"
  done
  if [ -d "$HF_TOK/tokenizers" ]; then
    j=$(RAYON_NUM_THREADS=1 NODE_PATH="$HF_TOK" taskset -c 0 node launch/bench_hf_tokenize.js "$VOCAB" "$TSV" text 64)
    echo "round $r: HF tokenizers encodeBatch, 1 thread: $j"
    echo "$j" >> "$OUT_DIR/hf.jsonl"
  fi
done
python3 - "$OUT_DIR" <<'PY'
import json, os, sys
out = sys.argv[1]
best = lambda f: max(float(x) for x in open(f"{out}/{f}").read().split())
d1, d2 = best("distill_np1.txt"), best("distill_np2.txt")
print(f"distill prepare: 1 rank {d1:.0f} texts/s, 2 ranks {d2:.0f} texts/s: {d2 / d1:.2f}x (target >= 1.8x)")
if os.path.exists(f"{out}/hf.jsonl"):
    hf = max(json.loads(l)["texts_per_s"] for l in open(f"{out}/hf.jsonl"))
    print(f"HF tokenizers, 1 thread: {hf:.0f} texts/s; distill per core {d1 / hf:.2f}x (1 rank), "
          f"{d2 / 2 / hf:.2f}x (2 ranks) (target >= 1.0x)")
PY
