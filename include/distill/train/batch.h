// Assembles model inputs, labels and (optionally) teacher logits for a list of example rows.
#pragma once
#include <cstdint>
#include <vector>

#include "distill/data/dataset.h"
#include "distill/model/bert.h"
#include "distill/store/reader.h"

namespace distill {

struct Batch {
  BertInputs inputs;
  torch::Tensor labels;          // [batch] int64
  torch::Tensor teacher_logits;  // [batch, classes] float32, undefined without a store
};

Batch make_batch(const TokenSplit& split, const std::vector<std::int64_t>& rows, const StoreReader* store);

}  // namespace distill
