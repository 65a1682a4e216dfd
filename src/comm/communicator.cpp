#include "distill/comm/communicator.h"

#include <cstring>

#include "distill/util/error.h"

namespace distill {

std::size_t dtype_size(DType t) {
  switch (t) {
    case DType::kFloat32:
      return 4;
    case DType::kFloat64:
      return 8;
    case DType::kInt32:
      return 4;
    case DType::kInt64:
      return 8;
    case DType::kUInt8:
      return 1;
  }
  return 0;
}

const char* dtype_name(DType t) {
  switch (t) {
    case DType::kFloat32:
      return "float32";
    case DType::kFloat64:
      return "float64";
    case DType::kInt32:
      return "int32";
    case DType::kInt64:
      return "int64";
    case DType::kUInt8:
      return "uint8";
  }
  return "?";
}

const char* reduce_op_name(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum:
      return "sum";
    case ReduceOp::kAverage:
      return "average";
    case ReduceOp::kMax:
      return "max";
    case ReduceOp::kMin:
      return "min";
  }
  return "?";
}

namespace {
class DoneReduce : public PendingReduce {
 public:
  void wait() override {}
  bool test() override { return true; }
};
}  // namespace

std::unique_ptr<PendingReduce> Communicator::completed() { return std::make_unique<DoneReduce>(); }

std::unique_ptr<PendingReduce> Communicator::iallreduce(void* data, std::size_t count, DType t, ReduceOp op) {
  allreduce(data, count, t, op);
  return completed();
}

void Communicator::broadcast_string(std::string& s, int root) {
  std::int64_t n = static_cast<std::int64_t>(s.size());
  broadcast(&n, 1, DType::kInt64, root);
  s.resize(static_cast<std::size_t>(n));
  if (n > 0) broadcast(&s[0], static_cast<std::size_t>(n), DType::kUInt8, root);
}

std::vector<std::string> Communicator::allgather_string(const std::string& s) {
  std::int64_t n = static_cast<std::int64_t>(s.size());
  std::vector<std::int64_t> sizes(size());
  allgather(&n, sizes.data(), 1, DType::kInt64);
  std::int64_t longest = 0;
  for (auto v : sizes) longest = std::max(longest, v);
  std::string padded = s;
  padded.resize(static_cast<std::size_t>(longest));
  std::string all(static_cast<std::size_t>(longest) * size(), '\0');
  if (longest > 0) allgather(padded.data(), &all[0], static_cast<std::size_t>(longest), DType::kUInt8);
  std::vector<std::string> out(size());
  for (int r = 0; r < size(); ++r) out[r] = all.substr(static_cast<std::size_t>(r * longest), sizes[r]);
  return out;
}

void Communicator::check_same(const std::string& value, const std::string& what) {
  auto all = allgather_string(value);
  for (int r = 0; r < size(); ++r) {
    DISTILL_CHECK(all[r] == all[0], CommError, what, " differs between ranks: rank 0 has ", all[0], ", rank ", r,
                  " has ", all[r]);
  }
}

bool Communicator::any(bool flag) {
  std::int32_t v = flag ? 1 : 0;
  allreduce(&v, 1, DType::kInt32, ReduceOp::kMax);
  return v != 0;
}

namespace {

class LocalCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  int local_size() const override { return 1; }
  void allreduce(void*, std::size_t, DType, ReduceOp) override {}
  void broadcast(void*, std::size_t, DType, int root) override {
    DISTILL_CHECK(root == 0, CommError, "broadcast root ", root, " out of range for 1 rank");
  }
  void allgather(const void* in, void* out, std::size_t count, DType t) override {
    if (in != out) std::memcpy(out, in, count * dtype_size(t));
  }
  void barrier() override {}
  std::unique_ptr<Communicator> split(int, int) override { return std::make_unique<LocalCommunicator>(); }
};

}  // namespace

std::unique_ptr<Communicator> make_local_communicator() { return std::make_unique<LocalCommunicator>(); }

}  // namespace distill
