#!/usr/bin/env python3
"""int8 compute against dequantize-then-float for one Linear, on this CPU, in Debian's PyTorch 1.13
(the same LibTorch the program links): medians of repeated timings, one thread and all threads.

Rows compared, per shape (tokens M, in K, out N):
  float32        F.linear with float32 weights (the peer: what a q8_0 folder costs once loaded)
  deq+float32    dequantize a q8_0 weight (blocks of 32, F16 scales) then F.linear: on-the-fly
  int8 onednn    dynamic int8 Linear (activations quantized per call), engine onednn
  int8 qnnpack   the same, engine qnnpack (the ARM engine; on x86 its reference kernels)
Usage: bench/quantized_linear.py [--repeats 15]
"""
import argparse
import os
import statistics
import time

os.environ.setdefault("GLOG_minloglevel", "2")  # qnnpack warns on every call
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402


def median_ms(fn, repeats):
    for _ in range(3):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def q8_0(w):
    rows, cols = w.shape
    b = w.reshape(rows, cols // 32, 32)
    d = (b.abs().amax(-1, keepdim=True) / 127).half().float()
    q = torch.where(d > 0, b / d, torch.zeros_like(b)).round().clamp(-127, 127).to(torch.int8)
    return q, d.half()


def dequantize(q, d):
    return (q.float() * d.float()).reshape(q.shape[0], -1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=15)
    args = ap.parse_args()
    engines = [e for e in ("onednn", "qnnpack") if e in torch.backends.quantized.supported_engines]
    shapes = [(77, 768, 3072), (1024, 768, 3072), (4096, 384, 1536)]  # CLIP MLP; denoiser MLPs
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, engines {torch.backends.quantized.supported_engines}")
    for threads in (1, torch.get_num_threads()):
        torch.set_num_threads(threads)
        print(f"\nthreads {threads}: median ms of {args.repeats}")
        print(f"{'M x K -> N':>20} {'float32':>9} {'deq+f32':>9} " + " ".join(f"{'int8 ' + e:>13}" for e in engines))
        for m, k, n in shapes:
            x = torch.randn(m, k)
            w = torch.randn(n, k) * 0.02
            bias = torch.zeros(n)
            q, d = q8_0(w)
            with torch.no_grad():
                row = [median_ms(lambda: F.linear(x, w, bias), args.repeats),
                       median_ms(lambda: F.linear(x, dequantize(q, d), bias), args.repeats)]
                for e in engines:
                    torch.backends.quantized.engine = e
                    lin = torch.nn.Linear(k, n)
                    lin.weight.copy_(w)
                    lin.bias.zero_()
                    ql = torch.ao.quantization.quantize_dynamic(torch.nn.Sequential(lin), {torch.nn.Linear}, dtype=torch.qint8)
                    ref = F.linear(x, w, bias)
                    err = ((ql(x) - ref).norm() / ref.norm()).item()
                    row.append(median_ms(lambda: ql(x), args.repeats))
                    row[-1] = (row[-1], err)
            cells = [f"{row[0]:9.2f}", f"{row[1]:9.2f}"] + [f"{t:7.2f} ({e:.0e})" for t, e in row[2:]]
            print(f"{f'{m} x {k} -> {n}':>20} " + " ".join(cells))


if __name__ == "__main__":
    main()
