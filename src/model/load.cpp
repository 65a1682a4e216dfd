#include "distill/model/load.h"

#include <torch/torch.h>

#include "distill/model/hf.h"
#include "distill/model/teacher_model.h"
#include "distill/model/weights.h"
#include "distill/util/error.h"
#include "distill/util/hash.h"

namespace distill {

LoadedModel load_model(const std::string& path, bool require_head, long num_labels, std::optional<ModelKind> kind) {
  LoadedModel r;
  DISTILL_CHECK(!is_torchscript_path(path), ConfigError, path,
                " is a TorchScript file: it can serve as a teacher, not as a BERT to train or evaluate");
  if (is_hf_dir(path)) {
    auto hf = read_hf_dir(path);
    const bool mlm =
        kind == ModelKind::kBertMlm || (!kind && require_head && !hf.mlm_head.empty() && !hf.has_classifier);
    if (mlm) {
      hf.config.kind = ModelKind::kBertMlm;
      hf.config.num_labels = 0;
      BertForMaskedLM m(hf.config);
      load_hf_mlm_weights(m, hf);
      r.model = m.ptr();
      r.file = path;
      r.fingerprint = model_fingerprint(path);
      return r;
    }
    if (num_labels > 0) hf.config.num_labels = num_labels;
    DISTILL_CHECK(hf.config.num_labels > 0, DataError, path,
                  "/config.json gives no label count (num_labels or "
                  "id2label); a teacher needs its classifier");
    BertForSequenceClassification m(hf.config);
    load_hf_weights(m, hf, require_head);
    r.model = m.ptr();
    r.file = path;
    r.label_names = hf.label_names;
  } else {
    r.file = resolve_model_path(path);
    auto st = load_safetensors(r.file);
    auto cfg = read_model_config(st, r.file);
    if (num_labels > 0) cfg.num_labels = num_labels;
    r.model = make_network(cfg);
    std::set<std::string> optional;
    if (!require_head) optional = {"classifier.weight", "classifier.bias"};
    if (cfg.kind == ModelKind::kBertMlm) optional.insert("cls.predictions.decoder.weight");
    load_module(*r.model, st.tensors, r.file, optional);
  }
  r.fingerprint = model_fingerprint(path);
  return r;
}

std::string model_fingerprint(const std::string& path) {
  if (is_hf_dir(path)) return hf_fingerprint(path);
  if (is_torchscript_path(path)) return file_digest(path);
  return file_digest(resolve_model_path(path));
}

}  // namespace distill
