// Bucketed gradient reduction, as PyTorch's DDP does it: parameters are grouped into buckets by
// bytes in reverse order (the last layers' gradients are ready first in backward), a small first
// bucket then about `bucket_bytes` each; a bucket's non-blocking allreduce starts as soon as all
// of its gradients have arrived during backward (autograd hooks), in the same order on every rank;
// finish() waits for the rest and writes the averages into .grad(). Micro-batches accumulate
// locally and only the last one reduces.
//
// Note [row-sparse gradients]: a lookup table (the word embeddings of a classifier, named in
// BucketOptions::row_sparse; host parameters only) gets a gradient that is zero outside the rows
// of the tokens in the batch. It stays out of the buckets; finish() gathers every rank's nonzero
// rows (indices and values) and sums them into zeros in rank order, then scales by 1 / ranks, as
// the bucket average does. The sum is the dense one (for two ranks bit for bit), every rank gets
// the same bits, and a step moves the touched rows instead of the whole table. When the rows
// touched are many (the busiest rank's times the ranks >= half the table), that step reduces the
// table densely instead. The trainer asks for it only when the ranks span nodes: within one node
// the dense table goes through shared memory faster than the rows can be found and gathered.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "distill/comm/communicator.h"

namespace distill {

struct BucketOptions {
  std::int64_t first_bucket_bytes = 1 << 20;  // 1 MiB: the first reduction starts early
  std::int64_t bucket_bytes = 25 << 20;       // 25 MiB afterwards
  // A ready bucket is reduced with the blocking allreduce right in the hook instead of a
  // non-blocking one that completes in finish(). Same results (the same reduction, in the same
  // bucket order); cheaper where the communicator cannot progress on its own (MPI on CPUs).
  bool blocking = false;
  // Note [row-sparse gradients]: indices of 2-D parameters whose gradients are zero outside a few
  // rows (lookup tables); ignored for GPU parameters.
  std::vector<std::size_t> row_sparse;
};

// Buckets of parameter indices for parameters of `bytes[i]` bytes: indices from last to first;
// a bucket closes once it holds at least its byte budget. Literal and deterministic.
std::vector<std::vector<std::size_t>> assign_buckets(const std::vector<std::int64_t>& bytes, const BucketOptions& o);

class GradReducer {
 public:
  // float32 parameters on one device that take part in every step (unused ones reduce zeros). GPU
  // parameters are reduced in place by a communicator with device_memory(), else through pinned
  // host copies of the buckets.
  GradReducer(Communicator& comm, std::vector<torch::Tensor> params, BucketOptions o = {});
  GradReducer(const GradReducer&) = delete;
  GradReducer& operator=(const GradReducer&) = delete;
  ~GradReducer();
  // Before each micro-batch's backward; `last` = this backward ends the step (then reduce). At a
  // step's first micro-batch it clears .grad() of every parameter.
  void prepare(bool last = true);
  // After the last backward: starts buckets that never filled (gradients that did not arrive count
  // as zeros), waits for all, and makes each .grad() a view of its average in the bucket (valid
  // until the next step's backward). Returns the seconds it waited.
  double finish();
  const std::vector<std::vector<std::size_t>>& buckets() const { return buckets_; }
  // Gradients delivered during the last step, per parameter (tests: exactly once).
  const std::vector<int>& arrivals() const { return arrivals_; }
  // Parameters reduced row-sparsely (Note [row-sparse gradients]), and the rows the last step
  // moved for them, summed over the ranks (0 when it reduced them densely).
  const std::vector<std::size_t>& sparse_params() const { return sparse_; }
  std::int64_t sparse_rows_moved() const { return sparse_rows_moved_; }

 private:
  void on_grad(std::size_t param, const torch::Tensor& g);
  void launch(std::size_t bucket);
  void reduce_rows(std::size_t param);
  Communicator& comm_;
  std::vector<torch::Tensor> params_;
  std::vector<std::vector<std::size_t>> buckets_;
  const bool blocking_;
  std::vector<std::size_t> bucket_of_, offset_;  // per parameter: its bucket and offset there
  std::vector<torch::Tensor> flat_;              // per bucket, on the parameters' device
  std::vector<torch::Tensor> staged_;            // per bucket: pinned host copies (GPU tensors, host comm)
  std::vector<std::size_t> pending_;             // per bucket: gradients still to arrive
  std::vector<std::unique_ptr<PendingReduce>> inflight_;
  std::vector<int> arrivals_;
  std::vector<bool> ready_;          // per bucket: all gradients arrived
  std::size_t next_launch_ = 0;      // buckets start strictly in index order
  std::vector<std::size_t> sparse_;  // row-sparse parameters, in parameter order
  std::int64_t sparse_rows_moved_ = 0;
  bool last_ = true, first_micro_ = true;
};

}  // namespace distill
