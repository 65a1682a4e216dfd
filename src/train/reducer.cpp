#include "distill/train/reducer.h"

#include <algorithm>
#include <chrono>

#include "distill/util/error.h"

namespace distill {

std::vector<std::vector<std::size_t>> assign_buckets(const std::vector<std::int64_t>& bytes, const BucketOptions& o) {
  DISTILL_CHECK(o.first_bucket_bytes > 0 && o.bucket_bytes > 0, ConfigError, "bucket sizes must be positive");
  std::vector<std::vector<std::size_t>> out;
  std::vector<std::size_t> cur;
  std::int64_t filled = 0;
  for (std::size_t k = bytes.size(); k-- > 0;) {
    cur.push_back(k);
    filled += bytes[k];
    if (filled >= (out.empty() ? o.first_bucket_bytes : o.bucket_bytes)) {
      out.push_back(std::move(cur));
      cur.clear();
      filled = 0;
    }
  }
  if (!cur.empty()) out.push_back(std::move(cur));
  return out;
}

GradReducer::GradReducer(Communicator& comm, std::vector<torch::Tensor> params, BucketOptions o)
    : comm_(comm), params_(std::move(params)), blocking_(o.blocking) {
  std::vector<std::int64_t> bytes;
  std::vector<std::size_t> dense;  // bucketed parameters
  for (std::size_t i = 0; i < params_.size(); ++i) {
    const auto& p = params_[i];
    DISTILL_CHECK(p.scalar_type() == torch::kFloat32, ConfigError, "the gradient reducer takes float32 parameters");
    DISTILL_CHECK(p.device() == params_[0].device(), ConfigError,
                  "the gradient reducer takes parameters on one device");
    const bool sparse = std::find(o.row_sparse.begin(), o.row_sparse.end(), i) != o.row_sparse.end();
    if (sparse && !p.is_cuda() && p.dim() == 2) {
      sparse_.push_back(i);
      continue;
    }
    dense.push_back(i);
    bytes.push_back(p.numel() * 4);
  }
  buckets_ = assign_buckets(bytes, o);
  for (auto& b : buckets_)
    for (auto& k : b) k = dense[k];
  bucket_of_.assign(params_.size(), SIZE_MAX);
  offset_.resize(params_.size());
  for (std::size_t b = 0; b < buckets_.size(); ++b) {
    std::int64_t n = 0;
    for (auto i : buckets_[b]) {
      bucket_of_[i] = b;
      offset_[i] = static_cast<std::size_t>(n);
      n += params_[i].numel();
    }
    flat_.push_back(torch::zeros({n}, params_.empty() ? torch::TensorOptions() : params_[0].options()));
    // Note [device collectives]: a communicator without device memory reduces a host copy.
    if (flat_.back().is_cuda() && !comm_.device_memory())
      staged_.push_back(torch::empty({n}, torch::TensorOptions().pinned_memory(true)));
  }
  pending_.resize(buckets_.size());
  ready_.assign(buckets_.size(), false);
  inflight_.resize(buckets_.size());
  arrivals_.assign(params_.size(), 0);
  for (std::size_t i = 0; i < params_.size(); ++i)
    params_[i].register_hook([this, i](torch::Tensor g) {
      on_grad(i, g);
      return torch::Tensor();  // the gradient itself is unchanged
    });
}

GradReducer::~GradReducer() {
  for (auto& r : inflight_)
    if (r) r->wait();
}

void GradReducer::prepare(bool last) {
  last_ = last;
  for (std::size_t b = 0; b < buckets_.size(); ++b) {
    DISTILL_CHECK(!inflight_[b], CommError, "prepare() while bucket ", b, " is still being reduced; call finish()");
    pending_[b] = buckets_[b].size();
    ready_[b] = false;
  }
  next_launch_ = 0;
  if (first_micro_) {
    std::fill(arrivals_.begin(), arrivals_.end(), 0);
    // The last step left views of the buckets in .grad(): autograd must not accumulate into them.
    for (auto& p : params_) p.mutable_grad() = torch::Tensor();
  }
}

void GradReducer::on_grad(std::size_t i, const torch::Tensor& g) {
  const auto b = bucket_of_[i];
  if (b == SIZE_MAX) {  // row-sparse: autograd accumulates it in .grad(), finish() reduces that
    ++arrivals_[i];
    return;
  }
  auto dst = flat_[b].narrow(0, static_cast<std::int64_t>(offset_[i]), params_[i].numel());
  // The step's first gradient of a parameter is copied, later ones (micro-batches) added.
  if (arrivals_[i] == 0)
    dst.copy_(g.reshape(-1));
  else
    dst.add_(g.reshape(-1));
  ++arrivals_[i];
  if (--pending_[b] == 0 && last_) {
    // Collectives must start in the same order everywhere: bucket order, not arrival order.
    ready_[b] = true;
    while (next_launch_ < buckets_.size() && ready_[next_launch_]) launch(next_launch_++);
  }
  // Let reductions already in flight progress while backward goes on.
  for (auto& r : inflight_)
    if (r) r->test();
}

void GradReducer::launch(std::size_t b) {
  // Parameters whose gradient never arrived this step (unused) contribute zeros.
  for (auto i : buckets_[b])
    if (arrivals_[i] == 0) flat_[b].narrow(0, static_cast<std::int64_t>(offset_[i]), params_[i].numel()).zero_();
  auto& buf = staged_.empty() ? flat_[b] : staged_[b];
  if (!staged_.empty()) buf.copy_(flat_[b]);  // synchronous device-to-host copy
  if (blocking_) {
    comm_.allreduce(buf.data_ptr<float>(), static_cast<std::size_t>(buf.numel()), DType::kFloat32, ReduceOp::kAverage);
    inflight_[b] = Communicator::completed();
    return;
  }
  inflight_[b] = comm_.iallreduce(buf.data_ptr<float>(), static_cast<std::size_t>(buf.numel()), DType::kFloat32,
                                  ReduceOp::kAverage);
}

namespace {
// Indices of the rows of `g` ([rows, width]) with a nonzero (or non-finite) value, ascending.
torch::Tensor nonzero_rows(const torch::Tensor& g) {
  const auto any = g.any(1).contiguous();
  const bool* a = any.data_ptr<bool>();
  std::vector<std::int64_t> rows;
  for (std::int64_t r = 0; r < any.size(0); ++r)
    if (a[r]) rows.push_back(r);
  return torch::tensor(rows, torch::kInt64);
}
}  // namespace

void GradReducer::reduce_rows(std::size_t i) {
  auto& p = params_[i];
  const int world = comm_.size();
  const float inv = 1.0f / static_cast<float>(world);
  // Autograd's accumulated gradient (nothing else holds it), reused for the sum.
  auto g = p.grad().defined() ? p.grad().contiguous() : torch::zeros_like(p);
  // Non-finite values count as nonzero, so a NaN reaches the step's checks as it would densely.
  const auto rows = nonzero_rows(g);
  std::int64_t most = rows.size(0);
  comm_.allreduce(&most, 1, DType::kInt64, ReduceOp::kMax);
  if (most * world * 2 >= p.size(0)) {  // dense is cheaper: the bucket's reduction
    comm_.allreduce(g.data_ptr<float>(), static_cast<std::size_t>(g.numel()), DType::kFloat32, ReduceOp::kAverage);
    p.mutable_grad() = g;
    return;
  }
  const std::int64_t width = p.size(1);
  auto idx = torch::full({most}, -1, torch::kInt64);
  auto vals = torch::zeros({most, width});
  idx.narrow(0, 0, rows.size(0)).copy_(rows);
  vals.narrow(0, 0, rows.size(0)).copy_(g.index_select(0, rows));
  auto all_idx = torch::empty({world, most}, torch::kInt64);
  auto all_vals = torch::empty({world, most, width});
  if (most > 0) {
    comm_.allgather(idx.data_ptr<std::int64_t>(), all_idx.data_ptr<std::int64_t>(), static_cast<std::size_t>(most),
                    DType::kInt64);
    comm_.allgather(vals.data_ptr<float>(), all_vals.data_ptr<float>(), static_cast<std::size_t>(most * width),
                    DType::kFloat32);
  }
  g.index_fill_(0, rows, 0);  // all zeros now: the sum starts from them
  std::vector<torch::Tensor> touched;
  for (int r = 0; r < world; ++r) {
    const auto n = all_idx[r].ge(0).sum().item<std::int64_t>();  // a rank's rows come first, then padding
    if (n == 0) continue;
    touched.push_back(all_idx[r].narrow(0, 0, n));
    g.index_add_(0, touched.back(), all_vals[r].narrow(0, 0, n));
    sparse_rows_moved_ += n;
  }
  if (!touched.empty()) {
    const auto u = std::get<0>(at::_unique(torch::cat(touched)));
    g.index_copy_(0, u, g.index_select(0, u).mul_(static_cast<double>(inv)));  // the average, as kAverage
  }
  p.mutable_grad() = g;
}

double GradReducer::finish() {
  if (!last_) {
    first_micro_ = false;
    return 0.0;
  }
  const auto t0 = std::chrono::steady_clock::now();
  // Same order on every rank: buckets that never filled start now, in bucket order.
  while (next_launch_ < buckets_.size()) launch(next_launch_++);
  torch::NoGradGuard g;
  for (std::size_t b = 0; b < buckets_.size(); ++b) {
    inflight_[b]->wait();
    inflight_[b].reset();
    if (!staged_.empty()) flat_[b].copy_(staged_[b]);
    for (auto i : buckets_[b]) {
      auto& p = params_[i];
      auto view = flat_[b].narrow(0, static_cast<std::int64_t>(offset_[i]), p.numel()).view(p.sizes());
      // The gradient becomes a view of its bucket (no copy); the bucket is next written in the
      // following step's backward, after the optimizer has used it.
      p.mutable_grad() = view;
    }
  }
  sparse_rows_moved_ = 0;
  for (auto i : sparse_) reduce_rows(i);
  first_micro_ = true;
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace distill
