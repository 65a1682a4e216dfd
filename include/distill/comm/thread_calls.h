// The arithmetic of the thread-rank backend (comm/thread.h): one rank's arguments to a collective,
// how two ranks' calls are compared and described, and how the ranks' buffers are combined once
// every rank has joined (in rank order, Note [thread ranks]).
#pragma once
#include <cstddef>
#include <string>
#include <vector>

#include "distill/comm/communicator.h"

namespace distill::thread_calls {

enum class Kind { kAllreduce, kBroadcast, kAllgather, kBarrier, kSplit };

// One rank's arguments to a collective.
struct Call {
  Kind kind = Kind::kBarrier;
  std::size_t count = 0;
  DType t = DType::kUInt8;
  ReduceOp op = ReduceOp::kSum;
  int root = 0;              // broadcast: the root; split: the color
  int key = 0;               // split: the order in the new group
  const void* in = nullptr;  // allgather: this rank's part
  void* data = nullptr;      // allreduce, broadcast: in place; allgather: every part
};

// "allreduce (sum) of 4 float32 elements", ...: for errors.
std::string describe(const Call& c);
// Whether two ranks' calls are the same collective (Note [collectives]).
bool same_call(const Call& a, const Call& b);
// An allreduce of every rank's call: each buffer receives the ranks' values combined in rank order.
void reduce_all(const std::vector<Call>& calls);
// An allgather: each rank's `data` receives every rank's `in`, in rank order.
void gather_all(const std::vector<Call>& calls);

}  // namespace distill::thread_calls
