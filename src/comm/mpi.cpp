#include "distill/comm/mpi.h"

#include <mpi.h>

#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdlib>
#include <map>
#include <mutex>
#include <thread>

#include "distill/util/error.h"

namespace distill {

namespace {

std::string this_host() {
  char h[256] = {0};
  if (::gethostname(h, sizeof(h) - 1) != 0) return "?";
  return h;
}

int world_rank() {
  int r = -1;
  if (mpi_initialized()) MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}

// Turns an MPI return code into a CommError naming the call, the rank and the host.
void mpi_check(int rc, const char* call) {
  if (rc == MPI_SUCCESS) return;
  char msg[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, msg, &len);
  throw CommError(str(call, " failed on rank ", world_rank(), " (", this_host(), "): ", std::string(msg, len)));
}

// Note [MPI watchdog]: MPI collectives have no timeout, so a stopped or stalled peer would hang the
// job until its walltime. Every blocking call of this backend runs inside a CallGuard; once
// mpi_set_timeout has been called, a thread ends the whole job (MPI_Abort) when one call has been in
// flight longer than the timeout, naming the call, the rank and the host.
class CallWatch {
 public:
  static CallWatch& get() {
    static CallWatch w;
    return w;
  }
  void start(double timeout_s) {
    std::lock_guard<std::mutex> l(mu_);
    timeout_ = std::chrono::duration<double>(timeout_s);
    rank_ = world_rank();
    host_ = this_host();
    if (!thread_.joinable()) thread_ = std::thread([this] { loop(); });
    cv_.notify_all();
  }
  void stop() {
    {
      std::lock_guard<std::mutex> l(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }
  std::uint64_t enter(const char* call, std::size_t count, int group_rank, int group_size) {
    std::lock_guard<std::mutex> l(mu_);
    ops_[next_] = Op{call, count, group_rank, group_size, std::chrono::steady_clock::now()};
    return next_++;
  }
  void leave(std::uint64_t id) {
    std::lock_guard<std::mutex> l(mu_);
    ops_.erase(id);
  }

 private:
  struct Op {
    const char* call;
    std::size_t count;
    int group_rank, group_size;
    std::chrono::steady_clock::time_point start;
  };
  ~CallWatch() { stop(); }
  void loop() {
    std::unique_lock<std::mutex> l(mu_);
    while (!stop_) {
      const auto poll = std::min(std::chrono::duration<double>(1.0), timeout_ / 4);
      cv_.wait_for(l, poll, [this] { return stop_; });
      if (stop_ || ops_.empty()) continue;
      const auto& op = ops_.begin()->second;  // the oldest call in flight
      const auto age = std::chrono::steady_clock::now() - op.start;
      if (age < timeout_) continue;
      const std::string line =
          str("distill: error on rank ", rank_, " (", host_, "): ", op.call, " of ", op.count, " elements (rank ",
              op.group_rank, " of a group of ", op.group_size, ") did not complete within ", timeout_.count(),
              " s (train.comm_timeout): a peer is stopped, hung or dead; ending the job\n");
      if (::write(2, line.data(), line.size()) < 0) {
      }
      // MPI_Abort from this thread (the job runs at MPI_THREAD_FUNNELED) may itself block: the alarm
      // ends this process regardless, and mpirun then ends the others.
      ::alarm(10);
      MPI_Abort(MPI_COMM_WORLD, 3);
      std::_Exit(3);
    }
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::uint64_t, Op> ops_;
  std::uint64_t next_ = 0;
  std::chrono::duration<double> timeout_{0};
  int rank_ = -1;
  std::string host_;
  bool stop_ = false;
  std::thread thread_;
};

// Watches one blocking MPI call for its lifetime (Note [MPI watchdog]).
class CallGuard {
 public:
  CallGuard(const char* call, std::size_t count, int group_rank, int group_size)
      : id_(CallWatch::get().enter(call, count, group_rank, group_size)) {}
  ~CallGuard() { CallWatch::get().leave(id_); }
  CallGuard(const CallGuard&) = delete;
  CallGuard& operator=(const CallGuard&) = delete;

 private:
  std::uint64_t id_;
};

MPI_Datatype mpi_type(DType t) {
  switch (t) {
    case DType::kFloat32:
      return MPI_FLOAT;
    case DType::kFloat64:
      return MPI_DOUBLE;
    case DType::kInt32:
      return MPI_INT32_T;
    case DType::kInt64:
      return MPI_INT64_T;
    case DType::kUInt8:
      return MPI_UINT8_T;
  }
  return MPI_BYTE;
}

MPI_Op mpi_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum:
    case ReduceOp::kAverage:
      return MPI_SUM;
    case ReduceOp::kMax:
      return MPI_MAX;
    case ReduceOp::kMin:
      return MPI_MIN;
  }
  return MPI_SUM;
}

// An MPI_Iallreduce in flight; kAverage divides after completion, as allreduce does.
class MpiPending : public PendingReduce {
 public:
  MpiPending(void* data, std::size_t count, DType t, int divide, int rank, int size)
      : data_(data), count_(count), t_(t), divide_(divide), rank_(rank), size_(size) {}
  ~MpiPending() override {
    if (done_) return;
    CallGuard g("MPI_Wait on MPI_Iallreduce", count_, rank_, size_);
    MPI_Wait(&req, MPI_STATUS_IGNORE);  // never leave MPI writing into freed memory
  }
  void wait() override {
    if (done_) return;
    {
      CallGuard g("MPI_Wait on MPI_Iallreduce", count_, rank_, size_);
      mpi_check(MPI_Wait(&req, MPI_STATUS_IGNORE), "MPI_Wait");
    }
    finish();
  }
  bool test() override {
    if (done_) return true;
    int flag = 0;
    mpi_check(MPI_Test(&req, &flag, MPI_STATUS_IGNORE), "MPI_Test");
    if (flag) finish();
    return done_;
  }
  MPI_Request req = MPI_REQUEST_NULL;

