#include "distill/data/loader.h"

#include <torch/torch.h>

namespace distill {

Loader::Loader(const DataSplit& split, DistributedSampler sampler, const StoreReader* store, LoaderOptions o,
               Cursor cursor, std::int64_t first, std::int64_t last)
    : split_(split), sampler_(std::move(sampler)), store_(store), o_(std::move(o)), cursor_(cursor) {
  if (o_.prefetch > 0)
    prefetcher_ = std::make_unique<Prefetcher>([this](std::int64_t) { return make(); }, first, last, o_.prefetch);
}

Loader::~Loader() = default;

Batch Loader::next(double* waited_s) {
  if (prefetcher_) return prefetcher_->next(waited_s);
  if (waited_s) *waited_s = 0;
  return make();
}

Batch Loader::make() {
  auto rows = sampler_.indices(cursor_);
  if (o_.wait_for_rows) stream_wait_.store(stream_wait_.load() + o_.wait_for_rows(cursor_.epoch, rows));
  auto b = make_batch(split_, rows, store_, o_.store_layers);
  if (!o_.more_stores.empty()) {
    std::vector<torch::Tensor> each{b.teacher_logits};
    for (const auto* s : o_.more_stores) each.push_back(store_logits(*s, rows));
    b.teacher_logits = torch::stack(each);
  }
  cursor_ = sampler_.advance(cursor_);
  return b;
}

}  // namespace distill
