// Content hashing: 64-bit FNV-1a, stable across platforms and runs. Used for dataset content
// hashes, teacher fingerprints, config hashes and shard digests (integrity, not security).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace distill {

class Hasher {
 public:
  Hasher& update(const void* data, std::size_t bytes);
  Hasher& update(const std::string& s);
  template <typename T>
  Hasher& update_pod(const T& v) {
    return update(&v, sizeof(T));
  }
  std::uint64_t value() const { return h_; }
  // 16 lowercase hex digits.
  std::string hex() const;

 private:
  std::uint64_t h_ = 1469598103934665603ull;
};

std::string hash_hex(const std::string& s);
// Digest of a whole file's bytes; throws distill::Error naming the file if it cannot be read.
std::string file_digest(const std::string& path);

}  // namespace distill
