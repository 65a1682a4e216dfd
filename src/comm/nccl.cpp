#include "distill/comm/nccl.h"

#include <cuda_runtime.h>
#include <nccl.h>
#include <spdlog/spdlog.h>

#include <cstdlib>

#include "distill/comm/watchdog.h"
#include "distill/util/error.h"
#include "distill/util/log.h"

namespace distill {

namespace {

std::string where(int rank) { return str("rank ", rank, " (host ", host_name(), ")"); }

void cuda_check(cudaError_t e, const char* call, int rank) {
  DISTILL_CHECK(e == cudaSuccess, CommError, call, " failed on ", where(rank), ": ", cudaGetErrorString(e));
}

ncclDataType_t nccl_type(DType t) {
  switch (t) {
    case DType::kFloat32:
      return ncclFloat32;
    case DType::kFloat64:
      return ncclFloat64;
    case DType::kInt32:
      return ncclInt32;
    case DType::kInt64:
      return ncclInt64;
    case DType::kUInt8:
      return ncclUint8;
  }
  throw CommError("unknown dtype for NCCL");
}

ncclRedOp_t nccl_op(ReduceOp op, DType t) {
  switch (op) {
    case ReduceOp::kSum:
      return ncclSum;
    case ReduceOp::kAverage:
      DISTILL_CHECK(t == DType::kFloat32 || t == DType::kFloat64, CommError,
                    "average is defined for floating types only");
      return ncclAvg;
    case ReduceOp::kMax:
      return ncclMax;
    case ReduceOp::kMin:
      return ncclMin;
  }
  throw CommError("unknown reduce op for NCCL");
}

bool on_device(const void* p) {
  cudaPointerAttributes a{};
  if (cudaPointerGetAttributes(&a, p) != cudaSuccess) {
    cudaGetLastError();  // host memory CUDA never saw: not an error worth keeping
    return false;
  }
  return a.type == cudaMemoryTypeDevice || a.type == cudaMemoryTypeManaged;
}

// A CUDA event owned by whoever last holds it (the watchdog, a pending request).
struct Event {
  cudaEvent_t e = nullptr;
  explicit Event(int rank) {
    cuda_check(cudaEventCreateWithFlags(&e, cudaEventDisableTiming), "cudaEventCreate", rank);
  }
  ~Event() { cudaEventDestroy(e); }
  bool done() const { return cudaEventQuery(e) != cudaErrorNotReady; }
};

class NcclPending final : public PendingReduce {
 public:
  NcclPending(std::shared_ptr<Event> done, std::function<cudaStream_t()> current)
      : done_(std::move(done)), current_(std::move(current)) {}
  // Stream-ordered: the caller's stream waits, the host does not.
  void wait() override { cudaStreamWaitEvent(current_(), done_->e, 0); }
  bool test() override { return done_->done(); }

 private:
  std::shared_ptr<Event> done_;
  std::function<cudaStream_t()> current_;
};

class NcclCommunicator final : public Communicator {
 public:
  NcclCommunicator(Communicator& host, const NcclOptions& o, std::unique_ptr<Communicator> owned = nullptr)
      : host_(host), owned_(std::move(owned)), o_(o) {
    const int r = host_.rank();
    cuda_check(cudaSetDevice(o_.device), "cudaSetDevice", r);
    ncclUniqueId id{};
    if (r == 0) check(ncclGetUniqueId(&id), "ncclGetUniqueId");
    host_.broadcast(&id, sizeof(id), DType::kUInt8, 0);
    check(ncclCommInitRank(&comm_, host_.size(), id, r), "ncclCommInitRank");
    cuda_check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate", r);
    watchdog_ = std::make_unique<Watchdog>(
        o_.timeout_s, o_.poll_s,
        [this]() -> std::string {
          ncclResult_t e = ncclSuccess;
          if (ncclCommGetAsyncError(comm_, &e) != ncclSuccess || e == ncclSuccess || e == ncclInProgress) return "";
          return str("NCCL reported an asynchronous error: ", ncclGetErrorString(e));
        },
        [this](const std::string& reason) { fail(reason); });
  }

  ~NcclCommunicator() override {
    watchdog_.reset();
    if (!aborted_) {
      cudaStreamSynchronize(stream_);
      ncclCommDestroy(comm_);
    }
    cudaStreamDestroy(stream_);
  }

