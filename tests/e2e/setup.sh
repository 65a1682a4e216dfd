#!/usr/bin/env bash
# Fixture for the e2e tier: a small synthetic data set, a trained teacher and a 2-rank store.
source "$(dirname "$0")/common.sh"
rm -rf "$WORK" && mkdir -p "$WORK"
"$DISTILL" prepare --synthetic --out "$WORK/data.h5" --train 600 --dev 100 --test 100 --vocab-size 200 --seq 16
"$DISTILL" train "${TEACHER_SET[@]}" --set train.out_dir="$WORK/teacher" --set train.max_steps=60
run_np 2 precompute "${STUDENT_SET[@]}"
test -f "$WORK/store/manifest.json" || fail "no manifest after precompute"
echo "setup done"
