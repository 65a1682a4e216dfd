// Hostile inputs: each gets a DataError/ConfigError naming the file, key or value involved.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "distill/app/commands.h"
#include "distill/app/config.h"
#include "distill/data/dataset.h"
#include "distill/data/prepare.h"
#include "distill/data/synthetic.h"
#include "distill/data/tokenizer.h"
#include "distill/io/h5.h"
#include "distill/io/safetensors.h"
#include "distill/model/config.h"
#include "distill/model/weights.h"
#include "test_util.h"

using namespace distill;

namespace {

bool has(const std::string& msg, const std::string& part) { return msg.find(part) != std::string::npos; }

std::string write_text(const std::string& dir, const std::string& name, const std::string& text) {
  const auto path = dir + "/" + name;
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

std::string config_error(const std::string& yaml) {
  const auto path = write_text(test::temp_dir("inputs-config"), "c.yaml", yaml);
  RunConfig c;
  return test::error_of([&] { load_config_file(c, path); });
}

// --- config ---------------------------------------------------------------------------------

TEST(HostileConfig, NonFiniteNumbersAreRefusedWithTheirKey) {
  for (const char* key : {"train.lr", "distill.beta", "distill.alpha", "distill.temperature", "distill.hidden_weight"})
    for (const char* v : {"inf", "-inf", "nan", "INF"}) {
      RunConfig c;
      const auto msg = test::error_of([&] { apply_override(c, std::string(key) + "=" + v); });
      EXPECT_TRUE(has(msg, std::string(key) + " = '" + v + "' is not a finite number")) << msg;
    }
  const auto msg = config_error("train:\n  lr: .inf\n");
  EXPECT_TRUE(has(msg, "c.yaml") && has(msg, "train.lr = '.inf'")) << msg;
  EXPECT_TRUE(has(config_error("distill:\n  beta: .nan\n"), "distill.beta"))
      << config_error("distill:\n  beta: .nan\n");
}

TEST(HostileConfig, DuplicateKeysAndSectionsAreRefused) {
  auto msg = config_error("train:\n  lr: 0.1\n  lr: 0.2\n");
  EXPECT_TRUE(has(msg, "c.yaml") && has(msg, "train.lr is given twice")) << msg;
  msg = config_error("train:\n  lr: 0.1\nstudent:\n  layers: 2\ntrain:\n  batch_size: 4\n");
  EXPECT_TRUE(has(msg, "c.yaml") && has(msg, "section 'train' appears twice")) << msg;
  EXPECT_EQ(config_error("train:\n  lr: 0.1\n  batch_size: 4\n"), "");
}

TEST(HostileConfig, ThreadCountsBeyondTheLimitAreRefused) {
  RunConfig c;
  c.data.path = "d.h5";
  c.train.threads = 100000;
  auto msg = test::error_of([&] { validate_config(c); });
  EXPECT_TRUE(has(msg, "train.threads = 100000")) << msg;
  c.train.threads = kMaxThreads;
  EXPECT_NO_THROW(validate_config(c));
  const int cores = static_cast<int>(this_rank_cpus().cpus.size());
  msg = test::error_of([&] { size_threads(kThreadsPerCore * cores + 1, 1); });
  EXPECT_TRUE(has(msg, "train.threads = " + std::to_string(kThreadsPerCore * cores + 1))) << msg;
  msg = test::error_of([&] { size_threads(kThreadsPerCore * cores + 1, 1, "--threads"); });
  EXPECT_TRUE(has(msg, "--threads")) << msg;
}

// --- thread check: per-rank cpusets ----------------------------------------------------------

std::vector<RankCpus> node(std::initializer_list<std::vector<int>> sets, const std::string& host = "n0") {
  std::vector<RankCpus> out;
  for (const auto& s : sets) out.push_back({host, s});
  return out;
}

TEST(ThreadCheck, RanksBoundToTheirOwnCoresAreNotOversubscribed) {
  // mpirun's default binding: two ranks, one core each.
  auto ranks = node({{0}, {1}});
  EXPECT_EQ(ranks_sharing_cpus(ranks, 0), 1);
  auto c = assess_threads(ranks, 0, 1);
  EXPECT_TRUE(c.ok) << c.summary;
  EXPECT_EQ(c.cores, 1);
  EXPECT_EQ(c.node_cores, 2);
  EXPECT_EQ(c.ranks, 2);
  // Two threads on a one-core rank are too many, whatever the node has.
  c = assess_threads(ranks, 1, 2);
  EXPECT_FALSE(c.ok);
  EXPECT_TRUE(has(c.summary, "OVERSUBSCRIBED")) << c.summary;
  // Bound to 4 cores each: 4 threads each fit.
  EXPECT_TRUE(assess_threads(node({{0, 1, 2, 3}, {4, 5, 6, 7}}), 0, 4).ok);
}

TEST(ThreadCheck, RanksSharingCoresSplitThem) {
  auto ranks = node({{0, 1}, {0, 1}});  // unbound: both see both cores
  EXPECT_EQ(ranks_sharing_cpus(ranks, 0), 2);
  EXPECT_TRUE(assess_threads(ranks, 0, 1).ok);
  auto c = assess_threads(ranks, 0, 2);  // 2 ranks x 2 threads on 2 cores
  EXPECT_FALSE(c.ok);
  EXPECT_TRUE(has(c.summary, "OVERSUBSCRIBED")) << c.summary;
  EXPECT_FALSE(assess_threads(node({{0}, {0}}), 1, 1).ok);        // both bound to core 0
  EXPECT_FALSE(assess_threads(node({{0, 1}, {1, 2}}), 0, 2).ok);  // 4 threads on the 3 cores of the union
  EXPECT_TRUE(assess_threads(node({{0, 1}, {1, 2}}), 0, 1).ok);
}

TEST(ThreadCheck, OnlyRanksOfTheSameHostCount) {
  std::vector<RankCpus> ranks = {{"a", {0}}, {"b", {0}}, {"a", {1}}, {"b", {1}}};
  auto c = assess_threads(ranks, 0, 1);
  EXPECT_EQ(c.ranks, 2);
  EXPECT_TRUE(c.ok) << c.summary;
  EXPECT_EQ(ranks_sharing_cpus(ranks, 1), 1);
}

// --- safetensors -----------------------------------------------------------------------------

std::string with_header(const std::string& header, const std::string& data) {
  std::string h = header;
  while (h.size() % 8) h.push_back(' ');
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((static_cast<std::uint64_t>(h.size()) >> (8 * i)) & 0xff);
  return out + h + data;
}

std::string decode_error(const std::string& header, const std::string& data = std::string(16, '\0')) {
  return test::error_of([&] { decode_safetensors(with_header(header, data), "w.safetensors"); });
}

TEST(HostileSafetensors, OverflowingShapesAndWrongTypesNameTheTensor) {
  // 2^62 x 4 float32: the byte count wraps to 0 in unchecked uint64 arithmetic.
  auto msg = decode_error(R"({"x":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,0]}})", "");
  EXPECT_TRUE(has(msg, "w.safetensors") && has(msg, "tensor 'x'") && has(msg, "more than 2^64")) << msg;
  msg = decode_error(R"({"x":{"dtype":"F32","shape":[2,2],"data_offsets":[0.0,16.5]}})");
  EXPECT_TRUE(has(msg, "tensor 'x'") && has(msg, "data_offsets")) << msg;
  msg = decode_error(R"({"x":{"dtype":"F32","shape":["2",2],"data_offsets":[0,16]}})");
  EXPECT_TRUE(has(msg, "tensor 'x'") && has(msg, "shape")) << msg;
  msg = decode_error(R"({"x":{"dtype":7,"shape":[4],"data_offsets":[0,16]}})");
  EXPECT_TRUE(has(msg, "tensor 'x'") && has(msg, "dtype")) << msg;
  msg = decode_error(R"({"x":{"dtype":"F99","shape":[4],"data_offsets":[0,16]}})");
  EXPECT_TRUE(has(msg, "w.safetensors") && has(msg, "tensor 'x'") && has(msg, "F99")) << msg;
  msg = decode_error(R"({"x":[1,2]})");
  EXPECT_TRUE(has(msg, "tensor 'x'")) << msg;
  msg = decode_error(R"({"__metadata__":[1],"x":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})");
  EXPECT_TRUE(has(msg, "__metadata__")) << msg;
  EXPECT_EQ(decode_error(R"({"x":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})"), "");
}

TEST(HostileSafetensors, ModelMetadataTypeErrorsNameFileAndKey) {
  SafeTensors st;
  auto j = to_json(ModelConfig{});
  j["hidden_size"] = "wide";
  st.metadata["distill.model_config"] = j.dump();
  auto msg = test::error_of([&] { read_model_config(st, "m.safetensors"); });
  EXPECT_TRUE(has(msg, "m.safetensors") && has(msg, "'hidden_size'") && has(msg, "an integer")) << msg;
  st.metadata["distill.model_config"] = "{not json";
  msg = test::error_of([&] { read_model_config(st, "m.safetensors"); });
  EXPECT_TRUE(has(msg, "m.safetensors") && has(msg, "distill.model_config")) << msg;
  st.metadata["distill.model_config"] = "[1,2]";
  msg = test::error_of([&] { read_model_config(st, "m.safetensors"); });
  EXPECT_TRUE(has(msg, "m.safetensors")) << msg;
}

// --- datasets --------------------------------------------------------------------------------

Dataset small_data() {
  SyntheticOptions o;
  o.train = 20;
  o.dev = 4;
  o.test = 4;
  o.seq = 12;
  o.vocab_size = 100;
  return make_synthetic(o);
}

std::string written(const std::string& name, const Dataset& d) {
  const auto path = test::temp_dir("inputs-data-" + name) + "/data.h5";
  write_dataset(path, d);
  return path;
}

std::string read_error(const std::string& path) {
  return test::error_of([&] { read_dataset(path); });
}

// Replaces dataset `name` of `path` with `data` of type `t` and `shape` (HDF5 calls, no checks).
void replace(const std::string& path, const std::string& name, h5::Type t, const std::vector<hsize_t>& shape,
             const void* data) {
  hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  ASSERT_GE(f, 0);
  H5Ldelete(f, name.c_str(), H5P_DEFAULT);
  hid_t space = H5Screate_simple(static_cast<int>(shape.size()), shape.data(), nullptr);
  hid_t ds = H5Dcreate2(f, name.c_str(), h5::file_type(t), space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  H5Dwrite(ds, h5::mem_type(t), H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
  H5Dclose(ds);
  H5Sclose(space);
  H5Fclose(f);
}

void set_root_attr(const std::string& path, const std::string& key, std::int64_t v) {
  hid_t id = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  hid_t space = H5Screate(H5S_SCALAR);
  H5Adelete(id, key.c_str());
  hid_t a = H5Acreate2(id, key.c_str(), H5T_NATIVE_INT64, space, H5P_DEFAULT, H5P_DEFAULT);
  H5Awrite(a, H5T_NATIVE_INT64, &v);
  H5Aclose(a);
  H5Sclose(space);
  H5Fclose(id);
}

TEST(HostileDataset, FloatTokenIdsAreRefused) {
  auto d = small_data();
  const auto path = written("float-ids", d);
  const auto& s = d.splits.at("train");
  std::vector<float> ids(s.input_ids.begin(), s.input_ids.end());
  replace(path, "/train/input_ids", h5::Type::kFloat32, {static_cast<hsize_t>(s.n), static_cast<hsize_t>(s.seq)},
          ids.data());
  const auto msg = read_error(path);
  EXPECT_TRUE(has(msg, path) && has(msg, "/train/input_ids") && has(msg, "expected integers")) << msg;
}

TEST(HostileDataset, HugeOrMismatchedDimsAreRefusedBeforeReading) {
  auto d = small_data();
  const auto path = written("dims", d);
  const auto& s = d.splits.at("train");
  // labels with more rows than input_ids
  std::vector<std::int64_t> labels(s.labels.begin(), s.labels.end());
  labels.push_back(0);
  replace(path, "/train/labels", h5::Type::kInt64, {labels.size()}, labels.data());
  auto msg = read_error(path);
  EXPECT_TRUE(has(msg, path) && has(msg, "/train/labels has 21 rows, expected 20")) << msg;
  // a chunked dataset whose dims promise far more than the file holds
  const auto path2 = written("dims2", d);
  hid_t f = H5Fopen(path2.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  H5Ldelete(f, "/dev/input_ids", H5P_DEFAULT);
  hsize_t dims[2] = {1ull << 40, 12}, chunk[2] = {1, 12};
  hid_t space = H5Screate_simple(2, dims, nullptr);
  hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
  H5Pset_chunk(dcpl, 2, chunk);
  hid_t ds = H5Dcreate2(f, "/dev/input_ids", H5T_STD_I32LE, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
  H5Dclose(ds);
  H5Pclose(dcpl);
  H5Sclose(space);
  H5Fclose(f);
  msg = read_error(path2);
  EXPECT_TRUE(has(msg, path2) && has(msg, "/dev/input_ids declares shape [1099511627776, 12]")) << msg;
}

TEST(HostileDataset, AllZeroMasksNegativeMaxLengthAndDuplicateIdsAreRefused) {
  auto d = small_data();
  auto bad = d;
  auto& s = bad.splits.at("dev");
  std::fill(s.attention_mask.begin() + 2 * s.seq, s.attention_mask.begin() + 3 * s.seq, 0);
  auto msg = test::error_of([&] { write_dataset(test::temp_dir("mask") + "/d.h5", bad); });
  EXPECT_TRUE(has(msg, "split dev example 2 has an attention_mask of all 0")) << msg;

  const auto path = written("maxlen", d);
  set_root_attr(path, "max_length", -1);
  msg = read_error(path);
  EXPECT_TRUE(has(msg, path) && has(msg, "max_length = -1")) << msg;

  bad = d;
  bad.splits.at("test").example_id[1] = bad.splits.at("train").example_id[3];
  msg = test::error_of([&] { write_dataset(test::temp_dir("ids") + "/d.h5", bad); });
  EXPECT_TRUE(has(msg, "example_id " + std::to_string(bad.splits.at("train").example_id[3]) + " appears twice")) << msg;
  // The same ids written behind the writer's back are refused on reading, naming the file.
  const auto path2 = written("ids", d);
  auto ids = d.splits.at("dev").example_id;
  ids[0] = ids[1];
  replace(path2, "/dev/example_id", h5::Type::kInt64, {ids.size()}, ids.data());
  msg = read_error(path2);
  EXPECT_TRUE(has(msg, path2) && has(msg, "appears twice")) << msg;
}

TEST(HostileDataset, LabelNamesOfTheWrongTypeNameTheFile) {
  auto d = small_data();
  const auto path = written("labels", d);
  hid_t id = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  H5Adelete(id, "label_names");
  H5Fclose(id);
  {
    hid_t fid = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, H5T_VARIABLE);
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(fid, "label_names", type, space, H5P_DEFAULT, H5P_DEFAULT);
    const char* v = "[1, 2]";
    H5Awrite(a, type, &v);
    H5Aclose(a);
    H5Sclose(space);
    H5Tclose(type);
    H5Fclose(fid);
  }
  const auto msg = read_error(path);
  EXPECT_TRUE(has(msg, path) && has(msg, "label_names")) << msg;
}

TEST(HostileDataset, TokensBeyondTheModelNameFileSplitExampleAndLimit) {
  auto d = small_data();
  d.path = "data.h5";
  EXPECT_NO_THROW(check_fits_model(d, "train", 100, 2, 512, "the student"));
  auto msg = test::error_of([&] { check_fits_model(d, "train", 100, 2, 8, "the student"); });
  EXPECT_TRUE(has(msg, "data.h5: split train holds rows of 12 tokens, the student takes at most 8 positions")) << msg;
  d.splits.at("dev").token_type_ids[3 * 12 + 5] = 2;
  msg = test::error_of([&] { check_fits_model(d, "dev", 100, 2, 512, "the student"); });
  EXPECT_TRUE(has(msg, "data.h5: split dev example 3 has token_type_id 2 at position 5, the student has 2 token types"))
      << msg;
  d.splits.at("test").input_ids[1 * 12] = 150;
  msg = test::error_of([&] { check_fits_model(d, "test", 100, 2, 512, "teacher t.safetensors"); });
  EXPECT_TRUE(has(msg,
                  "data.h5: split test example 1 has token id 150 at position 0, teacher t.safetensors has a "
                  "vocabulary of 100"))
      << msg;
}

// --- text preparation ------------------------------------------------------------------------

TEST(HostileText, DuplicateVocabularyTokensNameBothLines) {
  const auto dir = test::temp_dir("inputs-vocab");
  const auto path = write_text(dir, "vocab.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\nworld\nhello\n");
  const auto msg = test::error_of([&] { WordPieceTokenizer::from_file(path); });
  EXPECT_TRUE(has(msg, path + ":7: token 'hello' repeats line 5")) << msg;
}

PrepareOptions text_options(const std::string& dir, const std::string& table) {
  PrepareOptions o;
  o.vocab = write_text(dir, "vocab.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\ngood\nbad\nfilm\n");
  o.input = table;
  o.max_length = 8;
  o.dev_fraction = 0;
  o.test_fraction = 0;
  return o;
}

TEST(HostileText, AWrongColumnIsAHeaderErrorListingTheColumns) {
  const auto dir = test::temp_dir("inputs-header");
  const auto table = write_text(dir, "g.tsv", "word\tdefinition\tlabel\nfilm\tgood film\t1\nbad\tbad film\t0\n");
  auto o = text_options(dir, table);
  o.text_column = "gloss";
  const auto msg = test::error_of([&] { prepare_text(o, nullptr); });
  EXPECT_TRUE(has(msg, table + ": the header has no text column 'gloss' (columns: word, definition, label)")) << msg;
  EXPECT_FALSE(has(msg, "skip-bad-rows")) << msg;
  EXPECT_FALSE(has(msg, ":2:")) << msg;
}

TEST(HostileText, NulBytesInTextAreRowErrors) {
  const auto dir = test::temp_dir("inputs-nul");
  static const char kTable[] = "text,label\ngood film,1\nbad\0film,0\nbad film,0\n";
  const auto table = write_text(dir, "t.csv", std::string(kTable, sizeof(kTable) - 1));
  auto o = text_options(dir, table);
  auto msg = test::error_of([&] { prepare_text(o, nullptr); });
  EXPECT_TRUE(has(msg, table + ":3: column 'text' holds a NUL byte")) << msg;
  o.skip_bad_rows = true;
  PrepareReport rep;
  auto d = prepare_text(o, &rep);
  EXPECT_EQ(rep.bad_rows, 1);
  EXPECT_EQ(d.splits.at("train").n, 2);
}

}  // namespace
