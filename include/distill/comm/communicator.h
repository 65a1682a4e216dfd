// Communicator: collectives over a group of ranks, on raw host buffers.
//
// Note [collectives]: every method except rank()/size()/local_size() is a collective: every rank
// of the group must call it, in the same order, with the same count and dtype. A rank that fails
// instead throws, and the top level aborts the whole job (see app/main.cpp), so no rank is left
// waiting.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace distill {

enum class DType { kFloat32, kFloat64, kInt32, kInt64, kUInt8 };
std::size_t dtype_size(DType t);
const char* dtype_name(DType t);  // "float32", "float64", "int32", "int64", "uint8"

enum class ReduceOp { kSum, kAverage, kMax, kMin };
const char* reduce_op_name(ReduceOp op);  // "sum", "average", "max", "min"

// A non-blocking collective in flight. wait() completes it (and applies kAverage's scaling);
// test() lets it progress without blocking and says whether it is done.
class PendingReduce {
 public:
  virtual ~PendingReduce() = default;
  virtual void wait() = 0;
  virtual bool test() = 0;
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // Ranks of this group that share this node; used to size threads.
  virtual int local_size() const = 0;
  // This rank's index among them (picks its GPU).
  virtual int local_rank() const { return 0; }
  // Whether collectives accept buffers in GPU memory (NCCL); host memory is always accepted.
  virtual bool device_memory() const { return false; }

  // In place: data[i] = op over ranks of data[i]. kAverage is defined for floating types only.
  virtual void allreduce(void* data, std::size_t count, DType t, ReduceOp op) = 0;
  // Non-blocking allreduce: `data` must stay alive and untouched until wait(). Collective in
  // start order. The base version reduces at once and returns a completed request.
  virtual std::unique_ptr<PendingReduce> iallreduce(void* data, std::size_t count, DType t, ReduceOp op);
  // data on `root` is copied to every rank.
  virtual void broadcast(void* data, std::size_t count, DType t, int root) = 0;
  // out (size() * count elements) receives every rank's `in` in rank order.
  virtual void allgather(const void* in, void* out, std::size_t count, DType t) = 0;
  virtual void barrier() = 0;
  // A request that is already complete.
  static std::unique_ptr<PendingReduce> completed();
  // Splits the group by `color` (ranks keep their relative order by `key`).
  virtual std::unique_ptr<Communicator> split(int color, int key) = 0;

  // Conveniences built on the primitives above (collectives too).
  void broadcast_string(std::string& s, int root);
  std::vector<std::string> allgather_string(const std::string& s);
  // Throws CommError on every rank if `value` differs between ranks; `what` names it.
  void check_same(const std::string& value, const std::string& what);
  // Logical OR of a flag over ranks.
  bool any(bool flag);
};

// Single-process group: rank 0 of 1.
std::unique_ptr<Communicator> make_local_communicator();

}  // namespace distill
