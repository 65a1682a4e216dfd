// A teacher as precompute and eval see it: a frozen model in eval mode that maps a batch to
// logits, and to hidden states and attention maps when it can. Our BERT, Hugging Face BERT
// directories and TorchScript modules all load behind this interface.
#pragma once
#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include <memory>
#include <string>
#include <vector>

#include "distill/model/network.h"

namespace distill {

class TeacherModel {
 public:
  virtual ~TeacherModel() = default;
  // Called under no-grad. Inputs may live on any device; outputs live on the teacher's device,
  // logits as float32 [batch, labels]; hidden/attentions are filled when asked and the model
  // provides them.
  virtual ModelOutput forward(const ModelInputs& in, bool want_hidden = false, bool want_attentions = false) = 0;
  // Label count when known before running (0 = learnt from the first batch).
  virtual long num_labels() const = 0;
  virtual std::string kind() const = 0;  // the model kind (bert, bert_mlm, mlp, ...) or "torchscript"
  virtual long parameters() const = 0;   // elements over all parameters
  virtual const ModelConfig* config() const { return nullptr; }  // known for distill and HF models
  // Moves the teacher to `d`; inference runs under autocast to `precision` there (Note [devices]).
  virtual void place(const c10::Device& d, c10::ScalarType precision) = 0;
};

// Wraps a model distill trained or imported (put in eval mode).
std::unique_ptr<TeacherModel> make_network_teacher(Network model);
// Loads a TorchScript module whose forward takes (input_ids, attention_mask, token_type_ids), all
// int64 [batch, seq], and returns logits, or a tuple (logits, hidden_states?, attentions?), or a
// dict with "logits" (and "hidden_states", "attentions"). Errors name the file.
std::unique_ptr<TeacherModel> load_torchscript_teacher(const std::string& path);

// Several teachers as one (eval's and train.select's view of an ensemble; Note [several teachers]
// in kd/loss.h): logits log sum_i w_i softmax(z_i), whose softmax is the weighted mean of the
// members' distributions; for one output (regression) the weighted mean sum_i w_i z_i. `members` are not owned and must outlive it; `weights` sum to 1.
std::unique_ptr<TeacherModel> make_ensemble_teacher(std::vector<TeacherModel*> members, std::vector<double> weights);

// True for .pt, .pth, .ts and .torchscript files.
bool is_torchscript_path(const std::string& path);

}  // namespace distill
