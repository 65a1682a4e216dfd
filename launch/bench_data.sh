#!/usr/bin/env bash
# Training from disk at growing data set sizes (Note [lazy rows]): for each size, 2 ranks x 1 thread
# train the bench student (`distill bench train`'s) from a synthetic dataset.h5 of SIZES train rows
# (sequence 128) and a float16 logits store, each size in its own processes. Prints peak RSS per
# rank, time to the first step and input wait, then the RSS growth from the first size to the last.
#   SIZES="100000 1000000 4000000"  STEPS=20  OUT_DIR=.runs/bench-data (the data sets stay there:
#   about 1.6 KB per row; a rerun reuses them).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
DISTILL="${BUILD_DIR:-$ROOT/.build}/distill"
OUT_DIR=${OUT_DIR:-.runs/bench-data}
SIZES=${SIZES:-"100000 1000000 4000000"}
STEPS=${STEPS:-20}
mkdir -p "$OUT_DIR"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-), $(nproc) cores"
for n in $SIZES; do
  echo "== $n train rows"
  mpirun -np 2 --oversubscribe --bind-to core "$DISTILL" bench data --examples "$n" --steps "$STEPS" --warmup 3 \
    --threads 1 --work-dir "$OUT_DIR/work" --json "$OUT_DIR/data_$n.json" 2>&1 | grep -v "^\[" || true
done
python3 - "$OUT_DIR" $SIZES <<'PY'
import json, sys
out, sizes = sys.argv[1], sys.argv[2:]
rows = [json.load(open(f"{out}/data_{n}.json")) for n in sizes]
print(f"{'examples':>10} {'file GB':>8} {'peak RSS MB':>12} {'step starts s':>14} {'step ends s':>12} {'samples/s':>10} {'input wait':>11}")
for r in rows:
    print(f"{r['examples']:>10} {r['file_bytes']/1e9:>8.2f} {r['peak_rss_bytes']/1e6:>12.1f} "
          f"{r['first_batch_seconds']:>14.2f} {r['first_step_seconds']:>12.2f} {r['samples_per_s']:>10.1f} "
          f"{100*r['input_wait_share']:>10.2f}%")
growth = (rows[-1]['peak_rss_bytes'] - rows[0]['peak_rss_bytes']) / 1e6
print(f"peak RSS growth {sizes[0]} -> {sizes[-1]} rows: {growth:+.1f} MB (target <= 100 MB); "
      f"first step at {sizes[-1]} starts at {rows[-1]['first_batch_seconds']:.2f} s (target <= 5 s), "
      f"ends at {rows[-1]['first_step_seconds']:.2f} s; "
      f"input wait {100*max(r['input_wait_share'] for r in rows):.2f}% at most (target <= 2%)")
PY
