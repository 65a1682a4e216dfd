#!/usr/bin/env bash
# Which inputs to distil on (polarity): the quickstart teacher (4 x 256) and student (2 x 128),
# distilled with distill.alpha 0 (soft targets only), the same steps and seed, on
#   (a) the labeled train split (3,200 rows);
#   (b) (a) plus 4 augmented copies of it (distill augment, share 0.15, pieces drawn from the top 8
#       of a 2 x 128 masked LM trained on the glosses, launch/configs/mlm-teacher.yaml at length 64);
#   (c) (a) plus a seeded tenth of the WordNet glosses' train split, unlabeled (distill mix);
#   (d) that tenth of the glosses alone;
# then evaluated on the polarity test split and the glosses' test split (agreement with the
# teacher, KL, and accuracy where there are labels). Needs launch/fetch-vocab.sh and
# launch/fetch-data.sh. NP=2 ranks, OUT_DIR, STEPS (600), GLOSS_WEIGHT (0.1); a teacher, data sets
# and stores already under OUT_DIR are reused.
source "$(dirname "$0")/polarity_bench_env.sh"
GW=${GLOSS_WEIGHT:-0.1}
VOCAB=datasets/vocab/bert-base-uncased/vocab.txt
mkdir -p "$OUT"
grep -m1 "model name" /proc/cpuinfo
[ -f "$OUT/dataset.h5" ] || "$DISTILL" prepare -i datasets/polarity/polarity.csv --columns label,text --labels=-1,1 \
  --label-names negative,positive --vocab $VOCAB --max-length 64 --out "$OUT/dataset.h5" 2>&1 | grep -E "wrote"
[ -f "$OUT/glosses.h5" ] || "$DISTILL" prepare --unlabeled --label-names negative,positive -i datasets/wordnet/glosses.tsv \
  --text-column text --vocab $VOCAB --max-length 64 --out "$OUT/glosses.h5" 2>&1 | grep -E "wrote"
if [ ! -f "$OUT/teacher/checkpoints/latest" ]; then
  echo "== teacher"
  mpi train -c launch/configs/polarity-teacher.yaml --set data.path="$OUT/dataset.h5" --set train.out_dir="$OUT/teacher" \
    > "$OUT/teacher.log" 2>&1
fi
if [ ! -f "$OUT/mlm/checkpoints/latest" ]; then
  echo "== masked LM for augmentation"
  [ -f "$OUT/mlm.h5" ] || "$DISTILL" prepare --mlm -i datasets/wordnet/glosses.tsv --text-column text --vocab $VOCAB \
    --max-length 64 --out "$OUT/mlm.h5" 2>&1 | grep -E "wrote"
  mpi train -c launch/configs/mlm-teacher.yaml --set data.path="$OUT/mlm.h5" --set student.max_positions=64 \
    --set train.out_dir="$OUT/mlm" > "$OUT/mlm.log" 2>&1
fi
[ -f "$OUT/augmented.h5" ] || "$DISTILL" augment -i "$OUT/dataset.h5" -o "$OUT/augmented.h5" --copies 4 --share 0.15 \
  --seed 1 --vocab $VOCAB --mlm "$OUT/mlm/checkpoints" --top-k 8 2>&1 | grep -E "wrote"
declare -A SRC=(
  [a]="--source $OUT/dataset.h5:train"
  [b]="--source $OUT/dataset.h5:train --source $OUT/augmented.h5:train"
  [c]="--source $OUT/dataset.h5:train --source $OUT/glosses.h5:train:$GW"
  [d]="--source $OUT/glosses.h5:train:$GW --eval-from $OUT/dataset.h5")
for k in a b c d; do
  [ -f "$OUT/set-$k.h5" ] || "$DISTILL" mix ${SRC[$k]} -o "$OUT/set-$k.h5" 2>&1 | grep -E "wrote"
  S=(-c launch/configs/polarity-distill.yaml --set data.path="$OUT/set-$k.h5" --set teacher.path="$OUT/teacher/checkpoints"
    --set store.path="$OUT/store-$k" --set distill.alpha=0 --set distill.beta=1
    --set train.max_steps=$STEPS --set train.out_dir="$OUT/student-$k")
  [ -f "$OUT/store-$k/manifest.json" ] || { echo "== precompute ($k)"; mpi precompute "${S[@]}" > "$OUT/precompute-$k.log" 2>&1; }
  if [ ! -f "$OUT/eval-$k.json" ]; then
    echo "== student ($k)"
    mpi train "${S[@]}" > "$OUT/student-$k.log" 2>&1
    mpi eval "${S[@]}" --data "$OUT/dataset.h5" --data "$OUT/glosses.h5" --split test --json 2>/dev/null |
      sed -n '/^{/,/^}/p' > "$OUT/eval-$k.json"
  fi
done
$PY - "$OUT" "$STEPS" <<'PY'
import json, sys
o, steps = sys.argv[1], sys.argv[2]
names = {"a": "(a) polarity train", "b": "(b) (a) + 4 augmented copies", "c": "(c) (a) + glosses (unlabeled)",
         "d": "(d) glosses alone"}
print(f"\n=== transfer sets on polarity ({steps} steps each, alpha 0) ===")
print(f"{'transfer set':<32} {'rows':>6} {'pol. acc':>8} {'pol. agree':>10} {'pol. KL':>8} {'gloss agree':>11} {'gloss KL':>8}")
for k in "abcd":
    e = json.load(open(f"{o}/eval-{k}.json"))
    p, g = e["sets"]
    rows = json.load(open(f"{o}/student-{k}/train_summary.json")).get("steps")
    import h5py
    with h5py.File(f"{o}/set-{k}.h5") as f:
        n = f["train/labels"].shape[0]
    print(f"{names[k]:<32} {n:>6} {p['accuracy']:>8.4f} {p['agreement']:>10.4f} {p['kl_teacher_student']:>8.4f} "
          f"{g['agreement']:>11.4f} {g['kl_teacher_student']:>8.4f}")
print(f"teacher accuracy on polarity test: {p['teacher_accuracy']:.4f}")
PY
