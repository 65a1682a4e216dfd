#!/usr/bin/env bash
# Training throughput of distill against PyTorch's DistributedDataParallel on this machine, side by
# side in one run, plus distill's precompute, allreduce and store benchmarks. Bench config: BERT
# student hidden 256, 4 layers, 4 heads, intermediate 1024, vocabulary 30,522, sequence 128,
# batch 16 per rank, soft-target loss over 2 labels, 1 thread per rank. Figures go to OUT_DIR.
#   ROUNDS=2 (alternating distill / PyTorch runs; the best of each is compared), STEPS=20.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
DISTILL="${BUILD_DIR:-$ROOT/.build}/distill"
OUT_DIR=${OUT_DIR:-.runs/bench}
ROUNDS=${ROUNDS:-2}
STEPS=${STEPS:-20}
PY=${PY:-/usr/bin/python3}
mkdir -p "$OUT_DIR"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
T=(--steps "$STEPS" --warmup 3 --threads 1 --work-dir "$OUT_DIR/work")
quiet() { grep -v "^\[" || true; }
for r in $(seq 1 "$ROUNDS"); do
  echo "== round $r: distill, 2 ranks x 1 thread"
  mpirun -np 2 --oversubscribe --bind-to core "$DISTILL" bench train "${T[@]}" --json "$OUT_DIR/distill_np2_r$r.json" 2>&1 | quiet
  echo "== round $r: PyTorch DistributedDataParallel (gloo), 2 ranks x 1 thread"
  mpirun -np 2 --oversubscribe --bind-to core -x OMP_NUM_THREADS=1 -x DIST_INIT=tcp://127.0.0.1:$((29550 + r)) \
    $PY launch/bench_pytorch.py --steps "$STEPS" --warmup 3 --threads 1 --json "$OUT_DIR/pytorch_np2_r$r.json" 2>&1 |
    grep -E "^pytorch|Error" || true
  echo "== round $r: the same PyTorch DDP with large blocks kept in the heap (as distill keeps them)"
  mpirun -np 2 --oversubscribe --bind-to core -x OMP_NUM_THREADS=1 -x DIST_INIT=tcp://127.0.0.1:$((29560 + r)) \
    -x MALLOC_MMAP_THRESHOLD_=1073741824 -x MALLOC_TRIM_THRESHOLD_=1073741824 \
    $PY launch/bench_pytorch.py --steps "$STEPS" --warmup 3 --threads 1 --json "$OUT_DIR/pytorchheap_np2_r$r.json" 2>&1 |
    grep -E "^pytorch|Error" || true
  echo "== round $r: distill, 1 rank x 1 thread"
  taskset -c 0 "$DISTILL" bench train "${T[@]}" --json "$OUT_DIR/distill_np1_r$r.json" 2>&1 | quiet
done
echo "== precompute (2 teacher ranks), allreduce (2 ranks), store"
mpirun -np 2 --oversubscribe "$DISTILL" bench precompute --threads 1 --examples 1024 --work-dir "$OUT_DIR/work" \
  --json "$OUT_DIR/precompute.json" 2>&1 | quiet
mpirun -np 2 --oversubscribe "$DISTILL" bench allreduce --threads 1 --work-dir "$OUT_DIR/work" \
  --json "$OUT_DIR/allreduce.json" 2>&1 | quiet
"$DISTILL" bench store --work-dir "$OUT_DIR/work" --json "$OUT_DIR/store.json" 2>&1 | quiet
$PY - "$OUT_DIR" "$ROUNDS" <<'PY'
import json, sys
o, rounds = sys.argv[1], int(sys.argv[2])
best = lambda name: max((json.load(open(f"{o}/{name}_r{r}.json")) for r in range(1, rounds + 1)),
                        key=lambda j: j["samples_per_s"])
d2, d1, p2, ph = best("distill_np2"), best("distill_np1"), best("pytorch_np2"), best("pytorchheap_np2")
print("\n=== distill bench summary (best of %d rounds) ===" % rounds)
print(f"distill 2 ranks: {d2['samples_per_s']:.2f} samples/s, PyTorch DDP 2 ranks: {p2['samples_per_s']:.2f} "
      f"-> ratio {d2['samples_per_s'] / p2['samples_per_s']:.3f} (target >= 1.1)")
print(f"  against PyTorch DDP with MALLOC_MMAP_THRESHOLD_ set like distill's: {ph['samples_per_s']:.2f} samples/s "
      f"-> ratio {d2['samples_per_s'] / ph['samples_per_s']:.3f}")
print(f"distill 2 ranks / 1 rank: {d2['samples_per_s'] / d1['samples_per_s']:.3f} (target >= 1.85)")
print(f"model FLOP/s: {d2['model_flops_per_s'] / 1e9:.1f} GFLOP/s = {100 * d2['model_flops_share_of_peak']:.1f}% "
      f"of the measured matmul peak ({d2['matmul_peak_flops_per_s_per_rank'] / 1e9:.1f} GFLOP/s per rank; target >= 65%)")
print(f"exposed communication {100 * d2['exposed_comm_share']:.1f}% (target <= 10%), "
      f"input wait {100 * d2['input_wait_share']:.2f}% (target <= 2%) of step time")
PY
