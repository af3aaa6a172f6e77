"""Times the PyTorch reference (../shared/spec/luminars_reference.py) at the settings of
bench_denoiser.cpp: the default preset, 77 text tokens, non-zero ada/out.
  sampling: one forward in inference mode;  training: forward, backward, torch AdamW step.
Usage: /usr/bin/python3 bench/reference_denoiser.py --mode sampling|training --batch 1 --side 32 --runs 5"""
import argparse, os, statistics, sys, time

ap = argparse.ArgumentParser()
ap.add_argument('--spec', default=os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'shared', 'spec'))
ap.add_argument('--mode', choices=['sampling', 'training'], default='sampling')
ap.add_argument('--threads', type=int, default=len(os.sched_getaffinity(0)))
ap.add_argument('--batch', type=int, default=1)
ap.add_argument('--side', type=int, default=32)
ap.add_argument('--runs', type=int, default=5)
a = ap.parse_args()
sys.path.insert(0, a.spec)
import torch
import torch.nn.functional as F
from luminars_reference import LuminaRS, DEFAULT, flow_matching_loss

torch.set_num_threads(a.threads)
torch.manual_seed(0)
m = LuminaRS(DEFAULT)
with torch.no_grad():
    for p in m.parameters():
        if p.abs().max() == 0: p.normal_(0, 0.02)
B, C = a.batch, DEFAULT['latent_channels']
x, t = torch.randn(B, C, a.side, a.side), torch.full((B,), 0.5)
ctx, pooled = torch.randn(B, 77, DEFAULT['text_dim']), torch.randn(B, DEFAULT['text_dim'])
noise = torch.randn_like(x)
if a.mode == 'sampling':
    m.eval()
    def step():
        with torch.inference_mode(): m(x, t, ctx, pooled)
else:
    m.train(); opt = torch.optim.AdamW(m.parameters(), lr=1e-4)
    def step():
        opt.zero_grad(); flow_matching_loss(m, x, noise, t, ctx, pooled).backward(); opt.step()
step()
times = []
for _ in range(a.runs):
    t0 = time.perf_counter(); step(); times.append((time.perf_counter() - t0) * 1e3)
med = statistics.median(times)
print(f'{med:.2f}')  # median ms per step, alone on the last line
print(f'reference {a.mode} batch {B} {a.side}x{a.side} threads {torch.get_num_threads()} torch {torch.__version__}: '
      f'median {med:.1f} ms (min {min(times):.1f}, max {max(times):.1f}, runs {a.runs})', file=sys.stderr)
