#include "distill/model/teacher_model.h"

#include <torch/script.h>
#include <torch/torch.h>

#include "distill/model/network.h"
#include "distill/model/device.h"
#include "distill/util/error.h"

namespace distill {

namespace {

class NetworkTeacher : public TeacherModel {
 public:
  explicit NetworkTeacher(Network m) : m_(std::move(m)) { m_->eval(); }
  ModelOutput forward(const ModelInputs& in, bool h, bool a) override {
    Autocast cast(device_, precision_);
    auto out = m_->forward(to_device(in, device_), h, a);
    out.logits = out.logits.to(torch::kFloat32);
    return out;
  }
  void place(const c10::Device& d, c10::ScalarType precision) override {
    m_->to(d);
    device_ = d;
    precision_ = precision;
  }
  long num_labels() const override { return m_->config().num_labels; }
  std::string kind() const override { return name(m_->config().kind); }
  const ModelConfig* config() const override { return &m_->config(); }
  long parameters() const override {
    long n = 0;
    for (const auto& p : m_->parameters()) n += p.numel();
    return n;
  }

 private:
  Network m_;
  c10::Device device_{c10::kCPU};
  c10::ScalarType precision_ = c10::ScalarType::Float;
};

std::vector<torch::Tensor> tensor_list(const c10::IValue& v, const std::string& what, const std::string& where) {
  std::vector<torch::Tensor> out;
  if (v.isNone()) return out;
  if (v.isTensorList()) {
    for (const auto& t : v.toTensorVector()) out.push_back(t);
  } else if (v.isTuple()) {
    for (const auto& e : v.toTupleRef().elements()) {
      DISTILL_CHECK(e.isTensor(), DataError, where, ": ", what, " must hold tensors, found ", e.tagKind());
      out.push_back(e.toTensor());
    }
  } else if (v.isList()) {
    for (const auto& e : v.toListRef()) {
      DISTILL_CHECK(e.isTensor(), DataError, where, ": ", what, " must hold tensors, found ", e.tagKind());
      out.push_back(e.toTensor());
    }
  } else {
    throw DataError(distill::str(where, ": ", what, " must be a list or tuple of tensors, found ", v.tagKind()));
  }
  return out;
}

class TorchScriptTeacher : public TeacherModel {
 public:
  explicit TorchScriptTeacher(const std::string& path) : path_(path) {
    try {
      m_ = torch::jit::load(path, torch::kCPU);
    } catch (const c10::Error& e) {
      throw DataError(distill::str("cannot load TorchScript teacher ", path, ": ", e.what_without_backtrace()));
    }
    m_.eval();
    DISTILL_CHECK(m_.find_method("forward").has_value(), DataError, "TorchScript teacher ", path, " has no forward");
  }

  ModelOutput forward(const ModelInputs& in, bool want_hidden, bool want_attn) override {
    c10::IValue r;
    try {
      Autocast cast(device_, precision_);
      auto x = to_device(in, device_);
      r = m_.forward({x.input_ids, x.attention_mask, x.token_type_ids});
    } catch (const c10::Error& e) {
      throw DataError(
          distill::str("TorchScript teacher ", path_, " failed on a batch of shape ", in.input_ids.sizes(),
                       " (forward(input_ids, attention_mask, token_type_ids)): ", e.what_without_backtrace()));
    }
    ModelOutput out;
    c10::IValue hidden, attn;
    if (r.isTensor()) {
      out.logits = r.toTensor();
    } else if (r.isTuple()) {
      const auto& e = r.toTupleRef().elements();
      DISTILL_CHECK(!e.empty() && e[0].isTensor(), DataError, "TorchScript teacher ", path_,
                    " returned a tuple whose first element is not the logits tensor");
      out.logits = e[0].toTensor();
      if (e.size() > 1) hidden = e[1];
      if (e.size() > 2) attn = e[2];
    } else if (r.isGenericDict()) {
      auto d = r.toGenericDict();
      DISTILL_CHECK(d.contains("logits"), DataError, "TorchScript teacher ", path_,
                    " returned a dict without 'logits'");
      out.logits = d.at("logits").toTensor();
      if (d.contains("hidden_states")) hidden = d.at("hidden_states");
      if (d.contains("attentions")) attn = d.at("attentions");
    } else {
      throw DataError(distill::str("TorchScript teacher ", path_, " returned ", r.tagKind(),
                                   ": expected logits, a tuple or a dict"));
    }
    const auto batch = in.input_ids.size(0);
    DISTILL_CHECK(out.logits.dim() == 2 && out.logits.size(0) == batch, DataError, "TorchScript teacher ", path_,
                  " returned logits of shape ", out.logits.sizes(), ", expected [", batch, ", labels]");
    out.logits = out.logits.to(torch::kFloat32);
    if (want_hidden) out.hidden = tensor_list(hidden, "hidden_states", path_);
    if (want_attn) out.attentions = tensor_list(attn, "attentions", path_);
    labels_ = out.logits.size(1);
    return out;
  }
  long num_labels() const override { return labels_; }
  std::string kind() const override { return "torchscript"; }
  void place(const c10::Device& d, c10::ScalarType precision) override {
    m_.to(d);
    device_ = d;
    precision_ = precision;
  }
  long parameters() const override {
    long n = 0;
    for (const auto& p : m_.parameters()) n += p.numel();
    return n;
  }

