// `bench-topk`: top-k masked-LM targets against the dense loss on real teacher outputs.
#include "distill/app/commands.h"

#include <torch/torch.h>

#include <algorithm>
#include <iostream>
#include <nlohmann/json.hpp>

#include "distill/data/batch.h"
#include "distill/kd/loss.h"
#include "distill/model/load.h"
#include "distill/model/weights.h"
#include "distill/store/reader.h"
#include "distill/store/sizing.h"
#include "distill/train/eval.h"
#include "distill/teacher/precompute.h"
#include "distill/train/checkpoint.h"
#include "distill/util/error.h"
#include "distill/util/log.h"

namespace distill {

void cmd_bench_topk(Communicator& comm, const RunArgs& a, const std::string& split_arg, const std::vector<long>& ks,
                    bool json) {
  auto c = resolve_config(comm, a);
  auto data = read_dataset(c.data.path);
  DISTILL_CHECK(data.task == "mlm", ConfigError, "bench-topk needs a masked-LM data set; ", data.path, " is a ",
                data.task, " task");
  const std::string split_name = split_arg.empty() ? c.data.eval_split : split_arg;
  const auto& split = data.split(split_name);
  auto teacher = load_teacher(c.teacher.path);
  auto student = load_model(checkpoints_dir(c.train.out_dir));
  student.model->eval();
  const double T = c.distill.temperature;
  const long vocab = teacher.model->config() ? teacher.model->config()->vocab_size : 0;
  const bool short_idx = vocab <= 65536;
  torch::NoGradGuard g;
  // sums: tokens, dense KL sum, then per k: top-k KL sum and teacher mass outside the top k
  std::vector<double> sums(2 + 2 * ks.size(), 0.0);
  // Contiguous rows per rank: each reads only its own blocks.
  const std::int64_t begin = split.n * comm.rank() / comm.size(), end = split.n * (comm.rank() + 1) / comm.size();
  const std::int64_t bs = c.train.eval_batch_size;
  for (std::int64_t b = begin; b < end; b += bs) {
    std::vector<std::int64_t> part;
    for (auto i = b; i < std::min(end, b + bs); ++i) part.push_back(i);
    auto batch = make_batch(split, part, nullptr);
    auto zt = teacher.model->forward(batch.inputs).logits;
    auto zs = student.model->forward(batch.inputs).logits;
    const auto n = static_cast<double>(zs.size(0));
    if (n == 0) continue;
    sums[0] += n;
    sums[1] += T * T * soft_kl(zs, zt, T).item<double>() * n;
    // Stored values are float16: round them the same way here.
    auto lse = (zt / T).logsumexp(-1);
    for (std::size_t j = 0; j < ks.size(); ++j) {
      auto [v, idx] = zt.topk(ks[j], -1);
      auto vh = v.to(torch::kHalf).to(torch::kFloat32);
      sums[2 + 2 * j] += T * T * topk_soft_kl(zs, vh, idx, lse, T).item<double>() * n;
      sums[3 + 2 * j] += (1.0 - torch::softmax(zt / T, -1).gather(1, idx).sum(1)).sum().item<double>();
    }
  }
  comm.allreduce(sums.data(), sums.size(), DType::kFloat64, ReduceOp::kSum);
  if (comm.rank() != 0) return;
  const double tokens = std::max(1.0, sums[0]), dense = sums[1] / tokens;
  nlohmann::json out = {{"split", split_name}, {"masked_tokens", sums[0]},           {"temperature", T},
                        {"dense_loss", dense}, {"dense_bytes_per_token", vocab * 2}, {"k", nlohmann::json::array()}};
  for (std::size_t j = 0; j < ks.size(); ++j) {
    const double sparse = sums[2 + 2 * j] / tokens;
    out["k"].push_back({{"k", ks[j]},
                        {"bytes_per_token", topk_bytes_per_token(ks[j], true, short_idx)},
                        {"topk_loss", sparse},
                        {"gap", dense - sparse},
                        {"relative_gap", (dense - sparse) / dense},
                        {"teacher_mass_outside", sums[3 + 2 * j] / tokens}});
  }
  if (json) {
    std::cout << out.dump(2) << std::endl;
    return;
  }
  std::cout << "top-k targets on " << split_name << ": " << sums[0] << " masked tokens, T = " << T
            << ", dense soft loss (T^2 KL) " << dense << " (dense float16 row: " << vocab * 2 << " bytes)\n"
            << "      k  bytes/token   top-k loss          gap   rel. gap   teacher mass outside\n";
  for (const auto& e : out["k"])
    std::cout << fmt::format("{:7d}  {:11d}  {:11.5f}  {:11.5f}  {:8.2f}%  {:10.4f}\n", e["k"].get<long>(),
                             e["bytes_per_token"].get<long>(), e["topk_loss"].get<double>(), e["gap"].get<double>(),
                             100.0 * e["relative_gap"].get<double>(), e["teacher_mass_outside"].get<double>());
}

}  // namespace distill
