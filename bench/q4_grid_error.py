"""Relative RMS rounding error of the weights a model stores in 4 bits: the project's own q4_0
(read back from a `luminars export --dtype q4_0 --no-calibration` of the model: scale search and
least-squares refit, core/quantize.h) against a non-uniform grid in the same blocks (ggml's IQ4_NL
values, value = d·v[q]: the scale searched around the block's largest magnitude, then refitted by
least squares to the codes it chose, as q4_0's is). Each row of a weight (its first dimension, the
rest flattened) is zero-padded to a multiple of 32 and cut into blocks of 32, as core/quantize.h.

Usage: /usr/bin/python3 bench/q4_grid_error.py FLOAT.safetensors Q4_0.safetensors
  e.g. build/luminars export --model models/emoji --out /tmp/q4 --dtype q4_0 --no-calibration
       /usr/bin/python3 bench/q4_grid_error.py models/emoji/denoiser/model.safetensors /tmp/q4/denoiser/model.safetensors
"""
import json
import struct
import sys

import numpy as np

BLOCK = 32
IQ4_NL = np.array([-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113], dtype=np.float64)
DTYPES = {"F16": np.float16, "F32": np.float32, "U8": np.uint8}


def read_safetensors(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    header.pop("__metadata__", None)
    tensors = {}
    for name, v in header.items():
        if v["dtype"] not in DTYPES:
            raise SystemExit(f"{path}: tensor '{name}' has dtype {v['dtype']}, not one of {sorted(DTYPES)}")
        begin, end = v["data_offsets"]
        tensors[name] = np.frombuffer(raw[8 + n + begin:8 + n + end], dtype=DTYPES[v["dtype"]]).reshape(v["shape"])
    return tensors


def blocks(weight):
    """[rows, ...] -> [rows · blocks, 32] float64, each row zero-padded to a multiple of 32."""
    w = weight.astype(np.float64).reshape(weight.shape[0], -1)
    pad = -w.shape[1] % BLOCK
    return np.pad(w, ((0, 0), (0, pad))).reshape(-1, BLOCK)


def q4_0_values(codes, scales):
    """The project's q4_0 codes [rows, blocks · 16] and F16 scales [rows, blocks] -> [rows · blocks, 32]."""
    c = codes.reshape(-1, BLOCK // 2)
    q = np.concatenate([c & 0x0F, c >> 4], axis=1).astype(np.float64)  # value j low nibble, j + 16 high
    return scales.astype(np.float64).reshape(-1, 1) * (q - 8)


def iq4_nl_values(w):
    largest = np.take_along_axis(w, np.abs(w).argmax(1)[:, None], 1)
    best, best_err = np.zeros_like(w), np.full(w.shape[0], np.inf)
    for k in np.arange(0.9, 1.2, 0.02):
        for sign in (1, -1):
            d = sign * largest / 127 * k
            d[d == 0] = 1
            v = IQ4_NL[np.abs((w / d)[:, :, None] - IQ4_NL[None, None, :]).argmin(2)]
            vv = (v * v).sum(1, keepdims=True)
            refit = np.where(vv > 0, (v * w).sum(1, keepdims=True) / np.where(vv > 0, vv, 1), d)
            for scale in (d, refit):
                values = scale * v
                err = ((values - w) ** 2).sum(1)
                better = err < best_err
                best[better], best_err[better] = values[better], err[better]
    return best


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: q4_grid_error.py FLOAT.safetensors Q4_0.safetensors (see the top of this file)")
    floats, packed = read_safetensors(sys.argv[1]), read_safetensors(sys.argv[2])
    names = [k[:-len(".q4_0")] for k in packed if k.endswith(".q4_0")]
    if not names:
        sys.exit(f"{sys.argv[2]}: no q4_0 weights (export the model with --dtype q4_0)")
    e0 = en = total = 0.0
    for name in names:
        if name not in floats:
            sys.exit(f"{sys.argv[1]}: no tensor '{name}' (the q4_0 file is of another model)")
        w = blocks(floats[name])
        e0 += ((q4_0_values(packed[name + ".q4_0"], packed[name + ".q4_0_scale"]) - w) ** 2).sum()
        en += ((iq4_nl_values(w) - w) ** 2).sum()
        total += (w ** 2).sum()
    print(f"{len(names)} weights in 4 bits: relative RMS error q4_0 {np.sqrt(e0 / total):.4f}, "
          f"IQ4_NL grid {np.sqrt(en / total):.4f} ({np.sqrt(en / e0):.3f}x)")


if __name__ == "__main__":
    main()
