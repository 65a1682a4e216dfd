#include "distill/io/h5.h"

#include <algorithm>
#include <cstring>

#include "distill/util/error.h"

#ifndef H5_HAVE_THREADSAFE
#warning "HDF5 without thread safety: the loader thread and the main thread may call it at once"
#endif

namespace distill::h5 {

namespace {

// Silences HDF5's own error stack printing once; errors become exceptions instead.
struct QuietHdf5 {
  QuietHdf5() { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); }
};
const QuietHdf5 quiet;

// The cause recorded on HDF5's error stack (innermost entry first), then the stack is cleared. A
// system error (e.g. "No space left on device") is quoted as the OS gave it.
std::string hdf5_cause() {
  std::string out;
  H5Ewalk2(
      H5E_DEFAULT, H5E_WALK_UPWARD,
      [](unsigned n, const H5E_error2_t* e, void* data) -> herr_t {
        auto& o = *static_cast<std::string*>(data);
        const std::string desc = e->desc ? e->desc : "";
        const auto at = desc.find("error message = '");
        if (at != std::string::npos) {
          const auto from = at + std::strlen("error message = '");
          const auto to = desc.find('\'', from);
          o = desc.substr(from, to == std::string::npos ? std::string::npos : to - from);
          return 1;  // the OS's word is the cause
        }
        if (n == 0) o = desc;
        return 0;
      },
      &out);
  H5Eclear2(H5E_DEFAULT);
  return out;
}

template <typename R>
R check(R rc, const std::string& what) {
  if (rc < 0) {
    const auto cause = hdf5_cause();
    throw Error(cause.empty() ? what : what + ": " + cause);
  }
  return rc;
}

// DISTILL_CHECK for HDF5 calls: the message ends with the cause on HDF5's error stack.
#define H5_CHECK(cond, ...)                                              \
  do {                                                                   \
    if (!(cond)) {                                                       \
      const auto cause_ = hdf5_cause();                                  \
      throw Error(str(__VA_ARGS__, cause_.empty() ? "" : ": ", cause_)); \
    }                                                                    \
  } while (0)

hid_t make_float16() {
  hid_t t = H5Tcopy(H5T_IEEE_F32LE);
  check(H5Tset_fields(t, 15, 10, 5, 0, 10), "H5Tset_fields(float16)");
  check(H5Tset_size(t, 2), "H5Tset_size(float16)");
  check(H5Tset_ebias(t, 15), "H5Tset_ebias(float16)");
  check(H5Tset_precision(t, 16), "H5Tset_precision(float16)");
  return t;
}

}  // namespace

Handle& Handle::operator=(Handle&& o) noexcept {
  if (this != &o) {
    reset();
    id_ = o.id_;
    closer_ = o.closer_;
    o.id_ = -1;
  }
  return *this;
}

void Handle::reset() {
  if (id_ >= 0 && closer_) closer_(id_);
  id_ = -1;
}

hid_t file_type(Type t) {
  static const hid_t f16 = make_float16();
  switch (t) {
    case Type::kFloat16:
      return f16;
    case Type::kFloat32:
      return H5T_IEEE_F32LE;
    case Type::kInt32:
      return H5T_STD_I32LE;
    case Type::kInt64:
      return H5T_STD_I64LE;
    case Type::kUInt16:
      return H5T_STD_U16LE;
    case Type::kFloat64:
      return H5T_IEEE_F64LE;
  }
  return -1;
}

hid_t mem_type(Type t) {
  switch (t) {
    case Type::kFloat16:
      return file_type(Type::kFloat16);
    case Type::kFloat32:
      return H5T_NATIVE_FLOAT;
    case Type::kInt32:
      return H5T_NATIVE_INT32;
    case Type::kInt64:
      return H5T_NATIVE_INT64;
    case Type::kUInt16:
      return H5T_NATIVE_UINT16;
    case Type::kFloat64:
      return H5T_NATIVE_DOUBLE;
  }
  return -1;
}

const char* type_name(Type t) {
  switch (t) {
    case Type::kFloat16:
      return "float16";
    case Type::kFloat32:
      return "float32";
    case Type::kInt32:
      return "int32";
    case Type::kInt64:
      return "int64";
    case Type::kUInt16:
      return "uint16";
    case Type::kFloat64:
      return "float64";
  }
  return "?";
}

