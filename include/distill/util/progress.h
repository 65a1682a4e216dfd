// Progress display with rate and ETA, printed on one rank at a bounded frequency.
#pragma once
#include <chrono>
#include <string>

namespace distill {

class Progress {
 public:
  // `total` units of work; prints only when `enabled` (rank 0), at most every `interval_s` seconds.
  Progress(std::string what, long total, bool enabled, double interval_s = 2.0);
  // Records that `done` units (cumulative) are complete; prints when due or at the end.
  void update(long done);
  double elapsed_s() const;

 private:
  std::string what_;
  long total_;
  bool enabled_;
  double interval_s_;
  std::chrono::steady_clock::time_point start_, last_print_;
};

}  // namespace distill