 private:
  void finish() {
    done_ = true;
    if (divide_ <= 1) return;
    if (t_ == DType::kFloat32) {
      auto* p = static_cast<float*>(data_);
      const float inv = 1.0f / static_cast<float>(divide_);
      for (std::size_t i = 0; i < count_; ++i) p[i] *= inv;
    } else {
      auto* p = static_cast<double*>(data_);
      const double inv = 1.0 / divide_;
      for (std::size_t i = 0; i < count_; ++i) p[i] *= inv;
    }
  }
  void* data_;
  std::size_t count_;
  DType t_;
  int divide_;
  int rank_, size_;
  bool done_ = false;
};

class MpiCommunicator final : public Communicator {
 public:
  // Takes ownership of `comm` unless it is MPI_COMM_WORLD.
  explicit MpiCommunicator(MPI_Comm comm) : comm_(comm) {
    mpi_check(MPI_Comm_rank(comm_, &rank_), "MPI_Comm_rank");
    mpi_check(MPI_Comm_size(comm_, &size_), "MPI_Comm_size");
    MPI_Comm node;
    mpi_check(MPI_Comm_split_type(comm_, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node), "MPI_Comm_split_type");
    mpi_check(MPI_Comm_size(node, &local_size_), "MPI_Comm_size");
    mpi_check(MPI_Comm_rank(node, &local_rank_), "MPI_Comm_rank");
    MPI_Comm_free(&node);
  }
  ~MpiCommunicator() override {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized && comm_ != MPI_COMM_WORLD) MPI_Comm_free(&comm_);
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  int local_size() const override { return local_size_; }
  int local_rank() const override { return local_rank_; }

