// TensorBoard event files (Note [tensorboard events]): scalars as Event/Summary protobufs, each
// framed as a TFRecord with masked CRC32C checksums. Torch-free; no protobuf type in this header.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace distill {

// CRC32C (Castagnoli) of `data`, and TFRecord's masked form of a CRC: rotated right by 15 bits
// plus 0xa282ead8.
std::uint32_t crc32c(const std::string& data);
std::uint32_t masked_crc32c(const std::string& data);

// One TFRecord: length (uint64, little endian), masked CRC of the length bytes, the data, masked
// CRC of the data.
std::string tf_record(const std::string& data);

// A serialized Event holding file_version "brain.Event:2" (every event file starts with it).
std::string file_version_event(double wall_time);
// A serialized Event at `step` with one Summary.Value (tag, simple_value) per scalar.
std::string scalars_event(double wall_time, std::int64_t step,
                          const std::vector<std::pair<std::string, double>>& scalars);

// Appends events to DIR/events.out.tfevents.<seconds>.<host>.<pid>.distill, which it creates
// (with DIR) and starts with the file-version record. Every add() is one checked append of whole
// records, so a crash never leaves a torn record. Not thread-safe.
class EventFileWriter {
 public:
  EventFileWriter(const std::string& dir, double wall_time);
  const std::string& path() const { return path_; }
  void add(double wall_time, std::int64_t step, const std::vector<std::pair<std::string, double>>& scalars);

 private:
  std::string path_;
};

}  // namespace distill
