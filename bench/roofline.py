"""How fast a sampling step could be on this core: the step's arithmetic against the fastest matrix
product this core's BLAS reaches, beside the step's measured time (the PyTorch reference,
../shared/spec/luminars_reference.py, default preset, 77 text tokens, the work per call of
bench_denoiser's BM_SamplingStepWithPrompt).

  flops:  the multiply-adds of one forward (products, convolutions, attention), counted by
          torch.utils.flop_counter (PyTorch 2.x) on the reference, so independent of the C++ code;
  peak:   the best rate of float32 (or, with --bf16, bf16 autocast) matrix products on square
          operands of 512 to 2048 and on the step's own largest product shapes, median of --runs
          each (the most generous bound: the best shape's rate for every product);
  bound:  flops / peak, the time of the step's products alone at that best rate; every other
          operator (norms, GELU, softmax, copies) would only add to it.
A step in T ms can be made at most T / bound times faster with the same arithmetic on this core.

Usage: python3 bench/roofline.py [--batch 1] [--side 32] [--threads 1] [--bf16] [--runs 5]
       (under .venv-reference/bin/python for PyTorch 2.x with MKL; under /usr/bin/python3,
       Debian's PyTorch 1.13 with OpenBLAS, there is no FLOP counter: it prints the peak only)."""
import argparse, os, statistics, sys, time

ap = argparse.ArgumentParser()
ap.add_argument('--spec', default=os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'shared', 'spec'))
ap.add_argument('--batch', type=int, default=1)
ap.add_argument('--side', type=int, default=32)
ap.add_argument('--threads', type=int, default=1)
ap.add_argument('--bf16', action='store_true', help='bf16 autocast for the step, bf16 operands for the peak')
ap.add_argument('--runs', type=int, default=5)
a = ap.parse_args()
if a.batch < 1 or a.side < 4 or a.side % 4 or a.threads < 1 or a.runs < 1:
    sys.exit('roofline.py: --batch and --threads at least 1, --side a multiple of 4 (at least 4), --runs at least 1')
sys.path.insert(0, a.spec)
import torch
try:
    from luminars_reference import LuminaRS, DEFAULT
except ImportError as e:
    sys.exit(f'roofline.py: cannot import the reference from {a.spec} ({e})')

torch.set_num_threads(a.threads)
if a.bf16 and not (hasattr(torch.ops.mkldnn, '_is_mkldnn_bf16_supported') and torch.ops.mkldnn._is_mkldnn_bf16_supported()):
    sys.exit('roofline.py: this CPU has no native bf16 products (AVX-512 BF16 or AMX) for this PyTorch; bf16 is emulated '
             'here and has no peak to speak of (the C++ side does not autocast on such CPUs, src/core/autocast.h)')


def median_ms(fn, runs):
    fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter(); fn(); times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def gemm_rate(m, k, n):
    """GFLOP/s of an [m,k]x[k,n] product (2mkn operations) as the model's Linear layers run it
    (F.linear, under bf16 autocast with --bf16), median of the runs."""
    x, w = torch.randn(m, k), torch.randn(n, k)
    reps = max(1, int(2e9 / (2 * m * k * n)))  # about 2 GFLOP a timing, so short products are not all overhead
    def run():
        with torch.inference_mode(), torch.autocast('cpu', dtype=torch.bfloat16, enabled=a.bf16):
            for _ in range(reps): torch.nn.functional.linear(x, w)
    return 2 * m * k * n * reps / median_ms(run, a.runs) / 1e6


torch.manual_seed(0)
model = LuminaRS(DEFAULT).eval()
with torch.no_grad():
    for p in model.parameters():
        if p.abs().max() == 0: p.normal_(0, 0.02)
B = a.batch
x, t = torch.randn(B, DEFAULT['latent_channels'], a.side, a.side), torch.full((B,), 0.5)
ctx, pooled = torch.randn(B, 77, DEFAULT['text_dim']), torch.randn(B, DEFAULT['text_dim'])
def step():
    with torch.inference_mode(), torch.autocast('cpu', dtype=torch.bfloat16, enabled=a.bf16):
        model(x, t, ctx, pooled)

flops, by_op = None, {}
try:
    from torch.utils.flop_counter import FlopCounterMode
    counter = FlopCounterMode(display=False)
    with counter: step()
    flops = counter.get_total_flops()
    for op, n in counter.get_flop_counts().get('Global', {}).items(): by_op[str(op).split('.')[-1]] = n
except ImportError:
    pass

# Product shapes the step spends its arithmetic on (rows = positions × batch): the MLPs' 1×1
# convolutions and the attention projections at each level's resolution and width.
w = DEFAULT['widths']
shapes = [(s, s, s) for s in (512, 1024, 2048)]
for i, c in enumerate(w):
    rows = B * (a.side >> i) ** 2
    shapes += [(rows, c, 4 * c), (rows, 4 * c, c), (rows, c, c)]
rates = {shape: gemm_rate(*shape) for shape in shapes}
best_shape = max(rates, key=rates.get)
peak = rates[best_shape]
step_ms = median_ms(step, a.runs)

prec = 'bf16' if a.bf16 else 'float32'
print(f'torch {torch.__version__}, {a.threads} thread(s), {prec}, default preset, batch {B}, {a.side}x{a.side} latents')
for (m, k, n), r in rates.items(): print(f'  product [{m}x{k}]x[{k}x{n}]: {r:.1f} GFLOP/s')
print(f'peak: {peak:.1f} GFLOP/s ([{best_shape[0]}x{best_shape[1]}]x[{best_shape[1]}x{best_shape[2]}])')
print(f'step: {step_ms:.1f} ms (median of {a.runs})')
if flops is not None:
    print('flops by operator: ' + ', '.join(f'{op} {n / 1e9:.2f} G' for op, n in sorted(by_op.items(), key=lambda kv: -kv[1])))
    bound = flops / peak / 1e6
    print(f'flops: {flops / 1e9:.2f} GFLOP; achieved {flops / step_ms / 1e6:.1f} GFLOP/s = {100 * flops / step_ms / 1e6 / peak:.0f}% of peak')
    print(f'bound: {bound:.1f} ms at peak; the step can be made at most {step_ms / bound:.2f}x faster with the same arithmetic')
