// Starting a network from the weights of another (student.init): all of them, or the embeddings
// and a chosen subset of the encoder blocks (DistilBERT). Copies record no gradients.
#pragma once
#include <vector>

namespace distill {

class NetworkImpl;

// Copies every parameter of `from` into the parameter of the same name of `to`; `to` must have
// the architecture of `from`.
void copy_parameters(const NetworkImpl& from, NetworkImpl& to);

// Copies the embeddings (bert.embeddings.*) of `from` into `to`, and into block i of `to` block
// layers[i] of `from` (1-based, HF numbering); the pooler and classifier of `to` keep their values.
// The embeddings and blocks must have the same shapes in both.
void copy_embeddings_and_layers(const NetworkImpl& from, NetworkImpl& to, const std::vector<long>& layers);

}  // namespace distill
