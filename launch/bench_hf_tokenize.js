// Hugging Face tokenizers (npm `tokenizers`, Rust) batch-encoding the texts of a TSV column, set up as
// BertTokenizer exactly as tests/fixtures/make_tokenizer_golden.js does (uncased, truncation and
// padding to max_length). Prints one JSON line: texts, seconds, texts/s and the threads allowed.
//   npm install --prefix /tmp/hf-tok tokenizers@0.23.2
//   RAYON_NUM_THREADS=1 NODE_PATH=/tmp/hf-tok/node_modules node launch/bench_hf_tokenize.js VOCAB TSV COLUMN MAXLEN
const fs = require("fs");
const tk = require("tokenizers");

async function main() {
  const [vocab, tsv, column, maxLength] = process.argv.slice(2);
  const lines = fs.readFileSync(tsv, "utf8").split("\n");
  const col = lines[0].split("\t").indexOf(column);
  const texts = lines.slice(1).filter((l) => l.length > 0).map((l) => l.split("\t")[col]);
  const model = await tk.WordPiece.fromFile(vocab, { unkToken: "[UNK]" });
  const t = new tk.Tokenizer(model);
  t.setNormalizer(tk.bertNormalizer({ cleanText: true, handleChineseChars: true, stripAccents: true, lowercase: true }));
  t.setPreTokenizer(tk.bertPreTokenizer());
  t.setPostProcessor(tk.bertProcessing(["[SEP]", t.tokenToId("[SEP]")], ["[CLS]", t.tokenToId("[CLS]")]));
  const n = Number(maxLength);
  t.setTruncation(n, { strategy: "LongestFirst" });
  t.setPadding({ maxLength: n, padId: t.tokenToId("[PAD]"), padToken: "[PAD]" });
  const t0 = process.hrtime.bigint();
  const out = await t.encodeBatch(texts);
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  let tokens = 0;
  for (const e of out) tokens += e.getIds().length;
  console.log(JSON.stringify({ texts: texts.length, seconds: s, texts_per_s: texts.length / s, tokens,
                               rayon_threads: process.env.RAYON_NUM_THREADS || "all" }));
}
main();
