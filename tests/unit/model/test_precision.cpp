// The precision policy (Note [cpu bf16]), CPU autocast, bf16 gradients against float32 ones, and
// the resume check of precisions.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "distill/kd/loss.h"
#include "distill/model/device.h"
#include "distill/model/network.h"
#include "distill/model/precision.h"
#include "distill/train/checkpointer.h"
#include "distill/util/cpu_isa.h"
#include "distill/util/error.h"
#include "test_util.h"

namespace distill {
namespace {

CpuIsa isa(bool amx, bool avx512_bf16) {
  CpuIsa i;
  i.model = "Test CPU";
  i.amx_bf16 = amx;
  i.avx512_bf16 = avx512_bf16;
  return i;
}

TEST(PrecisionPolicy, AutoIsBf16WhereItIsNativeOrOnAGpu) {
  const CpuIsa amx = isa(true, true), avx = isa(false, true), neither = isa(false, false);
  const struct {
    Precision asked;
    bool cuda;
    CpuIsa cpu;
    Precision want;
    bool warns;
  } cases[] = {
      {Precision::kAuto, false, amx, Precision::kBf16, false},
      {Precision::kAuto, false, avx, Precision::kBf16, false},
      {Precision::kAuto, false, neither, Precision::kFp32, false},
      {Precision::kAuto, true, neither, Precision::kBf16, false},
      {Precision::kFp32, false, amx, Precision::kFp32, false},
      {Precision::kFp32, true, amx, Precision::kFp32, false},
      {Precision::kBf16, false, amx, Precision::kBf16, false},
      {Precision::kBf16, false, neither, Precision::kBf16, true},
      {Precision::kBf16, true, neither, Precision::kBf16, false},
      {Precision::kFp16, true, neither, Precision::kFp16, false},
  };
  for (const auto& c : cases) {
    const auto got = resolve_precision(c.asked, c.cuda, c.cpu, "train.precision");
    EXPECT_EQ(got.precision, c.want) << name(c.asked) << " cuda " << c.cuda << " " << c.cpu.units();
    EXPECT_EQ(!got.warning.empty(), c.warns) << got.warning;
  }
  EXPECT_EQ(resolve_precision(Precision::kBf16, false, neither, "train.precision").warning,
            "train.precision: bf16 on a CPU without native bf16 units (Test CPU, bf16 units: neither): its matrix "
            "products are emulated, slower than fp32; auto would choose fp32");
  EXPECT_EQ(test::error_of([&] { resolve_precision(Precision::kFp16, false, amx, "teacher.precision"); }),
            "teacher.precision: fp16 needs a GPU; on the CPU use bf16, fp32 or auto");
  EXPECT_THROW(scalar_type(Precision::kAuto), std::logic_error);
}

TEST(PrecisionPolicy, OneDnnIsaCapsTurnUnitsOff) {
  const CpuIsa amx = isa(true, true);
  EXPECT_TRUE(apply_isa_cap(amx, "ONEDNN_MAX_CPU_ISA", "ALL").amx_bf16);
  EXPECT_TRUE(apply_isa_cap(amx, "ONEDNN_MAX_CPU_ISA", "avx512_core_amx").amx_bf16);
  EXPECT_EQ(apply_isa_cap(amx, "ONEDNN_MAX_CPU_ISA", "AVX512_CORE_AMX").cap, "");
  const auto bf16 = apply_isa_cap(amx, "DNNL_MAX_CPU_ISA", "AVX512_CORE_BF16");
  EXPECT_FALSE(bf16.amx_bf16);
  EXPECT_TRUE(bf16.avx512_bf16);
  EXPECT_STREQ(bf16.units(), "AVX512-BF16");
  const auto avx2 = apply_isa_cap(amx, "ONEDNN_MAX_CPU_ISA", "avx2");
  EXPECT_FALSE(avx2.native_bf16());
  EXPECT_EQ(avx2.describe(), "Test CPU, bf16 units: neither (capped by ONEDNN_MAX_CPU_ISA=avx2)");
  EXPECT_EQ(resolve_precision(Precision::kAuto, false, avx2, "train.precision").precision, Precision::kFp32);
  EXPECT_FALSE(apply_isa_cap(amx, "ONEDNN_MAX_CPU_ISA", "AVX512_CORE").native_bf16());
}

TEST(PrecisionPolicy, ThisCpuIsDescribed) {
  const auto& i = cpu_isa();
  EXPECT_NE(i.describe().find("bf16 units: "), std::string::npos);
  EXPECT_EQ(i.native_bf16(), std::string(i.units()) != "neither");
}

TEST(CpuAutocast, MatrixProductsRunInBf16InsideTheGuardOnly) {
  auto x = torch::randn({4, 4});
  const c10::Device cpu(c10::kCPU);
  {
    Autocast cast(cpu, c10::ScalarType::BFloat16);
    EXPECT_EQ(torch::matmul(x, x).scalar_type(), torch::kBFloat16);
    {
      Autocast off(cpu, c10::ScalarType::Float);  // an fp32 teacher inside a bf16 student's step
      EXPECT_EQ(torch::matmul(x, x).scalar_type(), torch::kFloat32);
    }
    EXPECT_EQ(torch::matmul(x, x).scalar_type(), torch::kBFloat16);
  }
  EXPECT_EQ(torch::matmul(x, x).scalar_type(), torch::kFloat32);
  {
    Autocast fp32(cpu, c10::ScalarType::Float);
    EXPECT_EQ(torch::matmul(x, x).scalar_type(), torch::kFloat32);
  }
}

// A small BERT's gradients of the KD loss (logits cast to float32 as the trainer does) under bf16
// autocast stay within 5% (relative L2 norm) of the float32 gradients, per tensor, and within 2%
// over all parameters; they are float32 (the master weights' type).
TEST(CpuAutocast, Bf16GradientsMatchFloat32GradientsOnASmallBert) {
  ModelConfig c;
  c.vocab_size = 300;
  c.hidden = 64;
  c.layers = 2;
  c.heads = 4;
  c.intermediate = 128;
  c.max_positions = 32;
  c.num_labels = 3;
  torch::manual_seed(7);
  auto m = make_network(c);
  m->eval();  // no dropout: both passes see the same function
  ModelInputs in;
  in.input_ids = torch::randint(0, 300, {8, 24});
  in.attention_mask = torch::ones({8, 24}, torch::kInt64);
  in.attention_mask.narrow(1, 20, 4).zero_();
  in.token_type_ids = torch::zeros({8, 24}, torch::kInt64);
  const auto teacher = torch::randn({8, 3}) * 3;
  const auto labels = torch::randint(0, 3, {8});
  KdOptions o{0.5, 0.5, 2.0};
  auto grads = [&](c10::ScalarType p) {
    m->zero_grad();
    torch::Tensor z;
    {
      Autocast cast(c10::Device(c10::kCPU), p);
      z = m->forward(in, false, false).logits;
    }
    EXPECT_EQ(z.scalar_type(), p == c10::ScalarType::Float ? torch::kFloat32 : torch::kBFloat16);
    kd_loss(z.to(torch::kFloat32), teacher, labels, o).total.backward();
    std::vector<torch::Tensor> g;
    for (const auto& q : m->parameters()) g.push_back(q.grad().clone());
    return g;
  };
  const auto g32 = grads(c10::ScalarType::Float), g16 = grads(c10::ScalarType::BFloat16);
  ASSERT_EQ(g32.size(), g16.size());
  double diff = 0, norm = 0;
  const auto names = m->named_parameters();
  for (std::size_t i = 0; i < g32.size(); ++i) {
    EXPECT_EQ(g16[i].scalar_type(), torch::kFloat32);
    const double d = (g16[i] - g32[i]).norm().item<double>(), n = g32[i].norm().item<double>();
    diff += d * d;
    norm += n * n;
    if (n > 1e-6) {
      EXPECT_LE(d / n, 0.05) << names[i].key();
    }
  }
  EXPECT_LE(std::sqrt(diff / norm), 0.02);
  EXPECT_GT(std::sqrt(diff / norm), 0.0) << "bf16 autocast changed nothing";
}

TEST(ResumePrecision, ARunResumesOnlyInThePrecisionItBeganIn) {
  EXPECT_NO_THROW(check_resume_precision("ck", "", "auto", "bf16"));  // older checkpoints: not recorded
  EXPECT_NO_THROW(check_resume_precision("ck", "bf16", "auto", "bf16"));
  const auto auto_msg = test::error_of([] { check_resume_precision("ck/step-00000010", "bf16", "auto", "fp32"); });
  EXPECT_EQ(auto_msg.rfind("ck/step-00000010 was trained in bf16; train.precision: auto resolves to fp32 here (", 0),
            0u)
      << auto_msg;
  EXPECT_NE(auto_msg.find("but to bf16 where the checkpoint was written. A run resumes exactly only in the "
                          "precision it began in: resume it on a machine where train.precision resolves to bf16 "
                          "(a GPU or a CPU with AMX or AVX512-BF16), or start a new train.out_dir"),
            std::string::npos)
      << auto_msg;
  EXPECT_NE(test::error_of([] {
              check_resume_precision("ck", "fp32", "bf16", "bf16");
            }).find("ck was trained in fp32; this run asks for train.precision: bf16."),
            std::string::npos);
}

}  // namespace
}  // namespace distill
