#!/usr/bin/env python3
"""Builds a TorchScript teacher from a Hugging Face BERT directory, independently of distill.

  hf_to_torchscript.py HF_DIR DATASET_H5 OUT.pt

Reads config.json and model.safetensors with its own parser, implements BERT's forward in plain
PyTorch, traces it on the data set's first rows and saves it. forward(input_ids, attention_mask,
token_type_ids) returns (logits, hidden_states, attentions), as HF models do with both outputs on.
"""
import json, math, struct, sys
import h5py, numpy as np, torch

hf_dir, data_path, out = sys.argv[1:4]
cfg = json.load(open(f"{hf_dir}/config.json"))
raw = open(f"{hf_dir}/model.safetensors", "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
header = json.loads(raw[8:8 + n])
W = {}
for name, h in header.items():
    if name == "__metadata__":
        continue
    assert h["dtype"] == "F32", (name, h["dtype"])
    a, b = h["data_offsets"]
    W[name] = torch.from_numpy(np.frombuffer(raw[8 + n + a:8 + n + b], dtype=np.float32).copy()).reshape(h["shape"])


class Bert(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.p = torch.nn.ParameterDict({k.replace(".", "__"): torch.nn.Parameter(v, requires_grad=False)
                                         for k, v in W.items()})
        self.H, self.NH, self.L = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_hidden_layers"]
        self.eps = cfg.get("layer_norm_eps", 1e-12)

    def w(self, name):
        return self.p[name.replace(".", "__")]

    def ln(self, x, name):
        return torch.nn.functional.layer_norm(x, (self.H,), self.w(name + ".weight"), self.w(name + ".bias"), self.eps)

    def dense(self, x, name):
        return x @ self.w(name + ".weight").t() + self.w(name + ".bias")

    def forward(self, ids, mask, types):
        B, S = ids.shape
        x = (self.w("bert.embeddings.word_embeddings.weight")[ids]
             + self.w("bert.embeddings.position_embeddings.weight")[:S]
             + self.w("bert.embeddings.token_type_embeddings.weight")[types])
        x = self.ln(x, "bert.embeddings.LayerNorm")
        hidden, attns = [x], []
        dh = self.H // self.NH
        bias = (1.0 - mask[:, None, None, :].float()) * -1e30
        for l in range(self.L):
            p = f"bert.encoder.layer.{l}."
            q, k, v = (self.dense(x, p + "attention.self." + n).view(B, S, self.NH, dh).permute(0, 2, 1, 3)
                       for n in ("query", "key", "value"))
            a = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(dh) + bias, -1)
            attns.append(a)
            ctx = (a @ v).permute(0, 2, 1, 3).reshape(B, S, self.H)
            x = self.ln(self.dense(ctx, p + "attention.output.dense") + x, p + "attention.output.LayerNorm")
            i = self.dense(x, p + "intermediate.dense")
            i = 0.5 * i * (1 + torch.erf(i / math.sqrt(2)))
            x = self.ln(self.dense(i, p + "output.dense") + x, p + "output.LayerNorm")
            hidden.append(x)
        pooled = torch.tanh(self.dense(x[:, 0], "bert.pooler.dense"))
        return self.dense(pooled, "classifier"), tuple(hidden), tuple(attns)


with h5py.File(data_path, "r") as f:
    g = f["train"]
    ex = tuple(torch.from_numpy(g[k][:4].astype(np.int64)) for k in ("input_ids", "attention_mask", "token_type_ids"))
m = Bert().eval()
with torch.no_grad():
    traced = torch.jit.trace(m, ex, check_trace=True)
traced.save(out)
print(f"saved {out}: TorchScript teacher with {cfg['num_hidden_layers']} layers, {len(cfg['id2label'])} labels")
