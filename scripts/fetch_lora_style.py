#!/usr/bin/python3
"""A small captioned picture folder of ONE emoji style from an Iconify set on npm, for teaching
the shipped model a style it has never seen (docs/lora/). Standard library and rsvg-convert only.

    /usr/bin/python3 scripts/fetch_lora_style.py PACKAGE_DIR OUT STYLE_WORDS [N_TRAIN N_HELDOUT SIZE]

PACKAGE_DIR is the unpacked npm package (`npm pack @iconify-json/NAME && tar xzf NAME-*.tgz` gives
package/). Icons are chosen by a hash of their names (skin-tone variants and hidden icons left out),
the first N_TRAIN (default 100) into OUT/train, the next N_HELDOUT (default 100) into OUT/heldout;
each picture SIZE² (default 64) on white with a caption "<name>, STYLE_WORDS style" in a .txt
beside it. OUT/SOURCES.md names the package, its version, author and licence.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

TONES = ("-light", "-medium-light", "-medium", "-medium-dark", "-dark")


def square_svg(body: str, width: float, height: float) -> str:
    side = max(width, height)
    x, y = (width - side) / 2, (height - side) / 2
    return (f'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
            f'viewBox="{x:g} {y:g} {side:g} {side:g}" width="{side:g}" height="{side:g}" color="#000">{body}</svg>')


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    pkg, out, words = argv[0], argv[1], argv[2]
    n_train = int(argv[3]) if len(argv) > 3 else 100
    n_held = int(argv[4]) if len(argv) > 4 else 100
    size = int(argv[5]) if len(argv) > 5 else 64
    data = json.load(open(os.path.join(pkg, "icons.json")))
    info = json.load(open(os.path.join(pkg, "info.json")))
    version = json.load(open(os.path.join(pkg, "package.json")))["version"]
    w0, h0 = data.get("width", 16), data.get("height", 16)
    names = [n for n, icon in data["icons"].items()
             if not icon.get("hidden") and not any(n.endswith(t) or (t + "-") in n for t in TONES)]
    names.sort(key=lambda n: hashlib.sha256(n.encode()).hexdigest())
    chosen = {"train": names[:n_train], "heldout": names[n_train:n_train + n_held]}
    for split, group in chosen.items():
        os.makedirs(os.path.join(out, split), exist_ok=True)
        for name in group:
            icon = data["icons"][name]
            svg = square_svg(icon["body"], icon.get("width", w0), icon.get("height", h0))
            png = os.path.join(out, split, name + ".png")
            subprocess.run(["rsvg-convert", "-w", str(size), "-h", str(size), "-b", "white", "-f", "png", "-o", png],
                           input=svg.encode(), check=True)
            with open(os.path.join(out, split, name + ".txt"), "w") as f:
                f.write(f"{name.replace('-', ' ')}, {words} style\n")
    lic = info.get("license", {})
    with open(os.path.join(out, "SOURCES.md"), "w") as f:
        f.write(f"# Sources\n\n{len(chosen['train'])} training and {len(chosen['heldout'])} held-out pictures of "
                f"{data.get('prefix')} ({info.get('name')}), npm package @iconify-json/{data.get('prefix')}@{version}, "
                f"by {info.get('author', {}).get('name')}, licence {lic.get('spdx')} ({lic.get('url')}); rasterised "
                f"at {size}x{size} onto white with rsvg-convert.\n")
    print(f"wrote {len(chosen['train'])} train and {len(chosen['heldout'])} held-out pictures to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
