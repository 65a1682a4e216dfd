#include "distill/model/weights.h"

#include <torch/torch.h>

#include <filesystem>
#include <set>
#include <sstream>
#include <nlohmann/json.hpp>

#include "distill/util/error.h"
#include "distill/util/fs.h"

namespace distill {

namespace {
std::string st_dtype(torch::ScalarType t) {
  switch (t) {
    case torch::kFloat32:
      return "F32";
    case torch::kFloat64:
      return "F64";
    case torch::kFloat16:
      return "F16";
    case torch::kBFloat16:
      return "BF16";
    case torch::kInt64:
      return "I64";
    case torch::kInt32:
      return "I32";
    case torch::kInt16:
      return "I16";
    case torch::kInt8:
      return "I8";
    case torch::kUInt8:
      return "U8";
    case torch::kBool:
      return "BOOL";
    default:
      throw Error(distill::str("no safetensors dtype for torch dtype ", t));
  }
}
torch::ScalarType torch_dtype(const std::string& d) {
  static const std::map<std::string, torch::ScalarType> m = {
      {"F32", torch::kFloat32}, {"F64", torch::kFloat64}, {"F16", torch::kFloat16}, {"BF16", torch::kBFloat16},
      {"I64", torch::kInt64},   {"I32", torch::kInt32},   {"I16", torch::kInt16},   {"I8", torch::kInt8},
      {"U8", torch::kUInt8},    {"BOOL", torch::kBool}};
  auto it = m.find(d);
  DISTILL_CHECK(it != m.end(), DataError, "unsupported safetensors dtype ", d);
  return it->second;
}
std::string shape_str(at::IntArrayRef s) { return distill::str(s); }
}  // namespace

TensorBlob to_blob(const torch::Tensor& t) {
  auto c = t.detach().cpu().contiguous();
  TensorBlob b;
  b.dtype = st_dtype(c.scalar_type());
  b.shape = c.sizes().vec();
  b.bytes.assign(static_cast<const char*>(c.data_ptr()), c.numel() * c.element_size());
  return b;
}

torch::Tensor from_blob(const TensorBlob& b) {
  auto t = torch::empty(b.shape, torch::TensorOptions().dtype(torch_dtype(b.dtype)));
  if (!b.bytes.empty()) std::memcpy(t.data_ptr(), b.bytes.data(), b.bytes.size());
  return t;
}

std::map<std::string, TensorBlob> module_blobs(torch::nn::Module& m) {
  std::map<std::string, TensorBlob> out;
  for (const auto& p : m.named_parameters()) out[p.key()] = to_blob(p.value());
  for (const auto& b : m.named_buffers()) out[b.key()] = to_blob(b.value());
  return out;
}

void load_module(torch::nn::Module& m, const std::map<std::string, TensorBlob>& tensors, const std::string& where,
                 const std::set<std::string>& optional) {
  torch::NoGradGuard g;
  std::vector<std::string> missing, misshaped, unexpected;
  std::set<std::string> known = {"bert.embeddings.position_ids"};
  auto assign = [&](const std::string& name, torch::Tensor& dst) {
    known.insert(name);
    auto it = tensors.find(name);
    if (it == tensors.end()) {
      if (!optional.count(name)) missing.push_back(distill::str(name, " ", shape_str(dst.sizes())));
      return;
    }
    if (it->second.shape != dst.sizes().vec()) {
      misshaped.push_back(
          distill::str(name, " ", shape_str(it->second.shape), " (the model expects ", shape_str(dst.sizes()), ")"));
      return;
    }
    dst.copy_(from_blob(it->second).to(dst.scalar_type()));
  };
  for (auto& p : m.named_parameters()) assign(p.key(), p.value());
  for (auto& b : m.named_buffers()) assign(b.key(), b.value());
  for (const auto& kv : tensors)
    if (!known.count(kv.first)) unexpected.push_back(kv.first);
  if (missing.empty() && misshaped.empty() && unexpected.empty()) return;
  std::ostringstream os;
  os << where << " does not fit the model:";
  auto list = [&os](const char* what, const std::vector<std::string>& v) {
    if (v.empty()) return;
    os << "\n  " << v.size() << " " << what << ":";
    for (std::size_t i = 0; i < v.size() && i < 12; ++i) os << "\n    " << v[i];
    if (v.size() > 12) os << "\n    ... and " << v.size() - 12 << " more";
  };
  list("missing", missing);
  list("mis-shaped", misshaped);
  list("unexpected", unexpected);
  throw DataError(os.str());
}

void save_model_file(const std::string& path, torch::nn::Module& m, const ModelConfig& c) {
  SafeTensors st;
  st.tensors = module_blobs(m);
  st.metadata["format"] = "pt";
  st.metadata["distill.model_config"] = to_json(c).dump();
  save_safetensors(path, st);
}

ModelConfig read_model_config(const SafeTensors& st, const std::string& where) {
  auto it = st.metadata.find("distill.model_config");
  DISTILL_CHECK(it != st.metadata.end(), DataError, where,
                " has no 'distill.model_config' metadata; save it with distill or give the config");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(it->second);
  } catch (const nlohmann::json::exception& e) {
    throw DataError(str(where, ": metadata 'distill.model_config' is not valid JSON: ", e.what()));
  }
  return bert_config_from_json(j, where + " metadata 'distill.model_config'");
}

std::string resolve_model_path(const std::string& path) {
  namespace fs = std::filesystem;
  DISTILL_CHECK(!path.empty(), ConfigError, "no model path given");
  DISTILL_CHECK(fs::exists(path), DataError, "model path ", path, " does not exist");
  if (fs::is_regular_file(path)) return path;
  if (fs::exists(fs::path(path) / "model.safetensors")) return (fs::path(path) / "model.safetensors").string();
  auto latest = fs::path(path) / "latest";
  DISTILL_CHECK(fs::exists(latest), DataError, path, " holds neither model.safetensors nor a 'latest' checkpoint");
  std::string step = read_file(latest.string());
  while (!step.empty() && (step.back() == '\n' || step.back() == ' ')) step.pop_back();
  return resolve_model_path((fs::path(path) / step).string());
}

}  // namespace distill
