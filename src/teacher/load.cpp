#include "distill/teacher/load.h"

#include <spdlog/spdlog.h>

#include <filesystem>

#include "distill/model/device.h"
#include "distill/model/load.h"
#include "distill/util/error.h"

namespace distill {

namespace fs = std::filesystem;

LoadedTeacher load_teacher(const std::string& path) {
  LoadedTeacher t;
  if (is_torchscript_path(path)) {
    DISTILL_CHECK(fs::is_regular_file(path), DataError, "TorchScript teacher ", path, " does not exist");
    t.model = load_torchscript_teacher(path);
    t.file = path;
    t.fingerprint = model_fingerprint(path);
  } else {
    auto m = load_model(path);
    t.model = make_network_teacher(m.model);
    t.file = m.file;
    t.fingerprint = m.fingerprint;
  }
  return t;
}

LoadedTeacher load_teacher(const TeacherOptions& o, Communicator& comm) {
  auto t = load_teacher(o.path);
  const auto d = resolve_device(o.device, comm.local_rank(), "teacher.device");
  auto asked = o.precision;
  if (asked == Precision::kFp16 && !d.is_cuda() && o.device == "auto") {  // no GPU here: the portable fallback
    if (comm.rank() == 0) spdlog::warn("teacher.precision: fp16 applies on GPUs only; the CPU runs fp32");
    asked = Precision::kFp32;
  }
  const auto choice = resolve_precision(asked, d.is_cuda(), cpu_isa(), "teacher.precision");
  if (!choice.warning.empty()) {
    const auto speed = cpu_bf16_speed("teacher.precision");  // throws where bf16 cannot run at all
    if (comm.rank() == 0) spdlog::warn("{} ({})", choice.warning, speed);
  }
  const auto precision = scalar_type(choice.precision);
  t.model->place(d, precision);
  t.device = d;
  t.precision = precision;
  comm.check_same(precision_name(precision), "teacher.precision as resolved (the CPUs' bf16 units differ)");
  if (comm.rank() == 0 && (d.is_cuda() || precision != c10::ScalarType::Float))
    spdlog::info("teacher on {} ({}{})", d.str(), precision_name(precision),
                 d.is_cuda() ? std::string() : ", " + cpu_isa().describe());
  return t;
}

std::string teacher_fingerprint(const std::string& path) { return model_fingerprint(path); }

long storable_teacher_layers(const LoadedTeacher& t) {
  const ModelConfig* tc = t.model->config();
  DISTILL_CHECK(tc && tc->kind == ModelKind::kBert, ConfigError,
                "storing hidden states and attention maps needs a BERT "
                "classifier teacher (distill or HF); ",
                t.file, " is a ", tc ? std::string(name(tc->kind)) : t.model->kind());
  return tc->layers;
}

}  // namespace distill
