#!/usr/bin/env python3
"""Checks the layer rules of the source tree: every `#include "distill/<layer>/..."` in src/<layer>
or include/distill/<layer> names a layer the includer may use, and util is free of LibTorch.
Prints each arrow that runs back up and exits 1 if there is one."""
import pathlib
import re
import sys

# layer -> the layers it may include (itself always)
ALLOWED = {
    "util": set(),
    "comm": {"util"},
    "io": {"util"},
    "store": {"util", "io"},
    "model": {"util", "io"},
    "data": {"util", "io", "store", "model"},  # model: only the torch-only network.h / device.h
    "kd": {"util", "model"},
    "train": {"util", "comm", "io", "data", "store", "model", "kd"},
    "teacher": {"util", "comm", "io", "data", "store", "model"},
    "app": {"util", "comm", "io", "store", "data", "model", "kd", "train", "teacher"},
}
# data may see only these model headers (the model-facing types, not the models)
DATA_MODEL_HEADERS = {"model/network.h", "model/device.h", "model/config.h"}
INCLUDE = re.compile(r'^\s*#\s*include\s+[<"]distill/([a-z_]+)/([^">]+)[">]', re.M)
TORCH = re.compile(r'^\s*#\s*include\s+[<"](torch|ATen|c10)/', re.M)


def layer_of(root, path):
    rel = path.relative_to(root)
    parts = rel.parts
    if parts[0] == "include":
        return parts[2]
    return parts[1]


def main():
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve()
    files = sorted(list((root / "src").rglob("*.cpp")) + list((root / "src").rglob("*.h")) +
                   list((root / "include" / "distill").rglob("*.h")))
    bad = []
    arrows = set()
    for f in files:
        if f.name == "pch.h":
            continue
        layer = layer_of(root, f)
        if layer not in ALLOWED:
            bad.append(f"{f.relative_to(root)}: unknown layer '{layer}'")
            continue
        text = f.read_text()
        for m in INCLUDE.finditer(text):
            to, header = m.group(1), m.group(2)
            if to == layer:
                continue
            arrows.add((layer, to))
            if to not in ALLOWED[layer]:
                bad.append(f"{f.relative_to(root)}: {layer} -> {to} (distill/{to}/{header})")
            elif layer == "data" and to == "model" and f"model/{header}" not in DATA_MODEL_HEADERS:
                bad.append(f"{f.relative_to(root)}: data -> model beyond the model-facing types (model/{header})")
        if layer == "util" and TORCH.search(text):
            bad.append(f"{f.relative_to(root)}: util includes LibTorch")
    print(f"{len(files)} files, {len(arrows)} layer arrows: " +
          ", ".join(f"{a}->{b}" for a, b in sorted(arrows)))
    for b in bad:
        print("back arrow:", b)
    print(f"{len(bad)} arrows running back up")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
