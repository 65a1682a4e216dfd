#!/usr/bin/env bash
# Masked-LM distillation on real text and the top-k benchmark: WordNet 3.0 glosses become
# masked-LM examples (15%, 80/10/10), a 2-layer teacher trains on them, precompute writes its
# top-k store (default k), a 1-layer student distils from it, then `distill bench-topk` prints,
# on the dev split's real teacher outputs, bytes per masked token and the gap between the top-k
# and the dense soft-target loss for k in 8..128. About 15 minutes on 2 cores.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
"$ROOT/launch/install-deps.sh"
"$ROOT/launch/build.sh"
"$ROOT/launch/fetch-vocab.sh"
"$ROOT/launch/fetch-data.sh"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
DISTILL="${BUILD_DIR:-$ROOT/.build}/distill"
RUN=.runs/mlm
NP=${NP:-2}
mpi() { mpirun -np "$NP" --oversubscribe "$DISTILL" "$@"; }
rm -rf "$RUN" && mkdir -p "$RUN"
echo "== prepare: WordNet glosses as masked-LM examples"
"$DISTILL" prepare --mlm -i datasets/wordnet/glosses.tsv --text-column text \
  --vocab datasets/vocab/bert-base-uncased/vocab.txt --max-length 48 --out "$RUN/dataset.h5" 2>&1 | grep -E "masked LM|wrote"
echo "== teacher: 2-layer masked LM, $NP ranks"
mpi train -c launch/configs/mlm-teacher.yaml 2>&1 | grep -E "training|step [0-9]+/[0-9]+ " | tail -3
echo "== precompute: top-k store"
mpi precompute -c launch/configs/mlm-distill.yaml 2>&1 | grep -E "masked LM:|store estimate|precompute done"
echo "== train: 1-layer student from the top-k store"
mpi train -c launch/configs/mlm-distill.yaml 2>&1 | grep -E "training|step [0-9]+/[0-9]+ " | tail -3
echo "== eval on the test split (masked tokens)"
mpi eval -c launch/configs/mlm-distill.yaml 2>/dev/null | tail -6
"$DISTILL" inspect "$RUN/store" 2>/dev/null | head -12 || true
echo "== bench-topk on the dev split"
mpi bench-topk -c launch/configs/mlm-distill.yaml 2>/dev/null
