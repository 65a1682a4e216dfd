// Seeded mutation fuzzing of the file readers: safetensors, the YAML config, dataset.h5 and the
// store manifest. Each mutated input runs in a child process, so a crash or a hang is seen as one.
// Only distill::Error (or a subclass) may escape a reader; an input that breaks an invariant the
// reader checks must be refused; an accepted input must hold what the reader promises.
#include <gtest/gtest.h>
#include <hdf5.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>
#include <typeinfo>

#include "distill/app/config.h"
#include "distill/data/dataset.h"
#include "distill/data/synthetic.h"
#include "distill/io/safetensors.h"
#include "distill/store/manifest.h"
#include "distill/util/fs.h"
#include "distill/util/text.h"
#include "test_util.h"

using namespace distill;
using json = nlohmann::json;

namespace {

constexpr int kCases = 220;          // mutated inputs per reader
constexpr double kCaseTimeout = 10;  // seconds before a case counts as hung

enum class Verdict { kAccepted, kRefused, kOtherException, kInvariant, kCrash, kHang };

struct Outcome {
  Verdict verdict;
  std::string message;
};

// Runs `f` in a child process. `f` returns "" when the input was accepted and holds its invariants,
// else the broken invariant.
Outcome in_child(const std::function<std::string()>& f) {
  int fd[2];
  if (pipe(fd) != 0) return {Verdict::kCrash, "pipe failed"};
  const pid_t pid = fork();
  if (pid == 0) {
    close(fd[0]);
    int code = 0;
    std::string msg;
    try {
      msg = f();
      code = msg.empty() ? 0 : 3;
    } catch (const Error& e) {
      code = 1;
      msg = e.what();
    } catch (const std::exception& e) {
      code = 2;
      msg = std::string(typeid(e).name()) + ": " + e.what();
    } catch (...) {
      code = 2;
      msg = "an exception of unknown type";
    }
    msg = msg.substr(0, 4000);
    if (write(fd[1], msg.data(), msg.size()) < 0) code = 4;
    close(fd[1]);
    _exit(code);
  }
  close(fd[1]);
  int status = 0;
  const auto t0 = std::chrono::steady_clock::now();
  bool hung = false;
  while (waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() > kCaseTimeout) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      hung = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  std::string msg;
  char buf[4096];
  for (ssize_t n; (n = read(fd[0], buf, sizeof(buf))) > 0;) msg.append(buf, static_cast<std::size_t>(n));
  close(fd[0]);
  if (hung) return {Verdict::kHang, "no answer within the timeout"};
  if (WIFSIGNALED(status)) return {Verdict::kCrash, "signal " + std::to_string(WTERMSIG(status))};
  switch (WEXITSTATUS(status)) {
    case 0:
      return {Verdict::kAccepted, msg};
    case 1:
      return {Verdict::kRefused, msg};
    case 3:
      return {Verdict::kInvariant, msg};
    default:
      return {Verdict::kOtherException, msg};
  }
}

struct Tally {
  std::string reader;
  int accepted = 0, refused = 0;
  ~Tally() {
    std::cout << "[fuzz] " << reader << ": " << accepted + refused << " mutated inputs, " << accepted << " accepted, "
              << refused << " refused" << std::endl;
  }
};

// Records `o` for case `i`; `must_refuse`: the input breaks a checked invariant.
void record(Tally& t, int i, const Outcome& o, bool must_refuse, const std::string& mutation) {
  const std::string where = t.reader + " case " + std::to_string(i) + " (" + mutation + ")";
  switch (o.verdict) {
    case Verdict::kAccepted:
      ++t.accepted;
      EXPECT_FALSE(must_refuse) << where << ": accepted an input that breaks a checked invariant";
      return;
    case Verdict::kRefused:
      ++t.refused;
      EXPECT_FALSE(o.message.empty()) << where << ": refused without a message";
      return;
    case Verdict::kOtherException:
      ADD_FAILURE() << where << ": a non-distill exception escaped: " << o.message;
      return;
    case Verdict::kInvariant:
      ADD_FAILURE() << where << ": accepted, but " << o.message;
      return;
    case Verdict::kCrash:
      ADD_FAILURE() << where << ": crashed with " << o.message;
      return;
    case Verdict::kHang:
      ADD_FAILURE() << where << ": hung";
      return;
  }
}

// Generic byte-level mutations: flips, random bytes, insertions, deletions, truncation.
std::string mutate_bytes(std::string s, std::mt19937& rng, std::string* what) {
  auto pos = [&](std::size_t n) { return n == 0 ? 0 : std::uniform_int_distribution<std::size_t>(0, n - 1)(rng); };
  switch (std::uniform_int_distribution<int>(0, 4)(rng)) {
    case 0: {
      const int n = std::uniform_int_distribution<int>(1, 8)(rng);
      for (int k = 0; k < n && !s.empty(); ++k) s[pos(s.size())] ^= static_cast<char>(1 << (rng() % 8));
      *what = "bit flips";
      break;
    }
    case 1:
      if (!s.empty()) s[pos(s.size())] = static_cast<char>(rng());
      *what = "random byte";
      break;
    case 2:
      s.insert(pos(s.size() + 1), std::string(1 + rng() % 4, static_cast<char>(rng())));
      *what = "inserted bytes";
      break;
    case 3:
      if (!s.empty()) s.erase(pos(s.size()), 1 + rng() % 4);
      *what = "deleted bytes";
      break;
    default:
      s.resize(pos(s.size()));
      *what = "truncated";
  }
  return s;
}

json random_json(std::mt19937& rng) {
  switch (rng() % 11) {
    case 0:
      return -1;
    case 1:
      return 4611686018427387904ull;  // 2^62
    case 2:
      return 1.5;
    case 3:
      return "x";
    case 4:
      return json::array({1, 2});
    case 5:
      return json::object({{"a", 1}});
    case 6:
      return nullptr;
    case 7:
      return true;
    case 8:
      return 0;
    case 9:
      return std::numeric_limits<std::uint64_t>::max();
    default:
      return static_cast<std::int64_t>(rng() % 64);
  }
}

// Sets a random leaf of `j` (an object or array, recursively) to a random value, or removes it.
void mutate_json(json& j, std::mt19937& rng, std::string* what) {
  std::vector<json*> nodes;
  std::function<void(json&)> walk = [&](json& n) {
    nodes.push_back(&n);
    if (n.is_object() || n.is_array())
      for (auto& c : n) walk(c);
  };
  walk(j);
  json* n = nodes[rng() % nodes.size()];
  if ((n->is_object() || n->is_array()) && !n->empty() && rng() % 3 == 0) {
    if (n->is_object())
      n->erase(n->begin());
    else
      n->erase(n->begin());
    *what = "removed a member";
  } else {
    *n = random_json(rng);
    *what = "value replaced by " + n->dump();
  }
}

std::string file_text(const std::string& path) { return read_file(path); }
void put_file(const std::string& path, const std::string& bytes) { std::ofstream(path, std::ios::binary) << bytes; }

// --- safetensors -----------------------------------------------------------------------------

// An independent check of the safetensors rules the reader promises (decode_safetensors).
bool safetensors_valid(const std::string& b) {
  if (b.size() < 8) return false;
  std::uint64_t hlen = 0;
  for (int i = 0; i < 8; ++i) hlen |= static_cast<std::uint64_t>(static_cast<unsigned char>(b[i])) << (8 * i);
  if (hlen > b.size() - 8) return false;
  json h;
  try {
    h = json::parse(b.substr(8, hlen));
  } catch (const json::exception&) {
    return false;
  }
  if (!h.is_object()) return false;
  const std::uint64_t data = b.size() - 8 - hlen;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> ranges;
  for (auto it = h.begin(); it != h.end(); ++it) {
    const auto& v = it.value();
    if (it.key() == "__metadata__") {
      if (!v.is_object()) return false;
      continue;
    }
    if (!v.is_object() || !v.contains("dtype") || !v.contains("shape") || !v.contains("data_offsets")) return false;
    if (!v["dtype"].is_string()) return false;
    static const std::map<std::string, unsigned> sizes = {{"F64", 8}, {"I64", 8}, {"U64", 8},  {"F32", 4}, {"I32", 4},
                                                          {"U32", 4}, {"F16", 2}, {"BF16", 2}, {"I16", 2}, {"U16", 2},
                                                          {"I8", 1},  {"U8", 1},  {"BOOL", 1}};
    auto s = sizes.find(v["dtype"].get<std::string>());
    if (s == sizes.end() || !v["shape"].is_array()) return false;
    unsigned __int128 need = s->second;
    for (const auto& d : v["shape"]) {
      if (!d.is_number_integer() || d.get<std::int64_t>() < 0) return false;
      need *= static_cast<unsigned __int128>(d.get<std::int64_t>());
      if (need > std::numeric_limits<std::uint64_t>::max()) return false;
    }
    const auto& o = v["data_offsets"];
    if (!o.is_array() || o.size() != 2 || !o[0].is_number_unsigned() || !o[1].is_number_unsigned()) return false;
    const auto begin = o[0].get<std::uint64_t>(), end = o[1].get<std::uint64_t>();
    if (begin > end || end > data || need != end - begin) return false;
    ranges.push_back({begin, end});
  }
  std::sort(ranges.begin(), ranges.end());
  std::uint64_t pos = 0;
  for (auto [b0, e0] : ranges) {
    if (b0 != pos) return false;
    pos = e0;
  }
  return true;
}

std::string base_safetensors() {
  SafeTensors st;
  auto blob = [](const std::string& dtype, std::vector<std::int64_t> shape, std::size_t item) {
    TensorBlob t;
    t.dtype = dtype;
    t.shape = shape;
    std::size_t n = item;
    for (auto d : shape) n *= static_cast<std::size_t>(d);
    t.bytes.assign(n, '\x01');
    return t;
  };
  st.tensors["a.weight"] = blob("F32", {3, 4}, 4);
  st.tensors["b.bias"] = blob("F16", {5}, 2);
  st.tensors["c.ids"] = blob("I64", {2, 1, 2}, 8);
  st.metadata["format"] = "pt";
  return encode_safetensors(st);
}

TEST(Fuzz, SafetensorsReader) {
  std::mt19937 rng(20240611);
  const auto base = base_safetensors();
  ASSERT_TRUE(safetensors_valid(base));
  std::uint64_t hlen = 0;
  for (int i = 0; i < 8; ++i) hlen |= static_cast<std::uint64_t>(static_cast<unsigned char>(base[i])) << (8 * i);
  const auto header = json::parse(base.substr(8, hlen));
  Tally t{"safetensors"};
  for (int i = 0; i < kCases; ++i) {
    std::string what, bytes;
    if (i % 2 == 0) {
      bytes = mutate_bytes(base, rng, &what);
    } else {
      json h = header;
      mutate_json(h, rng, &what);
      std::string text = h.dump();
      while (text.size() % 8) text.push_back(' ');
      bytes.assign(8, '\0');
      for (int k = 0; k < 8; ++k)
        bytes[k] = static_cast<char>((static_cast<std::uint64_t>(text.size()) >> (8 * k)) & 0xff);
      bytes += text + base.substr(8 + hlen);
    }
    const bool valid = safetensors_valid(bytes);
    auto o = in_child([&] {
      auto st = decode_safetensors(bytes, "fuzz.safetensors");
      for (const auto& [name, tb] : st.tensors) {
        std::uint64_t n = safetensors_dtype_size(tb.dtype);
        for (auto d : tb.shape) {
          if (d < 0 || __builtin_mul_overflow(n, static_cast<std::uint64_t>(d), &n))
            return "tensor " + name + " has a bad shape";
        }
        if (n != tb.bytes.size())
          return "tensor " + name + " holds " + std::to_string(tb.bytes.size()) + " bytes for its shape";
      }
      return std::string();
    });
    record(t, i, o, !valid, what);
    if (o.verdict == Verdict::kRefused) {
      EXPECT_NE(o.message.find("fuzz.safetensors"), std::string::npos) << o.message;
    }
  }
}

// --- config ----------------------------------------------------------------------------------

TEST(Fuzz, ConfigLoader) {
  std::mt19937 rng(7);
  const std::string base =
      "data:\n  path: d.h5\n  train_split: train\nstudent:\n  layers: 2\n  hidden: 64\n  heads: 2\n"
      "distill:\n  alpha: 0.5\n  beta: 1.0\n  temperature: 2.0\ntrain:\n  lr: 0.001\n  batch_size: 8\n"
      "  threads: 1\n  seed: 3\n";
  const auto dir = test::temp_dir("fuzz-config");
  const auto path = dir + "/c.yaml";
  static const char* kValues[] = {"inf",    ".inf",  "-.inf",
                                  ".nan",   "nan",   "1e999",
                                  "-1",     "",      "[1, 2]",
                                  "{a: 1}", "~",     "100000",
                                  "0x10",   "\"2\"", "9223372036854775808",
                                  "&a 1",   "*a",    "!!binary aGk="};
  Tally t{"config"};
  for (int i = 0; i < kCases; ++i) {
    std::string text = base, what;
    bool must_refuse = false;
    auto lines = split(base, '\n');
    lines.pop_back();
    switch (i % 4) {
      case 0:
        text = mutate_bytes(base, rng, &what);
        break;
      case 1: {  // a value replaced
        std::size_t k;
        do k = rng() % lines.size();
        while (lines[k].rfind("  ", 0) != 0);
        const std::string v = kValues[rng() % (sizeof(kValues) / sizeof(kValues[0]))];
        const auto key = lines[k].substr(2, lines[k].find(':') - 2);
        lines[k] = "  " + key + ": " + v;
        what = key + " = " + v;
        const bool numeric = key == "alpha" || key == "beta" || key == "temperature" || key == "lr";
        must_refuse = numeric && (v == "inf" || v == ".inf" || v == "-.inf" || v == ".nan" || v == "nan");
        text.clear();
        for (const auto& l : lines) text += l + "\n";
        break;
      }
      case 2: {  // a key line repeated within its section
        std::size_t k;
        do k = rng() % lines.size();
        while (lines[k].rfind("  ", 0) != 0);
        lines.insert(lines.begin() + static_cast<long>(k) + 1, lines[k]);
        what = "repeated " + lines[k];
        must_refuse = true;
        text.clear();
        for (const auto& l : lines) text += l + "\n";
        break;
      }
      default: {  // a section repeated at the end
        std::size_t k;
        do k = rng() % lines.size();
        while (lines[k].rfind("  ", 0) == 0);
        what = "repeated section " + lines[k];
        text += lines[k] + "\n  seed: 4\n";
        must_refuse = true;
      }
    }
    put_file(path, text);
    auto o = in_child([&] {
      RunConfig c;
      load_config_file(c, path);
      for (double v : {c.train.lr, c.distill.alpha, c.distill.beta, c.distill.temperature, c.layers.hidden_weight,
                       c.layers.attention_weight, c.student.dropout})
        if (!std::isfinite(v)) return std::string("a non-finite number was loaded");
      validate_config(c);
      if (c.train.threads > kMaxThreads) return std::string("train.threads beyond the limit passed validation");
      return std::string();
    });
    record(t, i, o, must_refuse, what);
  }
}

// --- dataset.h5 ------------------------------------------------------------------------------

void set_attr_raw(const std::string& path, const char* key, hid_t type, const void* v) {
  hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  if (H5Aexists(f, key) > 0) H5Adelete(f, key);
  hid_t space = H5Screate(H5S_SCALAR);
  hid_t a = H5Acreate2(f, key, type, space, H5P_DEFAULT, H5P_DEFAULT);
  H5Awrite(a, type, v);
  H5Aclose(a);
  H5Sclose(space);
  H5Fclose(f);
}

void set_string_attr(const std::string& path, const char* key, const std::string& value) {
  hid_t type = H5Tcopy(H5T_C_S1);
  H5Tset_size(type, H5T_VARIABLE);
  const char* p = value.c_str();
  set_attr_raw(path, key, type, &p);
  H5Tclose(type);
}

// Replaces dataset `name` by one of `type` and `dims` holding `fill`-derived values.
void replace_dataset(const std::string& path, const std::string& name, hid_t type, std::vector<hsize_t> dims,
                     double fill) {
  hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  H5Ldelete(f, name.c_str(), H5P_DEFAULT);
  hid_t space = H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr);
  hid_t ds = H5Dcreate2(f, name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  hsize_t n = 1;
  for (auto d : dims) n *= d;
  if (n <= (1u << 20)) {  // larger ones stay unwritten (HDF5 allocates their space late)
    std::vector<double> v(n, fill);
    H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data());
  }
  H5Dclose(ds);
  H5Sclose(space);
  H5Fclose(f);
}

