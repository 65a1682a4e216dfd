#!/usr/bin/env bash
# GPU validation on a machine with an NVIDIA GPU, PyTorch with CUDA, and no network:
#   1. unpacks the offline bundle (launch/bundle-deps.sh pack .runs/bundle, made where apt works) and
#      builds distill against it and PyTorch's LibTorch (torch.utils.cmake_prefix_path);
#   2. runs the unit tests, the GPU tests (NCCL communicator, watchdog, buckets over NCCL,
#      autocast) and the multi-rank CPU tests;
#   3. trains one small distillation config on the CPU (fp32) and on the GPU (fp32 and bf16) and
#      compares the loss curves;
#   4. benchmarks a BERT-base-sized student (hidden 768, 6 layers, 12 heads, sequence 128, bf16)
#      in distill and in PyTorch eager (transformers' BertForSequenceClassification).
# Figures and logs go to OUT_DIR. STAGES=build,test,curves,bench picks stages.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
BUNDLE=${BUNDLE:-.runs/bundle}
OUT_DIR=${OUT_DIR:-.runs/gpu}
PREFIX=${DEPS_PREFIX:-/tmp/distill-deps}
BUILD=${BUILD_DIR:-.build-gpu}
STAGES=${STAGES:-build,test,curves,bench}
PY=${PY:-python3}
mkdir -p "$OUT_DIR"
has() { [[ ",$STAGES," == *",$1,"* ]]; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1

[ -f "$PREFIX/env.sh" ] || launch/bundle-deps.sh unpack "$BUNDLE" "$PREFIX"
TORCH_CMAKE=$($PY -c 'import torch; print(torch.utils.cmake_prefix_path)')
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT_DIR/gpu.txt"
if has build; then
  echo "== build (LibTorch of $($PY -c 'import torch; print(torch.__version__)'))"
  generator=()
  command -v ninja >/dev/null && generator=(-G Ninja)
  ( source "$PREFIX/env.sh"
    cmake -S . -B "$BUILD" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DDISTILL_DEPS_PREFIX="$PREFIX" \
      -DCMAKE_PREFIX_PATH="$TORCH_CMAKE" -DDISTILL_WITH_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 > "$OUT_DIR/configure.log" 2>&1 ||
      { tail -30 "$OUT_DIR/configure.log"; exit 1; }
    grep -E "NCCL|distill:" "$OUT_DIR/configure.log"
    cmake --build "$BUILD" -j "$(nproc)" > "$OUT_DIR/build.log" 2>&1 || { grep -E "error|Error" -A3 "$OUT_DIR/build.log" | head -60; exit 1; }
  )
  echo "build ok"
fi
source "$PREFIX/env.sh"
DISTILL=$ROOT/$BUILD/distill
if has test; then
  echo "== tests"
  export DISTILL_FIXTURES=$ROOT/tests/fixtures DISTILL_VOCAB=$ROOT/datasets/vocab/bert-base-uncased/vocab.txt
  "$BUILD/tests/distill_gpu_tests" > "$OUT_DIR/gpu_tests.log" 2>&1 || true
  grep -E "^\[ *(OK|FAILED|SKIPPED|PASSED) *\]|tests? ran|Failure|error" "$OUT_DIR/gpu_tests.log" || true
  "$BUILD/tests/distill_unit_tests" > "$OUT_DIR/unit_tests.log" 2>&1 || true
  tail -3 "$OUT_DIR/unit_tests.log"; grep -E "^\[  FAILED" "$OUT_DIR/unit_tests.log" | head -20 || true
  (cd "$BUILD" && ctest -R mpi_comm 2>&1 | tail -3) || true
fi
if has curves; then
  echo "== loss curves: the same distillation on CPU fp32, GPU fp32, GPU bf16"
  C=$OUT_DIR/curves
  rm -rf "$C" && mkdir -p "$C"
  "$DISTILL" prepare --synthetic --out "$C/data.h5" --train 4096 --dev 256 --test 256 --seq 32 > /dev/null 2>&1
  common=(--set data.path="$C/data.h5" --set train.log_every=1)
  "$DISTILL" train -c launch/configs/teacher.yaml "${common[@]}" --set train.out_dir="$C/teacher" \
    --set train.device=cuda --set train.epochs=2 2>&1 | grep -E "dev accuracy|error" || true
  "$DISTILL" precompute -c launch/configs/distill.yaml "${common[@]}" --set teacher.path="$C/teacher/checkpoints" \
    --set store.path="$C/store" --set store.dtype=float32 --set teacher.device=cpu 2>&1 | grep -E "precompute done|error" || true
  for run in cpu:fp32 cuda:fp32 cuda:bf16; do
    dev=${run%%:*} prec=${run##*:}
    "$DISTILL" train -c launch/configs/distill.yaml "${common[@]}" --set teacher.path="$C/teacher/checkpoints" \
      --set store.path="$C/store" --set train.out_dir="$C/$dev-$prec" --set train.device="$dev" \
      --set train.precision="$prec" --set student.dropout=0 --set student.attention_dropout=0 \
      --set train.epochs=2 2>&1 | grep -E "training|step time|dev accuracy|error" || true
  done
  $PY - "$C" <<'PY' | tee "$OUT_DIR/curves.txt"
import json, sys
c = sys.argv[1]
load = lambda n: [j["loss"] for j in map(json.loads, open(f"{c}/{n}/metrics.jsonl")) if "loss" in j]
cpu = load("cpu-fp32")
for n, tol in (("cuda-fp32", 1e-3), ("cuda-bf16", 3e-2)):
    g = load(n)
    assert len(g) == len(cpu), (n, len(g), len(cpu))
    rel = [abs(a - b) / abs(b) for a, b in zip(g, cpu)]
    first = sum(rel[:10]) / 10
    mean = sum(rel) / len(rel)
    print(f"{n:10s} vs cpu-fp32 over {len(rel)} steps: mean relative loss difference {mean:.2e}, "
          f"first 10 steps {first:.2e}, max {max(rel):.2e}, final loss {g[-1]:.4f} vs {cpu[-1]:.4f} "
          f"(tolerance on the mean {tol:g}): {'ok' if mean <= tol else 'FAIL'}")
PY
fi
if has bench; then
  echo "== bench: BERT-base-sized student, sequence 128, bf16 (distill vs PyTorch eager)"
  B=(--hidden 768 --layers 6 --heads 12 --intermediate 3072 --seq 128 --batch "${BENCH_BATCH:-64}" --labels 2)
  "$DISTILL" bench train "${B[@]}" --device cuda --precision bf16 --steps 40 --warmup 10 \
    --work-dir "$OUT_DIR/bench" --json "$OUT_DIR/bench_train.json" 2>&1 | grep -v "^\[" || true
  for attn in eager sdpa; do
    $PY launch/bench_pytorch.py "${B[@]}" --device cuda --precision bf16 --steps 40 --warmup 10 --model hf \
      --attention "$attn" --json "$OUT_DIR/pytorch_$attn.json"
  done
  "$DISTILL" bench precompute "${B[@]}" --device cuda --precision bf16 --examples 8192 \
    --work-dir "$OUT_DIR/bench" --json "$OUT_DIR/bench_precompute.json" 2>&1 | grep -v "^\[" || true
  "$DISTILL" bench allreduce --device cuda --work-dir "$OUT_DIR/bench" --json "$OUT_DIR/bench_allreduce.json" 2>&1 |
    grep -v "^\[" | tail -4 || true
  $PY - "$OUT_DIR" <<'PY'
import json, sys
o = sys.argv[1]
d = json.load(open(f"{o}/bench_train.json"))
for attn in ("eager", "sdpa"):
    p = json.load(open(f"{o}/pytorch_{attn}.json"))
    print(f"distill {d['tokens_per_s']:.0f} tokens/s vs PyTorch eager (attention {attn}) {p['tokens_per_s']:.0f}: "
          f"ratio {d['tokens_per_s'] / p['tokens_per_s']:.3f}")
print(f"distill model FLOP/s {d['model_flops_per_s'] / 1e12:.1f} TFLOP/s = {100 * d['model_flops_share_of_peak']:.1f}% "
      f"of the measured bf16 matmul peak {d['matmul_peak_flops_per_s_per_rank'] / 1e12:.1f} TFLOP/s")
PY
fi
