#include "distill/train/checkpoint.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "distill/util/error.h"
#include "distill/util/fs.h"

namespace distill {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::string checkpoints_dir(const std::string& out_dir) {
  return (std::filesystem::path(out_dir) / "checkpoints").string();
}

std::string step_dir_name(std::int64_t step) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "step-%08lld", static_cast<long long>(step));
  return buf;
}

std::vector<std::string> list_checkpoints(const std::string& root) {
  std::vector<std::string> out;
  if (!fs::exists(root)) return out;
  for (const auto& e : fs::directory_iterator(root)) {
    const auto name = e.path().filename().string();
    if (e.is_directory() && name.rfind("step-", 0) == 0 && name.find(".tmp") == std::string::npos) out.push_back(name);
  }
  std::sort(out.begin(), out.end());
  return out;
}

void save_checkpoint(const std::string& root, const Checkpoint& c, int keep) {
  fs::create_directories(root);
  const std::string name = step_dir_name(c.state.step);
  const auto final_dir = fs::path(root) / name;
  const auto tmp_dir = fs::path(root) / (name + ".tmp-" + std::to_string(::getpid()));
  fs::remove_all(tmp_dir);
  fs::create_directories(tmp_dir);
  try {
    save_safetensors((tmp_dir / "model.safetensors").string(), c.model);
    save_safetensors((tmp_dir / "optimizer.safetensors").string(), c.optimizer);
    save_safetensors((tmp_dir / "rng.safetensors").string(), c.rng);
    if (!c.projections.tensors.empty()) save_safetensors((tmp_dir / "projections.safetensors").string(), c.projections);
    const auto& s = c.state;
    json j = {{"schema_version", 1},
              {"step", s.step},
              {"epoch", s.epoch},
              {"epoch_step", s.epoch_step},
              {"best_metric", s.best_metric},
              {"best_step", s.best_step},
              {"evals_since_best", s.evals_since_best},
              {"world_size", s.world_size},
              {"config_hash", s.config_hash},
              {"dataset_hash", s.dataset_hash},
              {"teacher_fingerprint", s.teacher_fingerprint},
              {"config", s.config_yaml},
              {"skipped_steps", s.skipped_steps},
              {"precision", s.precision}};
    write_file_atomic((tmp_dir / "state.json").string(), j.dump(2) + "\n");
    fsync_path(tmp_dir.string());
  } catch (...) {
    std::error_code ec;
    fs::remove_all(tmp_dir, ec);  // a failed save (e.g. a full disk) leaves no partial directory
    throw;
  }
  if (fs::exists(final_dir)) fs::remove_all(final_dir);  // a rerun of the same step replaces it
  rename_durable(tmp_dir.string(), final_dir.string());
  write_file_atomic((fs::path(root) / "latest").string(), name + "\n");
  const auto best = fs::path(root) / "best";
  if (c.state.best_step >= 0 && c.state.best_step == c.state.step) {
    const auto tmp = fs::path(root) / ("best.tmp-" + std::to_string(::getpid()));
    std::error_code ec;
    fs::remove(tmp, ec);
    fs::create_directory_symlink(name, tmp);
    fs::rename(tmp, best);  // atomic: best always names a whole checkpoint
  }
  std::error_code ec;
  const auto kept = fs::is_symlink(best, ec) ? fs::read_symlink(best, ec).string() : std::string();
  if (keep > 0) {
    auto all = list_checkpoints(root);
    for (std::size_t i = 0; i + keep < all.size(); ++i)
      if (all[i] != name && all[i] != kept) fs::remove_all(fs::path(root) / all[i]);
  }
}

std::optional<Checkpoint> load_latest_checkpoint(const std::string& root) {
  const auto latest = fs::path(root) / "latest";
  if (!fs::exists(latest)) return std::nullopt;
  std::string name = read_file(latest.string());
  while (!name.empty() && (name.back() == '\n' || name.back() == ' ')) name.pop_back();
  Checkpoint c;
  c.dir = (fs::path(root) / name).string();
  DISTILL_CHECK(fs::is_directory(c.dir), DataError, latest.string(), " names ", name, " but ", c.dir,
                " does not exist");
  json j;
  try {
    j = json::parse(read_file((fs::path(c.dir) / "state.json").string()));
    auto& s = c.state;
    s.step = j.at("step").get<std::int64_t>();
    s.epoch = j.at("epoch").get<std::int64_t>();
    s.epoch_step = j.at("epoch_step").get<std::int64_t>();
    s.best_metric = j.at("best_metric").get<double>();
    s.best_step = j.value("best_step", std::int64_t{-1});
    s.evals_since_best = j.value("evals_since_best", std::int64_t{0});
    s.world_size = j.at("world_size").get<std::int64_t>();
    s.config_hash = j.at("config_hash").get<std::string>();
    s.dataset_hash = j.at("dataset_hash").get<std::string>();
    s.teacher_fingerprint = j.at("teacher_fingerprint").get<std::string>();
    s.config_yaml = j.at("config").get<std::string>();
    s.skipped_steps = j.value("skipped_steps", std::int64_t{0});
    s.precision = j.value("precision", std::string());
  } catch (const json::exception& e) {
    throw DataError(str(c.dir, "/state.json is malformed: ", e.what()));
  }
  c.model = load_safetensors((fs::path(c.dir) / "model.safetensors").string());
  c.optimizer = load_safetensors((fs::path(c.dir) / "optimizer.safetensors").string());
  c.rng = load_safetensors((fs::path(c.dir) / "rng.safetensors").string());
  const auto proj = fs::path(c.dir) / "projections.safetensors";
  if (fs::exists(proj)) c.projections = load_safetensors(proj.string());
  return c;
}

}  // namespace distill
