#include "distill/util/hash.h"

#include <cstdio>
#include <fstream>
#include <vector>

#include "distill/util/error.h"

namespace distill {

Hasher& Hasher::update(const void* data, std::size_t bytes) {
  const auto* p = static_cast<const unsigned char*>(data);
  std::uint64_t h = h_;
  for (std::size_t i = 0; i < bytes; ++i) {
    h ^= p[i];
    h *= 1099511628211ull;
  }
  h_ = h;
  return *this;
}

Hasher& Hasher::update(const std::string& s) {
  std::uint64_t n = s.size();
  update_pod(n);
  return update(s.data(), s.size());
}

std::string Hasher::hex() const {
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(h_));
  return buf;
}

std::string hash_hex(const std::string& s) { return Hasher().update(s).hex(); }

std::string file_digest(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  DISTILL_CHECK(in, Error, "cannot read ", path);
  Hasher h;
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), buf.size());
    h.update(buf.data(), static_cast<std::size_t>(in.gcount()));
  }
  return h.hex();
}

}  // namespace distill
