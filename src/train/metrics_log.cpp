#include "distill/train/metrics_log.h"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "distill/util/error.h"
#include "distill/util/fs.h"

namespace distill {
namespace fs = std::filesystem;

std::string metrics_path(const std::string& out_dir) { return (fs::path(out_dir) / "metrics.jsonl").string(); }

std::string tensorboard_dir(const std::string& out_dir) { return (fs::path(out_dir) / "tb").string(); }

double unix_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::vector<std::pair<std::string, double>> tensorboard_scalars(const nlohmann::json& line) {
  std::vector<std::pair<std::string, double>> out;
  for (const auto& [key, value] : line.items()) {
    if (key == "step" || key == "epoch" || key == "wall_time" || !value.is_number()) continue;
    const double v = value.get<double>();
    if (!std::isfinite(v)) continue;
    if (key.rfind("dev_", 0) == 0)
      out.emplace_back("dev/" + key.substr(4), v);
    else if (key == "alpha" || key == "beta" || key == "temperature")
      out.emplace_back("schedule/" + key, v);
    else
      out.emplace_back("train/" + key, v);
  }
  return out;
}

namespace {

void remove_distill_event_files(const std::string& dir) {
  if (!fs::is_directory(dir)) return;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const auto name = entry.path().filename().string();
    const std::string suffix = ".distill";
    if (name.rfind("events.out.tfevents.", 0) == 0 && name.size() > suffix.size() &&
        name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0)
      fs::remove(entry.path());
  }
}

}  // namespace

std::unique_ptr<EventFileWriter> rewrite_tensorboard(const std::string& out_dir) {
  const auto dir = tensorboard_dir(out_dir);
  remove_distill_event_files(dir);
  const double now = unix_seconds();
  auto writer = std::make_unique<EventFileWriter>(dir, now);
  const auto metrics = metrics_path(out_dir);
  if (!path_exists(metrics)) return writer;
  std::istringstream in(read_file(metrics));
  std::string text;
  for (long number = 1; std::getline(in, text); ++number) {
    if (text.empty()) continue;
    const auto line = nlohmann::json::parse(text, nullptr, false);
    DISTILL_CHECK(line.is_object() && line.contains("step") && line["step"].is_number(), DataError, metrics, " line ",
                  number, ": expected a JSON object with a step");
    const double t = line.contains("wall_time") && line["wall_time"].is_number() ? line["wall_time"].get<double>() : now;
    writer->add(t, line["step"].get<std::int64_t>(), tensorboard_scalars(line));
  }
  return writer;
}

}  // namespace distill
