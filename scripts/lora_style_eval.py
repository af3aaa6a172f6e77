#!/usr/bin/python3
"""Does a LoRA teach the shipped model a new style? An independent style classifier decides.

    lora_style_eval.py --old DATA --new NEW --luminars BIN --model MODEL --lora FILE --style-words WORDS
                       [--prompts 48] [--per-style 200] [--threads 2] [--out-md FILE] [--grid-dir DIR]

DATA: the eight-style emoji dataset of scripts/fetch-emoji.sh (train/ and heldout/). NEW: the new
style's folder of scripts/fetch_lora_style.py (train/: the LoRA's pictures; heldout/: others).
A small CNN (scripts/evaluate_generation.py's Classifier) is fitted on real pictures only: up to
--per-style pictures of each old style (DATA/train) and NEW/heldout, nine classes; its accuracy on
real pictures it has not seen (DATA/heldout, NEW/train) is reported as its ceiling. Then for
--prompts concepts of NEW/heldout (never in the LoRA's training set) the model draws
"<concept>, WORDS style" once with the LoRA and once without (same seed), and the figure is the
share of pictures the classifier calls the new style. Needs numpy and torch (Debian python3-torch).
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import evaluate_generation as ev  # noqa: E402


def old_pictures(split_dir, per_style, seed):
    rows = ev.read_metadata(split_dir)
    by_style = {}
    for r in rows:
        by_style.setdefault(r["style"], []).append(os.path.join(split_dir, r["file_name"]))
    rng = np.random.default_rng(seed)
    out = {}
    for s, paths in sorted(by_style.items()):
        paths = sorted(paths)
        pick = rng.permutation(len(paths))[:per_style]
        out[s] = [ev.read_png(paths[i]) for i in pick]
    return out


def folder_pictures(folder):
    names = sorted(f[:-4] for f in os.listdir(folder) if f.endswith(".png"))
    return names, [ev.read_png(os.path.join(folder, n + ".png")) for n in names]


def generate(args, prompt, seed, lora, out):
    cmd = [args.luminars, "--threads", str(args.threads), "generate", "--model", args.model, "--prompt", prompt,
           "--seed", str(seed), "--out", out, "--quiet"]
    if lora:
        cmd += ["--lora", f"{lora}:{args.lora_weight}"]
    subprocess.run(cmd, check=True, capture_output=True)
    return ev.read_png(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--old", required=True)
    ap.add_argument("--new", required=True)
    ap.add_argument("--luminars", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--lora", required=True)
    ap.add_argument("--style-words", required=True)
    ap.add_argument("--prompts", type=int, default=48)
    ap.add_argument("--per-style", type=int, default=200)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--lora-weight", type=float, default=1.0)
    ap.add_argument("--classifier-cache", help="a .pt file: the fitted classifier, reused when it exists")
    ap.add_argument("--out-md")
    ap.add_argument("--grid-dir")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    # 1. The classifier, on real pictures only.
    old_train = old_pictures(os.path.join(args.old, "train"), args.per_style, args.seed)
    old_test = old_pictures(os.path.join(args.old, "heldout"), args.per_style, args.seed)
    new_names, new_fit = folder_pictures(os.path.join(args.new, "heldout"))
    _, new_test = folder_pictures(os.path.join(args.new, "train"))
    styles = sorted(old_train) + ["NEW"]
    new_label = len(styles) - 1
    x = np.stack([p for s in sorted(old_train) for p in old_train[s]] + new_fit)
    y = [i for i, s in enumerate(sorted(old_train)) for _ in old_train[s]] + [new_label] * len(new_fit)
    if args.classifier_cache and os.path.exists(args.classifier_cache):
        model, seconds = ev.Classifier(len(styles), width=16), 0.0
        model.load_state_dict(torch.load(args.classifier_cache))
        model.eval()
    else:
        model, seconds = ev.train_classifier(x, y, len(styles), args.epochs, args.seed, width=16, label="style classifier")
        if args.classifier_cache:
            torch.save(model.state_dict(), args.classifier_cache)
    xt = np.stack([p for s in sorted(old_test) for p in old_test[s]] + new_test)
    yt = np.array([i for i, s in enumerate(sorted(old_test)) for _ in old_test[s]] + [new_label] * len(new_test))
    pred = ev.predict(model, xt)[0].argmax(1)
    real_acc = float((pred == yt).mean())
    real_new = float((pred[yt == new_label] == new_label).mean())
    real_old_as_new = float((pred[yt != new_label] == new_label).mean())

    # 2. Pictures of concepts the LoRA never saw, with and without it.
    concepts = [n.replace("-", " ") for n in new_names[:args.prompts]]
    with_lora, without = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i, c in enumerate(concepts):
            prompt = f"{c}, {args.style_words} style"
            with_lora.append(generate(args, prompt, 1000 + i, args.lora, os.path.join(tmp, "a.png")))
            without.append(generate(args, prompt, 1000 + i, None, os.path.join(tmp, "b.png")))
    p_with = ev.predict(model, np.stack(with_lora))[0].argmax(1)
    p_without = ev.predict(model, np.stack(without))[0].argmax(1)
    share_with = float((p_with == new_label).mean())
    share_without = float((p_without == new_label).mean())
    if args.grid_dir:
        os.makedirs(args.grid_dir, exist_ok=True)
        k = min(16, len(concepts))
        for name, pics in (("with-lora", with_lora), ("without-lora", without)):
            row = np.concatenate([np.pad(p, ((2, 2), (2, 2), (0, 0)), constant_values=255) for p in pics[:k]], axis=1)
            with open(os.path.join(args.grid_dir, f"{name}.png"), "wb") as f:
                f.write(ev.encode_png(row))

    lines = [
        f"| measure | value |",
        f"|---|---|",
        f"| style classifier: real held-out pictures, 9 styles | {100 * real_acc:.1f}% correct |",
        f"| style classifier: real new-style pictures called new | {100 * real_new:.1f}% |",
        f"| style classifier: real old-style pictures called new | {100 * real_old_as_new:.1f}% |",
        f"| generated with the LoRA (weight {args.lora_weight:g}), called new style ({len(concepts)} prompts) | **{100 * share_with:.1f}%** |",
        f"| generated without the LoRA, called new style (same prompts and seeds) | **{100 * share_without:.1f}%** |",
        f"| classifier training time | {seconds:.0f} s (0: loaded from --classifier-cache) |",
    ]
    text = "\n".join(lines)
    print(text)
    if args.out_md:
        with open(args.out_md, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
