// Prefetcher: a loader thread that makes the next batches (data set rows, soft targets read from
// the HDF5 store) while the current step computes, `depth` batches ahead in a bounded queue. The
// batches come out in step order, exactly those a synchronous loop would make; a producer error
// is rethrown by next(). Only the loader thread reads the store while it runs (HDF5 is not
// thread-safe).
#pragma once
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>

#include "distill/data/batch.h"

namespace distill {

class Prefetcher {
 public:
  // produce(i) makes the batch of the i-th step, called for i = first, first + 1, ..., last - 1 in
  // order on the loader thread.
  Prefetcher(std::function<Batch(std::int64_t)> produce, std::int64_t first, std::int64_t last, int depth = 2);
  Prefetcher(const Prefetcher&) = delete;
  Prefetcher& operator=(const Prefetcher&) = delete;
  ~Prefetcher();
  // The next step's batch; blocks until it is made. `waited_s` receives the seconds blocked.
  Batch next(double* waited_s = nullptr);

 private:
  void loop();
  std::function<Batch(std::int64_t)> produce_;
  std::int64_t next_, last_;
  const std::size_t depth_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Batch> queue_;
  std::exception_ptr error_;
  bool stop_ = false;
  bool producing_ = false;  // a batch taken from next_ is being made (not yet queued)
  std::thread thread_;
};

}  // namespace distill
