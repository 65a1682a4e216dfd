// TeacherOptions (teacher/precompute.h): the teacher.* keys.
#include "distill/teacher/precompute.h"

namespace distill {

const OptionTable<TeacherOptions>& TeacherOptions::options() {
  static const OptionTable<TeacherOptions> table = [] {
    using O = TeacherOptions;
    OptionTable<O> t("teacher");
    t.add("path", &O::path,
          "a distill model file, checkpoint step directory or checkpoints/ directory, a Hugging Face directory "
          "(config.json + model.safetensors) or a TorchScript .pt");
    t.add("batch_size", &O::batch_size, "inference batch of precompute; memory grows linearly")
        .check([](long v) { return v > 0; }, "{key} must be positive");
    t.add("online", &O::online,
          "run the teacher inside every student rank instead of reading a store: a teacher forward per step, "
          "nothing stored; needed for layer maps without a store");
    t.add("extra_paths", &O::extra_paths,
          "further teachers, comma-separated (as path): the student learns from the weighted mean of all "
          "teachers' soft targets (distill.teacher_weights); each has its store in store.extra_paths, or runs online");
    t.add("device", &O::device, "auto, cpu, cuda or cuda:N (see GPUs)");
    t.add("precision", &O::precision, {Precision::kFp32, Precision::kBf16, Precision::kFp16, Precision::kAuto},
          "inference autocast: bf16 (GPUs and CPUs) or fp16 (GPUs); auto = bf16 on GPUs and on CPUs with AMX or "
          "AVX512-BF16, else fp32");
    return t;
  }();
  return table;
}

}  // namespace distill
