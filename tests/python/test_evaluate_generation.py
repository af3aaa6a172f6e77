#!/usr/bin/python3
"""Regression test of scripts/evaluate_generation.py on a synthetic dataset (no data, no model).

Concept = a shape (circle, square, triangle, cross, diamond; "bar" held out whole), style = how it
is drawn (filled, outline, stripes, checker), in a random colour, size and place, 32x32. A stand-in
`luminars` (this file, run as `luminars serve`) answers the AUTOMATIC1111 txt2img API with
pictures drawn by rule, one of three kinds named in the model folder's luminars.json:

  good   the prompt's shape in the prompt's style
  wrong  another shape, in the prompt's style
  noise  uniform noise

Asserts: the classifiers score real held-out pictures high; the "good" stand-in scores high on
held-out pairs; the "wrong" one scores low on concept and high on style; FD between two halves of
the real pictures is below FD of blurred and noised real pictures and below the noise model's;
precision drops for noise; the PNG reader undoes every PNG filter; and the command line fails
with one line for a missing data folder or model. Exit 0 passed, 1 failed, 77 skipped (no torch).
Run: /usr/bin/python3 tests/python/test_evaluate_generation.py (ctest: evaluation.PythonSyntheticShapes)
"""

import base64
import json
import os
import struct
import subprocess
import sys
import tempfile
import time
import zlib

sys.dont_write_bytecode = True  # no __pycache__ folders in the source tree
# Passive OpenMP waiting, as scripts/evaluate_generation.py sets it: it must be set before torch
# loads OpenMP, and spinning threads on cores shared with a build ran many times slower.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "scripts"))

import numpy as np  # noqa: E402

E = None  # scripts/evaluate_generation.py, imported in main(): the stand-in server needs no torch

SHAPES = ["circle", "square", "triangle", "cross", "diamond"]
HELDOUT_SHAPE = "bar"
STYLES = ["filled", "outline", "stripes", "checker"]
HELDOUT_PAIRS = [("circle", "stripes"), ("triangle", "outline"), ("diamond", "checker")]
SIZE = 32


def shape_mask(shape, cx, cy, r, size=SIZE):
    y, x = np.mgrid[0:size, 0:size].astype(np.float64)
    dx, dy = x - cx, y - cy
    if shape == "circle":
        return dx * dx + dy * dy <= r * r
    if shape == "square":
        return (np.abs(dx) <= 0.8 * r) & (np.abs(dy) <= 0.8 * r)
    if shape == "triangle":
        return (dy <= 0.8 * r) & (dy >= -r) & (np.abs(dx) <= (dy + r) * 0.55)
    if shape == "cross":
        return ((np.abs(dx) <= 0.3 * r) | (np.abs(dy) <= 0.3 * r)) & (np.abs(dx) <= r) & (np.abs(dy) <= r)
    if shape == "diamond":
        return np.abs(dx) + np.abs(dy) <= r
    if shape == "bar":
        return (np.abs(dx) <= r) & (np.abs(dy) <= 0.35 * r)
    raise ValueError(shape)


COLOURS = {"red": (200, 30, 30), "green": (30, 150, 30), "blue": (30, 60, 200), "orange": (230, 120, 20),
           "purple": (130, 40, 160), "brown": (120, 70, 30), "black": (20, 20, 20), "teal": (20, 140, 140)}
SIZES = {"small": (8.0, 9.5), "large": (10.5, 12.0)}
PLACES = {"centre": (0, 0), "left": (-3, 0), "right": (3, 0), "top": (0, -3), "bottom": (0, 3)}
COMBOS = [(z, c, p) for z in SIZES for c in COLOURS for p in PLACES]  # 80 per (shape, style)