// Byte ranges [offset, offset + size) of the stored chunks of every array of `path`.
std::vector<std::pair<haddr_t, hsize_t>> chunk_regions(const std::string& path) {
  std::vector<std::pair<haddr_t, hsize_t>> out;
  hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  for (const char* g : {"/train", "/dev", "/test"})
    for (const char* a : {"input_ids", "attention_mask", "token_type_ids", "labels", "example_id"}) {
      hid_t ds = H5Dopen2(f, (std::string(g) + "/" + a).c_str(), H5P_DEFAULT);
      hid_t space = H5Dget_space(ds);
      hsize_t n = 0;
      H5Dget_num_chunks(ds, space, &n);
      for (hsize_t k = 0; k < n; ++k) {
        haddr_t addr = 0;
        hsize_t size = 0;
        if (H5Dget_chunk_info(ds, space, k, nullptr, nullptr, &addr, &size) >= 0) out.push_back({addr, size});
      }
      H5Sclose(space);
      H5Dclose(ds);
    }
  H5Fclose(f);
  return out;
}

TEST(Fuzz, DatasetReader) {
  std::mt19937 rng(99);
  SyntheticOptions so;
  so.train = 12;
  so.dev = 3;
  so.test = 3;
  so.seq = 8;
  so.vocab_size = 40;
  so.markers_per_class = 4;
  const auto dir = test::temp_dir("fuzz-data");
  const auto base_path = dir + "/base.h5";
  write_dataset(base_path, make_synthetic(so));
  const auto base = file_text(base_path);
  const auto regions = chunk_regions(base_path);
  ASSERT_FALSE(regions.empty());
  const auto path = dir + "/data.h5";
  static const char* kArrays[] = {"input_ids", "attention_mask", "token_type_ids", "labels", "example_id"};
  static const char* kSplits[] = {"train", "dev", "test"};
  Tally t{"dataset"};
  for (int i = 0; i < kCases; ++i) {
    std::string what;
    bool must_refuse = false;
    if (i % 4 == 0) {
      put_file(path, mutate_bytes(base, rng, &what));
    } else if (i % 4 == 2) {  // a flip inside the stored array data: Fletcher32 refuses it
      auto bytes = base;
      const auto& [addr, size] = regions[rng() % regions.size()];
      bytes[addr + rng() % size] ^= static_cast<char>(1 << (rng() % 8));
      put_file(path, bytes);
      what = "a bit flip in array data";
      must_refuse = true;
    } else {
      put_file(path, base);
      const std::string g = std::string("/") + kSplits[rng() % 3];
      const std::string a = g + "/" + kArrays[rng() % 5];
      switch (rng() % 7) {
        case 0: {
          const std::int64_t v = std::vector<std::int64_t>{-1, 0, 2, 1ll << 40, -(1ll << 62)}[rng() % 5];
          const char* key = rng() % 2 ? "max_length" : "vocab_size";
          set_attr_raw(path, key, H5T_NATIVE_INT64, &v);
          what = std::string(key) + " = " + std::to_string(v);
          must_refuse = v < 0 || (std::string(key) == "max_length" && v != 8 && v < 8) ||
                        (std::string(key) == "vocab_size" && v < 40);
          break;
        }
        case 1: {
          const std::string v = std::vector<std::string>{"[1, 2]", "{}", "\"a\"", "[", "", "[\"x\", null]"}[rng() % 6];
          set_string_attr(path, "label_names", v);
          what = "label_names = " + v;
          must_refuse = true;
          break;
        }
        case 2: {
          const bool vector = a.find("labels") != std::string::npos || a.find("example_id") != std::string::npos;
          const hsize_t rows = g == "/train" ? 12 : 3;
          replace_dataset(path, a, H5T_IEEE_F32LE, vector ? std::vector<hsize_t>{rows} : std::vector<hsize_t>{rows, 8},
                          1.0);
        }
          what = a + " as float";
          must_refuse = true;
          break;
        case 3: {
          const hsize_t rows = std::vector<hsize_t>{0, 1, 1ull << 16, 1ull << 44}[rng() % 4];
          replace_dataset(path, a, H5T_STD_I32LE, {rows, 8}, 0);
          what = a + " with " + std::to_string(rows) + " rows of 8";
          must_refuse = true;
          break;
        }
        case 4: {
          const std::string v = std::vector<std::string>{"features", "mlm", "other", ""}[rng() % 4];
          set_string_attr(path, "task", v);
          what = "task = '" + v + "'";
          must_refuse = true;
          break;
        }
        case 5: {
          hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
          H5Ldelete(f, a.c_str(), H5P_DEFAULT);
          H5Fclose(f);
          what = a + " removed";
          must_refuse = true;
          break;
        }
        default: {
          const double v = std::vector<double>{0, -1, 1e9, 2}[rng() % 4];
          const std::string arr = g + (rng() % 2 ? "/attention_mask" : "/token_type_ids");
          replace_dataset(path, arr, H5T_STD_I32LE, {g == "/train" ? 12ull : 3ull, 8}, v);
          what = arr + " all " + std::to_string(v);
          // Masks of 0 or 2 and negative types are refused; so is any change, by the content hash
          // (synthetic token types are all 0 already).
          must_refuse = !(v == 0 && arr.find("token_type_ids") != std::string::npos);
        }
      }
    }
    auto o = in_child([&] {
      const auto d = read_dataset(path);
      for (const auto& [name, lazy] : d.splits) {
        const auto s = lazy.all();
        const auto cells = static_cast<std::size_t>(s.n * s.seq);
        if (s.input_ids.size() != cells || s.attention_mask.size() != cells || s.token_type_ids.size() != cells ||
            s.labels.size() != static_cast<std::size_t>(s.n) || s.example_id.size() != s.labels.size())
          return "split " + name + " arrays disagree with its shape";
        for (std::size_t k = 0; k < cells; ++k)
          if (s.input_ids[k] < 0 || s.input_ids[k] >= d.vocab_size)
            return "split " + name + " has an id outside the vocabulary";
        for (auto y : s.labels)
          if (y < 0 || y >= d.num_labels()) return "split " + name + " has a label outside the label names";
        if (d.max_length <= 0 || s.seq > d.max_length) return "split " + name + " has rows longer than max_length";
      }
      return std::string();
    });
    record(t, i, o, must_refuse, what);
    if (o.verdict == Verdict::kRefused) {
      EXPECT_NE(o.message.find(path), std::string::npos) << what << ": " << o.message;
    }
  }
}

