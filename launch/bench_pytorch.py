#!/usr/bin/env python3
"""The reference side of distill's training benchmark: the same student, batch, loss and rank count
in PyTorch itself, timed the same way (median-free mean over the timed steps after warm-up).

  --model plain  a BERT classifier in plain PyTorch with distill's architecture (post-LN, GELU,
                 explicit attention), for CPU runs with Debian's python3-torch;
  --model hf     transformers' BertForSequenceClassification (--attention eager | sdpa).
Several ranks: run under mpirun (as distill is; Open MPI's rank variables are read, the process group
meets over TCP at DIST_INIT, default tcp://127.0.0.1:29555) or torchrun; gradients are averaged by
DistributedDataParallel (gloo on the CPU, NCCL on GPUs).
Loss: alpha * CE(labels) + beta * T^2 * KL(softmax(t / T) || softmax(s / T)) with alpha = beta = 0.5,
T = 2 and random teacher logits, AdamW (lr 1e-4, weight decay 0.01), gradient clipping at 1.0, as in
`distill bench train`.
"""
import argparse
import json
import math
import os
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Layer(nn.Module):
    def __init__(self, h, heads, inter, p):
        super().__init__()
        self.heads, self.d = heads, h // heads
        self.q, self.k, self.v, self.o = (nn.Linear(h, h) for _ in range(4))
        self.ln1, self.ln2 = nn.LayerNorm(h, eps=1e-12), nn.LayerNorm(h, eps=1e-12)
        self.fc1, self.fc2 = nn.Linear(h, inter), nn.Linear(inter, h)
        self.drop = nn.Dropout(p)

    def forward(self, x, mask):
        b, s, h = x.shape
        split = lambda t: t.view(b, s, self.heads, self.d).transpose(1, 2)
        q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
        p = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(self.d) + mask, -1)
        ctx = (self.drop(p) @ v).transpose(1, 2).reshape(b, s, h)
        x = self.ln1(self.drop(self.o(ctx)) + x)
        return self.ln2(self.drop(self.fc2(F.gelu(self.fc1(x)))) + x)


class PlainBert(nn.Module):
    def __init__(self, a):
        super().__init__()
        h = a.hidden
        self.word, self.pos, self.types = nn.Embedding(a.vocab_size, h), nn.Embedding(512, h), nn.Embedding(2, h)
        self.ln, self.drop = nn.LayerNorm(h, eps=1e-12), nn.Dropout(0.1)
        self.layers = nn.ModuleList(Layer(h, a.heads, a.intermediate, 0.1) for _ in range(a.layers))
        self.pool, self.cls = nn.Linear(h, h), nn.Linear(h, a.labels)

    def forward(self, ids, mask):
        pos = torch.arange(ids.shape[1], device=ids.device)[None]
        x = self.drop(self.ln(self.word(ids) + self.pos(pos) + self.types(torch.zeros_like(ids))))
        add = (1.0 - mask[:, None, None, :].to(x.dtype)) * torch.finfo(x.dtype).min
        for layer in self.layers:
            x = layer(x, add)
        return self.cls(self.drop(torch.tanh(self.pool(x[:, 0]))))


