#include "distill/io/tensorboard.h"

#include <isa-l/crc.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>

#include "distill/util/error.h"
#include "distill/util/fs.h"
#include "distill/util/log.h"
#include "tb_event.pb.h"

// Note [tensorboard events]: an event file is a sequence of TFRecords, each one serialized
// tensorflow.Event; the first holds file_version "brain.Event:2", each later one a Summary of
// simple_value scalars at a step. TensorBoard reads every events.out.tfevents.* file of a
// directory. The protobufs come from tb_event.proto (Debian's libprotobuf), the CRC32C from ISA-L
// (Debian's libisal). The trainer keeps tb/ equal to metrics.jsonl: it rewrites the file from the
// kept lines when a run starts or resumes, then appends each new line (train/step_log.h).

namespace distill {

std::uint32_t crc32c(const std::string& data) {
  // ISA-L's iSCSI CRC is CRC32C without the final inversion.
  auto* bytes = reinterpret_cast<unsigned char*>(const_cast<char*>(data.data()));
  return ~crc32_iscsi(bytes, static_cast<int>(data.size()), 0xFFFFFFFFu);
}

std::uint32_t masked_crc32c(const std::string& data) {
  const std::uint32_t c = crc32c(data);
  return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}

namespace {

std::string little_endian(std::uint64_t v, int bytes) {
  std::string s(bytes, '\0');
  for (int i = 0; i < bytes; ++i) s[i] = static_cast<char>((v >> (8 * i)) & 0xff);
  return s;
}

std::string serialized(const tensorflow::Event& e) {
  std::string out;
  DISTILL_CHECK(e.SerializeToString(&out), Error, "cannot serialize a TensorBoard event at step ", e.step());
  return out;
}

}  // namespace

std::string tf_record(const std::string& data) {
  const std::string length = little_endian(data.size(), 8);
  return length + little_endian(masked_crc32c(length), 4) + data + little_endian(masked_crc32c(data), 4);
}

std::string file_version_event(double wall_time) {
  tensorflow::Event e;
  e.set_wall_time(wall_time);
  e.set_file_version("brain.Event:2");
  return serialized(e);
}

std::string scalars_event(double wall_time, std::int64_t step,
                          const std::vector<std::pair<std::string, double>>& scalars) {
  tensorflow::Event e;
  e.set_wall_time(wall_time);
  e.set_step(step);
  auto* summary = e.mutable_summary();
  for (const auto& [tag, value] : scalars) {
    auto* v = summary->add_value();
    v->set_tag(tag);
    v->set_simple_value(static_cast<float>(value));
  }
  return serialized(e);
}

EventFileWriter::EventFileWriter(const std::string& dir, double wall_time) {
  std::filesystem::create_directories(dir);
  char name[64];
  std::snprintf(name, sizeof(name), "%lld", static_cast<long long>(std::floor(wall_time)));
  path_ = (std::filesystem::path(dir) /
           str("events.out.tfevents.", name, ".", host_name(), ".", static_cast<long>(::getpid()), ".distill"))
              .string();
  append_line(path_, tf_record(file_version_event(wall_time)));
}

void EventFileWriter::add(double wall_time, std::int64_t step,
                          const std::vector<std::pair<std::string, double>>& scalars) {
  if (scalars.empty()) return;
  append_line(path_, tf_record(scalars_event(wall_time, step, scalars)));
}

}  // namespace distill
