// The NCCL communicator on one GPU (one rank: a GPU allows no second NCCL rank). Skipped where no
// GPU is visible; built wherever NCCL and the CUDA runtime are found.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <chrono>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "distill/comm/nccl.h"
#include "distill/util/error.h"

namespace distill {
namespace {

#define REQUIRE_GPU() \
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device visible"

template <typename T>
struct DeviceBuffer {
  T* p = nullptr;
  std::size_t n;
  explicit DeviceBuffer(const std::vector<T>& h) : n(h.size()) {
    EXPECT_EQ(cudaMalloc(&p, n * sizeof(T)), cudaSuccess);
    EXPECT_EQ(cudaMemcpy(p, h.data(), n * sizeof(T), cudaMemcpyHostToDevice), cudaSuccess);
  }
  ~DeviceBuffer() { cudaFree(p); }
  std::vector<T> host() const {
    std::vector<T> h(n);
    EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    EXPECT_EQ(cudaMemcpy(h.data(), p, n * sizeof(T), cudaMemcpyDeviceToHost), cudaSuccess);
    return h;
  }
};

std::vector<float> random_floats(std::size_t n, unsigned seed) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d;
  std::vector<float> v(n);
  for (auto& x : v) x = d(g);
  return v;
}

TEST(NcclOneRank, CollectivesOnDeviceMemory) {
  REQUIRE_GPU();
  auto host = make_local_communicator();
  auto nccl = make_nccl_communicator(*host, {});
  EXPECT_TRUE(nccl->device_memory());
  EXPECT_EQ(nccl->size(), 1);
  EXPECT_GE(nccl_version(), 21000);
  const auto x = random_floats(1 << 20, 7);
  for (auto op : {ReduceOp::kSum, ReduceOp::kAverage, ReduceOp::kMax}) {
    DeviceBuffer<float> d(x);
    nccl->allreduce(d.p, d.n, DType::kFloat32, op);
    EXPECT_EQ(d.host(), x);  // one rank: every reduction is the identity, bit for bit
  }
  DeviceBuffer<float> b(x);
  auto pending = nccl->iallreduce(b.p, b.n, DType::kFloat32, ReduceOp::kAverage);
  pending->wait();
  EXPECT_EQ(b.host(), x);
  EXPECT_TRUE(pending->test());
  std::vector<std::int64_t> ints = {1, -2, 3, 1LL << 40};
  DeviceBuffer<std::int64_t> di(ints);
  nccl->allreduce(di.p, di.n, DType::kInt64, ReduceOp::kSum);
  EXPECT_EQ(di.host(), ints);
  DeviceBuffer<float> g(x), out(std::vector<float>(x.size(), -1.0f));
  nccl->allgather(g.p, out.p, g.n, DType::kFloat32);
  EXPECT_EQ(out.host(), x);
  nccl->broadcast(g.p, g.n, DType::kFloat32, 0);
  EXPECT_EQ(g.host(), x);
}

TEST(NcclOneRank, HostMemoryGoesThroughTheHostCommunicator) {
  REQUIRE_GPU();
  auto host = make_local_communicator();
  auto nccl = make_nccl_communicator(*host, {});
  double v[3] = {1.5, 2.5, -3};
  nccl->allreduce(v, 3, DType::kFloat64, ReduceOp::kSum);
  EXPECT_EQ(v[1], 2.5);
  std::string s = "same everywhere";
  nccl->broadcast_string(s, 0);
  nccl->check_same(s, "a string");
  EXPECT_FALSE(nccl->any(false));
}

TEST(NcclOneRank, AverageOfIntegersIsRefused) {
  REQUIRE_GPU();
  auto host = make_local_communicator();
  auto nccl = make_nccl_communicator(*host, {});
  DeviceBuffer<std::int32_t> d(std::vector<std::int32_t>{1, 2});
  EXPECT_THROW(nccl->allreduce(d.p, d.n, DType::kInt32, ReduceOp::kAverage), CommError);
}

// A collective held up on its stream past the timeout is reported, naming the operation and rank,
// and the communicator is aborted.
TEST(NcclOneRank, WatchdogAbortsAHungCollective) {
  REQUIRE_GPU();
  auto host = make_local_communicator();
  cudaStream_t s;
  ASSERT_EQ(cudaStreamCreate(&s), cudaSuccess);
  std::mutex mu;
  std::string reason;
  auto seen = [&] {
    std::lock_guard<std::mutex> l(mu);
    return reason;
  };
  NcclOptions o;
  o.timeout_s = 0.3;
  o.poll_s = 0.02;
  o.current_stream = [s]() -> void* { return s; };
  o.on_fail = [&](const std::string& r) {
    std::lock_guard<std::mutex> l(mu);
    reason = r;
  };
  {
    auto nccl = make_nccl_communicator(*host, o);
    DeviceBuffer<float> d(random_floats(1024, 3));
    // The stream is busy for 1.5 s before the allreduce may start (a peer that never arrives).
    ASSERT_EQ(cudaLaunchHostFunc(
                  s, [](void*) { std::this_thread::sleep_for(std::chrono::milliseconds(1500)); }, nullptr),
              cudaSuccess);
    nccl->allreduce(d.p, d.n, DType::kFloat32, ReduceOp::kSum);
    for (int i = 0; i < 100 && seen().empty(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    ASSERT_EQ(cudaStreamSynchronize(s), cudaSuccess);
  }
  EXPECT_NE(reason.find("ncclAllReduce of 1024 elements did not complete within 0.3 s"), std::string::npos) << reason;
  EXPECT_NE(reason.find("rank 0 (host "), std::string::npos) << reason;
  cudaStreamDestroy(s);
}

}  // namespace
}  // namespace distill
