"""Formats bench/cost_growth.sh's TSV as Markdown tables and an SVG chart (no plotting library:
plain SVG, log-scaled axes). Usage: cost_growth_report.py TSV OUTDIR"""
import csv, math, os, sys

tsv, out = sys.argv[1], sys.argv[2]
rows = list(csv.DictReader(open(tsv), delimiter='\t'))
step = {(r['model'], r['precision'], int(r['batch']), int(r['side'])): float(r['ms'])
        for r in rows if r['kind'] == 'step' and r['ms'] not in ('', 'failed')}
gen = {(r['model'], int(r['side'])): (r['ms'], r['peak_mib']) for r in rows if r['kind'] == 'generate'}
sides = sorted({k[3] for k in step}); batches = sorted({k[2] for k in step})
has_bf16 = any(k[1] == 'bf16' for k in step)

def fmt(v):
    return '—' if v is None else (f'{v:.0f}' if v >= 100 else f'{v:.1f}')

md = ['# How cost grows', '',
      'Measured by `bench/cost_growth.sh` on a 2-core AMD EPYC (Zen 4) VM, 2 threads for both sides, medians of',
      'its repetitions. Step: one sampling forward of the default denoiser (88.66M parameters, T = 2), the prompt',
      'encoded once beforehand as the sampler does; the reference is `../shared/spec/luminars_reference.py`',
      '(PyTorch 1.13, float32, with the C++ side\'s BLAS thread mix: `OPENBLAS_NUM_THREADS=1`). C++ bf16 is',
      'CPU autocast, which `generate` uses on CPUs with native bf16.', '',
      '| latent side | batch | C++ float32 ms | ' + ('C++ bf16 ms | ' if has_bf16 else '') + 'reference ms | ratio float32 |'
      + (' ratio bf16 |' if has_bf16 else ''),
      '| ---: | ---: | ---: | ' + ('---: | ' if has_bf16 else '') + '---: | ---: |' + (' ---: |' if has_bf16 else '')]
for s in sides:
    for b in batches:
        c, h, r = step.get(('default', 'f32', b, s)), step.get(('default', 'bf16', b, s)), step.get(('reference', 'f32', b, s))
        ratio = lambda x: f'{r / x:.2f}×' if (r and x) else '—'
        md.append(f'| {s} | {b} | {fmt(c)} | ' + (f'{fmt(h)} | ' if has_bf16 else '') + f'{fmt(r)} | {ratio(c)} |'
                  + (f' {ratio(h)} |' if has_bf16 else ''))
md += ['', 'Generation: `luminars generate`, one image, 12 guided Euler steps, wall time and peak resident memory of',
       'the whole process (model loading included). "emoji" is the shipped model (`models/emoji`); "published" is',
       'CLIP ViT-L/14 text, the default denoiser and the SD3/Flux 16-channel VAE with random weights.', '',
       '| image | emoji time | emoji peak | published time | published peak |', '| ---: | ---: | ---: | ---: | ---: |']
sizes = sorted({k[1] for k in gen})
def cell(model, size):
    ms, peak = gen.get((model, size), ('', ''))
    if ms in ('', None): return '—', '—'
    if ms == 'failed': return 'failed', '—'
    return f'{float(ms) / 1000:.1f} s', f'{float(peak):.0f} MiB'
for size in sizes:
    (et, ep), (pt, pp) = cell('emoji', size), cell('published', size)
    md.append(f'| {size}² | {et} | {ep} | {pt} | {pp} |')
md += ['', '![step time and generation cost against size](cost-growth.svg)', '']
open(os.path.join(out, 'cost-growth.md'), 'w').write('\n'.join(md))

# --- SVG: three log-log panels ---------------------------------------------------------------
W, H, PAD = 330, 260, 48
COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b']

