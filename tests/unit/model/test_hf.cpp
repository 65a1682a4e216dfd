// Hugging Face directories: the three key layouts load onto the reference weights, export then
// import gives the same logits bit for bit, and ill-fitting tensors are listed in one error.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "distill/model/hf.h"
#include "distill/model/load.h"
#include "distill/model/weights.h"
#include "distill/util/fs.h"
#include "test_util.h"

namespace distill {
namespace {

namespace fs = std::filesystem;

SafeTensors tiny() { return load_safetensors(test::fixture("tiny_bert.safetensors")); }

// Writes an HF directory whose tensors are tiny_bert's, renamed by `rename` ("" drops one).
std::string make_hf_dir(const std::string& dir, const std::function<std::string(const std::string&)>& rename,
                        const std::map<std::string, TensorBlob>& extra = {}) {
  auto st = tiny();
  auto cfg = nlohmann::json::parse(st.metadata.at("distill.model_config"));
  cfg.erase("num_labels");
  cfg["id2label"] = {{"0", "a"}, {"1", "b"}, {"2", "c"}};
  cfg["model_type"] = "bert";
  cfg["hidden_act"] = "gelu";
  fs::create_directories(dir);
  write_file_atomic(dir + "/config.json", cfg.dump());
  SafeTensors out;
  for (auto& [k, v] : st.tensors) {
    auto n = rename(k);
    if (!n.empty()) out.tensors[n] = v;
  }
  for (auto& [k, v] : extra) out.tensors[k] = v;
  save_safetensors(dir + "/model.safetensors", out);
  return dir;
}

torch::Tensor logits_of(NetworkImpl& m) {
  auto ref = load_safetensors(test::fixture("tiny_bert_ref.safetensors"));
  ModelInputs in{from_blob(ref.tensors.at("input_ids")), from_blob(ref.tensors.at("attention_mask")),
                 from_blob(ref.tensors.at("token_type_ids"))};
  m.eval();
  torch::NoGradGuard g;
  return m.forward(in).logits;
}

torch::Tensor reference_logits() {
  return from_blob(load_safetensors(test::fixture("tiny_bert_ref.safetensors")).tensors.at("logits"));
}

TEST(HfDir, SequenceClassificationLayoutLoadsWithLabelNames) {
  const auto dir = make_hf_dir(test::temp_dir("hfcls") + "/m", [](const std::string& k) { return k; });
  auto m = load_model(dir);
  EXPECT_EQ(m.label_names, (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_TRUE(torch::allclose(logits_of(*m.model), reference_logits(), 1e-5, 1e-5));
  EXPECT_EQ(m.fingerprint, model_fingerprint(dir));
}

TEST(HfDir, BertModelAndMaskedLmLayoutsInitialiseAStudent) {
  auto strip = [](const std::string& k) {
    if (k.rfind("classifier.", 0) == 0) return std::string();
    return k.rfind("bert.", 0) == 0 ? k.substr(5) : k;
  };
  const auto base = make_hf_dir(test::temp_dir("hfbase") + "/m", strip);
  auto enc = load_model(base, false, 3);
  auto want = tiny().tensors;
  auto params = enc.model->named_parameters();
  EXPECT_TRUE(torch::equal(params["bert.encoder.layer.1.output.dense.weight"],
                           from_blob(want.at("bert.encoder.layer.1.output.dense.weight"))));
  // A teacher needs its head: the same directory is refused, naming what is missing.
  auto msg = test::error_of([&] { load_model(base); });
  EXPECT_NE(msg.find("2 missing:"), std::string::npos) << msg;
  EXPECT_NE(msg.find("classifier.weight [3, 16]"), std::string::npos) << msg;

  auto mlm_only = [](const std::string& k) {
    return (k.rfind("classifier.", 0) == 0 || k.rfind("bert.pooler.", 0) == 0) ? std::string() : k;
  };
  std::map<std::string, TensorBlob> head = {
      {"cls.predictions.bias", to_blob(torch::zeros({50}))},
      {"cls.predictions.transform.dense.weight", to_blob(torch::zeros({16, 16}))}};
  const auto mlm = make_hf_dir(test::temp_dir("hfmlm") + "/m", mlm_only, head);
  auto hf = read_hf_dir(mlm);
  EXPECT_EQ(hf.unused.size(), 2u);
  auto s = load_model(mlm, false, 2);
  EXPECT_EQ(s.model->config().num_labels, 2);
  EXPECT_TRUE(torch::equal(s.model->named_parameters()["bert.embeddings.word_embeddings.weight"],
                           from_blob(want.at("bert.embeddings.word_embeddings.weight"))));
}

TEST(HfDir, ExportThenImportGivesTheSameLogits) {
  auto st = tiny();
  BertForSequenceClassification m(read_model_config(st, "tiny"));
  load_module(*m, st.tensors, "tiny");
  const auto dir = test::temp_dir("hfexp") + "/student";
  export_hf_dir(dir, *m, {"neg", "mid", "pos"}, "");
  const auto cfg = nlohmann::json::parse(read_file(dir + "/config.json"));
  EXPECT_EQ(cfg.at("architectures")[0], "BertForSequenceClassification");
  EXPECT_EQ(cfg.at("id2label").at("2"), "pos");
  EXPECT_EQ(cfg.at("label2id").at("mid"), 1);
  EXPECT_EQ(cfg.at("hidden_size"), 16);
  EXPECT_FALSE(fs::exists(dir + ".partial"));
  auto back = load_model(dir);
  EXPECT_TRUE(torch::equal(logits_of(*back.model), logits_of(*m)));
  // Exporting over something that is not an HF directory is refused.
  const auto other = test::temp_dir("hfother");
  std::ofstream(other + "/keep.txt") << "x";
  EXPECT_NE(test::error_of([&] { export_hf_dir(other, *m, {}, ""); }).find("refusing to replace"), std::string::npos);
  EXPECT_TRUE(fs::exists(other + "/keep.txt"));
}

TEST(HfDir, IllFittingTensorsAreListedTogether) {
  auto rename = [](const std::string& k) {
    if (k == "bert.encoder.layer.0.attention.self.query.weight")
      return std::string("bert.encoder.layer.0.attention.self.q.weight");
    return k;
  };
  std::map<std::string, TensorBlob> bad = {{"bert.embeddings.word_embeddings.weight", to_blob(torch::zeros({51, 16}))}};
  const auto dir = make_hf_dir(test::temp_dir("hfbad") + "/m", rename, bad);
  const auto msg = test::error_of([&] { load_model(dir); });
  EXPECT_NE(msg.find(dir + "/model.safetensors does not fit the model"), std::string::npos) << msg;
  EXPECT_NE(msg.find("1 missing:\n    bert.encoder.layer.0.attention.self.query.weight [16, 16]"), std::string::npos)
      << msg;
  EXPECT_NE(msg.find("1 mis-shaped:\n    bert.embeddings.word_embeddings.weight [51, 16] (the model expects [50, 16])"),
            std::string::npos)
      << msg;
  EXPECT_NE(msg.find("1 unexpected:\n    bert.encoder.layer.0.attention.self.q.weight"), std::string::npos) << msg;
  write_file_atomic(dir + "/config.json", R"({"model_type": "roberta"})");
  EXPECT_NE(test::error_of([&] { load_model(dir); }).find("model_type is \"roberta\""), std::string::npos);
}

}  // namespace
}  // namespace distill
