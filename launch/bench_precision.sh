#!/usr/bin/env bash
# bf16 against fp32 on real data (Note [cpu bf16]), with the quickstart's polarity job:
#   - the teacher trained twice, train.precision fp32 and bf16: loss curves and test accuracy;
#   - the fp32 teacher's targets computed in fp32 and in bf16 (teacher.precision): precompute's
#     top-1 match and KL of the bf16 teacher against its fp32 outputs, and examples/s;
#   - the student distilled twice from the same fp32 store, fp32 and bf16: loss curves, test
#     accuracy, agreement with the teacher and KL, samples/s.
# Needs the quickstart's data (launch/fetch-vocab.sh, launch/fetch-data.sh). NP=2 ranks, OUT_DIR.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
DISTILL="${BUILD_DIR:-$ROOT/.build}/distill"
OUT=${OUT_DIR:-.runs/precision}
NP=${NP:-2}
PY=${PY:-/usr/bin/python3}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mpi() { mpirun -np "$NP" --oversubscribe "$DISTILL" "$@"; }
rm -rf "$OUT" && mkdir -p "$OUT"
grep -m1 "model name" /proc/cpuinfo || true
"$DISTILL" prepare -i datasets/polarity/polarity.csv --columns label,text --labels=-1,1 \
  --label-names negative,positive --vocab datasets/vocab/bert-base-uncased/vocab.txt --max-length 64 \
  --out "$OUT/dataset.h5" 2>&1 | grep -E "wrote"
D=(--set data.path="$OUT/dataset.h5")
for p in fp32 bf16; do
  echo "== teacher, train.precision $p"
  mpi train -c launch/configs/polarity-teacher.yaml "${D[@]}" --set train.out_dir="$OUT/teacher-$p" \
    --set train.precision=$p > "$OUT/teacher-$p.log" 2>&1
  grep -E "train.precision|dev accuracy" "$OUT/teacher-$p.log" | grep -v "^\[.*rank 1" | tail -2 || true
done
S=(-c launch/configs/polarity-distill.yaml "${D[@]}" --set teacher.path="$OUT/teacher-fp32/checkpoints")
for p in fp32 bf16; do
  echo "== precompute, teacher.precision $p"
  mpi precompute "${S[@]}" --set store.path="$OUT/store-$p" --set teacher.precision=$p > "$OUT/precompute-$p.log" 2>&1
  grep -E "against its fp32|precompute done" "$OUT/precompute-$p.log" || true
done
for p in fp32 bf16; do
  echo "== student from the fp32 store, train.precision $p"
  mpi train "${S[@]}" --set store.path="$OUT/store-fp32" --set train.out_dir="$OUT/student-$p" \
    --set train.precision=$p > "$OUT/student-$p.log" 2>&1
  mpi eval "${S[@]}" --set store.path="$OUT/store-fp32" --set train.out_dir="$OUT/student-$p" \
    --set train.precision=$p --json 2>/dev/null | sed -n '/^{/,/^}/p' > "$OUT/eval-$p.json"
  mpi eval -c launch/configs/polarity-teacher.yaml "${D[@]}" --set train.out_dir="$OUT/teacher-$p" \
    --set train.precision=$p --json 2>/dev/null | sed -n '/^{/,/^}/p' > "$OUT/eval-teacher-$p.json"
done
$PY - "$OUT" <<'PY'
import json, re, sys
o = sys.argv[1]
def curve(path):
    return {j["step"]: j["loss"] for j in map(json.loads, open(path))}
def rate(log):
    m = re.findall(r"precompute done.*?\(([0-9.]+)/s", open(log).read())
    return float(m[-1]) if m else float("nan")
ev = {p: json.load(open(f"{o}/eval-{p}.json")) for p in ("fp32", "bf16")}
evt = {p: json.load(open(f"{o}/eval-teacher-{p}.json")) for p in ("fp32", "bf16")}
print("\n=== bf16 against fp32 on polarity ===")
for who in ("teacher", "student"):
    a, b = curve(f"{o}/{who}-fp32/metrics.jsonl"), curve(f"{o}/{who}-bf16/metrics.jsonl")
    steps = sorted(set(a) & set(b))
    gaps = [abs(a[s] - b[s]) for s in steps]
    print(f"{who} loss curves ({len(steps)} steps): largest |fp32 - bf16| {max(gaps):.4f} at step "
          f"{steps[gaps.index(max(gaps))]}, mean {sum(gaps) / len(gaps):.4f}; last 10 steps' mean loss "
          f"fp32 {sum(a[s] for s in steps[-10:]) / 10:.4f}, bf16 {sum(b[s] for s in steps[-10:]) / 10:.4f}")
    for s in steps[:: max(1, len(steps) // 8)]:
        print(f"  step {s:4d}: fp32 {a[s]:.4f}  bf16 {b[s]:.4f}")
    summ = {p: json.load(open(f"{o}/{who}-{p}/train_summary.json")) for p in ("fp32", "bf16")}
    print(f"  samples/s: fp32 {summ['fp32']['samples_per_s']:.1f}, bf16 {summ['bf16']['samples_per_s']:.1f} "
          f"({summ['bf16']['samples_per_s'] / summ['fp32']['samples_per_s']:.2f}x)")
for p in ("fp32", "bf16"):
    print(f"teacher trained in {p}: test accuracy {evt[p]['accuracy']:.4f}")
for p in ("fp32", "bf16"):
    e = ev[p]
    print(f"student trained in {p}: test accuracy {e['accuracy']:.4f}, agreement {e['agreement']:.4f}, "
          f"KL {e['kl_teacher_student']:.4f}")
print(f"agreement gap |fp32 - bf16| {abs(ev['fp32']['agreement'] - ev['bf16']['agreement']):.4f} (target <= 0.01)")
for p in ("fp32", "bf16"):
    print(f"precompute, teacher in {p}: {rate(f'{o}/precompute-{p}.log'):.1f} examples/s")
m = re.search(r"top-1 match ([0-9.]+), mean KL\(fp32 \|\| bf16\) (\S+)", open(f"{o}/precompute-bf16.log").read())
if m:
    print(f"bf16 teacher against its fp32 outputs: top-1 match {m.group(1)} (target >= 0.995), KL {m.group(2)}")
PY