  int rank() const override { return host_.rank(); }
  int size() const override { return host_.size(); }
  int local_size() const override { return host_.local_size(); }
  int local_rank() const override { return host_.local_rank(); }
  bool device_memory() const override { return true; }

  void allreduce(void* data, std::size_t count, DType t, ReduceOp op) override {
    if (!on_device(data)) return host_.allreduce(data, count, t, op);
    auto s = current();
    check(ncclAllReduce(data, data, count, nccl_type(t), nccl_op(op, t), comm_, s), "ncclAllReduce");
    watch(s, str("ncclAllReduce of ", count, " elements"));
  }

  std::unique_ptr<PendingReduce> iallreduce(void* data, std::size_t count, DType t, ReduceOp op) override {
    if (!on_device(data)) return host_.iallreduce(data, count, t, op);
    Event ready(rank());
    cuda_check(cudaEventRecord(ready.e, current()), "cudaEventRecord", rank());
    cuda_check(cudaStreamWaitEvent(stream_, ready.e, 0), "cudaStreamWaitEvent", rank());
    check(ncclAllReduce(data, data, count, nccl_type(t), nccl_op(op, t), comm_, stream_), "ncclAllReduce");
    auto done = watch(stream_, str("ncclAllReduce of ", count, " elements (bucket)"));
    return std::make_unique<NcclPending>(std::move(done), [this] { return current(); });
  }

  void broadcast(void* data, std::size_t count, DType t, int root) override {
    if (!on_device(data)) return host_.broadcast(data, count, t, root);
    auto s = current();
    check(ncclBroadcast(data, data, count, nccl_type(t), root, comm_, s), "ncclBroadcast");
    watch(s, str("ncclBroadcast of ", count, " elements from rank ", root));
  }

  void allgather(const void* in, void* out, std::size_t count, DType t) override {
    if (!on_device(out)) return host_.allgather(in, out, count, t);
    auto s = current();
    check(ncclAllGather(in, out, count, nccl_type(t), comm_, s), "ncclAllGather");
    watch(s, str("ncclAllGather of ", count, " elements"));
  }

  void barrier() override { host_.barrier(); }

  std::unique_ptr<Communicator> split(int color, int key) override {
    auto sub = host_.split(color, key);
    auto& ref = *sub;
    return std::make_unique<NcclCommunicator>(ref, o_, std::move(sub));
  }

 private:
  cudaStream_t current() const { return o_.current_stream ? static_cast<cudaStream_t>(o_.current_stream()) : nullptr; }

  void check(ncclResult_t e, const char* call) const {
    if (e == ncclSuccess) return;
    throw CommError(str(call, " failed on ", where(host_.rank()), ": ", ncclGetErrorString(e),
                        comm_ ? str("; ", ncclGetLastError(comm_)) : std::string()));
  }

  // Records an event after the operation just queued on `s` and hands it to the watchdog.
  std::shared_ptr<Event> watch(cudaStream_t s, std::string what) {
    auto ev = std::make_shared<Event>(rank());
    cuda_check(cudaEventRecord(ev->e, s), "cudaEventRecord", rank());
    watchdog_->watch(std::move(what), [ev] { return ev->done(); });
    return ev;
  }

  void fail(const std::string& reason) {
    const std::string msg = str(reason, " on ", where(host_.rank()), "; aborting the NCCL communicator");
    aborted_ = true;
    ncclCommAbort(comm_);
    if (o_.on_fail) return o_.on_fail(msg);
    spdlog::error("{}", msg);
    spdlog::default_logger()->flush();
    std::_Exit(3);  // the launcher ends the other ranks of a job whose process exits without MPI_Finalize
  }

  Communicator& host_;
  std::unique_ptr<Communicator> owned_;
  NcclOptions o_;
  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
  bool aborted_ = false;
  std::unique_ptr<Watchdog> watchdog_;
};

}  // namespace

std::unique_ptr<Communicator> make_nccl_communicator(Communicator& host, const NcclOptions& o) {
  return std::make_unique<NcclCommunicator>(host, o);
}

int nccl_version() {
  int v = 0;
  ncclGetVersion(&v);
  return v;
}

int cuda_device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return n;
}

}  // namespace distill
