#!/usr/bin/python3
"""Writes the model card (README.md) of an exported model folder from the recipe's work folder:
data and licences (the data set's SOURCES.md), recipe, hardware, phase times (times.tsv) and the
held-out figures each trainer logged (log.jsonl). Usage: write_model_card.py WORK MODEL_DIR PROFILE"""
import json
import os
import platform
import sys


def last_validation(run):
    """The last held-out record of a run's log.jsonl, or {}."""
    path = os.path.join(run, "log.jsonl")
    best = {}
    if os.path.exists(path):
        for line in open(path, encoding="utf-8"):
            try:
                r = json.loads(line)
            except ValueError:
                continue  # a line cut by a kill
            if r.get("type") == "val":
                best = r
    return best


def phase_times(work):
    """Seconds per phase, summed over the recipe's runs (a resumed phase appears more than once)."""
    times = {}
    path = os.path.join(work, "times.tsv")
    if os.path.exists(path):
        for line in open(path, encoding="utf-8"):
            name, _profile, secs = line.rstrip("\n").split("\t")
            times[name] = times.get(name, 0) + int(secs)
    return times


def denoiser_summary(model_dir, denoiser):
    """The denoiser's configuration (safetensors metadata) and parameter count (tensor shapes)."""
    import struct
    with open(os.path.join(model_dir, denoiser), "rb") as f:
        header = json.loads(f.read(struct.unpack("<Q", f.read(8))[0]))
    config = json.loads(header.get("__metadata__", {}).get("luminars_config", "{}"))
    count = 0
    for name, t in header.items():
        if name != "__metadata__":
            n = 1
            for d in t["shape"]:
                n *= d
            count += n
    return config, count


def cpu_name():
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main(work, model_dir, profile):
    sources = os.path.join(work, "data", "SOURCES.md")
    data = open(sources, encoding="utf-8").read().split("\n", 2)[2] if os.path.exists(sources) else "(SOURCES.md missing)\n"
    vae = last_validation(os.path.join(work, "vae-run"))
    vae_decoder = last_validation(os.path.join(work, "vae-decoder-run"))
    clip = last_validation(os.path.join(work, "clip-run"))
    # The denoiser's last run: the main one, or its last further cycle (denoiser-cycleN).
    cycles = sorted((int(d[len("denoiser-cycle"):]), d) for d in os.listdir(work)
                    if d.startswith("denoiser-cycle") and d[len("denoiser-cycle"):].isdigit())
    den = last_validation(os.path.join(work, cycles[-1][1] if cycles else "denoiser-run"))
    times = phase_times(work)
    total = sum(times.values())
    luminars = json.load(open(os.path.join(model_dir, "luminars.json"), encoding="utf-8"))
    sizes = luminars.get("trained_sizes") or [luminars.get("resolution")]
    lines = [
        "# LuminaRS emoji — the model LuminaRS ships",
        "",
        f"A complete LuminaRS (tokenizer, CLIP text encoder, VAE, denoiser) trained from nothing by "
        f"`scripts/train-emoji-model.sh` (profile `{profile}`) on open colour emoji in eight art styles, "
        f"at {' and '.join(f'{n}×{n}' for n in sizes)} pixels. `luminars generate` uses it when no `--model` is given.",
        "",
        "```sh",
        'build/luminars generate --prompt "a red heart, noto style" --seed 1 --out heart.png',
        "```",
        "",
        "## Licence",
        "",
        "The weights are trained on OpenMoji (CC BY-SA 4.0), whose share-alike terms reach the weights: "
        "the model is distributed under CC BY-SA 4.0, with the attributions below. The other sets are "
        "Apache-2.0, MIT or CC BY 4.0 (attribution required).",
        "",
        "## Data",
        "",
        data.strip(),
        "",
        "## Recipe",
        "",
        "data (`scripts/fetch-emoji.sh`) → `train-tokenizer` → `train-vae` → its decoder fine-tuned "
        "(`train-vae --decoder-only`) → `train-clip` → `prepare` → `train --stage all` (denoiser stages 1–3) "
        "and its further cycles → `export` (F16 weights, the fine-tuned decoder); the exact flags are in "
        "`scripts/train-emoji-model.sh`.",
        "",
        f"Hardware: {cpu_name()}, {os.cpu_count()} threads.",
        "",
        "| phase | time |",
        "| --- | --- |",
    ]
    for name, secs in times.items():  # every phase, in the order the recipe ran them
        lines.append(f"| {name} | {secs // 60} min {secs % 60} s |")
    lines += [f"| total | {total // 60} min {total % 60} s |", "", "## Held-out figures at the end of training", ""]
    if vae:
        lines.append(f"- VAE: PSNR {vae.get('psnr', float('nan')):.2f} dB on held-out training-split pictures (step {vae['step']}).")
    if vae_decoder:
        lines.append(f"- VAE with the fine-tuned decoder: PSNR {vae_decoder.get('psnr', float('nan')):.2f} dB on the same "
                     f"pictures (step {vae_decoder['step']}).")
    if clip:
        lines.append(
            f"- CLIP: image→text top-1 {100 * clip.get('i2t_top1', 0):.1f}% / top-5 {100 * clip.get('i2t_top5', 0):.1f}%, "
            f"text→image top-1 {100 * clip.get('t2i_top1', 0):.1f}% / top-5 {100 * clip.get('t2i_top5', 0):.1f}% (step {clip['step']}).")
    if den:
        lines.append(f"- Denoiser: flow-matching loss {den['val_loss']:.4f} at fixed t on held-out pictures (step {den['step']}).")
    lines += ["", "Sampler defaults (luminars.json): " + json.dumps(luminars.get("sampler", {})), ""]
    config, count = denoiser_summary(model_dir, luminars.get("denoiser", "denoiser/model.safetensors"))
    if config:
        lines += [
            "## Denoiser",
            "",
            f"Preset `small` with the text encoder's width: widths {config.get('widths')}, blocks {config.get('depths')}, "
            f"bottleneck {config.get('mid_depth')}, T = {config.get('recursions')} shared-weight passes, text width "
            f"{config.get('text_dim')}: {count / 1e6:.2f}M parameters.",
            "",
            "Why this size: on two CPU cores it trains at about 100 pictures a second, so the recipe's "
            "2.5-hour budget buys about 400,000 training samples. Colour and style words bind only after "
            "about 200,000; a larger denoiser would see fewer samples in the same time and a smaller one "
            "could not hold eight styles of about 2,000 emoji.",
            "",
            "Evidence (pictures, held-out loss, CLIP scores, step and guidance sweeps, T = 1 against T = 2): "
            "`docs/emoji/results.md`, written by `scripts/emoji-evidence.sh`.",
            "",
        ]
    notes = os.path.join(work, "notes.md")  # optional remarks on this run (e.g. what else shared the machine)
    if os.path.exists(notes):
        lines += ["## Notes on this run", "", open(notes, encoding="utf-8").read().strip(), ""]
    with open(os.path.join(model_dir, "README.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines))


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit("usage: write_model_card.py WORK MODEL_DIR PROFILE")
    main(*sys.argv[1:])