std::size_t type_size(Type t) {
  switch (t) {
    case Type::kFloat16:
    case Type::kUInt16:
      return 2;
    case Type::kFloat32:
    case Type::kInt32:
      return 4;
    case Type::kInt64:
    case Type::kFloat64:
      return 8;
  }
  return 0;
}

hsize_t numel(const std::vector<hsize_t>& shape) {
  hsize_t n = 1;
  for (auto d : shape) n *= d;
  return n;
}

File File::create(const std::string& path, Format format) {
  File f;
  f.path_ = path;
  Handle fapl(check(H5Pcreate(H5P_FILE_ACCESS), "H5Pcreate(file access)"), H5Pclose);
  if (format == Format::kChecksummed)
    check(H5Pset_libver_bounds(fapl.get(), H5F_LIBVER_V110, H5F_LIBVER_LATEST), "H5Pset_libver_bounds");
  hid_t id = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.get());
  H5_CHECK(id >= 0, "cannot create HDF5 file ", path);
  f.file_ = Handle(id, H5Fclose);
  f.format_ = format;
  return f;
}

File File::open(const std::string& path) {
  File f;
  f.path_ = path;
  hid_t id = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  DISTILL_CHECK(id >= 0, Error, "cannot open ", path, " as HDF5 (missing, truncated or not an HDF5 file)");
  f.file_ = Handle(id, H5Fclose);
  return f;
}

void File::flush() { check(H5Fflush(file_.get(), H5F_SCOPE_GLOBAL), "H5Fflush " + path_); }
void File::close() { file_.reset(); }

