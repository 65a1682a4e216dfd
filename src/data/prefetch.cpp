#include "distill/data/prefetch.h"

#include <chrono>

#include "distill/util/error.h"

namespace distill {

Prefetcher::Prefetcher(std::function<Batch(std::int64_t)> produce, std::int64_t first, std::int64_t last, int depth)
    : produce_(std::move(produce)), next_(first), last_(last), depth_(static_cast<std::size_t>(std::max(1, depth))) {
  thread_ = std::thread([this] { loop(); });
}

Prefetcher::~Prefetcher() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void Prefetcher::loop() {
  while (true) {
    std::int64_t i;
    {
      std::unique_lock<std::mutex> l(mu_);
      cv_.wait(l, [this] { return stop_ || queue_.size() < depth_; });
      if (stop_ || next_ >= last_) return;
      i = next_++;
      producing_ = true;
    }
    try {
      Batch b = produce_(i);
      std::lock_guard<std::mutex> l(mu_);
      queue_.push_back(std::move(b));
      producing_ = false;
    } catch (...) {
      std::lock_guard<std::mutex> l(mu_);
      producing_ = false;
      error_ = std::current_exception();
      cv_.notify_all();
      return;
    }
    cv_.notify_all();
  }
}

Batch Prefetcher::next(double* waited_s) {
  const auto t0 = std::chrono::steady_clock::now();
  std::unique_lock<std::mutex> l(mu_);
  // The last batch may still be in the making after next_ reached last_: wait for it.
  cv_.wait(l, [this] { return !queue_.empty() || error_ || (next_ >= last_ && !producing_); });
  if (waited_s) *waited_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (queue_.empty()) {
    if (error_) std::rethrow_exception(error_);
    throw Error("the prefetcher ran past the last step");
  }
  Batch b = std::move(queue_.front());
  queue_.pop_front();
  cv_.notify_all();
  return b;
}

}  // namespace distill