def panel(x0, title, xlabel, ylabel, series):
    pts = [p for _, ps in series for p in ps]
    if not pts: return ''
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    lx0, lx1 = math.log10(min(xs)), math.log10(max(xs)); ly0, ly1 = math.log10(min(ys)), math.log10(max(ys))
    lx1 = lx1 if lx1 > lx0 else lx0 + 1; ly0, ly1 = math.floor(ly0), math.ceil(ly1) if math.ceil(ly1) > math.floor(ly0) else math.floor(ly0) + 1
    X = lambda v: x0 + PAD + (math.log10(v) - lx0) / (lx1 - lx0) * (W - PAD - 12)
    Y = lambda v: H - PAD + 10 - (math.log10(v) - ly0) / (ly1 - ly0) * (H - PAD - 30)
    g = [f'<text x="{x0 + W / 2}" y="16" text-anchor="middle" font-weight="bold">{title}</text>',
         f'<line x1="{x0 + PAD}" y1="{H - PAD + 10}" x2="{x0 + W - 12}" y2="{H - PAD + 10}" stroke="#000"/>',
         f'<line x1="{x0 + PAD}" y1="{H - PAD + 10}" x2="{x0 + PAD}" y2="20" stroke="#000"/>',
         f'<text x="{x0 + W / 2}" y="{H - 8}" text-anchor="middle">{xlabel}</text>',
         f'<text x="{x0 + 12}" y="{H / 2}" text-anchor="middle" transform="rotate(-90 {x0 + 12} {H / 2})">{ylabel}</text>']
    for d in range(ly0, ly1 + 1):
        v = 10 ** d
        g.append(f'<line x1="{x0 + PAD}" y1="{Y(v):.1f}" x2="{x0 + W - 12}" y2="{Y(v):.1f}" stroke="#ddd"/>')
        g.append(f'<text x="{x0 + PAD - 4}" y="{Y(v) + 4:.1f}" text-anchor="end">{v:g}</text>')
    for v in sorted(set(xs)):
        g.append(f'<text x="{X(v):.1f}" y="{H - PAD + 24}" text-anchor="middle">{v:g}</text>')
    for i, (name, ps) in enumerate(series):
        c = COLORS[i % len(COLORS)]
        ps = sorted(ps)
        g.append('<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>' % (c, ' '.join(f'{X(a):.1f},{Y(b):.1f}' for a, b in ps)))
        g += [f'<circle cx="{X(a):.1f}" cy="{Y(b):.1f}" r="2.5" fill="{c}"/>' for a, b in ps]
        g.append(f'<text x="{x0 + PAD + 8}" y="{30 + 14 * i}" fill="{c}">{name}</text>')
    return '\n'.join(g)

def step_series(model, prec, b):
    return [(s, step[(model, prec, b, s)]) for s in sides if (model, prec, b, s) in step]
s1 = []
for b in (batches[0], batches[-1]):
    s1.append((f'C++ f32, batch {b}', step_series('default', 'f32', b)))
    if has_bf16: s1.append((f'C++ bf16, batch {b}', step_series('default', 'bf16', b)))
    s1.append((f'reference, batch {b}', step_series('reference', 'f32', b)))
def gen_series(model, idx):
    return [(size, float(v[idx])) for (m, size), v in gen.items() if m == model and v[0] not in ('', 'failed')]
s2 = [('emoji', gen_series('emoji', 0)), ('published', gen_series('published', 0))]
s2 = [(n, [(a, b / 1000) for a, b in ps]) for n, ps in s2]
s3 = [('emoji', gen_series('emoji', 1)), ('published', gen_series('published', 1))]
svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{3 * W}" height="{H}" font-family="sans-serif" font-size="11">',
       f'<rect width="{3 * W}" height="{H}" fill="#fff"/>',
       panel(0, 'sampling step', 'latent side', 'ms', [s for s in s1 if s[1]]),
       panel(W, 'generation time', 'image side (px)', 's', [s for s in s2 if s[1]]),
       panel(2 * W, 'generation peak memory', 'image side (px)', 'MiB', [s for s in s3 if s[1]]), '</svg>']
open(os.path.join(out, 'cost-growth.svg'), 'w').write('\n'.join(svg))
