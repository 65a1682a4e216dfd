// Watchdog: a thread that watches collectives in flight and ends the job when one of them does not
// complete within a timeout, or when the backend reports an asynchronous error, so that a dead peer
// ends the job instead of hanging it. Backend-neutral (no CUDA here): callers pass how to ask
// whether an operation is done and how to fail.
#pragma once
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>

namespace distill {

class Watchdog {
 public:
  // `async_error` returns "" while all is well, else a description (polled every `poll_s`).
  // `on_fail` is called at most once, from the watchdog thread, with the reason; it is expected to
  // abort the backend and end the process (tests may record the reason instead).
  Watchdog(double timeout_s, double poll_s, std::function<std::string()> async_error,
           std::function<void(const std::string&)> on_fail);
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;
  ~Watchdog();

  // Watches an operation; `done` is called from the watchdog thread until it returns true.
  void watch(std::string what, std::function<bool()> done);
  // Operations still watched.
  std::size_t pending() const;
  bool failed() const;

 private:
  void loop();
  struct Op {
    std::string what;
    std::function<bool()> done;
    std::chrono::steady_clock::time_point started;
  };
  const std::chrono::duration<double> timeout_, poll_;
  std::function<std::string()> async_error_;
  std::function<void(const std::string&)> on_fail_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::uint64_t, Op> ops_;
  std::uint64_t next_ = 0;
  bool stop_ = false, failed_ = false;
  std::thread thread_;
};

}  // namespace distill
