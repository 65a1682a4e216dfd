#include "distill/comm/watchdog.h"

#include <vector>

#include "distill/util/error.h"

namespace distill {

Watchdog::Watchdog(double timeout_s, double poll_s, std::function<std::string()> async_error,
                   std::function<void(const std::string&)> on_fail)
    : timeout_(timeout_s), poll_(poll_s), async_error_(std::move(async_error)), on_fail_(std::move(on_fail)) {
  DISTILL_CHECK(timeout_s > 0 && poll_s > 0, ConfigError, "watchdog timeout and poll interval must be positive, got ",
                timeout_s, " and ", poll_s);
  thread_ = std::thread([this] { loop(); });
}

Watchdog::~Watchdog() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void Watchdog::watch(std::string what, std::function<bool()> done) {
  std::lock_guard<std::mutex> l(mu_);
  ops_[next_++] = Op{std::move(what), std::move(done), std::chrono::steady_clock::now()};
}

std::size_t Watchdog::pending() const {
  std::lock_guard<std::mutex> l(mu_);
  return ops_.size();
}

bool Watchdog::failed() const {
  std::lock_guard<std::mutex> l(mu_);
  return failed_;
}

void Watchdog::loop() {
  std::unique_lock<std::mutex> l(mu_);
  while (!stop_) {
    cv_.wait_for(l, poll_, [this] { return stop_; });
    if (stop_ || failed_) continue;
    std::string reason = async_error_ ? async_error_() : std::string();
    const auto now = std::chrono::steady_clock::now();
    for (auto it = ops_.begin(); reason.empty() && it != ops_.end();) {
      if (it->second.done()) {
        it = ops_.erase(it);
      } else if (now - it->second.started > timeout_) {
        reason = str(it->second.what, " did not complete within ", timeout_.count(), " s (a peer died or hangs)");
      } else {
        ++it;
      }
    }
    if (!reason.empty()) {
      failed_ = true;
      l.unlock();
      on_fail_(reason);
      l.lock();
    }
  }
}

}  // namespace distill
