// Assembles model inputs, labels and teacher targets for a list of example rows.
#pragma once
#include <cstdint>
#include <vector>

#include "distill/data/dataset.h"
#include "distill/model/network.h"
#include "distill/store/reader.h"

namespace distill {

struct Batch {
  ModelInputs inputs;            // token ids (with predict_mask for masked LM) or features
  // [batch] int64; regression: [batch] float32 targets, NaN where unlabeled (Note [regression]);
  // masked LM: [masked tokens], the original ids
  torch::Tensor labels;
  // [batch, classes] float32 from a logits store, [teachers, batch, classes] from several (else undefined)
  torch::Tensor teacher_logits;
  // From an mlm_topk store, per masked token: top-k logits [tokens, k], their vocabulary ids
  // [tokens, k] int64, and logsumexp(z / T) of the full row [tokens].
  torch::Tensor topk_values, topk_indices, topk_lse;
  // From a store with layers: hidden [L + 1] and attentions [L] by teacher layer index, defined
  // only at the stored layers (ModelOutput convention).
  ModelOutput teacher_layers;
};

// The logits `store` holds for `rows`: [rows, classes] float32.
torch::Tensor store_logits(const StoreReader& store, const std::vector<std::int64_t>& rows);

// Every tensor of the batch on `d` (model/network.h's to_device).
void to_device(Batch& b, const c10::Device& d);

// `want_layers`: also read the store's hidden states and attention maps.
Batch make_batch(const DataSplit& split, const std::vector<std::int64_t>& rows, const StoreReader* store,
                 bool want_layers = false);

}  // namespace distill
