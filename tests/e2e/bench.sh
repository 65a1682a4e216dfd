#!/usr/bin/env bash
# distill bench: every sub-benchmark runs on 2 ranks with a tiny model and writes JSON whose figures
# agree with each other and with the closed forms (model FLOPs, bus bandwidth).
source "$(dirname "$0")/common.sh"
B="$WORK/bench"
rm -rf "$B" && mkdir -p "$B"
M=(--hidden 32 --layers 2 --heads 2 --intermediate 64 --vocab-size 2000 --seq 16 --batch 4 --threads 1 --work-dir "$B/work")
run_np 2 bench train "${M[@]}" --steps 4 --warmup 1 --json "$B/train.json" > "$B/train.log" 2>&1 || { cat "$B/train.log"; fail "bench train"; }
grep -q "model FLOP/s / peak" "$B/train.log" || fail "bench train printed no table"
run_np 2 bench precompute "${M[@]}" --examples 300 --json "$B/precompute.json" > "$B/pre.log" 2>&1 || { cat "$B/pre.log"; fail "bench precompute"; }
run_np 2 bench allreduce --threads 1 --work-dir "$B/work" --json "$B/allreduce.json" > "$B/ar.log" 2>&1 || { cat "$B/ar.log"; fail "bench allreduce"; }
"$DISTILL" bench store --examples 3000 --store-labels 100 --work-dir "$B/work" --json "$B/store.json" > "$B/store.log" 2>&1 ||
  { cat "$B/store.log"; fail "bench store"; }
"$PY" - "$B" <<'PY'
import json, sys
b = sys.argv[1]
t = json.load(open(f"{b}/train.json"))
assert t["ranks"] == 2 and t["timed_steps"] == 4 and t["threads"]["intra_op_per_rank"] == 1, t
assert abs(t["samples_per_s"] - 4 * 2 / (t["step_ms"] / 1e3)) < 1e-6 * t["samples_per_s"], t
assert abs(t["tokens_per_s"] - 16 * t["samples_per_s"]) < 1e-6 * t["tokens_per_s"]
# Model FLOPs per example: 3 x (L x (2 s (4 h^2 + 2 h i) + 4 s^2 h) + 2 h^2 + 2 h C).
h, i, s, L, C = 32, 64, 16, 2, 2
per_example = 3 * (L * (2 * s * (4 * h * h + 2 * h * i) + 4 * s * s * h) + 2 * h * h + 2 * h * C)
assert abs(t["model_flops_per_s"] - per_example * t["samples_per_s"]) < 1e-6 * t["model_flops_per_s"], t
assert abs(t["model_flops_share_of_peak"] - t["model_flops_per_s"] / 2 / t["matmul_peak_flops_per_s_per_rank"]) < 1e-9
for k in ("exposed_comm_share", "input_wait_share"):
    assert 0 <= t[k] < 1, (k, t[k])
phases = sum(t["phase_ms"].values())
assert 0.9 * t["step_ms"] <= phases <= 1.01 * t["step_ms"] + 0.1, (phases, t["step_ms"])
p = json.load(open(f"{b}/precompute.json"))
assert p["examples"] == 300 and p["examples_per_s"] > 0 and 0 <= p["write_share"] < 1 and p["store_bytes"] > 0, p
a = json.load(open(f"{b}/allreduce.json"))
assert len(a["sizes"]) == 15 and a["sizes"][0]["bytes"] == 4096, a
for r in a["sizes"]:
    assert abs(r["algbw_GBps"] - r["bytes"] / r["seconds"] / 1e9) < 1e-9 * r["algbw_GBps"]
    assert abs(r["busbw_GBps"] - r["algbw_GBps"] * 2 * (2 - 1) / 2) < 1e-12
st = json.load(open(f"{b}/store.json"))
assert st["examples"] == 3000 and st["bytes"] > 3000 * 100 * 2 and st["write_MBps"] > 0 and st["read_MBps"] > 0, st
print("bench: train %.1f samples/s (%.0f%% of peak), precompute %.0f examples/s, allreduce 16 MiB busbw %.2f GB/s, "
      "store write %.0f MB/s read %.0f MB/s" % (t["samples_per_s"], 100 * t["model_flops_share_of_peak"],
      p["examples_per_s"], a["sizes"][12]["busbw_GBps"], st["write_MBps"], st["read_MBps"]))
PY
echo "e2e bench: ok"
