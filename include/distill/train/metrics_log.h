// The run's metrics files: metrics.jsonl (one JSON object per logged step or evaluation) and its
// TensorBoard mirror out_dir/tb (Note [tensorboard events], io/tensorboard.h). Torch-free.
#pragma once
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <utility>
#include <vector>

#include "distill/io/tensorboard.h"

namespace distill {

// `out_dir`/metrics.jsonl: one JSON line per logged step (with "loss") or evaluation (with
// "eval_split" and dev_* values).
std::string metrics_path(const std::string& out_dir);
// `out_dir`/tb.
std::string tensorboard_dir(const std::string& out_dir);

// Seconds since the Unix epoch (an event's and a metrics line's wall_time).
double unix_seconds();

// The scalars of one metrics line, by tag: dev_X is dev/X; alpha, beta and temperature are
// schedule/*; every other number is train/<key>. step, epoch and wall_time are not scalars, and
// non-numbers and non-finite numbers are left out.
std::vector<std::pair<std::string, double>> tensorboard_scalars(const nlohmann::json& line);

// Removes the event files distill wrote in `out_dir`/tb, then writes one new file holding every
// line of `out_dir`/metrics.jsonl (each at its wall_time, or now where a line has none) and
// returns its writer, to append the run's next lines to. Throws DataError naming the file and
// line when a line is not a JSON object with a step.
std::unique_ptr<EventFileWriter> rewrite_tensorboard(const std::string& out_dir);

}  // namespace distill
