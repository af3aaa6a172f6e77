"""Times the PyTorch reference (../shared/spec/luminars_reference.py) at the settings of
bench_denoiser.cpp and bench/throughput.cpp: the default preset, 77 text tokens, non-zero ada/out.
  sampling:  one forward in inference mode;
  training:  forward, backward, torch AdamW step (bf16 autocast with --bf16);
  adamw:     one torch.optim.AdamW step over the parameters (random gradients), as --adamw builds it;
  sample-run: a whole 12-step Euler run, batch 1 unguided or batch 2 (one prompt with guidance),
             the spec's sample_flow with the time tensor made on the model's device.
Usage: /usr/bin/python3 bench/reference_denoiser.py --mode sampling|training|sample-run --batch 1 --side 32 --runs 5
       python3 bench/reference_denoiser.py --device cuda --bf16 --mode training --batch 128 --runs 10"""
import argparse, os, statistics, sys, time

ap = argparse.ArgumentParser()
ap.add_argument('--spec', default=os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'shared', 'spec'))
ap.add_argument('--mode', choices=['sampling', 'training', 'sample-run', 'adamw'], default='sampling')
ap.add_argument('--device', default='cpu')
ap.add_argument('--bf16', action='store_true', help='bf16 autocast (CUDA, or the CPU)')
ap.add_argument('--compile', action='store_true', help='torch.compile the model')
ap.add_argument('--threads', type=int, default=len(os.sched_getaffinity(0)))
ap.add_argument('--batch', type=int, default=1)
ap.add_argument('--side', type=int, default=32)
ap.add_argument('--runs', type=int, default=5)
ap.add_argument('--warmup', type=int, default=1)
ap.add_argument('--steps', type=int, default=12)
ap.add_argument('--cfg', type=float, default=4.0)
ap.add_argument('--adamw', choices=['default', 'foreach', 'fused'], default='default',
                help="training and adamw: torch.optim.AdamW as constructed by default (on the CPU a loop over the "
                     "parameters), or with foreach=True or fused=True (PyTorch >= 2.4 on the CPU)")
a = ap.parse_args()
sys.path.insert(0, a.spec)
import torch
from luminars_reference import LuminaRS, DEFAULT, flow_matching_loss, sample_times

torch.set_num_threads(a.threads)
torch.manual_seed(0)
dev = torch.device(a.device)
adamw = lambda params: torch.optim.AdamW(params, lr=1e-4, **({} if a.adamw == 'default' else {a.adamw: True}))
m = LuminaRS(DEFAULT)
with torch.no_grad():
    for p in m.parameters():
        if p.abs().max() == 0: p.normal_(0, 0.02)
m.to(dev)
net = torch.compile(m) if a.compile else m
rows = 1 if a.mode == 'sample-run' else a.batch
B, C = rows, DEFAULT['latent_channels']
x, t = torch.randn(B, C, a.side, a.side, device=dev), torch.full((B,), 0.5, device=dev)
ctx, pooled = torch.randn(B, 77, DEFAULT['text_dim'], device=dev), torch.randn(B, DEFAULT['text_dim'], device=dev)
noise = torch.randn_like(x)
autocast = lambda: torch.autocast(dev.type, dtype=torch.bfloat16, enabled=a.bf16)
if a.mode == 'sampling':
    m.eval()
    def step():
        with torch.inference_mode(), autocast(): net(x, t, ctx, pooled)
elif a.mode == 'sample-run':
    m.eval()
    guided = a.batch == 2
    null_ctx, null_pooled = torch.zeros_like(ctx), torch.zeros_like(pooled)
    ts = sample_times(a.steps)
    def step():
        with torch.inference_mode(), autocast():
            z = noise
            for i in range(a.steps):
                tb = torch.full((1,), float(ts[i]), device=dev)
                if guided:
                    out = net(torch.cat([z, z]), torch.cat([tb, tb]), torch.cat([ctx, null_ctx]), torch.cat([pooled, null_pooled]))
                    vc, vu = out.chunk(2); v = vu + a.cfg * (vc - vu)
                else:
                    v = net(z, tb, ctx, pooled)
                z = z + (ts[i + 1] - ts[i]).item() * v
elif a.mode == 'adamw':  # one optimizer step alone, gradients of the parameters' size (bench_denoiser's BM_AdamWStep)
    opt = adamw(m.parameters())
    for p in m.parameters(): p.grad = torch.randn_like(p)
    def step(): opt.step()
else:
    m.train(); opt = adamw(m.parameters())
    def step():
        opt.zero_grad()
        with autocast(): loss = flow_matching_loss(net, x, noise, t, ctx, pooled)
        loss.backward(); opt.step()
sync = torch.cuda.synchronize if dev.type == 'cuda' else (lambda: None)
for _ in range(a.warmup): step()
sync()
if dev.type == 'cuda': torch.cuda.reset_peak_memory_stats()
times = []
for _ in range(a.runs):
    t0 = time.perf_counter(); step(); sync(); times.append((time.perf_counter() - t0) * 1e3)
med = statistics.median(times)
print(f'{med:.2f}')  # median ms per step, alone on the last line of stdout
extra = f', {1000 * a.batch / med:.1f} img/s' if a.mode == 'training' else ''
if dev.type == 'cuda': extra += f', peak {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB'
print(f'reference {a.mode} batch {a.batch} {a.side}x{a.side} on {a.device}{" bf16" if a.bf16 else ""}{" compiled" if a.compile else ""} '
      f'threads {torch.get_num_threads()} torch {torch.__version__}: median {med:.1f} ms (min {min(times):.1f}, max {max(times):.1f}, '
      f'runs {a.runs}){extra}{"" if a.adamw == "default" else ", AdamW " + a.adamw}', file=sys.stderr)
