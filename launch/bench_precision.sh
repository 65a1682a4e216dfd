#!/usr/bin/env bash
# bf16 against fp32 on real data (Note [cpu bf16]), with the quickstart's polarity job:
#   - the teacher trained twice, train.precision fp32 and bf16: loss curves and test accuracy;
#   - the fp32 teacher's targets computed in fp32 and in bf16 (teacher.precision): precompute's
#     top-1 match and KL of the bf16 teacher against its fp32 outputs, and examples/s;
#   - the student distilled from the same fp32 store in fp32 and in bf16, with each of SEEDS
#     (default "23 24 25"): loss curves, test accuracy, agreement with the teacher and KL, per seed
#     and averaged, so that the gap between precisions can be set against the spread over seeds.
# Every run logs its loss at every step. Needs the quickstart's data (launch/fetch-vocab.sh,
# launch/fetch-data.sh). NP=2 ranks, OUT_DIR.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
DISTILL="${BUILD_DIR:-$ROOT/.build}/distill"
OUT=${OUT_DIR:-.runs/precision}
NP=${NP:-2}
PY=${PY:-/usr/bin/python3}
SEEDS=${SEEDS:-23 24 25}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mpi() { mpirun -np "$NP" --oversubscribe "$DISTILL" "$@"; }
rm -rf "$OUT" && mkdir -p "$OUT"
grep -m1 "model name" /proc/cpuinfo || true
"$DISTILL" prepare -i datasets/polarity/polarity.csv --columns label,text --labels=-1,1 \
  --label-names negative,positive --vocab datasets/vocab/bert-base-uncased/vocab.txt --max-length 64 \
  --out "$OUT/dataset.h5" 2>&1 | grep -E "wrote"
D=(--set data.path="$OUT/dataset.h5" --set train.log_every=1)
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
  mpi eval -c launch/configs/polarity-teacher.yaml "${D[@]}" --set train.out_dir="$OUT/teacher-$p" \
    --set train.precision=$p --json 2>/dev/null | sed -n '/^{/,/^}/p' > "$OUT/eval-teacher-$p.json"
  for seed in $SEEDS; do
    echo "== student from the fp32 store, train.precision $p, seed $seed"
    R=(--set store.path="$OUT/store-fp32" --set train.out_dir="$OUT/student-$p-$seed" --set train.precision=$p
      --set train.seed=$seed)
    mpi train "${S[@]}" "${R[@]}" > "$OUT/student-$p-$seed.log" 2>&1
    mpi eval "${S[@]}" "${R[@]}" --json 2>/dev/null | sed -n '/^{/,/^}/p' > "$OUT/eval-$p-$seed.json"
  done
done
$PY - "$OUT" $SEEDS <<'PY'
import json, re, sys
o, seeds = sys.argv[1], sys.argv[2:]
P = ("fp32", "bf16")
def curve(path):
    return {j["step"]: j["loss"] for j in map(json.loads, open(path)) if "loss" in j}
def rate(log):
    m = re.findall(r"precompute done.*?\(([0-9.]+)/s", open(log).read())
    return float(m[-1]) if m else float("nan")
def compare(who, a, b, sa, sb):
    steps = sorted(set(a) & set(b))
    gaps = [abs(a[s] - b[s]) for s in steps]
    tail = steps[-max(1, len(steps) // 10):]
    mean = lambda c: sum(c[s] for s in tail) / len(tail)
    print(f"{who} loss curves ({len(steps)} steps): largest |fp32 - bf16| {max(gaps):.4f} at step "
          f"{steps[gaps.index(max(gaps))]}, mean {sum(gaps) / len(gaps):.4f}; mean loss over the last "
          f"{len(tail)} steps fp32 {mean(a):.4f}, bf16 {mean(b):.4f}; samples/s fp32 {sa:.1f}, bf16 {sb:.1f}")
    for s in steps[:: max(1, len(steps) // 6)]:
        print(f"  step {s:4d}: fp32 {a[s]:.4f}  bf16 {b[s]:.4f}")
summ = lambda d: json.load(open(f"{o}/{d}/train_summary.json"))["samples_per_s"]
print("\n=== bf16 against fp32 on polarity ===")
compare("teacher", curve(f"{o}/teacher-fp32/metrics.jsonl"), curve(f"{o}/teacher-bf16/metrics.jsonl"),
        summ("teacher-fp32"), summ("teacher-bf16"))
for p in P:
    print(f"teacher trained in {p}: test accuracy {json.load(open(f'{o}/eval-teacher-{p}.json'))['accuracy']:.4f}")
compare(f"student (seed {seeds[0]})", curve(f"{o}/student-fp32-{seeds[0]}/metrics.jsonl"),
        curve(f"{o}/student-bf16-{seeds[0]}/metrics.jsonl"), summ(f"student-fp32-{seeds[0]}"),
        summ(f"student-bf16-{seeds[0]}"))
ev = {(p, s): json.load(open(f"{o}/eval-{p}-{s}.json")) for p in P for s in seeds}
print("student test figures: seed, precision: accuracy / agreement / KL")
for s in seeds:
    print(f"  seed {s}: " + "; ".join(f"{p} {ev[p, s]['accuracy']:.4f} / {ev[p, s]['agreement']:.4f} / "
                                       f"{ev[p, s]['kl_teacher_student']:.4f}" for p in P))
avg = {p: sum(ev[p, s]["agreement"] for s in seeds) / len(seeds) for p in P}
acc = {p: sum(ev[p, s]["accuracy"] for s in seeds) / len(seeds) for p in P}
spread = {p: max(ev[p, s]["agreement"] for s in seeds) - min(ev[p, s]["agreement"] for s in seeds) for p in P}
print(f"mean agreement over {len(seeds)} seeds: fp32 {avg['fp32']:.4f}, bf16 {avg['bf16']:.4f}, gap "
      f"{abs(avg['fp32'] - avg['bf16']):.4f} (target <= 0.01); spread over seeds fp32 {spread['fp32']:.4f}, "
      f"bf16 {spread['bf16']:.4f}; mean test accuracy fp32 {acc['fp32']:.4f}, bf16 {acc['bf16']:.4f}")
for p in P:
    print(f"precompute, teacher in {p}: {rate(f'{o}/precompute-{p}.log'):.1f} examples/s")
m = re.search(r"top-1 match ([0-9.]+), mean KL\(fp32 \|\| bf16\) (\S+)", open(f"{o}/precompute-bf16.log").read())
if m:
    print(f"bf16 teacher against its fp32 outputs: top-1 match {m.group(1)} (target >= 0.995), KL {m.group(2)}")
PY
