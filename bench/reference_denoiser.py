"""Times the PyTorch reference denoiser (../shared/spec/luminars_reference.py) forward at the same
settings as bench_denoiser.cpp: eval, inference mode, 77 text tokens, non-zero ada/out.
Usage: /usr/bin/python3 bench/reference_denoiser.py --threads 2 --batch 1 --side 32 --runs 15"""
import argparse, os, statistics, sys, time

ap = argparse.ArgumentParser()
ap.add_argument('--spec', default=os.path.join(os.path.dirname(__file__), '..', '..', 'shared', 'spec'))
ap.add_argument('--threads', type=int, default=os.cpu_count())
ap.add_argument('--batch', type=int, default=1)
ap.add_argument('--side', type=int, default=32)
ap.add_argument('--runs', type=int, default=15)
a = ap.parse_args()
sys.path.insert(0, a.spec)
import torch
from luminars_reference import LuminaRS, DEFAULT

torch.set_num_threads(a.threads)
torch.manual_seed(0)
m = LuminaRS(DEFAULT).eval()
with torch.no_grad():
    for p in m.parameters():
        if p.abs().max() == 0: p.normal_(0, 0.02)
B, C = a.batch, DEFAULT['latent_channels']
x, t = torch.randn(B, C, a.side, a.side), torch.full((B,), 0.5)
ctx, pooled = torch.randn(B, 77, DEFAULT['text_dim']), torch.randn(B, DEFAULT['text_dim'])
times = []
with torch.inference_mode():
    for _ in range(2): m(x, t, ctx, pooled)
    for _ in range(a.runs):
        t0 = time.perf_counter(); m(x, t, ctx, pooled); times.append((time.perf_counter() - t0) * 1e3)
print(f'reference forward batch {B} {a.side}x{a.side} threads {torch.get_num_threads()} torch {torch.__version__}: '
      f'median {statistics.median(times):.1f} ms (min {min(times):.1f}, max {max(times):.1f}, runs {a.runs})')
