// The batches of one rank, step after step: the sampler's rows (data/sampler.h), joined with their
// soft targets and stored teacher layers from the store (make_batch), made ahead on a loader thread
// (data/prefetch.h) when asked. The batches are exactly those of a synchronous walk over the
// sampler's cursors from the starting one (Note [exact resume]).
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "distill/data/batch.h"
#include "distill/data/dataset.h"
#include "distill/data/prefetch.h"
#include "distill/data/sampler.h"
#include "distill/store/reader.h"

namespace distill {

struct LoaderOptions {
  bool store_layers = false;  // also read the store's hidden states and attention maps
  // The stores of further teachers (logits stores of the same rows; must outlive the loader): the
  // batch's teacher_logits become [1 + more_stores, batch, classes] (Note [several teachers]).
  std::vector<const StoreReader*> more_stores;
  int prefetch = 2;           // batches made ahead on a loader thread; 0 = made in next(), on the caller's thread
  // Streaming (store still being written): blocks until the shards holding `rows` of `epoch` are
  // committed and returns the seconds it waited; empty = the store is complete.
  std::function<double(std::int64_t epoch, const std::vector<std::int64_t>& rows)> wait_for_rows;
};

class Loader {
 public:
  // The batches of steps first, first + 1, ..., last - 1, the first one at `cursor`. `split` and
  // `store` (null: no soft targets) must outlive the loader; with prefetch, only the loader thread
  // reads the store while the loader lives.
  Loader(const DataSplit& split, DistributedSampler sampler, const StoreReader* store, LoaderOptions o, Cursor cursor,
         std::int64_t first, std::int64_t last);
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;
  ~Loader();
  // The next step's batch. `waited_s` receives the seconds spent waiting for the loader thread
  // (0 without one); a loader thread's error is rethrown here.
  Batch next(double* waited_s = nullptr);
  // Seconds wait_for_rows has waited so far.
  double stream_wait_seconds() const { return stream_wait_.load(); }

 private:
  Batch make();  // the batch at cursor_, then advances it
  const DataSplit& split_;
  DistributedSampler sampler_;
  const StoreReader* store_;
  LoaderOptions o_;
  Cursor cursor_;
  std::atomic<double> stream_wait_{0};
  std::unique_ptr<Prefetcher> prefetcher_;  // last: its thread stops before the members it uses go
};

}  // namespace distill
