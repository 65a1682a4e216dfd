// safetensors read/write: 8-byte little-endian header length, a JSON header mapping names to
// {dtype, shape, data_offsets} (plus an optional "__metadata__" of strings), then raw
// little-endian tensor bytes. Torch-free: tensors are byte blobs here.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace distill {

struct TensorBlob {
  std::string dtype;  // "F32", "F16", "BF16", "F64", "I64", "I32", "I16", "I8", "U8", "BOOL"
  std::vector<std::int64_t> shape;
  std::string bytes;  // row-major, little-endian
};

struct SafeTensors {
  std::map<std::string, TensorBlob> tensors;  // sorted by name, as written
  std::map<std::string, std::string> metadata;
};

// Bytes per element of a safetensors dtype; throws naming the dtype if unknown.
std::size_t safetensors_dtype_size(const std::string& dtype);

// Serialises to the file format (header padded with spaces to a multiple of 8 bytes).
std::string encode_safetensors(const SafeTensors& st);
// Parses and validates (header bounds, dtypes, shapes against byte ranges, no overlap or gap);
// `where` names the source in errors.
SafeTensors decode_safetensors(const std::string& bytes, const std::string& where);

// Atomic write (temporary name, fsync, rename) and read of a file.
void save_safetensors(const std::string& path, const SafeTensors& st);
SafeTensors load_safetensors(const std::string& path);

}  // namespace distill
