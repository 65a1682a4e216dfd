// TorchScript teachers: the three return forms (tensor, tuple, dict) and clear errors for others.
// Modules are scripted here with LibTorch's own TorchScript compiler and saved to .pt files.
#include <gtest/gtest.h>
#include <torch/script.h>
#include <torch/torch.h>

#include <fstream>

#include "distill/model/teacher_model.h"
#include "test_util.h"

namespace distill {
namespace {

// Saves a module whose forward body is `body`; weight w: [labels, 4] maps the first 4 ids to logits.
std::string save_module(const std::string& name, const std::string& body) {
  torch::jit::Module m("Teacher");
  m.register_parameter("w", torch::arange(12, torch::kFloat32).reshape({3, 4}) / 10, false);
  m.define("def forward(self, input_ids, attention_mask, token_type_ids):\n" + body);
  const auto path = test::temp_dir("ts-" + name) + "/" + name + ".pt";
  m.save(path);
  return path;
}

ModelInputs inputs() {
  auto ids = torch::tensor({{1, 2, 3, 4}, {4, 3, 2, 1}}, torch::kInt64);
  return {ids, torch::ones_like(ids), torch::zeros_like(ids)};
}

torch::Tensor expected() {
  return inputs()
      .input_ids.to(torch::kFloat32)
      .matmul((torch::arange(12).reshape({3, 4}).to(torch::kFloat32) / 10).t());
}

constexpr const char* kLogits = "    z = torch.matmul(input_ids.float(), self.w.t())\n";

TEST(TorchScriptTeacher, TensorTupleAndDictReturns) {
  torch::NoGradGuard g;
  auto plain = load_torchscript_teacher(save_module("plain", std::string(kLogits) + "    return z\n"));
  EXPECT_EQ(plain->num_labels(), 0);
  EXPECT_TRUE(torch::allclose(plain->forward(inputs()).logits, expected()));
  EXPECT_EQ(plain->num_labels(), 3);
  EXPECT_EQ(plain->kind(), "torchscript");
  EXPECT_EQ(plain->parameters(), 12);

  auto tuple = load_torchscript_teacher(
      save_module("tuple", std::string(kLogits) + "    h = [z.unsqueeze(1), z.unsqueeze(1) * 2]\n    return z, h\n"));
  auto out = tuple->forward(inputs(), true, true);
  EXPECT_TRUE(torch::allclose(out.logits, expected()));
  ASSERT_EQ(out.hidden.size(), 2u);
  EXPECT_TRUE(torch::allclose(out.hidden[1].squeeze(1), expected() * 2));
  EXPECT_TRUE(out.attentions.empty());

  auto dict = load_torchscript_teacher(
      save_module("dict", std::string(kLogits) + "    return {'logits': z, 'attentions': [z.unsqueeze(1)]}\n"));
  out = dict->forward(inputs(), true, true);
  EXPECT_TRUE(torch::allclose(out.logits, expected()));
  EXPECT_EQ(out.attentions.size(), 1u);
}

TEST(TorchScriptTeacher, BadModulesAndOutputsAreNamed) {
  torch::NoGradGuard g;
  const auto no_logits = save_module("nologits", std::string(kLogits) + "    return {'scores': z}\n");
  auto t = load_torchscript_teacher(no_logits);
  auto msg = test::error_of([&] { t->forward(inputs()); });
  EXPECT_NE(msg.find(no_logits + " returned a dict without 'logits'"), std::string::npos) << msg;

  const auto flat = save_module("flat", "    return input_ids.float().sum(1)\n");
  t = load_torchscript_teacher(flat);
  msg = test::error_of([&] { t->forward(inputs()); });
  EXPECT_NE(msg.find("returned logits of shape [2], expected [2, labels]"), std::string::npos) << msg;

  const auto dir = test::temp_dir("ts-garbage");
  std::ofstream(dir + "/x.pt") << "not a zip archive";
  msg = test::error_of([&] { load_torchscript_teacher(dir + "/x.pt"); });
  EXPECT_NE(msg.find("cannot load TorchScript teacher " + dir + "/x.pt"), std::string::npos) << msg;
  EXPECT_TRUE(is_torchscript_path("m.pt"));
  EXPECT_FALSE(is_torchscript_path("m.safetensors"));
}

}  // namespace
}  // namespace distill
