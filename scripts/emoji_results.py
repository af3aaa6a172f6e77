#!/usr/bin/python3
"""Writes OUT/results.md and OUT/evidence.json from the measurements scripts/emoji-evidence.sh left
in EV (JSON from `luminars score`, `evaluate` and `vae psnr`). Usage: emoji_results.py EV OUT MODEL"""
import json
import os
import sys


def load(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def load_optional(path):
    """The JSON at PATH, or None where it was not measured (no CLIP: emoji-evidence.sh skips its scores)."""
    return load(path) if os.path.exists(path) else None


def pct(x):
    return "n/a" if x is None else f"{100 * x:.1f}%"


def independent_section(out):
    """The independent evaluation (scripts/evaluate-generation.sh, written to OUT/evaluation.md) as
    the headline, where it exists."""
    path = os.path.join(out, "evaluation.md")
    if not os.path.exists(path):
        return ["## Independent evaluation", "",
                "Not measured yet: run `OUT=docs/emoji scripts/evaluate-generation.sh models/emoji`.", ""]
    table = open(path, encoding="utf-8").read().strip().splitlines()
    return [
        "## Independent evaluation",
        "",
        "A concept classifier and a style classifier, small CNNs fitted on the real training pictures only",
        "(never on a generated one, and no part of the generator), judge the generated pictures",
        "(`scripts/evaluate-generation.sh`; figures in `evaluation.json`). Their accuracy on real held-out",
        "pictures is the ceiling; the Fréchet distance (FD) and k-NN precision/recall between two halves",
        "of the real held-out pictures, in the concept classifier's features, are the floor and ceiling a",
        "model's held-out pictures are measured against. Held-out pairs are emoji the classifiers know in",
        "a style the generator never saw them in; held-out concepts are judged by style only.",
        "",
    ] + table + [""] + optional_text(out, "evaluation-notes.md")


def optional_text(out, name):
    """OUT/NAME verbatim (written by hand: what a table shows), or nothing where it does not exist."""
    path = os.path.join(out, name)
    if not os.path.exists(path):
        return []
    return open(path, encoding="utf-8").read().strip().splitlines() + [""]


def other_sizes(ev, out):
    """The other trained sizes the evidence covers: {size: {"grid": file name or None, "loss": ...,
    "psnr": ..., "evaluation": lines of OUT/evaluation-SIZE.md or []}}, by size."""
    sizes = set()
    for folder, prefix, suffix in ((out, "grid-", ".png"), (ev, "loss-", ".json"), (out, "evaluation-", ".md")):
        for name in os.listdir(folder):
            stem = name[len(prefix):-len(suffix)] if name.startswith(prefix) and name.endswith(suffix) else ""
            if stem.isdigit():
                sizes.add(int(stem))
    return {
        size: {"grid": f"grid-{size}.png" if os.path.exists(os.path.join(out, f"grid-{size}.png")) else None,
               "loss": load_optional(os.path.join(ev, f"loss-{size}.json")),
               "psnr": load_optional(os.path.join(ev, f"psnr-{size}.json")),
               "evaluation": optional_text(out, f"evaluation-{size}.md")}
        for size in sorted(sizes)
    }


def main(ev, out, model):
    real = load_optional(os.path.join(ev, "score-real.json"))
    shuffled = load_optional(os.path.join(ev, "score-shuffled.json"))
    loss = load(os.path.join(ev, "loss.json"))
    psnr = load(os.path.join(ev, "psnr.json"))
    grid_prompts = open(os.path.join(ev, "grid-prompts.txt"), encoding="utf-8").read().splitlines()
    sweeps = []
    for steps, cfg in [(4, 4), (8, 4), (12, 4), (25, 4), (50, 4), (12, 1), (12, 2), (12, 7)]:
        s = load_optional(os.path.join(ev, f"score-s{steps}-g{cfg}.json"))
        if s is None:
            continue
        sweeps.append({"steps": steps, "guidance": cfg, "clip_score": s["mean_clip_score"],
                       "prompt_swap_accuracy": s["prompt_swap_accuracy"]})
    default = next((s for s in sweeps if s["steps"] == 12 and s["guidance"] == 4), None)
    clip = real is not None and shuffled is not None and default is not None
    tcmp_path = os.path.join(out, "t-compare.json")
    tcmp = load(tcmp_path) if os.path.exists(tcmp_path) else None
    sizes = other_sizes(ev, out)
    evidence = {
        "model": model,
        "heldout_images_measured": len(open(os.path.join(ev, "heldout-prompts.txt"), encoding="utf-8").read().splitlines()),
        "heldout_flow_matching_loss": loss["heldout_loss"],
        "heldout_loss_images": loss["images"],
        "vae_psnr_db": psnr["psnr_db"],
        "vae_psnr_images": psnr["images"],
        "clip_score": {"generated": default["clip_score"], "real_heldout": real["mean_clip_score"],
                       "generated_vs_shuffled_prompts": shuffled["mean_clip_score"]} if clip else None,
        "prompt_swap_accuracy": {"generated": default["prompt_swap_accuracy"],
                                 "real_heldout": real["prompt_swap_accuracy"]} if clip else None,
        "sweeps": sweeps,
        "recursions": tcmp,
        "other_sizes": {str(k): {"heldout_flow_matching_loss": v["loss"]["heldout_loss"] if v["loss"] else None,
                                 "heldout_loss_images": v["loss"]["images"] if v["loss"] else None,
                                 "vae_psnr_db": v["psnr"]["psnr_db"] if v["psnr"] else None}
                        for k, v in sizes.items()},
    }
    with open(os.path.join(out, "evidence.json"), "w", encoding="utf-8") as f:
        json.dump(evidence, f, indent=2)
        f.write("\n")

    n = evidence["heldout_images_measured"]
    md = [
        "# The shipped emoji model: evidence",
        "",
        "Regenerated by `scripts/emoji-evidence.sh` (figures also in `evidence.json`). Held-out pictures",
        "are emoji the model never saw in any style, and (emoji, style) pairs it never saw together.",
        "",
    ]
    md += independent_section(out)
    for size, v in sizes.items():
        if v["evaluation"]:
            md += [f"### At {size}×{size}", "",
                   f"The same classifiers (fitted on the real pictures at their own size) judge pictures generated at",
                   f"{size}×{size} and averaged down to it: whether the larger picture still draws the prompt's emoji",
                   "in its style, not how fine its detail is.", ""] + v["evaluation"]
    md += optional_text(out, "ablations.md")  # ablations, each measured by its own evaluation run
    md += [
        "## Pictures",
        "",
        "![16 prompts × 4 seeds](grid.png)",
        "",
        "Rows, top to bottom (seeds 1–4 across; 12 Euler steps, guidance 4). Rows 1–8 are training",
        "captions, rows 9–16 held out:",
        "",
    ]
    md += [f"{i + 1}. {p}{' (held out)' if i >= 8 else ''}" for i, p in enumerate(grid_prompts)]
    for size, v in sizes.items():
        if v["grid"]:
            md += ["", f"The same prompts and seeds at {size}×{size}:", "", f"![16 prompts × 4 seeds at {size}×{size}]({v['grid']})"]
    md += [
        "",
        "Steps 4, 8, 12, 25, 50 (columns) and guidance 1, 2, 4, 7 (columns), seed 1:",
        "",
        "![steps](steps.png) ![guidance](guidance.png)",
        "",
        "Held-out pictures (top) and their VAE reconstructions (bottom):",
        "",
        "![VAE on held-out pictures](vae-heldout.png)",
        "",
        "## Secondary figures: the project's own CLIP",
        "",
    ]
    if clip:
        md += [
            f"Measured on {n} held-out captions (every k-th held-out picture, its first caption; one seed each)",
            "with the project's own CLIP (score = 100 · cosine). That CLIP was trained on the same captions as the",
            "generator, so generated pictures score above real ones: a higher score cannot be read as better",
            "pictures. The independent evaluation above is the figure to compare models by.",
            "",
        ]
    else:
        md += [
            "The recipe's CLIP (the image tower beside the text encoder, `WORK/clip-run/clip`) was not at hand",
            "when this evidence was made, so its scores are left out; the independent evaluation above is the",
            "figure to compare models by.",
            "",
        ]
    md += [
        "| figure | value |",
        "|---|---|",
        f"| held-out flow-matching loss (t = 0.1…0.9, {loss['images']} pictures) | {loss['heldout_loss']:.4f} |",
        f"| VAE PSNR on held-out pictures ({psnr['images']}) | {psnr['psnr_db']:.2f} dB |",
    ]
    for size, v in sizes.items():
        if v["loss"]:
            md.append(f"| held-out flow-matching loss at {size}×{size} ({v['loss']['images']} pictures) | {v['loss']['heldout_loss']:.4f} |")
        if v["psnr"]:
            md.append(f"| VAE PSNR on held-out pictures at {size}×{size} ({v['psnr']['images']}) | {v['psnr']['psnr_db']:.2f} dB |")
    if clip:
        md += [
            f"| CLIP score, generated (12 steps, guidance 4) | {default['clip_score']:.2f} |",
            f"| CLIP score, real held-out pictures | {real['mean_clip_score']:.2f} |",
            f"| CLIP score, generated pictures against shuffled prompts | {shuffled['mean_clip_score']:.2f} |",
            f"| prompt-swap accuracy, generated | {pct(default['prompt_swap_accuracy'])} |",
            f"| prompt-swap accuracy, real held-out pictures | {pct(real['prompt_swap_accuracy'])} |",
            "",
            "Prompt-swap accuracy: how often a picture scores higher with its own prompt than with another",
            "picture's prompt (50% is chance).",
            "",
            "## Steps and guidance",
            "",
            "| steps | guidance | CLIP score | prompt-swap accuracy |",
            "|---|---|---|---|",
        ]
        md += [f"| {s['steps']} | {s['guidance']} | {s['clip_score']:.2f} | {pct(s['prompt_swap_accuracy'])} |"
               for s in sweeps]
    md += ["", "## Recursions: T = 1 against T = 2", ""]
    if tcmp:
        r = tcmp["results"]
        md += [
            f"The `{tcmp['preset']}` preset trained twice on the recipe's training cache, identical but for the",
            f"number of refinement passes T: same parameters (the passes share their weights), {tcmp['steps']} steps",
            f"of batch {tcmp['batch']}, learning rate {tcmp['lr']:g} (cosine), same seed; held-out loss on the",
            "held-out pictures, CLIP score and prompt-swap accuracy on the held-out captions (with the CLIP at",
            "hand when the comparison ran).",
            "",
            "| T | held-out loss | CLIP score | prompt-swap accuracy | training speed |",
            "|---|---|---|---|---|",
        ]
        speed = lambda t: f"{r[t]['img_per_s']:.0f} img/s" if r[t].get("img_per_s") else "—"
        score = lambda t: "—" if r[t].get("clip_score") is None else f"{r[t]['clip_score']:.2f}"
        md += [f"| {t} | {r[t]['heldout_loss']:.4f} | {score(t)} | {pct(r[t].get('prompt_swap_accuracy'))} | {speed(t)} |"
               for t in ("1", "2")]
        gain = (r["1"]["heldout_loss"] - r["2"]["heldout_loss"]) / r["1"]["heldout_loss"]
        cost = (r["1"]["img_per_s"] / r["2"]["img_per_s"]) if r["1"].get("img_per_s") and r["2"].get("img_per_s") else None
        cost_text = (f" A T = 2 step costs {cost:.2f}× a T = 1 step here, so at equal compute T = 1 would have trained"
                     f" {cost:.2f}× as many steps." if cost else "")
        others = ("" if r["1"].get("clip_score") is None or r["2"].get("clip_score") is None else
                  "The CLIP score and prompt-swap accuracy agree."
                  if (r["2"]["clip_score"] >= r["1"]["clip_score"]) == (gain > 0) else
                  "The CLIP score and prompt-swap accuracy point the other way, within the spread of so few prompts.")
        if gain > 0.02:
            verdict = f"T = 2 ends with a held-out loss {100 * gain:.1f}% lower at equal parameters and steps, as the original claims."
        elif gain > 0:
            verdict = (f"T = 2 ends with a held-out loss only {100 * gain:.1f}% lower at equal parameters and steps: the"
                       " direction the original claims, but too small a gain to matter at this scale.")
        else:
            verdict = "T = 2 does not reach a lower held-out loss than T = 1 here: at this scale the claim does not hold."
        md += ["", " ".join(x for x in (verdict, others) if x) + cost_text]
    else:
        md += ["Not measured yet: run the script with `T_STEPS` > 0."]
    with open(os.path.join(out, "results.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(md) + "\n")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit("usage: emoji_results.py EV OUT MODEL")
    main(*sys.argv[1:])
