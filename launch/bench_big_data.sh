#!/usr/bin/env bash
# A data set larger than this machine's memory (Note [lazy rows]): prepare a synthetic dataset.h5
# of TRAIN train rows and DEV dev rows of sequence 128 (about 1.55 KB a row: 20M + 1M rows is 33 GB),
# train a small student on it for STEPS steps on 2 ranks, and evaluate it on the whole dev split,
# each step under GNU time: peak RSS per process, and samples/s from the logs. Not part of CI.
#   TRAIN=20000000 DEV=1000000 STEPS=300 OUT_DIR=.runs/big (needs the disk for the file)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
DISTILL="${BUILD_DIR:-$ROOT/.build}/distill"
OUT_DIR=${OUT_DIR:-.runs/big}
TRAIN=${TRAIN:-20000000}
DEV=${DEV:-1000000}
STEPS=${STEPS:-300}
mkdir -p "$OUT_DIR"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-), $(nproc) cores, $(free -g | awk '/Mem/{print $2}') GiB"
peak() { grep "Maximum resident" "$@" | awk '{printf "%.0f MB ", $NF / 1024}'; echo; }
if [ ! -f "$OUT_DIR/dataset.h5" ]; then
  /usr/bin/time -v "$DISTILL" prepare --synthetic --train "$TRAIN" --dev "$DEV" --test 1000 --seq 128 \
    --vocab-size 30522 -o "$OUT_DIR/dataset.h5" > "$OUT_DIR/prepare.log" 2>&1
  grep -E "wrote|Elapsed" "$OUT_DIR/prepare.log"
  echo "prepare peak RSS: $(peak "$OUT_DIR/prepare.log")"
fi
ls -l "$OUT_DIR/dataset.h5" | awk '{printf "dataset.h5: %.1f GB\n", $5 / 1e9}'
cat > "$OUT_DIR/run.yaml" <<YAML
data:
  path: $OUT_DIR/dataset.h5
student:
  vocab_size: 30522
  hidden: 64
  layers: 2
  heads: 2
  intermediate: 256
  max_positions: 128
train:
  out_dir: $OUT_DIR/student
  batch_size: 32
  max_steps: $STEPS
  eval_batch_size: 256
  log_every: 50
  threads: 1
YAML
rm -rf "$OUT_DIR/student"
# Each rank under GNU time, its report in OUT_DIR/<name>.time.<rank>.
timed() { local name=$1; shift; mpirun -np 2 --oversubscribe --bind-to core -x OUT_DIR -x NAME="$name" \
  bash -c '/usr/bin/time -v -o "$OUT_DIR/$NAME.time.$OMPI_COMM_WORLD_RANK" "$@"' _ "$DISTILL" "$@"; }
export OUT_DIR
timed train train -c "$OUT_DIR/run.yaml" --set data.eval_split=none > "$OUT_DIR/train.log" 2>&1 ||
  { tail -20 "$OUT_DIR/train.log"; exit 1; }
grep -E "training|samples/s|input" "$OUT_DIR/train.log" | tail -3
echo "train peak RSS per rank: $(peak "$OUT_DIR"/train.time.*)"
timed eval eval -c "$OUT_DIR/run.yaml" --split dev --json > "$OUT_DIR/eval.log" 2>&1 ||
  { tail -20 "$OUT_DIR/eval.log"; exit 1; }
grep -E '"examples"|"accuracy"|Elapsed' "$OUT_DIR/eval.log" | head -3
echo "eval peak RSS per rank: $(peak "$OUT_DIR"/eval.time.*)"