  void allreduce(void* data, std::size_t count, DType t, ReduceOp op) override {
    DISTILL_CHECK(op != ReduceOp::kAverage || t == DType::kFloat32 || t == DType::kFloat64, CommError,
                  "allreduce average needs a floating dtype");
    {
      CallGuard g("MPI_Allreduce", count, rank_, size_);
      mpi_check(MPI_Allreduce(MPI_IN_PLACE, data, static_cast<int>(count), mpi_type(t), mpi_op(op), comm_),
                "MPI_Allreduce");
    }
    if (op == ReduceOp::kAverage) {
      if (t == DType::kFloat32) {
        auto* p = static_cast<float*>(data);
        const float inv = 1.0f / static_cast<float>(size_);
        for (std::size_t i = 0; i < count; ++i) p[i] *= inv;
      } else {
        auto* p = static_cast<double*>(data);
        const double inv = 1.0 / size_;
        for (std::size_t i = 0; i < count; ++i) p[i] *= inv;
      }
    }
  }
  std::unique_ptr<PendingReduce> iallreduce(void* data, std::size_t count, DType t, ReduceOp op) override {
    DISTILL_CHECK(op != ReduceOp::kAverage || t == DType::kFloat32 || t == DType::kFloat64, CommError,
                  "allreduce average needs a floating dtype");
    auto r = std::make_unique<MpiPending>(data, count, t, op == ReduceOp::kAverage ? size_ : 1, rank_, size_);
    mpi_check(MPI_Iallreduce(MPI_IN_PLACE, data, static_cast<int>(count), mpi_type(t), mpi_op(op), comm_, &r->req),
              "MPI_Iallreduce");
    return r;
  }
  void broadcast(void* data, std::size_t count, DType t, int root) override {
    DISTILL_CHECK(root >= 0 && root < size_, CommError, "broadcast root ", root, " out of range for ", size_, " ranks");
    CallGuard g("MPI_Bcast", count, rank_, size_);
    mpi_check(MPI_Bcast(data, static_cast<int>(count), mpi_type(t), root, comm_), "MPI_Bcast");
  }
  void allgather(const void* in, void* out, std::size_t count, DType t) override {
    CallGuard g("MPI_Allgather", count, rank_, size_);
    mpi_check(MPI_Allgather(in, static_cast<int>(count), mpi_type(t), out, static_cast<int>(count), mpi_type(t), comm_),
              "MPI_Allgather");
  }
  void barrier() override {
    CallGuard g("MPI_Barrier", 0, rank_, size_);
    mpi_check(MPI_Barrier(comm_), "MPI_Barrier");
  }
  std::unique_ptr<Communicator> split(int color, int key) override {
    MPI_Comm sub;
    CallGuard g("MPI_Comm_split", 1, rank_, size_);
    mpi_check(MPI_Comm_split(comm_, color, key, &sub), "MPI_Comm_split");
    return std::make_unique<MpiCommunicator>(sub);
  }

 private:
  MPI_Comm comm_;
  int rank_ = 0, size_ = 1, local_size_ = 1, local_rank_ = 0;
};

}  // namespace

void mpi_init(int* argc, char*** argv) {
  if (mpi_initialized()) return;
  int provided = 0;
  mpi_check(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
  // Errors come back as codes, which mpi_check turns into exceptions.
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
}

bool mpi_initialized() {
  int init = 0;
  MPI_Initialized(&init);
  return init != 0;
}

void mpi_set_timeout(double seconds) {
  DISTILL_CHECK(seconds > 0, ConfigError, "the collective timeout must be positive, got ", seconds);
  if (mpi_initialized()) CallWatch::get().start(seconds);
}

void mpi_finalize() {
  CallWatch::get().stop();
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (mpi_initialized() && !finalized) MPI_Finalize();
}

void mpi_abort(int code) {
  if (mpi_initialized()) MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code);
}

std::unique_ptr<Communicator> make_world_communicator() {
  DISTILL_CHECK(mpi_initialized(), CommError, "MPI is not initialised");
  return std::make_unique<MpiCommunicator>(MPI_COMM_WORLD);
}

}  // namespace distill