void File::create_group(const std::string& name) {
  hid_t g = H5Gcreate2(file_.get(), name.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  H5_CHECK(g >= 0, "cannot create group ", name, " in ", path_);
  H5Gclose(g);
}

bool File::exists(const std::string& name) const {
  // Check each path component so a missing parent is not an error.
  std::string part;
  std::size_t pos = 0;
  while (pos != std::string::npos) {
    pos = name.find('/', pos + 1);
    part = name.substr(0, pos);
    if (part.empty() || part == "/") continue;
    if (H5Lexists(file_.get(), part.c_str(), H5P_DEFAULT) <= 0) return false;
  }
  return true;
}

Handle File::open_object(const std::string& obj) const {
  hid_t id = H5Oopen(file_.get(), obj.c_str(), H5P_DEFAULT);
  DISTILL_CHECK(id >= 0, Error, path_, ": no object ", obj);
  return Handle(id, H5Oclose);
}

Handle File::open_dataset(const std::string& name) const {
  DISTILL_CHECK(exists(name), Error, path_, ": no dataset '", name, "'");
  hid_t id = H5Dopen2(file_.get(), name.c_str(), H5P_DEFAULT);
  DISTILL_CHECK(id >= 0, Error, path_, ": cannot open dataset '", name, "'");
  return Handle(id, H5Dclose);
}

void File::write(const std::string& name, Type t, const std::vector<hsize_t>& shape, const void* data,
                 hsize_t chunk_rows) {
  Handle space(check(H5Screate_simple(static_cast<int>(shape.size()), shape.data(), nullptr), "H5Screate_simple"),
               H5Sclose);
  Handle dcpl(check(H5Pcreate(H5P_DATASET_CREATE), "H5Pcreate"), H5Pclose);
  if (chunk_rows > 0 && !shape.empty() && shape[0] > 0) {
    std::vector<hsize_t> chunk = shape;
    chunk[0] = std::min(chunk_rows, shape[0]);
    check(H5Pset_chunk(dcpl.get(), static_cast<int>(chunk.size()), chunk.data()), "H5Pset_chunk");
    check(H5Pset_fletcher32(dcpl.get()), "H5Pset_fletcher32");
  }
  Handle ds(H5Dcreate2(file_.get(), name.c_str(), file_type(t), space.get(), H5P_DEFAULT, dcpl.get(), H5P_DEFAULT),
            H5Dclose);
  DISTILL_CHECK(ds.valid(), Error, "cannot create dataset '", name, "' in ", path_);
  if (numel(shape) > 0)
    H5_CHECK(H5Dwrite(ds.get(), mem_type(t), H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0, "cannot write dataset '", name,
             "' in ", path_);
}

void File::create_rows(const std::string& name, Type t, const std::vector<hsize_t>& row_shape, hsize_t chunk_rows) {
  std::vector<hsize_t> shape = {0}, max = {H5S_UNLIMITED}, chunk = {std::max<hsize_t>(1, chunk_rows)};
  for (auto d : row_shape) {
    shape.push_back(d);
    max.push_back(d);
    chunk.push_back(std::max<hsize_t>(1, d));
  }
  Handle space(check(H5Screate_simple(static_cast<int>(shape.size()), shape.data(), max.data()), "H5Screate_simple"),
               H5Sclose);
  Handle dcpl(check(H5Pcreate(H5P_DATASET_CREATE), "H5Pcreate"), H5Pclose);
  check(H5Pset_chunk(dcpl.get(), static_cast<int>(chunk.size()), chunk.data()), "H5Pset_chunk");
  check(H5Pset_fletcher32(dcpl.get()), "H5Pset_fletcher32");
  Handle ds(H5Dcreate2(file_.get(), name.c_str(), file_type(t), space.get(), H5P_DEFAULT, dcpl.get(), H5P_DEFAULT),
            H5Dclose);
  H5_CHECK(ds.valid(), "cannot create dataset '", name, "' in ", path_);
}

void File::append_rows(const std::string& name, Type t, hsize_t rows, const void* data) {
  if (rows == 0) return;
  Handle ds = open_dataset(name);
  Handle space(check(H5Dget_space(ds.get()), "H5Dget_space"), H5Sclose);
  const int rank = H5Sget_simple_extent_ndims(space.get());
  std::vector<hsize_t> dims(rank);
  H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
  std::vector<hsize_t> start(rank, 0), count = dims, grown = dims;
  start[0] = dims[0];
  count[0] = rows;
  grown[0] = dims[0] + rows;
  H5_CHECK(H5Dset_extent(ds.get(), grown.data()) >= 0, "cannot grow dataset '", name, "' in ", path_);
  Handle fspace(check(H5Dget_space(ds.get()), "H5Dget_space"), H5Sclose);
  check(H5Sselect_hyperslab(fspace.get(), H5S_SELECT_SET, start.data(), nullptr, count.data(), nullptr),
        "H5Sselect_hyperslab");
  Handle mspace(check(H5Screate_simple(rank, count.data(), nullptr), "H5Screate_simple"), H5Sclose);
  H5_CHECK(H5Dwrite(ds.get(), mem_type(t), mspace.get(), fspace.get(), H5P_DEFAULT, data) >= 0,
           "cannot write rows of dataset '", name, "' in ", path_);
}

DatasetInfo File::info(const std::string& name) const {
  Handle ds = open_dataset(name);
  DatasetInfo out;
  Handle space(check(H5Dget_space(ds.get()), "H5Dget_space"), H5Sclose);
  int rank = check(H5Sget_simple_extent_ndims(space.get()), "H5Sget_simple_extent_ndims");
  out.shape.resize(rank);
  H5Sget_simple_extent_dims(space.get(), out.shape.data(), nullptr);
  Handle type(check(H5Dget_type(ds.get()), "H5Dget_type"), H5Tclose);
  H5T_class_t cls = H5Tget_class(type.get());
  std::size_t size = H5Tget_size(type.get());
  if (cls == H5T_FLOAT) {
    DISTILL_CHECK(size == 2 || size == 4 || size == 8, Error, path_, ": dataset '", name, "' has a ", size * 8,
                  "-bit float type; expected float16, float32 or float64");
    out.type = size == 2 ? Type::kFloat16 : size == 4 ? Type::kFloat32 : Type::kFloat64;
  } else if (cls == H5T_INTEGER) {
    bool is_signed = H5Tget_sign(type.get()) == H5T_SGN_2;
    if (size == 8 && is_signed)
      out.type = Type::kInt64;
    else if (size == 4 && is_signed)
      out.type = Type::kInt32;
    else if (size == 2 && !is_signed)
      out.type = Type::kUInt16;
    else
      out.type = Type::kInt64;  // other integer widths: reported (and best read) as int64
  } else {
    throw Error(str(path_, ": dataset '", name, "' is neither integer nor float"));
  }
  Handle dcpl(check(H5Dget_create_plist(ds.get()), "H5Dget_create_plist"), H5Pclose);
  if (H5Pget_layout(dcpl.get()) == H5D_CHUNKED) {
    out.chunk.resize(rank);
    H5Pget_chunk(dcpl.get(), rank, out.chunk.data());
    int nf = H5Pget_nfilters(dcpl.get());
    for (int i = 0; i < nf; ++i) {
      unsigned flags = 0;
      std::size_t nelem = 0;
      H5Z_filter_t f = H5Pget_filter2(dcpl.get(), i, &flags, &nelem, nullptr, 0, nullptr, nullptr);
      if (f == H5Z_FILTER_FLETCHER32) out.fletcher32 = true;
    }
  }
  return out;
}

namespace {

// IEEE binary16 -> binary32, exact (subnormals, infinities and NaN included).
float half_to_float(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  std::uint32_t exp = (h >> 10) & 0x1fu, man = h & 0x3ffu, bits;
  if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (man << 13);
  } else if (exp != 0) {
    bits = sign | ((exp + 112) << 23) | (man << 13);
  } else if (man == 0) {
    bits = sign;
  } else {  // subnormal: normalise
    exp = 113;
    while (!(man & 0x400u)) {
      man <<= 1;
      --exp;
    }
    bits = sign | (exp << 23) | ((man & 0x3ffu) << 13);
  }
  float f;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
}

bool is_float16(hid_t ds) {
  Handle t(H5Dget_type(ds), H5Tclose);
  return H5Tget_class(t.get()) == H5T_FLOAT && H5Tget_size(t.get()) == 2;
}

// Reads `mspace`/`fspace` of `ds` as float32. HDF5's own float16 -> float32 conversion (a soft
// conversion for a user-defined type) runs at tens of MB/s; reading the raw bits and converting
// them here is ~100 times faster, with identical results.
herr_t read_float32(hid_t ds, hid_t mspace, hid_t fspace, void* out, std::size_t n) {
  if (!is_float16(ds)) return H5Dread(ds, H5T_NATIVE_FLOAT, mspace, fspace, H5P_DEFAULT, out);
  std::vector<std::uint16_t> bits(n);
  Handle t(H5Dget_type(ds), H5Tclose);
  const herr_t e = H5Dread(ds, t.get(), mspace, fspace, H5P_DEFAULT, bits.data());
  if (e < 0) return e;
  auto* f = static_cast<float*>(out);
  for (std::size_t i = 0; i < n; ++i) f[i] = half_to_float(bits[i]);
  return e;
}

}  // namespace

void File::read(const std::string& name, Type as, void* out) const {
  Handle ds = open_dataset(name);
  const auto n = static_cast<std::size_t>(numel(info(name).shape));
  if (n == 0) return;  // an empty split: nothing to read (HDF5 wants a buffer even then)
  const herr_t e = as == Type::kFloat32 ? read_float32(ds.get(), H5S_ALL, H5S_ALL, out, n)
                                        : H5Dread(ds.get(), mem_type(as), H5S_ALL, H5S_ALL, H5P_DEFAULT, out);
  DISTILL_CHECK(e >= 0, Error, path_, ": cannot read dataset '", name,
                "' (corrupt or truncated: checksum or I/O error)");
}

void File::read_rows(const std::string& name, Type as, hsize_t begin, hsize_t end, void* out) const {
  Handle ds = open_dataset(name);
  Handle space(check(H5Dget_space(ds.get()), "H5Dget_space"), H5Sclose);
  int rank = H5Sget_simple_extent_ndims(space.get());
  std::vector<hsize_t> dims(rank);
  H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
  DISTILL_CHECK(rank >= 1 && begin <= end && end <= dims[0], Error, path_, ": rows [", begin, ", ", end,
                ") out of range for dataset '", name, "' with ", (rank ? dims[0] : 0), " rows");
  std::vector<hsize_t> start(rank, 0), count = dims;
  start[0] = begin;
  count[0] = end - begin;
  check(H5Sselect_hyperslab(space.get(), H5S_SELECT_SET, start.data(), nullptr, count.data(), nullptr),
        "H5Sselect_hyperslab");
  Handle mspace(check(H5Screate_simple(rank, count.data(), nullptr), "H5Screate_simple"), H5Sclose);
  const herr_t e = as == Type::kFloat32 ? read_float32(ds.get(), mspace.get(), space.get(), out, numel(count))
                                        : H5Dread(ds.get(), mem_type(as), mspace.get(), space.get(), H5P_DEFAULT, out);
  DISTILL_CHECK(e >= 0, Error, path_, ": cannot read rows of '", name,
                "' (corrupt or truncated: checksum or I/O error)");
}

namespace {

void write_attr(hid_t obj, const std::string& key, hid_t type, hid_t space, const void* data,
                const std::string& where) {
  if (H5Aexists(obj, key.c_str()) > 0) H5Adelete(obj, key.c_str());
  Handle a(H5Acreate2(obj, key.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  DISTILL_CHECK(a.valid(), Error, "cannot create attribute ", key, " in ", where);
  H5_CHECK(H5Awrite(a.get(), type, data) >= 0, "cannot write attribute ", key, " in ", where);
}

}  // namespace

void File::set_attr(const std::string& obj, const std::string& key, const std::string& value) {
  Handle o = open_object(obj);
  Handle type(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_cset(type.get(), H5T_CSET_UTF8);
  Handle space(H5Screate(H5S_SCALAR), H5Sclose);
  if (format_ == Format::kChecksummed) {  // fixed-length: see Format
    H5Tset_size(type.get(), std::max<std::size_t>(1, value.size()));
    H5Tset_strpad(type.get(), H5T_STR_NULLPAD);
    std::string padded = value.empty() ? std::string(1, '\0') : value;
    write_attr(o.get(), key, type.get(), space.get(), padded.data(), path_);
    return;
  }
  H5Tset_size(type.get(), H5T_VARIABLE);
  const char* p = value.c_str();
  write_attr(o.get(), key, type.get(), space.get(), &p, path_);
}

void File::set_attr(const std::string& obj, const std::string& key, std::int64_t value) {
  Handle o = open_object(obj);
  Handle space(H5Screate(H5S_SCALAR), H5Sclose);
  write_attr(o.get(), key, H5T_NATIVE_INT64, space.get(), &value, path_);
}

void File::set_attr(const std::string& obj, const std::string& key, double value) {
  Handle o = open_object(obj);
  Handle space(H5Screate(H5S_SCALAR), H5Sclose);
  write_attr(o.get(), key, H5T_NATIVE_DOUBLE, space.get(), &value, path_);
}

bool File::has_attr(const std::string& obj, const std::string& key) const {
  Handle o = open_object(obj);
  return H5Aexists(o.get(), key.c_str()) > 0;
}

namespace {

Handle open_attr(hid_t obj, const std::string& key, const std::string& path) {
  DISTILL_CHECK(H5Aexists(obj, key.c_str()) > 0, Error, path, ": missing attribute '", key, "'");
  return Handle(H5Aopen(obj, key.c_str(), H5P_DEFAULT), H5Aclose);
}

}  // namespace

std::string File::attr_string(const std::string& obj, const std::string& key) const {
  Handle o = open_object(obj);
  Handle a = open_attr(o.get(), key, path_);
  Handle ftype(H5Aget_type(a.get()), H5Tclose);
  DISTILL_CHECK(H5Tget_class(ftype.get()) == H5T_STRING, Error, path_, ": attribute '", key, "' is not a string");
  if (H5Tis_variable_str(ftype.get()) > 0) {
    Handle type(H5Tcopy(H5T_C_S1), H5Tclose);
    H5Tset_size(type.get(), H5T_VARIABLE);
    H5Tset_cset(type.get(), H5Tget_cset(ftype.get()));
    char* p = nullptr;
    check(H5Aread(a.get(), type.get(), &p), path_ + ": H5Aread " + key);
    std::string out = p ? p : "";
    H5free_memory(p);
    return out;
  }
  std::size_t n = H5Tget_size(ftype.get());
  std::string out(n, '\0');
  check(H5Aread(a.get(), ftype.get(), &out[0]), path_ + ": H5Aread " + key);
  while (!out.empty() && out.back() == '\0') out.pop_back();
  return out;
}

std::int64_t File::attr_int(const std::string& obj, const std::string& key) const {
  Handle o = open_object(obj);
  Handle a = open_attr(o.get(), key, path_);
  std::int64_t v = 0;
  check(H5Aread(a.get(), H5T_NATIVE_INT64, &v), path_ + ": attribute " + key + " is not an integer");
  return v;
}

double File::attr_double(const std::string& obj, const std::string& key) const {
  Handle o = open_object(obj);
  Handle a = open_attr(o.get(), key, path_);
  double v = 0;
  check(H5Aread(a.get(), H5T_NATIVE_DOUBLE, &v), path_ + ": attribute " + key + " is not a number");
  return v;
}

}  // namespace distill::h5
