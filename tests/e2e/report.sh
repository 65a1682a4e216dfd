#!/usr/bin/env bash
# distill report: a trained run (evaluated at every checkpoint) and its eval JSON files become one
# self-contained page holding a plot for each kind of metric the run logged and the tables; the same
# inputs give the same bytes, under mpirun too (rank 0 writes); headless Chromium renders it with
# every plot; a directory with nothing to report and a malformed metrics line are refused by name.
source "$(dirname "$0")/common.sh"
R="$WORK/report"
rm -rf "$R" && mkdir -p "$R"
CHROMIUM="${CHROMIUM:-$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)}"
[ -n "$CHROMIUM" ] ||
  fail "chromium is not installed (or set CHROMIUM=path): this test renders the report in headless Chromium"
expect_fail() {  # expect_fail NAME PATTERN -- COMMAND...: non-zero exit and PATTERN in the output
  local name=$1 pattern=$2; shift 3
  set +e
  "$@" > "$R/$name.log" 2>&1
  local rc=$?
  set -e
  [ "$rc" -ne 0 ] || { cat "$R/$name.log"; fail "$name: exited 0"; }
  grep -Eq "$pattern" "$R/$name.log" || { cat "$R/$name.log"; fail "$name: no output matching '$pattern'"; }
  echo "$name: $(grep -Em1 "$pattern" "$R/$name.log")"
}

# A run evaluated on dev at every checkpoint (metrics.jsonl gets evaluation lines), then evaluated
# on test (RUN_DIR/eval-test.json, picked up by itself) and on dev and test (given with --eval).
run_np 2 train "${STUDENT_SET[@]}" --set train.out_dir="$R/run" --set train.max_steps=40 \
  --set train.checkpoint_every=10 --set train.select=dev_agreement > "$R/train.log" 2>&1 ||
  { cat "$R/train.log"; fail "train"; }
run_np 2 eval "${STUDENT_SET[@]}" --set train.out_dir="$R/run" --json > "$R/run/eval-test.json" 2> "$R/eval1.log" ||
  { cat "$R/eval1.log"; fail "eval on test"; }
run_np 2 eval "${STUDENT_SET[@]}" --set train.out_dir="$R/run" --split dev --split test --json \
  > "$R/eval-sets.json" 2> "$R/eval2.log" || { cat "$R/eval2.log"; fail "eval on dev and test"; }

"$DISTILL" report "$R/run" --eval "$R/eval-sets.json" > "$R/report1.log" 2>&1 || { cat "$R/report1.log"; fail "report"; }
PAGE="$R/run/report.html"
[ -s "$PAGE" ] || fail "no $PAGE"
run_np 2 report "$R/run" --eval "$R/eval-sets.json" -o "$R/again/page.html" > "$R/report2.log" 2>&1 ||
  { cat "$R/report2.log"; fail "report on 2 ranks"; }
cmp "$PAGE" "$R/again/page.html" || fail "the same inputs gave different pages"

# The page holds one plot for each kind of metric metrics.jsonl has (read here from the file), the
# eval table with a row per evaluated set, and nothing that reaches outside the page.
"$PY" - "$R/run/metrics.jsonl" "$PAGE" > "$R/expected_plots" <<'PY'
import json, re, sys
train, evals = [], []
for line in open(sys.argv[1]):
    if line.strip():
        j = json.loads(line)
        (train if "loss" in j else evals if "eval_split" in j else []).append(j)
def has(rows, *keys):
    return any(isinstance(r.get(k), (int, float)) for r in rows for k in keys)
def varies(key):
    return len({r[key] for r in train if isinstance(r.get(key), (int, float))}) > 1
errors = lambda k: any(w in ("kl", "mse", "mae", "rmse", "loss", "ce", "risk", "error") for w in k.split("_")[1:])
dev = {k for r in evals for k, v in r.items() if k.startswith("dev_") and isinstance(v, (int, float))}
want = {"plot-loss": has(train, "loss", "hard_ce", "soft_kl", "hidden", "attention"),
        "plot-dev": any(not errors(k) for k in dev), "plot-dev-errors": any(errors(k) for k in dev),
        "plot-lr": has(train, "lr"), "plot-schedule": any(varies(k) for k in ("alpha", "beta", "temperature")),
        "plot-throughput": has(train, "samples_per_s"),
        "plot-waits": has(train, "input_wait_share", "comm_wait_share"), "plot-grad-norm": has(train, "grad_norm")}
