#!/usr/bin/env bash
# `distill prepare` on raw text: a bad row stops it with file and line and leaves no dataset;
# --skip-bad-rows counts and skips it; the written dataset names its vocabulary.
source "$(dirname "$0")/common.sh"
VOCAB="${DISTILL_VOCAB:?path to the bert-base-uncased vocab.txt}"
W="$WORK/text"
rm -rf "$W" && mkdir -p "$W"
{
  printf '\xef\xbb\xbf"label","text"\n'
  for i in $(seq 1 30); do printf '"1","a warm , funny and moving film %d"\n"-1","a dull , lifeless mess %d"\n' "$i" "$i"; done
  printf '"0","neither here nor there"\n'
  printf '"1","broken "quote" here"\n'
} > "$W/reviews.csv"
args=(-i "$W/reviews.csv" --labels=-1,1 --label-names negative,positive --vocab "$VOCAB" --max-length 24)
if "$DISTILL" prepare "${args[@]}" -o "$W/data.h5" 2> "$W/err.log"; then fail "prepare accepted an unknown label"; fi
grep -q "$W/reviews.csv:62: unknown label '0' (expected one of -1, 1)" "$W/err.log" || { cat "$W/err.log"; fail "no file:line"; }
test ! -e "$W/data.h5" || fail "a failed prepare left data.h5"
ls "$W" | grep -q partial && fail "a failed prepare left a partial file"
"$DISTILL" prepare "${args[@]}" --skip-bad-rows -o "$W/data.h5" > "$W/ok.log" 2>&1 || { cat "$W/ok.log"; fail "prepare --skip-bad-rows failed"; }
grep -q "62 rows read, 2 bad rows skipped" "$W/ok.log" || { cat "$W/ok.log"; fail "bad rows not counted"; }
grep -q "reviews.csv:63: unexpected character 'q' after the closing quote" "$W/ok.log" || { cat "$W/ok.log"; fail "quoting error not reported"; }
"$DISTILL" inspect "$W/data.h5" --json > "$W/inspect.json"
"$PY" - "$W/inspect.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
assert j["vocab_size"] == 30522 and j["label_names"] == ["negative", "positive"], j
print("text prepare ok:", {k: v for k, v in j.items() if k.endswith("examples")})
PY
echo "text ok"