def main():
    ap = argparse.ArgumentParser()
    for name, default in (("hidden", 256), ("layers", 4), ("heads", 4), ("intermediate", 1024),
                          ("vocab-size", 30522), ("labels", 2), ("seq", 128), ("batch", 16), ("steps", 30),
                          ("warmup", 5), ("threads", 0)):
        ap.add_argument("--" + name, type=int, default=default)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    ap.add_argument("--model", default="plain", choices=["plain", "hf"])
    ap.add_argument("--attention", default="eager", choices=["eager", "sdpa"])
    ap.add_argument("--json", default="")
    a = ap.parse_args()

    env = lambda torchrun, ompi, default: int(os.environ.get(torchrun, os.environ.get(ompi, default)))
    world = env("WORLD_SIZE", "OMPI_COMM_WORLD_SIZE", "1")
    rank = env("RANK", "OMPI_COMM_WORLD_RANK", "0")
    local = env("LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_RANK", "0")
    local_world = env("LOCAL_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_SIZE", str(world))
    cores = len(os.sched_getaffinity(0))
    torch.set_num_threads(a.threads or max(1, cores // local_world))
    dev = torch.device(f"cuda:{local}" if a.device == "cuda" else "cpu")
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if world > 1:
        backend = "nccl" if dev.type == "cuda" else "gloo"
        if "MASTER_ADDR" in os.environ:
            torch.distributed.init_process_group(backend)
        else:
            torch.distributed.init_process_group(backend, init_method=os.environ.get("DIST_INIT", "tcp://127.0.0.1:29555"),
                                                 rank=rank, world_size=world)
    torch.manual_seed(1)
    if a.model == "hf":
        from transformers import ModelConfig, BertForSequenceClassification
        cfg = ModelConfig(vocab_size=a.vocab_size, hidden_size=a.hidden, num_hidden_layers=a.layers,
                         num_attention_heads=a.heads, intermediate_size=a.intermediate, max_position_embeddings=512,
                         num_labels=a.labels)
        cfg._attn_implementation = a.attention
        net = BertForSequenceClassification(cfg)
        forward = lambda ids, mask: net(input_ids=ids, attention_mask=mask).logits
    else:
        net = PlainBert(a)
        forward = net
    net.to(dev).train()
    params = sum(p.numel() for p in net.parameters())
    model = torch.nn.parallel.DistributedDataParallel(net) if world > 1 else net
    if world > 1 and a.model == "plain":
        forward = model
    elif world > 1:
        forward = lambda ids, mask: model(input_ids=ids, attention_mask=mask).logits
    decay = [p for n, p in net.named_parameters() if not (n.endswith("bias") or "LayerNorm" in n or ".ln" in n)]
    rest = [p for n, p in net.named_parameters() if n.endswith("bias") or "LayerNorm" in n or ".ln" in n]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": rest, "weight_decay": 0.0}], lr=1e-4)
    g = torch.Generator().manual_seed(100 + rank)
    batches = [(torch.randint(1000, a.vocab_size, (a.batch, a.seq), generator=g).to(dev),
                torch.randint(0, a.labels, (a.batch,), generator=g).to(dev),
                torch.randn(a.batch, a.labels, generator=g).to(dev)) for _ in range(4)]
    mask = torch.ones(a.batch, a.seq, dtype=torch.long, device=dev)
    T = 2.0
    sync = (lambda: torch.cuda.synchronize(dev)) if dev.type == "cuda" else (lambda: None)
    times = []
    for step in range(a.warmup + a.steps):
        ids, y, t = batches[step % len(batches)]
        t0 = time.perf_counter()
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=a.precision == "bf16"):
            z = forward(ids, mask).float()
            soft = F.kl_div(F.log_softmax(z / T, -1), F.log_softmax(t / T, -1), log_target=True,
                            reduction="batchmean") * T * T
            loss = 0.5 * F.cross_entropy(z, y) + 0.5 * soft
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        loss.item()
        sync()
        if step >= a.warmup:
            times.append(time.perf_counter() - t0)
    step_s = sum(times) / len(times)
    if world > 1:
        v = torch.tensor([step_s], dtype=torch.float64)
        torch.distributed.all_reduce(v)
        step_s = v.item() / world
    samples = a.batch * world / step_s
    out = {"framework": f"pytorch {torch.__version__}", "model": a.model, "attention": a.attention,
           "ranks": world, "device": str(dev), "precision": a.precision, "threads_per_rank": torch.get_num_threads(),
           "parameters": params, "step_ms": 1e3 * step_s, "samples_per_s": samples, "tokens_per_s": samples * a.seq}
    if rank == 0:
        print(f"pytorch ({a.model}{', ' + a.attention if a.model == 'hf' else ''}): {world} ranks x "
              f"{torch.get_num_threads()} threads on {dev}, {params} parameters, step {1e3 * step_s:.1f} ms, "
              f"{samples:.1f} samples/s, {samples * a.seq:.0f} tokens/s")
        if a.json:
            with open(a.json, "w") as f:
                json.dump(out, f, indent=2)
    if world > 1:
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