page = open(sys.argv[2]).read()
got = re.findall(r'<svg[^>]*class="plot" id="([^"]+)"', page)
expected = sorted(k for k, v in want.items() if v)
assert sorted(got) == expected, f"plots {sorted(got)}, expected {expected}"
assert len(train) == 40 and evals, f"{len(train)} train lines, {len(evals)} evaluation lines"
for needed in ("plot-loss", "plot-dev", "plot-lr", "plot-grad-norm"):
    assert needed in got, needed
rows = re.search(r'<table class="eval">(.*?)</table>', page, re.S).group(1).count("<tr>") - 1
assert rows == 3, f"{rows} eval rows, expected 3 (test; dev and test)"
for bad in ("<script", "href=", "src=", "<link", "@import"):
    assert bad not in page, f"the page holds {bad}"
assert '<table class="summary">' in page
print(len(expected))
PY
echo "plots: $(cat "$R/expected_plots")"

# Chromium parses the page into as many svg.plot elements, and draws them.
CHROME=("$CHROMIUM" --headless --no-sandbox --disable-gpu --hide-scrollbars --user-data-dir="$R/chromium-profile")
timeout -k 10 120 "${CHROME[@]}" --dump-dom "file://$PAGE" > "$R/dom.html" 2> "$R/chromium-dom.log" ||
  { cat "$R/chromium-dom.log"; fail "chromium --dump-dom"; }
DOM_PLOTS=$(grep -o '<svg[^>]*class="plot"' "$R/dom.html" | wc -l)
[ "$DOM_PLOTS" -eq "$(cat "$R/expected_plots")" ] || fail "the DOM holds $DOM_PLOTS plots, expected $(cat "$R/expected_plots")"
timeout -k 10 120 "${CHROME[@]}" --window-size=1200,3000 --screenshot="$R/report.png" "file://$PAGE" \
  > "$R/chromium-shot.log" 2>&1 || { cat "$R/chromium-shot.log"; fail "chromium --screenshot"; }
"$PY" - "$R/report.png" <<'PY'
import struct, sys, zlib
data = open(sys.argv[1], "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
pos, idat = 8, b""
while pos < len(data):
    n, kind = struct.unpack(">I4s", data[pos:pos + 8])
    body = data[pos + 8:pos + 8 + n]
    if kind == b"IHDR":
        w, h, depth, colour = struct.unpack(">IIBB", body[:10])
    elif kind == b"IDAT":
        idat += body
    pos += 12 + n
assert depth == 8 and colour in (2, 6), f"bit depth {depth}, colour type {colour}"
bpp = 3 if colour == 2 else 4
raw, stride = zlib.decompress(idat), w * bpp
prev, rows, at = bytearray(stride), [], 0
for y in range(h):  # undo the PNG row filters (None, Sub, Up, Average, Paeth)
    f, line = raw[at], bytearray(raw[at + 1:at + 1 + stride])
    at += 1 + stride
    if f == 2:
        line = bytearray((a + b) & 255 for a, b in zip(line, prev))
    elif f in (1, 3, 4):
        for i in range(stride):
            left = line[i - bpp] if i >= bpp else 0
            up, ul = prev[i], prev[i - bpp] if i >= bpp else 0
            if f == 1:
                p = left
            elif f == 3:
                p = (left + up) // 2
            else:
                pa, pb, pc = abs(up - ul), abs(left - ul), abs(left + up - 2 * ul)
                p = left if pa <= pb and pa <= pc else up if pb <= pc else ul
            line[i] = (line[i] + p) & 255
    rows.append(line)
    prev = line
ink = blue = 0
for line in rows:
    for i in range(0, stride, bpp):
        r, g, b = line[i], line[i + 1], line[i + 2]
        ink += r < 200 or g < 200 or b < 200
        blue += abs(r - 0x1f) < 40 and abs(g - 0x77) < 40 and abs(b - 0xb4) < 40
share = ink / (w * h)
print(f"screenshot {w}x{h}: {100 * share:.1f}% ink, {blue} pixels of the first series' blue")
assert share > 0.005, "the screenshot is blank"
assert blue > 500, "no plot lines drawn"
PY

# Nothing to report, and a malformed metrics line, are refused by name.
mkdir -p "$R/empty"
expect_fail empty "$R/empty holds none of metrics.jsonl" -- "$DISTILL" report "$R/empty"
mkdir -p "$R/bad" && head -3 "$R/run/metrics.jsonl" > "$R/bad/metrics.jsonl" && echo '{"step": 4, "loss"' >> "$R/bad/metrics.jsonl"
expect_fail bad_line "$R/bad/metrics.jsonl line 4: not JSON" -- "$DISTILL" report "$R/bad"
[ ! -e "$R/bad/report.html" ] || fail "a page was written for a malformed metrics.jsonl"
echo "report OK"