def draw(shape, style, rng, size="large", colour="black", place="centre"):
    ox, oy = PLACES[place]
    cx, cy = SIZE / 2 + ox + rng.uniform(-1, 1), SIZE / 2 + oy + rng.uniform(-1, 1)
    r = rng.uniform(*SIZES[size])
    m = shape_mask(shape, cx, cy, r)
    y, x = np.mgrid[0:SIZE, 0:SIZE]
    if style == "outline":
        m = m & ~shape_mask(shape, cx, cy, r - 2.5)
    elif style == "stripes":
        m = m & ((y // 2) % 2 == 0)
    elif style == "checker":
        m = m & (((x // 3) + (y // 3)) % 2 == 0)
    img = np.full((SIZE, SIZE, 3), 255, np.uint8)
    img[m] = np.clip(np.array(COLOURS[colour]) + rng.integers(-20, 21, size=3), 0, 255)
    return img


def prompt_of(shape, style, combo):
    size, colour, place = combo
    return f"{size} {colour} {shape} at the {place}, {style} style"


def parse_prompt(prompt):
    """'small red circle at the left, stripes style' -> shape, style, (size, colour, place)."""
    what, style = prompt.split(", ")
    size, colour, shape, _, _, place = what.split(" ")
    return shape, style[:-len(" style")], (size, colour, place)


def make_dataset(root, per_pair=20, per_heldout_pair=15, per_heldout_concept=10, seed=0):
    rng = np.random.default_rng(seed)
    for split in ("train", "heldout"):
        os.makedirs(os.path.join(root, split), exist_ok=True)
    rows = {"train": [], "heldout": []}
    order = {(sh, st): rng.permutation(len(COMBOS)) for sh in SHAPES + [HELDOUT_SHAPE] for st in STYLES}

    def add(split, shape, style, i, heldout=None):
        # every row its own prompt (size, colour, place), as every emoji row has its own caption
        combo = COMBOS[order[(shape, style)][i]]
        folder = os.path.join(root, split, style)
        os.makedirs(folder, exist_ok=True)
        name = f"{style}/{shape}-{i}.png"
        with open(os.path.join(root, split, name), "wb") as f:
            f.write(encode_png(draw(shape, style, rng, *combo)))
        row = {"file_name": name, "text": [prompt_of(shape, style, combo), shape], "emoji": shape, "style": style}
        if heldout:
            row["heldout"] = heldout
        rows[split].append(row)

    for shape in SHAPES:
        for style in STYLES:
            if (shape, style) in HELDOUT_PAIRS:
                for i in range(per_heldout_pair):
                    add("heldout", shape, style, i, "pair")
            else:
                for i in range(per_pair):
                    add("train", shape, style, i)
    for style in STYLES:
        for i in range(per_heldout_concept):
            add("heldout", HELDOUT_SHAPE, style, i, "concept")
    for split in rows:
        with open(os.path.join(root, split, "metadata.jsonl"), "w") as f:
            for row in rows[split]:
                f.write(json.dumps(row) + "\n")


# ---------------------------------------------------------------------------------------------
# Stand-in luminars: `serve --model M --port P ...` and `serve --help`.

def fake_luminars_main(argv):
    if "serve" not in argv:
        print("stand-in luminars: only `serve`", file=sys.stderr)
        return 2
    if "--help" in argv:
        return 0
    from http.server import BaseHTTPRequestHandler, HTTPServer
    model = argv[argv.index("--model") + 1]
    port = int(argv[argv.index("--port") + 1])
    with open(os.path.join(model, "luminars.json")) as f:
        kind = json.load(f)["kind"]

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def reply(self, code, body):
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            self.reply(200, {"status": "ok"}) if self.path == "/health" else self.reply(404, {})

        def do_POST(self):
            if kind == "dies":  # a server that goes away mid-run
                os._exit(1)
            req = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            shape, style, combo = parse_prompt(req["prompt"])
            images = []
            for i in range(req.get("batch_size", 1)):
                rng = np.random.default_rng([req["seed"] + i, zlib.crc32(req["prompt"].encode())])
                if kind == "good":
                    img = draw(shape, style, rng, *combo)
                elif kind == "wrong":
                    other = SHAPES[(SHAPES.index(shape) + 2) % len(SHAPES)] if shape in SHAPES else "circle"
                    img = draw(other, style, rng, *combo)
                else:
                    img = rng.integers(0, 256, size=(SIZE, SIZE, 3)).astype(np.uint8)
                if "width" in req:  # a larger size: the same picture, each pixel repeated
                    f = req["width"] // SIZE
                    img = np.repeat(np.repeat(img, f, axis=0), f, axis=1)
                images.append(base64.b64encode(encode_png(img)).decode())
            self.reply(200, {"images": images, "info": kind})

    HTTPServer(("127.0.0.1", port), Handler).serve_forever()
    return 0


# ---------------------------------------------------------------------------------------------

def _chunk(ctype, body):
    return struct.pack(">I", len(body)) + ctype + body + struct.pack(">I", zlib.crc32(ctype + body) & 0xFFFFFFFF)


def encode_png(rgb):
    h, w, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[y].tobytes() for y in range(h))
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + _chunk(b"IDAT", zlib.compress(raw)) + _chunk(b"IEND", b""))


def png_with_filters(rgb):
    """PNG bytes of rgb using filter types 0-4 in turn, row by row (to test the reader)."""
    h, w, _ = rgb.shape
    bpp = 3
    raw = bytearray()
    prev = np.zeros(w * bpp, np.int64)
    for yy in range(h):
        line = rgb[yy].reshape(-1).astype(np.int64)
        ftype = yy % 5
        left = np.concatenate([np.zeros(bpp, np.int64), line[:-bpp]])
        upleft = np.concatenate([np.zeros(bpp, np.int64), prev[:-bpp]])
        if ftype == 0:
            f = line
        elif ftype == 1:
            f = line - left
        elif ftype == 2:
            f = line - prev
        elif ftype == 3:
            f = line - (left + prev) // 2
        else:
            p = left + prev - upleft
            pa, pb, pc = np.abs(p - left), np.abs(p - prev), np.abs(p - upleft)
            pred = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, prev, upleft))
            f = line - pred
        raw.append(ftype)
        raw += bytes((f % 256).astype(np.uint8))
        prev = line
    chunk = _chunk
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(bytes(raw))) + chunk(b"IEND", b""))


