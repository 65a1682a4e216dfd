// The soft-target store (DESIGN.md): a directory of self-describing HDF5 shards named by the
// global example range they hold, plus manifest.json listing the committed shards.
//
// Note [shard commit]: a shard is written under a temporary name "<final>.partial-<rank>",
// flushed, closed, fsynced and renamed. A file under a final name is therefore complete; partial
// files are never read and are deleted and redone by the next precompute.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "distill/io/h5.h"
#include "distill/util/options.h"

namespace distill {

constexpr std::int64_t kStoreSchemaVersion = 1;

// Logits dtype on disk: float16 (half the bytes) or float32 (exact).
enum class StoreDtype { kFloat16, kFloat32 };
// "float16", "float32": the spelling in configs and in shard and manifest metadata.
const char* name(StoreDtype d);

// What the store options in a run config say.
struct StoreOptions {
  std::string path;  // directory of shards; "" = no store (plain supervised training)
  StoreDtype dtype = StoreDtype::kFloat16;
  long shard_size = 1024;        // examples per shard; smaller = finer resume, more files
  long topk = 0;                 // masked LM: teacher logits kept per masked token; 0 = the most
                                 // that fit in 300 bytes per token (64 with uint16 indices)
  long max_bytes = 10737418240;  // precompute refuses a store estimated larger than this (10 GiB)
  long window = 4;               // distill run: the first epoch shuffles within windows of this many shards
  std::string extra_paths;       // the stores of teacher.extra_paths, comma-separated, in the same order
  bool verify = true;            // train: check each shard's digest against manifest.json on open
                                 // (Note [verified stores]); every rank reads the whole store once more

  // The store.* keys.
  static const OptionTable<StoreOptions>& options();
};

// What every shard and the manifest say about themselves.
struct StoreMeta {
  std::int64_t schema_version = kStoreSchemaVersion;
  std::string teacher_fingerprint;  // digest of the teacher's weights file
  std::string dataset_hash;         // content hash of dataset.h5
  std::string split;                // which split of the data set
  // Which targets the shards hold: "logits" ([count, num_labels]) or "mlm_topk" (teacher token
  // logits at masked positions as top-k values and indices plus the row's log-sum-exp).
  std::string targets = "logits";
  std::string dtype = "float16";
  std::int64_t num_labels = 0;
  std::int64_t num_examples = 0;  // of the whole split
  std::int64_t shard_size = 0;
  // mlm_topk: k, the index type and the temperature T of the stored lse = logsumexp(z / T).
  std::int64_t topk = 0;
  std::string index_dtype;
  double temperature = 0;
  // Intermediate targets (float16, by teacher layer index): hidden states [count, seq, hidden_size]
  // and attention maps [count, heads, seq, seq] of the mapped teacher layers only; for the relation
  // loss (distill.attention_loss: relation) the queries, keys and values [count, seq, hidden_size]
  // of each layer in qkv_layers (1..L), before the split into heads.
  std::vector<long> hidden_layers, attention_layers, qkv_layers;
  std::int64_t teacher_layers = 0, hidden_size = 0, heads = 0, seq = 0;
  // teacher.batch_size the targets were computed with: float16 logits can differ in the last bit
  // between batch sizes, so one store holds one batch size. 0 = not recorded (older stores, or a
  // reader that accepts any).
  std::int64_t teacher_batch_size = 0;
  // teacher.precision as resolved (fp32, bf16, fp16): one store holds one, like the batch size.
  // "" = not recorded (older stores, or a reader that accepts any).
  std::string teacher_precision;

  bool has_layers() const { return !hidden_layers.empty() || !attention_layers.empty() || !qkv_layers.empty(); }
};

// The mlm_topk and layer fields as one JSON object (the shard attribute "layout" and manifest key).
std::string layout_json(const StoreMeta& m);
void parse_layout_json(StoreMeta& m, const std::string& json, const std::string& where);

struct ShardRange {
  std::int64_t begin = 0, end = 0;  // global example rows [begin, end) of the split
};

// "shard-000000000-000004095.h5" for [0, 4096).
std::string shard_name(const ShardRange& r);
// The range a shard file name gives: true for exactly the names shard_name() makes.
bool parse_shard_name(const std::string& name, ShardRange* r);
// The ranges that cover [0, n) in shards of `shard_size`.
std::vector<ShardRange> shard_ranges(std::int64_t n, std::int64_t shard_size);
h5::Type store_dtype(const std::string& name);  // throws ConfigError for an unknown name
h5::Type store_dtype(StoreDtype d);

}  // namespace distill
