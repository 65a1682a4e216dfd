#include "distill/comm/thread_calls.h"

#include <cstring>
#include <type_traits>

#include "distill/util/error.h"

namespace distill::thread_calls {

namespace {

// a op b; integer sums wrap around, as MPI's do.
template <typename T>
T combine(T a, T b, ReduceOp op) {
  if (op == ReduceOp::kMax) return b > a ? b : a;
  if (op == ReduceOp::kMin) return b < a ? b : a;
  if constexpr (std::is_integral_v<T>) {
    using U = std::make_unsigned_t<T>;
    return static_cast<T>(static_cast<U>(a) + static_cast<U>(b));
  } else {
    return a + b;
  }
}

// Combines the ranks' buffers in rank order (Note [thread ranks]) and writes the result to each.
template <typename T>
void reduce_in_rank_order(const std::vector<Call>& calls) {
  const std::size_t n = calls[0].count;
  const ReduceOp op = calls[0].op;
  const T* first = static_cast<const T*>(calls[0].data);
  std::vector<T> acc(first, first + n);
  for (std::size_t r = 1; r < calls.size(); ++r) {
    const T* x = static_cast<const T*>(calls[r].data);
    for (std::size_t i = 0; i < n; ++i) acc[i] = combine(acc[i], x[i], op);
  }
  if constexpr (std::is_floating_point_v<T>) {
    // As the MPI backend: the sum times 1 / size in the element type.
    const T inv = T(1) / static_cast<T>(calls.size());
    if (op == ReduceOp::kAverage)
      for (auto& v : acc) v *= inv;
  }
  for (const auto& c : calls) std::memcpy(c.data, acc.data(), n * sizeof(T));
}

}  // namespace

std::string describe(const Call& c) {
  switch (c.kind) {
    case Kind::kAllreduce:
      return str("allreduce (", reduce_op_name(c.op), ") of ", c.count, " ", dtype_name(c.t), " elements");
    case Kind::kBroadcast:
      return str("broadcast of ", c.count, " ", dtype_name(c.t), " elements from rank ", c.root);
    case Kind::kAllgather:
      return str("allgather of ", c.count, " ", dtype_name(c.t), " elements");
    case Kind::kBarrier:
      return "barrier";
    case Kind::kSplit:
      return "split";
  }
  return "?";
}

bool same_call(const Call& a, const Call& b) {
  if (a.kind != b.kind) return false;
  switch (a.kind) {
    case Kind::kAllreduce:
      return a.count == b.count && a.t == b.t && a.op == b.op;
    case Kind::kBroadcast:
      return a.count == b.count && a.t == b.t && a.root == b.root;
    case Kind::kAllgather:
      return a.count == b.count && a.t == b.t;
    default:
      return true;
  }
}

void reduce_all(const std::vector<Call>& calls) {
  if (calls[0].count == 0) return;
  switch (calls[0].t) {
    case DType::kFloat32:
      return reduce_in_rank_order<float>(calls);
    case DType::kFloat64:
      return reduce_in_rank_order<double>(calls);
    case DType::kInt32:
      return reduce_in_rank_order<std::int32_t>(calls);
    case DType::kInt64:
      return reduce_in_rank_order<std::int64_t>(calls);
    case DType::kUInt8:
      return reduce_in_rank_order<std::uint8_t>(calls);
  }
}

void gather_all(const std::vector<Call>& calls) {
  const std::size_t bytes = calls[0].count * dtype_size(calls[0].t);
  if (bytes == 0) return;
  std::string all(bytes * calls.size(), '\0');  // apart: a rank's `in` may lie in its `data`
  for (std::size_t r = 0; r < calls.size(); ++r) std::memcpy(&all[r * bytes], calls[r].in, bytes);
  for (const auto& c : calls) std::memcpy(c.data, all.data(), all.size());
}

}  // namespace distill::thread_calls
