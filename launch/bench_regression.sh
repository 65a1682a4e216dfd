#!/usr/bin/env bash
# Regression (Note [regression]) on real data, fetched by launch/fetch-data.sh:
#  - VADER's sentiment lexicon (7,517 tokens and emoticons, each with the mean valence of 10 human
#    raters in [-4, 4]): a 4 x 256 BERT teacher trained on the scores, and the quickstart-sized student
#    (2 x 128) trained three ways for the same steps: on the scores alone (alpha 1, beta 0), distilled
#    (alpha 0.2, beta 0.8, soft_loss mse), and from the teacher alone (alpha 0, beta 1);
#  - the diabetes data (442 patients, 10 standardized features, disease progression after a year):
#    an MLP teacher (depth 2, width 32, AdamW) and linear students (mlp of depth 1: weights and a
#    bias; full-batch gradient descent) trained the same three ways.
# Prints test MSE, Pearson and Spearman of each model, and each student's MSE and Pearson against
# its teacher. Settings: BUILD_DIR (.build), OUT_DIR (.runs/regression), NP (2), PY.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
DISTILL="${BUILD_DIR:-$ROOT/.build}/distill"
OUT=${OUT_DIR:-.runs/regression}
NP=${NP:-2}
PY=${PY:-/usr/bin/python3}
VOCAB=datasets/vocab/bert-base-uncased/vocab.txt
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mpi() { mpirun -np "$NP" --oversubscribe "$DISTILL" "$@"; }
[ -f datasets/vader/lexicon.tsv ] && [ -f datasets/diabetes/diabetes.csv ] && [ -f "$VOCAB" ] ||
  { echo "run launch/fetch-data.sh and launch/fetch-vocab.sh first"; exit 1; }
mkdir -p "$OUT"
grep -m1 "model name" /proc/cpuinfo

# The three ways of training a student: the scores, the scores and the teacher, the teacher.
declare -A WAY=([labels]="--set distill.alpha=1 --set distill.beta=0"
  [distilled]="--set distill.alpha=0.2 --set distill.beta=0.8"
  [soft]="--set distill.alpha=0 --set distill.beta=1")

# run NAME DATA TEACHER_ARGS STUDENT_ARGS: teacher, store, three students, each evaluated on test.
run() {
  local name=$1 data=$2
  local -a teacher student
  read -r -a teacher <<< "$3"
  read -r -a student <<< "$4"
  local T=(--set data.path="$data" --set train.out_dir="$OUT/$name-teacher" "${teacher[@]}")
  if [ ! -f "$OUT/$name-teacher/checkpoints/latest" ]; then
    echo "== $name teacher"
    mpi train "${T[@]}" > "$OUT/$name-teacher.log" 2>&1
  fi
  local S=(--set data.path="$data" --set teacher.path="$OUT/$name-teacher/checkpoints" --set store.path="$OUT/$name-store"
    --set distill.soft_loss=mse "${student[@]}")
  [ -f "$OUT/$name-store/manifest.json" ] || { echo "== $name precompute"; mpi precompute "${S[@]}" > "$OUT/$name-precompute.log" 2>&1; }
  for w in labels distilled soft; do
    local d="$OUT/$name-student-$w"
    if [ ! -f "$d.json" ]; then
      echo "== $name student ($w)"
      # shellcheck disable=SC2086
      mpi train "${S[@]}" ${WAY[$w]} --set train.out_dir="$d" > "$d.log" 2>&1
      mpi eval "${S[@]}" --set train.out_dir="$d" --json 2>/dev/null | sed -n '/^{/,/^}/p' > "$d.json"
    fi
  done
}

[ -f "$OUT/vader.h5" ] || mpi prepare -i datasets/vader/lexicon.tsv --vocab "$VOCAB" --regression --label-column score \
  --max-length 16 -o "$OUT/vader.h5" > "$OUT/vader-prepare.log" 2>&1
BERT="--set student.vocab_size=30522 --set student.max_positions=16 --set student.dropout=0.1 --set train.batch_size=32"
run vader "$OUT/vader.h5" \
  "$BERT --set student.hidden=256 --set student.layers=4 --set student.heads=4 --set student.intermediate=1024 \
   --set train.epochs=8 --set train.lr=0.0003 --set train.seed=11 --set train.checkpoint_every=500" \
  "$BERT --set student.hidden=128 --set student.layers=2 --set student.heads=4 --set student.intermediate=512 \
   --set train.epochs=8 --set train.lr=0.001 --set train.seed=23 --set train.checkpoint_every=500 \
   --set teacher.batch_size=128 --set store.shard_size=512"

[ -f "$OUT/diabetes.h5" ] || mpi prepare --features --regression --standardize -i datasets/diabetes/diabetes.csv \
  --label-names progression -o "$OUT/diabetes.h5" > "$OUT/diabetes-prepare.log" 2>&1
VEC="--set train.batch_size=100000 --set train.schedule=constant --set train.max_grad_norm=0 --set train.precision=fp32"
run diabetes "$OUT/diabetes.h5" \
  "$VEC --set student.kind=mlp --set student.depth=2 --set student.width=32 --set train.epochs=500 \
   --set train.lr=0.01 --set train.seed=11 --set train.checkpoint_every=500" \
  "$VEC --set student.kind=mlp --set student.depth=1 --set train.optimizer=sgd --set train.epochs=3000 \
   --set train.lr=0.1 --set train.seed=23 --set train.checkpoint_every=1000"

$PY - "$OUT" <<'PY'
import json, sys
o = sys.argv[1]
for name, title in (("vader", "VADER lexicon, BERT 4x256 -> 2x128"), ("diabetes", "diabetes, MLP 2x32 -> linear")):
    e = {w: json.load(open(f"{o}/{name}-student-{w}.json")) for w in ("labels", "distilled", "soft")}
    t = e["labels"]
    print(f"\n=== {title} (test split of {t['examples']}) ===")
    print(f"{'model':<22} {'MSE':>9} {'Pearson':>8} {'Spearman':>9} {'MSE(t,s)':>9} {'Pearson(t,s)':>13}")
    print(f"{'teacher':<22} {t['teacher_mse']:>9.4f} {t['teacher_pearson']:>8.4f} {t['teacher_spearman']:>9.4f}")
    for w, label in (("labels", "student, labels only"), ("distilled", "student, distilled"),
                     ("soft", "student, teacher only")):
        r = e[w]
        print(f"{label:<22} {r['mse']:>9.4f} {r['pearson']:>8.4f} {r['spearman']:>9.4f} "
              f"{r['mse_teacher_student']:>9.4f} {r['pearson_teacher_student']:>13.4f}")
PY