// --- store manifest --------------------------------------------------------------------------

TEST(Fuzz, ManifestReader) {
  std::mt19937 rng(4242);
  const auto dir = test::temp_dir("fuzz-manifest");
  Manifest m;
  m.meta.teacher_fingerprint = "abc";
  m.meta.dataset_hash = "def";
  m.meta.split = "train";
  m.meta.num_labels = 2;
  m.meta.num_examples = 128;
  m.meta.shard_size = 64;
  m.shards = {{"shard-000000000-000000063.h5", {0, 64}, 1000, "d0"},
              {"shard-000000064-000000127.h5", {64, 128}, 1000, "d1"}};
  write_manifest(dir, m);
  const auto base = file_text(manifest_path(dir));
  const auto base_json = json::parse(base);
  Tally t{"manifest"};
  for (int i = 0; i < kCases; ++i) {
    std::string what, text;
    if (i % 2 == 0) {
      text = mutate_bytes(base, rng, &what);
    } else {
      json j = base_json;
      mutate_json(j, rng, &what);
      text = j.dump(2);
    }
    put_file(manifest_path(dir), text);
    auto o = in_child([&] {
      const auto got = read_manifest(dir);
      const auto j = json::parse(text);
      if (got.shards.size() != j.at("shards").size()) return std::string("shards lost or invented");
      return std::string();
    });
    record(t, i, o, false, what);
    if (o.verdict == Verdict::kRefused) {
      EXPECT_NE(o.message.find("manifest.json"), std::string::npos) << what << ": " << o.message;
    }
  }
}

}  // namespace
