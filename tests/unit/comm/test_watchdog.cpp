#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

#include "distill/comm/watchdog.h"

namespace distill {
namespace {

using namespace std::chrono_literals;

struct Failures {
  std::mutex mu;
  std::vector<std::string> reasons;
  void add(const std::string& r) {
    std::lock_guard<std::mutex> l(mu);
    reasons.push_back(r);
  }
  std::size_t count() {
    std::lock_guard<std::mutex> l(mu);
    return reasons.size();
  }
};

TEST(Watchdog, CompletedOperationsAreForgottenWithoutFailure) {
  Failures f;
  std::atomic<bool> done{false};
  {
    Watchdog w(0.5, 0.01, nullptr, [&](const std::string& r) { f.add(r); });
    w.watch("allreduce of 4 elements", [&] { return done.load(); });
    std::this_thread::sleep_for(50ms);
    EXPECT_EQ(w.pending(), 1u);
    done = true;
    for (int i = 0; i < 100 && w.pending() > 0; ++i) std::this_thread::sleep_for(10ms);
    EXPECT_EQ(w.pending(), 0u);
    std::this_thread::sleep_for(600ms);  // past the timeout: nothing left to fire
    EXPECT_FALSE(w.failed());
  }
  EXPECT_EQ(f.count(), 0u);
}

TEST(Watchdog, FiresOnceWhenAnOperationOutlivesTheTimeout) {
  Failures f;
  const auto t0 = std::chrono::steady_clock::now();
  Watchdog w(0.2, 0.01, nullptr, [&](const std::string& r) { f.add(r); });
  w.watch("ncclAllReduce of 1024 elements", [] { return false; });
  w.watch("ncclBroadcast of 8 elements", [] { return false; });
  for (int i = 0; i < 300 && f.count() == 0; ++i) std::this_thread::sleep_for(10ms);
  const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_EQ(f.count(), 1u);
  EXPECT_GE(waited, 0.2);
  EXPECT_NE(f.reasons[0].find("ncclAllReduce of 1024 elements did not complete within 0.2 s"), std::string::npos)
      << f.reasons[0];
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(f.count(), 1u);  // at most once
  EXPECT_TRUE(w.failed());
}

TEST(Watchdog, ReportsAsynchronousErrors) {
  Failures f;
  std::atomic<bool> broken{false};
  Watchdog w(
      60, 0.01, [&] { return broken ? std::string("remote process exited") : std::string(); },
      [&](const std::string& r) { f.add(r); });
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(f.count(), 0u);
  broken = true;
  for (int i = 0; i < 200 && f.count() == 0; ++i) std::this_thread::sleep_for(10ms);
  ASSERT_EQ(f.count(), 1u);
  EXPECT_EQ(f.reasons[0], "remote process exited");
}

}  // namespace
}  // namespace distill
