"""A .safetensors file as NumPy float64 arrays by name, read independently of distill (header length,
JSON header, raw little-endian data)."""
import json
import struct

import numpy as np

DTYPES = {"F32": np.float32, "I64": np.int64}


def tensors(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    h = json.loads(raw[8:8 + n])
    return {k: np.frombuffer(raw[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]], DTYPES[v["dtype"]])
            .reshape(v["shape"]).astype(np.float64) for k, v in h.items() if k != "__metadata__"}
