// A teacher as precompute and the online teacher see it: its options, and loading it onto this
// rank's device.
#pragma once
#include <c10/core/Device.h>

#include <memory>
#include <string>

#include "distill/comm/communicator.h"
#include "distill/model/precision.h"
#include "distill/model/teacher_model.h"
#include "distill/util/options.h"

namespace distill {

struct TeacherOptions {
  // The teacher: a distill model file, checkpoint step dir or checkpoints dir, a Hugging Face
  // directory (config.json + model.safetensors), or a TorchScript file (.pt).
  std::string path;
  long batch_size = 64;                    // inference batch; memory grows linearly
  std::string device = "auto";             // Note [devices]: auto | cpu | cuda | cuda:N
  Precision precision = Precision::kFp32;  // inference autocast: fp32 | bf16 | fp16 (GPUs) | auto
  // Run the teacher inside every student rank instead of reading the store: costs a teacher
  // forward per step, stores nothing; needed for hidden-state and attention losses.
  bool online = false;
  // Further teachers (comma-separated, in the forms of `path`): the student learns from the
  // weighted mean of every teacher's soft targets (Note [several teachers], kd/loss.h).
  std::string extra_paths;

  // The teacher.* keys (teacher.ranks and teacher.stream_timeout are StreamOptions, app/config.h).
  static const OptionTable<TeacherOptions>& options();
};

struct LoadedTeacher {
  std::unique_ptr<TeacherModel> model;
  std::string fingerprint;  // model_fingerprint(path)
  std::string file;
  c10::Device device{c10::kCPU};                       // where it runs (load_teacher with options)
  c10::ScalarType precision = c10::ScalarType::Float;  // its autocast there (resolved teacher.precision)
};

// Loads a teacher in eval mode; errors name the path. With `comm`, places it on the device and
// precision of `o` for this rank (Note [devices]); collective: the ranks must resolve one precision.
LoadedTeacher load_teacher(const std::string& path);
LoadedTeacher load_teacher(const TeacherOptions& o, Communicator& comm);
// The fingerprint load_teacher() would report, without loading the weights.
std::string teacher_fingerprint(const std::string& path);

// The layer count L of a teacher whose hidden states (0..L) and attention maps (1..L) precompute
// can store: a BERT classifier, distill's or Hugging Face's. ConfigError naming the teacher and
// its kind otherwise.
long storable_teacher_layers(const LoadedTeacher& t);

}  // namespace distill
