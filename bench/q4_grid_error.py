"""Relative RMS rounding error of the weights a model stores in 4 bits: the project's own q4_0
(read back from a `luminars export --dtype q4_0 --no-calibration` of the model: scale search and
least-squares refit, core/quantize.h) against a non-uniform grid in the same blocks (ggml's IQ4_NL
values, value = d·v[q]: the scale searched around the block's largest magnitude, then refitted by
least squares to the codes it chose, as q4_0's is), and against q4_0 of the weights rotated first
(incoherence processing, as QuIP# and QuaRot: x·H·diag(±1) with H a normalized Hadamard matrix,
over each block of 32 or over each whole row zero-padded to a power of two; undone after rounding,
as a loader would). The rotations are compared with the same rounding done here in numpy, so that
the two rows differ only by the rotation. Each row of a weight (its first dimension, the rest
flattened) is zero-padded to a multiple of 32 and cut into blocks of 32, as core/quantize.h; the
weights' kurtosis (3 for a Gaussian) says how heavy their tails are, which rotations would even out.

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


def closest(w, grids):
    """Block by block, the values nearest w among `grids`, pairs (d [n, 1], codes [n, 32]) meaning d·codes,
    each tried as it is and with d refitted by least squares to its codes."""
    best, best_err = np.zeros_like(w), np.full(w.shape[0], np.inf)
    for d, v in grids:
        vv = (v * v).sum(1, keepdims=True)
        refit = np.where(vv > 0, (v * w).sum(1, keepdims=True) / np.where(vv > 0, vv, 1), d)
        for scale in (d, refit):
            values = scale * v
            err = ((values - w) ** 2).sum(1)
            better = err < best_err
            best[better], best_err[better] = values[better], err[better]
    return best


def iq4_nl_values(w):
    largest = np.take_along_axis(w, np.abs(w).argmax(1)[:, None], 1)

    def grids():
        for k in np.arange(0.9, 1.2, 0.02):
            for sign in (1, -1):
                d = sign * largest / 127 * k
                d[d == 0] = 1
                yield d, IQ4_NL[np.abs((w / d)[:, :, None] - IQ4_NL[None, None, :]).argmin(2)]
    return closest(w, grids())


def q4_0_rounded(w):
    """q4_0 as core/quantize.h rounds without calibration: d = −m / k, k in 7, 7.25, …, 10, and its
    least-squares refit, whichever leaves the block the least squared error. w: [n, 32]."""
    m = np.take_along_axis(w, np.abs(w).argmax(1)[:, None], 1)

    def grids():
        for k in np.arange(7, 10.001, 0.25):
            d = -m / k
            d[d == 0] = 1
            yield d, np.clip(np.floor(w / d + 8.5), 0, 15) - 8
    return closest(w, grids())


def signed_hadamard(n, rng):
    """An n × n orthogonal matrix H·diag(±1), n a power of two."""
    h = np.array([[1.0]])
    while h.shape[0] < n:
        h = np.block([[h, h], [h, -h]])
    return h / np.sqrt(n) * rng.choice([-1.0, 1.0], n)[None, :]


def rotated_errors(weight, rng):
    """Squared rounding errors of q4_0 on the weight as it is, rotated in blocks and rotated by row."""
    w = weight.astype(np.float64).reshape(weight.shape[0], -1)
    b = blocks(weight)
    r = signed_hadamard(BLOCK, rng)
    n = 1 << int(np.ceil(np.log2(max(w.shape[1], BLOCK))))
    big = signed_hadamard(n, rng)
    wide = np.pad(w, ((0, 0), (0, n - w.shape[1]))) @ big
    by_row = (q4_0_rounded(wide.reshape(-1, BLOCK)).reshape(wide.shape) @ big.T)[:, :w.shape[1]]
    return (((q4_0_rounded(b) - b) ** 2).sum(), ((q4_0_rounded(b @ r) @ r.T - b) ** 2).sum(), ((by_row - w) ** 2).sum())


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: q4_grid_error.py FLOAT.safetensors Q4_0.safetensors (see the top of this file)")
    floats, packed = read_safetensors(sys.argv[1]), read_safetensors(sys.argv[2])
    names = [k[:-len(".q4_0")] for k in packed if k.endswith(".q4_0")]
    if not names:
        sys.exit(f"{sys.argv[2]}: no q4_0 weights (export the model with --dtype q4_0)")
    e0 = en = total = 0.0
    rot = np.zeros(3)
    kurtosis = []
    rng = np.random.default_rng(0)
    for name in names:
        if name not in floats:
            sys.exit(f"{sys.argv[1]}: no tensor '{name}' (the q4_0 file is of another model)")
        w = blocks(floats[name])
        e0 += ((q4_0_values(packed[name + ".q4_0"], packed[name + ".q4_0_scale"]) - w) ** 2).sum()
        en += ((iq4_nl_values(w) - w) ** 2).sum()
        total += (w ** 2).sum()
        rot += rotated_errors(floats[name], rng)
        kurtosis.append((w ** 4).mean() / (w ** 2).mean() ** 2)
    print(f"{len(names)} weights in 4 bits: relative RMS error q4_0 {np.sqrt(e0 / total):.4f}, "
          f"IQ4_NL grid {np.sqrt(en / total):.4f} ({np.sqrt(en / e0):.3f}x)")
    plain, block, row = np.sqrt(rot / total)
    print(f"the same rounding here: {plain:.4f}; after a signed Hadamard rotation of each block {block:.4f} "
          f"({block / plain:.3f}x), of each row {row:.4f} ({row / plain:.3f}x); the weights' kurtosis: median "
          f"{np.median(kurtosis):.1f}, {min(kurtosis):.1f}–{max(kurtosis):.1f}")


if __name__ == "__main__":
    main()
