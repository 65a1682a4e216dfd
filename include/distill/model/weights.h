// Weight import and export as safetensors with HF names and dtypes.
#pragma once
#include <torch/nn/module.h>

#include <map>
#include <set>
#include <string>

#include "distill/io/safetensors.h"
#include "distill/model/config.h"

namespace distill {

TensorBlob to_blob(const torch::Tensor& t);
torch::Tensor from_blob(const TensorBlob& b);

// All parameters and buffers of `m` by name, as blobs.
std::map<std::string, TensorBlob> module_blobs(torch::nn::Module& m);
// Copies `tensors` into the parameters and buffers of `m`. Every parameter must be present with
// its shape, except those in `optional` (they keep their values). Missing, unexpected and
// mis-shaped tensors are listed together in one DataError naming `where`.
// HF's non-parameter buffer "bert.embeddings.position_ids" is accepted and ignored.
void load_module(torch::nn::Module& m, const std::map<std::string, TensorBlob>& tensors, const std::string& where,
                 const std::set<std::string>& optional = {});

// A model file: safetensors whose metadata holds the model config under "distill.model_config".
void save_model_file(const std::string& path, torch::nn::Module& m, const ModelConfig& c);
ModelConfig read_model_config(const SafeTensors& st, const std::string& where);

// Resolves a teacher/student weights path: a .safetensors file, a checkpoint step directory
// (its model.safetensors), or a checkpoints directory (the step named by its `latest`).
std::string resolve_model_path(const std::string& path);

}  // namespace distill
