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
# Note [parallel prepare]: 1 and 3 ranks write the same data set, also when quoted fields span
# lines and shares of the file start inside them; a bad row is reported with its file line.
{
  printf 'label,text\n'
  for i in $(seq 1 300); do
    case $((i % 5)) in
      0) printf '1,"a ""quoted"" line %d\nthat goes on\nand on"\n' "$i" ;;
      1) printf -- '-1,"comma, inside %d"\n' "$i" ;;
      2) printf '1,plain text %d\n' "$i" ;;
      3) printf -- '-1,"\n\nleading newlines %d"\n' "$i" ;;
      *) printf '1,"short %d"\n' "$i" ;;
    esac
  done
} > "$W/multi.csv"
margs=(-i "$W/multi.csv" --labels=-1,1 --vocab "$VOCAB" --max-length 16)
for np in 1 3; do
  run_np "$np" prepare "${margs[@]}" -o "$W/multi$np.h5" > "$W/multi$np.log" 2>&1 || { cat "$W/multi$np.log"; fail "prepare on $np ranks failed"; }
  "$DISTILL" inspect "$W/multi$np.h5" --json > "$W/multi$np.json"
done
grep -q "300 rows read, 0 bad rows" "$W/multi3.log" || { cat "$W/multi3.log"; fail "3 ranks did not read 300 records"; }
grep -q "one rank" "$W/multi3.log" && { cat "$W/multi3.log"; fail "3 ranks fell back to one"; }
"$PY" - "$W/multi1.json" "$W/multi3.json" "$W/multi3.h5" <<'PY'
import json, sys, h5py
a, b = (json.load(open(p)) for p in sys.argv[1:3])
assert a["content_hash"] == b["content_hash"], (a["content_hash"], b["content_hash"])
f = h5py.File(sys.argv[3])
ids = sorted(int(i) for s in ("train", "dev", "test") for i in f[s]["example_id"][:])
assert ids == list(range(300)), ids[:10]
print("1 and 3 prepare ranks: content hash", a["content_hash"])
PY
printf '1,"fine"\n7,"unknown label"\n' >> "$W/multi.csv"
if run_np 3 prepare "${margs[@]}" -o "$W/multi-bad.h5" > "$W/multi-bad.log" 2>&1; then fail "3 ranks accepted a bad row"; fi
line=$(grep -c '' "$W/multi.csv")
grep -q "multi.csv:$line: unknown label '7'" "$W/multi-bad.log" || { cat "$W/multi-bad.log"; fail "3 ranks: no file:line $line"; }
test ! -e "$W/multi-bad.h5" || fail "a failed parallel prepare left its output"
ls "$W" | grep -q "parts-" && fail "a parallel prepare left its parts directory"
echo "text ok"
