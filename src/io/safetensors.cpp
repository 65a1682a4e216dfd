#include "distill/io/safetensors.h"

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>

#include "distill/util/error.h"
#include "distill/util/fs.h"

namespace distill {

using json = nlohmann::json;

std::size_t safetensors_dtype_size(const std::string& dtype) {
  if (dtype == "F64" || dtype == "I64" || dtype == "U64") return 8;
  if (dtype == "F32" || dtype == "I32" || dtype == "U32") return 4;
  if (dtype == "F16" || dtype == "BF16" || dtype == "I16" || dtype == "U16") return 2;
  if (dtype == "I8" || dtype == "U8" || dtype == "BOOL") return 1;
  throw DataError(str("unknown safetensors dtype '", dtype, "'"));
}

std::string encode_safetensors(const SafeTensors& st) {
  json header = json::object();
  std::uint64_t offset = 0;
  for (const auto& [name, t] : st.tensors) {
    std::int64_t n = 1;
    for (auto d : t.shape) n *= d;
    DISTILL_CHECK(static_cast<std::uint64_t>(n) * safetensors_dtype_size(t.dtype) == t.bytes.size(), Error, "tensor ",
                  name, " has ", t.bytes.size(), " bytes, its shape and dtype need ",
                  n * static_cast<std::int64_t>(safetensors_dtype_size(t.dtype)));
    header[name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {offset, offset + t.bytes.size()}}};
    offset += t.bytes.size();
  }
  if (!st.metadata.empty()) header["__metadata__"] = st.metadata;
  std::string h = header.dump();
  while (h.size() % 8 != 0) h.push_back(' ');
  std::string out(8, '\0');
  std::uint64_t hlen = h.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((hlen >> (8 * i)) & 0xff);
  out += h;
  out.reserve(out.size() + offset);
  for (const auto& [name, t] : st.tensors) out += t.bytes;
  return out;
}

SafeTensors decode_safetensors(const std::string& bytes, const std::string& where) {
  DISTILL_CHECK(bytes.size() >= 8, DataError, where, ": ", bytes.size(),
                " bytes is too short for a safetensors file (needs an 8-byte header length)");
  std::uint64_t hlen = 0;
  for (int i = 0; i < 8; ++i) hlen |= static_cast<std::uint64_t>(static_cast<unsigned char>(bytes[i])) << (8 * i);
  DISTILL_CHECK(hlen <= bytes.size() - 8, DataError, where, ": header length ", hlen, " exceeds the file size ",
                bytes.size(), " (truncated or not safetensors)");
  json header;
  try {
    header = json::parse(bytes.substr(8, hlen));
  } catch (const std::exception& e) {
    throw DataError(str(where, ": safetensors header is not valid JSON: ", e.what()));
  }
  DISTILL_CHECK(header.is_object(), DataError, where, ": safetensors header is not a JSON object");
  const std::size_t base = 8 + hlen;
  const std::size_t data_size = bytes.size() - base;
  SafeTensors st;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> ranges;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") {
      DISTILL_CHECK(it.value().is_object(), DataError, where, ": safetensors __metadata__ is a ",
                    it.value().type_name(), ", expected an object of strings");
      for (auto m = it.value().begin(); m != it.value().end(); ++m)
        st.metadata[m.key()] = m.value().is_string() ? m.value().get<std::string>() : m.value().dump();
      continue;
    }
    const auto& v = it.value();
    const std::string tensor = str(where, ": tensor '", it.key(), "'");
    DISTILL_CHECK(v.is_object() && v.contains("dtype") && v.contains("shape") && v.contains("data_offsets"), DataError,
                  tensor, " lacks dtype, shape or data_offsets");
    TensorBlob t;
    DISTILL_CHECK(v["dtype"].is_string(), DataError, tensor, " has dtype ", v["dtype"].dump(), ", expected a string");
    t.dtype = v["dtype"].get<std::string>();
    std::size_t item = 0;
    try {
      item = safetensors_dtype_size(t.dtype);
    } catch (const DataError& e) {
      throw DataError(str(tensor, ": ", e.what()));
    }
    DISTILL_CHECK(v["shape"].is_array(), DataError, tensor, " has shape ", v["shape"].dump(),
                  ", expected a list of integers");
    for (const auto& d : v["shape"])
      DISTILL_CHECK(d.is_number_integer() && d.get<std::int64_t>() >= 0, DataError, tensor, " has shape ",
                    v["shape"].dump(), ", expected non-negative integers");
    t.shape = v["shape"].get<std::vector<std::int64_t>>();
    const auto& o = v["data_offsets"];
    DISTILL_CHECK(o.is_array() && o.size() == 2 && o[0].is_number_unsigned() && o[1].is_number_unsigned(), DataError,
                  tensor, " has data_offsets ", o.dump(), ", expected [begin, end] as non-negative integers");
    const std::uint64_t begin = o[0].get<std::uint64_t>(), end = o[1].get<std::uint64_t>();
    DISTILL_CHECK(begin <= end && end <= data_size, DataError, tensor, " has data_offsets [", begin, ", ", end,
                  "] outside the ", data_size, "-byte data section (truncated?)");
    // Overflow-checked: a shape such as [2^62, 4] must not wrap around to a small byte count.
    std::uint64_t need = item;
    bool overflow = false;
    for (auto d : t.shape) overflow = overflow || __builtin_mul_overflow(need, static_cast<std::uint64_t>(d), &need);
    DISTILL_CHECK(!overflow && need == end - begin, DataError, tensor, " spans ", end - begin, " bytes, its shape ",
                  v["shape"].dump(), " and dtype ", t.dtype, " need ",
                  overflow ? std::string("more than 2^64") : std::to_string(need));
    t.bytes = bytes.substr(base + begin, end - begin);
    ranges.push_back({begin, end});
    st.tensors.emplace(it.key(), std::move(t));
  }
  std::sort(ranges.begin(), ranges.end());
  std::uint64_t pos = 0;
  for (auto [b, e] : ranges) {
    DISTILL_CHECK(b == pos, DataError, where, ": tensor data overlaps or leaves a gap at byte ", pos);
    pos = e;
  }
  return st;
}

void save_safetensors(const std::string& path, const SafeTensors& st) {
  write_file_atomic(path, encode_safetensors(st));
}

SafeTensors load_safetensors(const std::string& path) {
  DISTILL_CHECK(path_exists(path), DataError, "weights file ", path, " does not exist");
  return decode_safetensors(read_file(path), path);
}

}  // namespace distill
