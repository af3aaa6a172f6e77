"""Relative RMS rounding error of a model's weights in 4-bit blocks of 32: q4_0 with its scale
searched (value = d·(q − 8), d = −m/k, k in 7, 7.25, …, 10, as core/quantize.cpp) against a
non-uniform grid in the same block layout (ggml's IQ4_NL values, d·v[q], scale searched around
the block's largest magnitude). Weights of 4096 values or more, 2-D or more, norms left out.

Usage: /usr/bin/python3 bench/q4_grid_error.py models/emoji/denoiser/model.safetensors
"""
import json
import struct
import sys

import numpy as np

IQ4_NL = np.array([-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113], dtype=np.float64)


def weights(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    header.pop("__metadata__", None)
    dtypes = {"F16": np.float16, "F32": np.float32, "BF16": None}
    for name, v in header.items():
        if not name.endswith(".weight") or "norm" in name or len(v["shape"]) < 2 or dtypes.get(v["dtype"]) is None:
            continue
        a = np.frombuffer(raw[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]], dtype=dtypes[v["dtype"]])
        if a.size >= 4096 and a.size % 32 == 0:
            yield name, a.astype(np.float64).reshape(-1, 32)


def largest(w):
    return np.take_along_axis(w, np.abs(w).argmax(1)[:, None], 1)


def q4_0_error(w):
    best = None
    for k in np.arange(7, 10.01, 0.25):
        d = -largest(w) / k
        d[d == 0] = 1
        q = np.clip(np.round(w / d) + 8, 0, 15)
        e = ((d * (q - 8) - w) ** 2).sum(1)
        best = e if best is None else np.minimum(best, e)
    return best.sum()


def iq4_nl_error(w):
    best = None
    for k in np.arange(0.9, 1.2, 0.02):
        for sign in (1, -1):
            d = sign * largest(w) / 127 * k
            d[d == 0] = 1
            idx = np.abs((w / d)[:, :, None] - IQ4_NL[None, None, :]).argmin(2)
            e = ((d * IQ4_NL[idx] - w) ** 2).sum(1)
            best = e if best is None else np.minimum(best, e)
    return best.sum()


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: q4_grid_error.py MODEL.safetensors")
    e0 = en = total = 0.0
    for _, w in weights(sys.argv[1]):
        e0 += q4_0_error(w)
        en += iq4_nl_error(w)
        total += (w ** 2).sum()
    print(f"relative RMS error: q4_0 (scale searched) {np.sqrt(e0 / total):.4f}, IQ4_NL grid {np.sqrt(en / total):.4f} "
          f"({np.sqrt(en / e0):.3f}x)")


if __name__ == "__main__":
    main()
