#!/usr/bin/env bash
# Training throughput of distill against PyTorch's DistributedDataParallel on this machine, side by
# side in one run and at matched precision (fp32 against fp32, bf16 autocast against
# torch.autocast bf16), plus distill's precompute (fp32 and bf16 teacher), allreduce and store
# benchmarks. Bench config: BERT student hidden 256, 4 layers, 4 heads, intermediate 1024,
# vocabulary 30,522, sequence 128, batch 16 per rank, soft-target loss over 2 labels, 1 thread per
# rank. Every distill figure names the CPU and its bf16 units (AMX, AVX512-BF16 or neither).
#   ROUNDS=2 (alternating distill / PyTorch runs; the best of each is compared), STEPS=20,
#   PRECISIONS="fp32 bf16". Figures go to OUT_DIR.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
DISTILL="${BUILD_DIR:-$ROOT/.build}/distill"
OUT_DIR=${OUT_DIR:-.runs/bench}
ROUNDS=${ROUNDS:-2}
STEPS=${STEPS:-20}
PRECISIONS=${PRECISIONS:-fp32 bf16}
PY=${PY:-/usr/bin/python3}
mkdir -p "$OUT_DIR"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
T=(--steps "$STEPS" --warmup 3 --threads 1 --work-dir "$OUT_DIR/work")
quiet() { grep -v "^\[" || true; }
port=29550
pytorch() {  # precision, json name, extra mpirun arguments...
  local p=$1 name=$2
  shift 2
  port=$((port + 1))
  mpirun -np 2 --oversubscribe --bind-to core -x OMP_NUM_THREADS=1 -x DIST_INIT=tcp://127.0.0.1:$port "$@" \
    $PY launch/bench_pytorch.py --steps "$STEPS" --warmup 3 --threads 1 --precision "$p" \
    --json "$OUT_DIR/$name.json" 2>&1 | grep -E "^pytorch|Error" || true
}
grep -m1 "model name" /proc/cpuinfo || true
for r in $(seq 1 "$ROUNDS"); do
  for p in $PRECISIONS; do
    echo "== round $r, $p: distill, 2 ranks x 1 thread"
    mpirun -np 2 --oversubscribe --bind-to core "$DISTILL" bench train "${T[@]}" --precision "$p" \
      --json "$OUT_DIR/distill_${p}_np2_r$r.json" 2>&1 | quiet
    echo "== round $r, $p: PyTorch DistributedDataParallel (gloo), 2 ranks x 1 thread"
    pytorch "$p" "pytorch_${p}_np2_r$r"
    echo "== round $r, $p: the same PyTorch DDP with large blocks kept in the heap (as distill keeps them)"
    pytorch "$p" "pytorchheap_${p}_np2_r$r" -x MALLOC_MMAP_THRESHOLD_=1073741824 -x MALLOC_TRIM_THRESHOLD_=1073741824
  done
  echo "== round $r: distill, 1 rank x 1 thread, fp32"
  taskset -c 0 "$DISTILL" bench train "${T[@]}" --precision fp32 --json "$OUT_DIR/distill_fp32_np1_r$r.json" 2>&1 | quiet
done
for p in $PRECISIONS; do
  echo "== precompute (2 teacher ranks), $p"
  mpirun -np 2 --oversubscribe "$DISTILL" bench precompute --threads 1 --examples 1024 --precision "$p" \
    --work-dir "$OUT_DIR/work" --json "$OUT_DIR/precompute_$p.json" 2>&1 | quiet
done
echo "== allreduce (2 ranks), store"
mpirun -np 2 --oversubscribe "$DISTILL" bench allreduce --threads 1 --work-dir "$OUT_DIR/work" \
  --json "$OUT_DIR/allreduce.json" 2>&1 | quiet
"$DISTILL" bench store --work-dir "$OUT_DIR/work" --json "$OUT_DIR/store.json" 2>&1 | quiet
$PY - "$OUT_DIR" "$ROUNDS" $PRECISIONS <<'PY'
import json, os, sys
o, rounds, precisions = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
load = lambda name: json.load(open(f"{o}/{name}.json"))
best = lambda name: max((load(f"{name}_r{r}") for r in range(1, rounds + 1)
                         if os.path.exists(f"{o}/{name}_r{r}.json")), key=lambda j: j["samples_per_s"])
cpu = load(f"distill_{precisions[0]}_np2_r1")["cpu"]
print(f"\n=== distill bench summary (best of {rounds} rounds) on {cpu['model']}, bf16 units: {cpu['bf16_units']} ===")
d = {}
for p in precisions:
    d[p], t, th = best(f"distill_{p}_np2"), best(f"pytorch_{p}_np2"), best(f"pytorchheap_{p}_np2")
    print(f"[{p}] distill 2 ranks: {d[p]['samples_per_s']:.2f} samples/s (ran in {d[p]['precision']}), "
          f"PyTorch DDP 2 ranks: {t['samples_per_s']:.2f} -> ratio {d[p]['samples_per_s'] / t['samples_per_s']:.3f} "
          f"(target >= 1.1)")
    print(f"[{p}]   against PyTorch DDP with MALLOC_MMAP_THRESHOLD_ set like distill's: {th['samples_per_s']:.2f} "
          f"samples/s -> ratio {d[p]['samples_per_s'] / th['samples_per_s']:.3f}")
    print(f"[{p}]   model FLOP/s: {d[p]['model_flops_per_s'] / 1e9:.1f} GFLOP/s = "
          f"{100 * d[p]['model_flops_share_of_peak']:.1f}% of the measured {d[p]['precision']} matmul peak "
          f"({d[p]['matmul_peak_flops_per_s_per_rank'] / 1e9:.1f} GFLOP/s per rank); exposed communication "
          f"{100 * d[p]['exposed_comm_share']:.1f}%, input wait {100 * d[p]['input_wait_share']:.2f}%; phases (ms) "
          + ", ".join(f"{k} {v:.1f}" for k, v in d[p]["phase_ms"].items()))
if "fp32" in d and "bf16" in d:
    print(f"distill bf16 / fp32: {d['bf16']['samples_per_s'] / d['fp32']['samples_per_s']:.2f}x "
          f"(target >= 2 where the CPU has AMX)")
if "fp32" in d:
    d1 = best("distill_fp32_np1")
    print(f"distill fp32 2 ranks / 1 rank: {d['fp32']['samples_per_s'] / d1['samples_per_s']:.3f} (target >= 1.85)")
pc = {p: load(f"precompute_{p}") for p in precisions}
for p, j in pc.items():
    check = f", top-1 match with fp32 {j['check']['top1_match']:.4f} on {j['check']['rows']} examples" if "check" in j else ""
    print(f"precompute {p} (ran in {j['precision']}): {j['examples_per_s']:.1f} examples/s{check}")
if "fp32" in pc and "bf16" in pc:
    print(f"precompute bf16 / fp32: {pc['bf16']['examples_per_s'] / pc['fp32']['examples_per_s']:.2f}x "
          f"(target >= 2.5 where the CPU has AMX)")
PY
