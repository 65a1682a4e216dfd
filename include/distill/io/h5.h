// Thin RAII over the HDF5 C API. Each C call is wrapped once and a negative return becomes a
// distill::Error (or the type the caller asks for) naming the file and object.
// Needs a thread-safe HDF5 (Debian's is, H5_HAVE_THREADSAFE): the loader thread reads rows and
// soft targets while the main thread may evaluate or write. One File is used by one thread at a time.
#pragma once
#include <hdf5.h>

#include <cstdint>
#include <string>
#include <vector>

namespace distill::h5 {

// An owned hid_t closed with the matching H5*close.
class Handle {
 public:
  Handle() = default;
  Handle(hid_t id, herr_t (*closer)(hid_t)) : id_(id), closer_(closer) {}
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  Handle(Handle&& o) noexcept : id_(o.id_), closer_(o.closer_) { o.id_ = -1; }
  Handle& operator=(Handle&& o) noexcept;
  ~Handle() { reset(); }
  void reset();
  hid_t get() const { return id_; }
  bool valid() const { return id_ >= 0; }

 private:
  hid_t id_ = -1;
  herr_t (*closer_)(hid_t) = nullptr;
};

// Element types stored in files.
enum class Type { kFloat16, kFloat32, kInt32, kInt64, kUInt16, kFloat64 };
// The HDF5 file type for `t` (float16 is IEEE binary16, little-endian, which h5py reads as float16).
hid_t file_type(Type t);
// The in-memory type to read or write `t` with: float16 is written from raw binary16 bits.
hid_t mem_type(Type t);
const char* type_name(Type t);
std::size_t type_size(Type t);

struct DatasetInfo {
  std::vector<hsize_t> shape;
  Type type = Type::kFloat32;
  bool fletcher32 = false;
  std::vector<hsize_t> chunk;  // empty when contiguous
};

class File {
 public:
  // On-disk format of a new file. kChecksummed uses the HDF5 1.10 objects (superblock v3, v2
  // object headers, fixed-array chunk indexes), whose metadata carry checksums: a damaged chunk
  // index is a read error instead of rows read back as fill values. Its string attributes are
  // fixed-length, so they live in the checksummed object header rather than in the global heap,
  // which has no checksum (h5py reads them as bytes). Needs HDF5 >= 1.10 to read.
  enum class Format { kCompatible, kChecksummed };
  // Creates (truncating) a file for writing.
  static File create(const std::string& path, Format format = Format::kCompatible);
  // Opens an existing file read-only; throws naming the path when missing or not HDF5.
  static File open(const std::string& path);

  const std::string& path() const { return path_; }
  hid_t id() const { return file_.get(); }
  void flush();
  void close();

  void create_group(const std::string& name);
  bool exists(const std::string& name) const;

  // Writes a dataset of `shape` from `data` (raw elements of `t`), chunked by `chunk_rows` rows
  // (0: contiguous) with Fletcher32 checksums when chunked.
  void write(const std::string& name, Type t, const std::vector<hsize_t>& shape, const void* data,
             hsize_t chunk_rows = 0);
  // A dataset of rows of `row_shape` that grows by append_rows: zero rows to start, unlimited
  // along the first dimension, chunked by `chunk_rows` rows with Fletcher32 checksums.
  void create_rows(const std::string& name, Type t, const std::vector<hsize_t>& row_shape, hsize_t chunk_rows);
  // Appends `rows` rows (raw elements of `t`) to a dataset made by create_rows.
  void append_rows(const std::string& name, Type t, hsize_t rows, const void* data);
  DatasetInfo info(const std::string& name) const;
  // Reads the whole dataset converted to `as` into `out`, which must hold the right byte count.
  void read(const std::string& name, Type as, void* out) const;
  // Reads rows [begin, end) of a dataset whose first dimension is rows.
  void read_rows(const std::string& name, Type as, hsize_t begin, hsize_t end, void* out) const;

  template <typename T>
  std::vector<T> read_vector(const std::string& name, Type as) const;

  // Attributes on the object `obj` ("/" for the file).
  void set_attr(const std::string& obj, const std::string& key, const std::string& value);
  void set_attr(const std::string& obj, const std::string& key, std::int64_t value);
  void set_attr(const std::string& obj, const std::string& key, double value);
  bool has_attr(const std::string& obj, const std::string& key) const;
  std::string attr_string(const std::string& obj, const std::string& key) const;
  std::int64_t attr_int(const std::string& obj, const std::string& key) const;
  double attr_double(const std::string& obj, const std::string& key) const;

 private:
  std::string path_;
  Handle file_;
  Format format_ = Format::kCompatible;
  Handle open_object(const std::string& obj) const;
  Handle open_dataset(const std::string& name) const;
};

// Number of elements of a shape.
hsize_t numel(const std::vector<hsize_t>& shape);

template <typename T>
std::vector<T> File::read_vector(const std::string& name, Type as) const {
  std::vector<T> out(numel(info(name).shape));
  read(name, as, out.data());
  return out;
}

}  // namespace distill::h5