def blur_and_noise(x, rng):
    f = x.astype(np.float64)
    k = np.array([1, 4, 6, 4, 1], np.float64) / 16
    for axis in (1, 2):
        f = np.apply_along_axis(lambda v: np.convolve(np.pad(v, 2, mode="edge"), k, mode="valid"), axis, f)
    f += rng.normal(0, 40, size=f.shape)
    return np.clip(f, 0, 255).astype(np.uint8)


FAILURES = []


def check(cond, what):
    print(("ok    " if cond else "FAIL  ") + what, flush=True)
    if not cond:
        FAILURES.append(what)


def main():
    global E
    t0 = time.time()
    try:
        import torch  # noqa: F401
    except ImportError:
        print("skipped: this python has no torch (Debian: apt-get install python3-torch; use /usr/bin/python3)")
        return 77
    import evaluate_generation
    E = evaluate_generation
    E.torch.set_num_threads(2)
    rng = np.random.default_rng(5)

    # 1. The PNG reader against every filter type.
    img = rng.integers(0, 256, size=(9, 7, 3)).astype(np.uint8)
    check(np.array_equal(E.decode_png(png_with_filters(img)), img), "PNG reader undoes filters 0-4")
    check(np.array_equal(E.decode_png(E.encode_png(img)), img), "PNG writer and reader round-trip")
    tiles = [rng.integers(0, 256, size=(8, 8, 3)).astype(np.uint8) for _ in range(5)]
    grid = np.full((18, 28, 3), 255, np.uint8)  # 5 pictures: 3 columns, 2 rows, 2-pixel gaps
    for i, t in enumerate(tiles):
        grid[(i // 3) * 10:(i // 3) * 10 + 8, (i % 3) * 10:(i % 3) * 10 + 8] = t
    check(all(np.array_equal(a, b) for a, b in zip(E.split_grid(grid, 5, (8, 8, 3)), tiles)),
          "a `generate --batch` grid splits back into its pictures")
    block = np.zeros((4, 4, 3), np.uint8)
    block[:2, :2], block[:2, 2:], block[2:, :2] = 10, 200, [[[0, 0, 0], [0, 0, 0]], [[3, 4, 5], [3, 4, 5]]]
    block[2:, 2:] = [[[255, 255, 255], [0, 0, 0]], [[255, 255, 255], [0, 0, 0]]]
    check(np.array_equal(E.box_downscale(block, (2, 2, 3)),
                         np.array([[[10, 10, 10], [200, 200, 200]], [[2, 2, 2], [128, 128, 128]]], np.uint8)),
          "box downscale averages each 2x2 block (1.5 -> 2, 2.5 -> 2, 127.5 -> 128)")

    # The pictures' cache key covers a model folder's linked parts (a variant folder linking another's
    # weights must not keep its key when those weights change).
    with tempfile.TemporaryDirectory(prefix="test-model-key-") as tmp:
        parts, variant, exe = os.path.join(tmp, "parts"), os.path.join(tmp, "variant"), os.path.join(tmp, "exe")
        os.makedirs(parts)
        os.makedirs(variant)
        for path, text in ((os.path.join(parts, "w.bin"), "1"), (os.path.join(variant, "luminars.json"), "{}"), (exe, "x")):
            with open(path, "w") as f:
                f.write(text)
        os.symlink(parts, os.path.join(variant, "denoiser"))
        before = E.model_key(variant, exe)
        with open(os.path.join(parts, "w.bin"), "w") as f:
            f.write("2")
        check(E.model_key(variant, exe) != before, "the cache key follows a model folder's linked parts")

    with tempfile.TemporaryDirectory(prefix="test-evaluate-generation-") as tmp:
        data = os.path.join(tmp, "data")
        work = os.path.join(tmp, "work")
        make_dataset(data)
        fake = os.path.join(tmp, "luminars")
        with open(fake, "w") as f:
            f.write(f"#!{sys.executable}\nimport sys\nsys.dont_write_bytecode = True\nsys.path.insert(0, {HERE!r})\n"
                    "import test_evaluate_generation as t\nsys.exit(t.fake_luminars_main(sys.argv[1:]))\n")
        os.chmod(fake, 0o755)
        models = []
        for kind in ("good", "wrong", "noise"):
            m = os.path.join(tmp, f"model-{kind}")
            os.makedirs(m)
            with open(os.path.join(m, "luminars.json"), "w") as f:
                json.dump({"format": "luminars", "kind": kind}, f)
            models.append(m)

        out_json = os.path.join(tmp, "result.json")
        base = ["--data", data, "--work", work, "--luminars", fake, "--train-prompts", "20", "--seeds", "2",
                "--concept-epochs", "25", "--style-epochs", "25", "--width", "8", "--halves", "5",
                "--out-md", os.path.join(tmp, "result.md")]
        argv = base + ["--out-json", out_json]
        for m, name in zip(models, ("good", "wrong", "noise")):
            argv += ["--model", m, "--name", name]
        rc = E.main(argv)
        check(rc == 0, "evaluate_generation.py runs on the synthetic set (3 stand-in models)")
        if rc != 0:
            return 1
        with open(out_json) as f:
            res = json.load(f)
        real = res["real"]
        good, wrong, noise = res["models"]
        print(f"real pairs: concept {real['heldout_pair']['concept_top1']:.2f}, style {real['heldout_pair']['style_top1']:.2f}; "
              f"good: {good['heldout_pair']['concept_top1']:.2f}/{good['heldout_pair']['style_top1']:.2f}; "
              f"wrong: {wrong['heldout_pair']['concept_top1']:.2f}/{wrong['heldout_pair']['style_top1']:.2f}; "
              f"noise: {noise['heldout_pair']['concept_top1']:.2f}/{noise['heldout_pair']['style_top1']:.2f}")
        check(real["heldout_pair"]["concept_top1"] >= 0.8, "concept classifier: real held-out pairs >= 80%")
        check(real["heldout_all"]["style_top1"] >= 0.8, "style classifier: real held-out pictures >= 80%")
        check(good["heldout_pair"]["concept_top1"] >= 0.7, "good stand-in: held-out pair concept >= 70%")
        check(good["train"]["concept_top1"] >= 0.8, "good stand-in: training prompts concept >= 80%")
        check(wrong["heldout_pair"]["concept_top1"] <= 0.3, "wrong-shape stand-in: concept <= 30%")
        check(wrong["train"]["concept_top1"] <= 0.3, "wrong-shape stand-in: training prompts concept <= 30%")
        check(wrong["heldout_concept"]["style_top1"] >= 0.7, "wrong-shape stand-in: style still >= 70%")
        check(noise["train"]["style_top1"] <= 0.5, "noise stand-in: style <= 50%")

        floor = real["distribution"]
        print(f"FD floor {floor['fd']['median']:.2f}, good {good['distribution']['fd']['median']:.2f}, "
              f"noise {noise['distribution']['fd']['median']:.2f}; precision floor "
              f"{floor['precision']['median']:.2f}, good {good['distribution']['precision']['median']:.2f}, "
              f"noise {noise['distribution']['precision']['median']:.2f}")
        check(noise["distribution"]["fd"]["median"] > 3 * floor["fd"]["median"], "FD: noise model far above the real floor")
        check(good["distribution"]["fd"]["median"] < noise["distribution"]["fd"]["median"], "FD: good model below the noise model")
        check(noise["distribution"]["precision"]["median"] < floor["precision"]["median"] - 0.3,
              "precision: noise model far below real")
        check(good["distribution"]["precision"]["median"] >= 0.6, "precision: good model >= 60%")
        check(noise["distribution"]["recall"]["median"] < floor["recall"]["median"] - 0.4, "recall: noise model far below real")

        # --size: pictures generated twice as large and box-downscaled meet the classifiers as the
        # same pictures at the data's size (the stand-in repeats pixels), so the scores agree.
        big_json = os.path.join(tmp, "big.json")
        rc = E.main(base + ["--out-json", big_json, "--model", models[0], "--name", "good", "--size", str(2 * SIZE)])
        with open(big_json) as f:
            big = json.load(f)
        check(rc == 0 and len(big["models"]) == 1 and big["settings"]["size"] == 2 * SIZE
              and big["models"][0]["train"]["concept_top1"] == good["train"]["concept_top1"]
              and big["models"][0]["heldout_pair"]["style_top1"] == good["heldout_pair"]["style_top1"],
              "--size 2x: the same accuracies as at the data's size")

        # FD of real halves against blurred and noised real pictures, with the cached classifiers.
        d = E.load_data(data, work)
        args = E.parse_args(argv)
        clf = E.get_classifiers(d, work, args)
        check(all(os.path.isfile(os.path.join(f, "meta.json")) and f.startswith(work) for f in clf["folders"].values()),
              "classifiers cached in the work folder and reused")
        hx = d["heldout_x"]
        _, feats = E.predict(clf["concept"], hx)
        _, feats_bad = E.predict(clf["concept"], blur_and_noise(hx, rng))
        halves = E.split_halves(len(hx), 5, 0)
        floor_fd = np.median([E.frechet_distance(feats[a], feats[b]) for a, b in halves])
        bad_fd = np.median([E.frechet_distance(feats_bad[a], feats[b]) for a, b in halves])
        print(f"FD real halves {floor_fd:.2f}, blurred+noised {bad_fd:.2f}")
        check(floor_fd < bad_fd, "FD(real halves) < FD(real, blurred and noised)")
        check(abs(E.frechet_distance(feats, feats)) < 1e-6 * max(1.0, np.trace(np.cov(feats, rowvar=False))),
              "FD of a set with itself is 0")

        # Clear one-line errors.
        script = os.path.join(ROOT, "scripts", "evaluate_generation.py")
        r = subprocess.run([sys.executable, script, "--data", os.path.join(tmp, "nope"), "--work", work],
                           capture_output=True, text=True)
        check(r.returncode == 1 and r.stderr.strip().startswith("error: data folder") and len(r.stderr.strip().splitlines()) == 1,
              "missing data folder: one-line error")
        r = subprocess.run([sys.executable, script, "--data", data, "--work", work, "--luminars", fake,
                            "--model", os.path.join(tmp, "no-model")], capture_output=True, text=True)
        check(r.returncode == 1 and "not a model folder" in r.stderr and len(r.stderr.strip().splitlines()) == 1,
              "missing model: one-line error")
        dies = os.path.join(tmp, "model-dies")
        os.makedirs(dies)
        with open(os.path.join(dies, "luminars.json"), "w") as f:
            json.dump({"format": "luminars", "kind": "dies"}, f)
        r = subprocess.run([sys.executable, script, *base, "--model", dies], capture_output=True, text=True)
        err = r.stderr.strip().splitlines()
        check(r.returncode == 1 and err and err[-1].startswith("error: luminars serve exited while drawing")
              and "Traceback" not in r.stderr, f"a server that dies mid-run: one-line error ({err[-1:] if err else ''})")

    print(f"{len(FAILURES)} failed; {time.time() - t0:.1f} s")
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
