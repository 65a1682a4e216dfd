#include <gtest/gtest.h>
#include <torch/torch.h>

#include "distill/model/bert.h"
#include "distill/model/weights.h"
#include "distill/util/error.h"
#include "test_util.h"

using namespace distill;

namespace {
// Max abs difference with the first bad index reported.
void expect_close(const torch::Tensor& got, const torch::Tensor& want, double tol, const std::string& what) {
  ASSERT_EQ(got.sizes(), want.sizes()) << what;
  auto diff = (got.to(torch::kFloat64) - want.to(torch::kFloat64)).abs().reshape(-1);
  auto worst = diff.argmax().item<std::int64_t>();
  EXPECT_LE(diff[worst].item<double>(), tol) << what << ": first worst element at flat index " << worst;
}
}  // namespace

TEST(Bert, MatchesIndependentPyTorchReference) {
  auto st = load_safetensors(test::fixture("tiny_bert.safetensors"));
  auto ref = load_safetensors(test::fixture("tiny_bert_ref.safetensors"));
  auto cfg = read_model_config(st, "tiny_bert");
  ASSERT_EQ(cfg.layers, 2);
  BertForSequenceClassification m(cfg);
  load_module(*m, st.tensors, "tiny_bert");
  m->eval();
  torch::NoGradGuard g;
  ModelInputs in{from_blob(ref.tensors.at("input_ids")), from_blob(ref.tensors.at("attention_mask")),
                 from_blob(ref.tensors.at("token_type_ids"))};
  auto out = m->forward(in, true, true);
  expect_close(out.logits, from_blob(ref.tensors.at("logits")), 1e-5, "logits");
  ASSERT_EQ(out.hidden.size(), 3u);
  ASSERT_EQ(out.attentions.size(), 2u);
  for (int i = 0; i <= 2; ++i)
    expect_close(out.hidden[i], from_blob(ref.tensors.at("hidden." + std::to_string(i))), 1e-5,
                 "hidden " + std::to_string(i));
  for (int i = 1; i <= 2; ++i)
    expect_close(out.attentions[i - 1], from_blob(ref.tensors.at("attention." + std::to_string(i))), 1e-6,
                 "attention " + std::to_string(i));
  // Padded keys get exactly zero attention.
  EXPECT_EQ(out.attentions[0][2].narrow(-1, 3, 4).abs().max().item<float>(), 0.0f);
}

TEST(Bert, HfNamesAndRoundTrip) {
  ModelConfig c;
  c.vocab_size = 30;
  c.hidden = 8;
  c.layers = 3;
  c.heads = 2;
  c.intermediate = 16;
  c.max_positions = 10;
  c.num_labels = 4;
  BertForSequenceClassification a(c), b(c);
  auto names = module_blobs(*a);
  for (const char* n :
       {"bert.embeddings.word_embeddings.weight", "bert.embeddings.LayerNorm.bias",
        "bert.encoder.layer.2.attention.self.query.weight", "bert.encoder.layer.0.attention.output.LayerNorm.weight",
        "bert.encoder.layer.1.intermediate.dense.bias", "bert.encoder.layer.1.output.dense.weight",
        "bert.pooler.dense.weight", "classifier.weight"})
    EXPECT_TRUE(names.count(n)) << n;
  const auto dir = test::temp_dir("roundtrip");
  save_model_file(dir + "/m.safetensors", *a, c);
  auto st = load_safetensors(dir + "/m.safetensors");
  EXPECT_EQ(read_model_config(st, "m").layers, 3);
  load_module(*b, st.tensors, "m");
  for (const auto& p : a->named_parameters())
    EXPECT_TRUE(torch::equal(p.value(), b->named_parameters()[p.key()])) << p.key();
}

TEST(Bert, LoadRejectsMissingAndMisshapedTensors) {
  auto st = load_safetensors(test::fixture("tiny_bert.safetensors"));
  auto cfg = read_model_config(st, "tiny_bert");
  BertForSequenceClassification m(cfg);
  auto missing = st.tensors;
  missing.erase("classifier.bias");
  try {
    load_module(*m, missing, "f.safetensors");
    FAIL() << "expected an error";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("classifier.bias"), std::string::npos) << e.what();
  }
  cfg.num_labels = 5;
  BertForSequenceClassification wider(cfg);
  EXPECT_THROW(load_module(*wider, st.tensors, "f.safetensors"), DataError);
}