 private:
  std::string path_;
  torch::jit::script::Module m_;
  long labels_ = 0;
  c10::Device device_{c10::kCPU};
  c10::ScalarType precision_ = c10::ScalarType::Float;
};

bool ends_with(const std::string& s, const std::string& e) {
  return s.size() >= e.size() && s.compare(s.size() - e.size(), e.size(), e) == 0;
}

}  // namespace

std::unique_ptr<TeacherModel> make_network_teacher(Network model) {
  return std::make_unique<NetworkTeacher>(std::move(model));
}

std::unique_ptr<TeacherModel> load_torchscript_teacher(const std::string& path) {
  return std::make_unique<TorchScriptTeacher>(path);
}

bool is_torchscript_path(const std::string& path) {
  for (const char* e : {".pt", ".pth", ".ts", ".torchscript"})
    if (ends_with(path, e)) return true;
  return false;
}

namespace {

class EnsembleTeacher : public TeacherModel {
 public:
  EnsembleTeacher(std::vector<TeacherModel*> members, std::vector<double> weights)
      : members_(std::move(members)), weights_(std::move(weights)) {}
  ModelOutput forward(const ModelInputs& in, bool, bool) override {
    std::vector<torch::Tensor> z;
    for (std::size_t i = 0; i < members_.size(); ++i) {
      z.push_back(members_[i]->forward(in).logits.to(torch::kFloat32));
      DISTILL_CHECK(z.back().sizes() == z[0].sizes(), DataError, "teacher ", i + 1, " of the ensemble gives logits of shape ",
                    z.back().sizes(), ", teacher 1 gives ", z[0].sizes());
    }
    const bool one_output = z[0].size(-1) == 1;  // a regressor: the weighted mean of the outputs
    for (std::size_t i = 0; i < z.size(); ++i)
      z[i] = one_output ? weights_[i] * z[i] : std::log(weights_[i]) + torch::log_softmax(z[i], -1);
    ModelOutput out;
    out.logits = one_output ? torch::stack(z).sum(0) : torch::logsumexp(torch::stack(z), 0);
    return out;
  }
  long num_labels() const override { return members_[0]->num_labels(); }
  std::string kind() const override { return "ensemble"; }
  long parameters() const override {
    long n = 0;
    for (const auto* m : members_) n += m->parameters();
    return n;
  }
  void place(const c10::Device& d, c10::ScalarType precision) override {
    for (auto* m : members_) m->place(d, precision);
  }

 private:
  std::vector<TeacherModel*> members_;
  std::vector<double> weights_;
};

}  // namespace

std::unique_ptr<TeacherModel> make_ensemble_teacher(std::vector<TeacherModel*> members, std::vector<double> weights) {
  DISTILL_CHECK(!members.empty() && members.size() == weights.size(), ConfigError, "an ensemble of ", members.size(),
                " teachers with ", weights.size(), " weights");
  return std::make_unique<EnsembleTeacher>(std::move(members), std::move(weights));
}

}  // namespace distill
