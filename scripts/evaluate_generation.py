#!/usr/bin/python3
"""Independent evaluation of generated pictures: classifiers trained on real pictures only.

    evaluate_generation.py --data DATA --work WORK --luminars BIN --model MODEL [--model MODEL2 ...]

DATA is a dataset written by scripts/fetch-emoji.sh (train/ and heldout/, each with
metadata.jsonl and <style>/<slug>.png). Two small CNNs are fitted on the real training pictures
only, never on a generated one, and never used to train any part of a generator:

  concept classifier  which emoji (the training split's concepts)
  style classifier    which art style (the dataset's styles)

Their own accuracy on real held-out pictures is the ceiling. Each model then draws pictures for
(a) a fixed random sample of training captions, (b) every held-out (concept, style) pair, whose
concept the classifiers know, and (c) every held-out concept row (style accuracy only: the
concept classifier has never seen those concepts). Figures:

  CAS        Classification Accuracy Score: top-1/top-5 concept and style accuracy of generated
             pictures, per prompt set, beside the same classifiers on the real pictures
  FD         Fréchet distance in the concept classifier's penultimate features between the
             pictures generated for a random half A of the held-out rows and the real pictures of
             the other half B; its floor is FD(real pictures of A, real pictures of B), with the
             same halves, so sizes and rows match. Repeated over several random halves and over
             seeds; median and range are reported.
  P / R      precision and recall of Kynkäänniemi et al. (2019), k-nearest-neighbour manifolds
             (k = 3) in the same features and with the same halves.

The classifiers are cached under WORK/classifiers/, keyed by the data's content and the training
settings; the decoded data under WORK/data-*.npz; generated pictures under WORK/generated/, keyed
by the model's files, the luminars binary and the prompts. Output: a Markdown table (stdout and
--out-md) and every figure as JSON (--out-json).

Needs only the standard library, numpy and torch (Debian: python3-numpy, python3-torch). PNGs are
decoded here (zlib), so no imaging library is needed.
"""

import argparse
import base64
import hashlib
import json
import math
import os
import random
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zlib

# GNU OpenMP spins while it waits: on cores shared with other jobs (builds), two spinning threads
# ran the classifiers 7-20x slower than passive waiting did. Set before torch loads OpenMP; also
# passed on to luminars.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError:  # pragma: no cover - reported to the user
    sys.exit("error: PyTorch is required (Debian: apt-get install python3-torch; run with /usr/bin/python3)")

CLASSIFIER_VERSION = 1  # bump when the network or its training changes: invalidates the cache


class EvalError(Exception):
    """A user-facing error: printed as one line."""


def log(msg):
    print(f"[evaluate] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# PNG decoding (8-bit grey, grey+alpha, RGB, RGBA, palette; non-interlaced), alpha onto white.

def _unfilter(raw, width, height, bpp):
    stride = width * bpp
    out = bytearray(height * stride)
    prev = bytearray(stride)
    pos = 0
    for y in range(height):
        ftype = raw[pos]
        line = bytearray(raw[pos + 1:pos + 1 + stride])
        pos += 1 + stride
        if ftype == 0:
            pass
        elif ftype == 1:  # Sub
            a = np.frombuffer(bytes(line), dtype=np.uint8).reshape(width, bpp).astype(np.int64)
            line = bytearray((np.cumsum(a, axis=0) % 256).astype(np.uint8).tobytes())
        elif ftype == 2:  # Up
            a = np.frombuffer(bytes(line), dtype=np.uint8)
            b = np.frombuffer(bytes(prev), dtype=np.uint8)
            line = bytearray((a + b).tobytes())  # uint8 wraps
        elif ftype == 3:  # Average
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 0xFF
        elif ftype == 4:  # Paeth
            for i in range(stride):
                if i >= bpp:
                    a = line[i - bpp]
                    c = prev[i - bpp]
                else:
                    a = c = 0
                b = prev[i]
                p = a + b - c
                pa = abs(p - a)
                pb = abs(p - b)
                pc = abs(p - c)
                if pa <= pb and pa <= pc:
                    pred = a
                elif pb <= pc:
                    pred = b
                else:
                    pred = c
                line[i] = (line[i] + pred) & 0xFF
        else:
            raise EvalError(f"corrupt PNG: unknown filter type {ftype}")
        out[y * stride:(y + 1) * stride] = line
        prev = line
    return out


def decode_png(data, name="PNG"):
    """PNG bytes -> uint8 array H x W x 3 (alpha composited onto white)."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise EvalError(f"{name}: not a PNG file")
    pos = 8
    idat = []
    palette = None
    trns = None
    header = None
    while pos + 8 <= len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        ctype = data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if ctype == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif ctype == b"PLTE":
            palette = np.frombuffer(body, dtype=np.uint8).reshape(-1, 3)
        elif ctype == b"tRNS":
            trns = np.frombuffer(body, dtype=np.uint8)
        elif ctype == b"IDAT":
            idat.append(body)
        elif ctype == b"IEND":
            break
    if header is None or not idat:
        raise EvalError(f"{name}: truncated PNG")
    width, height, depth, colour, _, _, interlace = header
    if depth != 8 or interlace != 0:
        raise EvalError(f"{name}: only 8-bit non-interlaced PNGs are read (bit depth {depth}, interlace {interlace})")
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}.get(colour)
    if channels is None:
        raise EvalError(f"{name}: unknown PNG colour type {colour}")
    try:
        raw = zlib.decompress(b"".join(idat))
    except zlib.error as e:
        raise EvalError(f"{name}: corrupt PNG data ({e})")
    if len(raw) < height * (width * channels + 1):
        raise EvalError(f"{name}: truncated PNG data")
    px = np.frombuffer(bytes(_unfilter(raw, width, height, channels)), dtype=np.uint8)
    px = px.reshape(height, width, channels)
    if colour == 3:
        if palette is None:
            raise EvalError(f"{name}: palette PNG without PLTE")
        idx = px[..., 0]
        rgb = palette[idx].astype(np.float32)
        if trns is not None:
            alpha = np.full(len(palette), 255, np.uint8)
            alpha[:len(trns)] = trns[:len(palette)]
            a = alpha[idx].astype(np.float32)[..., None] / 255.0
            rgb = rgb * a + 255.0 * (1 - a)
        return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)
    if colour in (0, 4):
        grey = px[..., :1].astype(np.float32)
        rgb = np.repeat(grey, 3, axis=2)
        alpha = px[..., 1:2].astype(np.float32) / 255.0 if colour == 4 else None
    else:
        rgb = px[..., :3].astype(np.float32)
        alpha = px[..., 3:4].astype(np.float32) / 255.0 if colour == 6 else None
    if alpha is not None:
        rgb = rgb * alpha + 255.0 * (1 - alpha)
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def read_png(path):
    with open(path, "rb") as f:
        return decode_png(f.read(), path)


def _png_chunk(ctype, body):
    return struct.pack(">I", len(body)) + ctype + body + struct.pack(">I", zlib.crc32(ctype + body) & 0xFFFFFFFF)


def encode_png(rgb):
    """uint8 H x W x 3 -> PNG bytes (filter 0), for tests and contact sheets."""
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    h, w, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[y].tobytes() for y in range(h))
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + _png_chunk(b"IDAT", zlib.compress(raw, 6)) + _png_chunk(b"IEND", b""))


# ---------------------------------------------------------------------------------------------
# Data

def read_metadata(split_dir):
    path = os.path.join(split_dir, "metadata.jsonl")
    if not os.path.isfile(path):
        raise EvalError(f"{path} not found (a dataset written by scripts/fetch-emoji.sh is expected)")
    rows = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise EvalError(f"{path}:{n}: not JSON ({e})")
            for key in ("file_name", "text", "emoji", "style"):
                if key not in row:
                    raise EvalError(f"{path}:{n}: no '{key}'")
            if isinstance(row["text"], str):
                row["text"] = [row["text"]]
            rows.append(row)
    if not rows:
        raise EvalError(f"{path} is empty")
    return rows


def data_key(data_dir):
    """Content hash of both splits: metadata and every picture."""
    h = hashlib.sha256()
    for split in ("train", "heldout"):
        split_dir = os.path.join(data_dir, split)
        with open(os.path.join(split_dir, "metadata.jsonl"), "rb") as f:
            h.update(f.read())
        for row in read_metadata(split_dir):
            with open(os.path.join(split_dir, row["file_name"]), "rb") as f:
                h.update(hashlib.sha256(f.read()).digest())
    return h.hexdigest()[:16]


def load_data(data_dir, work_dir):
    """Both splits decoded, cached in WORK/data-<key>.npz. Returns a dict."""
    for split in ("train", "heldout"):
        if not os.path.isdir(os.path.join(data_dir, split)):
            raise EvalError(f"{data_dir}/{split} not found: fetch the data first (scripts/fetch-emoji.sh {data_dir})")
    train_rows = read_metadata(os.path.join(data_dir, "train"))
    heldout_rows = read_metadata(os.path.join(data_dir, "heldout"))
    for split, rows in (("train", train_rows), ("heldout", heldout_rows)):
        for row in rows:
            p = os.path.join(data_dir, split, row["file_name"])
            if not os.path.isfile(p):
                raise EvalError(f"{p} is listed in {split}/metadata.jsonl but missing")
    log("hashing the data")
    key = data_key(data_dir)
    cache = os.path.join(work_dir, f"data-{key}.npz")
    if os.path.isfile(cache):
        z = np.load(cache)
        train_x, heldout_x = z["train"], z["heldout"]
    else:
        arrays = {}
        for split, rows in (("train", train_rows), ("heldout", heldout_rows)):
            log(f"decoding {len(rows)} {split} pictures")
            imgs = []
            size = None
            for i, row in enumerate(rows):
                img = read_png(os.path.join(data_dir, split, row["file_name"]))
                if size is None:
                    size = img.shape
                elif img.shape != size:
                    raise EvalError(f"{split}/{row['file_name']}: {img.shape[1]}x{img.shape[0]}, "
                                    f"the others are {size[1]}x{size[0]}")
                imgs.append(img)
                if (i + 1) % 2000 == 0:
                    log(f"  {split}: {i + 1}/{len(rows)}")
            arrays[split] = np.stack(imgs)
        train_x, heldout_x = arrays["train"], arrays["heldout"]
        tmp = cache + ".tmp.npz"
        np.savez(tmp, train=train_x, heldout=heldout_x)
        os.replace(tmp, cache)
    if train_x.shape[1:] != heldout_x.shape[1:]:
        raise EvalError("train and heldout pictures differ in size")
    return {"key": key, "train_rows": train_rows, "heldout_rows": heldout_rows,
            "train_x": train_x, "heldout_x": heldout_x}


# ---------------------------------------------------------------------------------------------
# Classifiers

class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.c1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.b1 = nn.BatchNorm2d(cout)
        self.c2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.b2 = nn.BatchNorm2d(cout)
        self.skip = None
        if stride != 1 or cin != cout:
            self.skip = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = F.relu(self.b1(self.c1(x)))
        y = self.b2(self.c2(y))
        return F.relu(y + (x if self.skip is None else self.skip(x)))


class Classifier(nn.Module):
    """A small ResNet for 64x64 (any size) RGB: stem /2, four stages, pooled, a feature layer."""

    def __init__(self, classes, width=16, feature_dim=128):
        super().__init__()
        w = width
        self.stem = nn.Sequential(nn.Conv2d(3, w, 3, 2, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU())
        self.stages = nn.Sequential(Block(w, w, 1), Block(w, 2 * w, 2), Block(2 * w, 4 * w, 2), Block(4 * w, 8 * w, 2))
        self.feature = nn.Sequential(nn.Linear(8 * w, feature_dim), nn.BatchNorm1d(feature_dim), nn.ReLU())
        self.drop = nn.Dropout(0.2)
        self.head = nn.Linear(feature_dim, classes)

    def features(self, x):
        x = self.stages(self.stem(x))
        return self.feature(x.mean(dim=(2, 3)))

    def forward(self, x):
        return self.head(self.drop(self.features(x)))


def to_tensor(x_uint8):
    return torch.from_numpy(np.ascontiguousarray(x_uint8)).permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)


def augment(x, shift, gen):
    """Light augmentation: a random shift of up to `shift` pixels (white fill) and a random
    rescale by 0.9-1.1; no flips and no colour changes (colour names concepts: red vs blue heart)."""
    n = x.shape[0]
    scale = 1.0 + (torch.rand(n, generator=gen) * 0.2 - 0.1)
    size = x.shape[-1]
    tx = (torch.rand(n, generator=gen) * 2 - 1) * shift * 2 / size
    ty = (torch.rand(n, generator=gen) * 2 - 1) * shift * 2 / size
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = 1 / scale
    theta[:, 1, 1] = 1 / scale
    theta[:, 0, 2] = tx
    theta[:, 1, 2] = ty
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    # Sample (x + 1) so that the zero padding is white (+1 after shifting back).
    return F.grid_sample(x - 1.0, grid, mode="bilinear", padding_mode="zeros", align_corners=False) + 1.0


def train_classifier(x, y, classes, epochs, seed, width, batch=128, lr=3e-3, label="classifier", shift=4):
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = Classifier(classes, width=width)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=5e-4)
    steps_per_epoch = max(1, math.ceil(len(x) / batch))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * steps_per_epoch, pct_start=0.15)
    yt = torch.as_tensor(y, dtype=torch.long)
    t0 = time.time()
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(len(x), generator=gen)
        total, correct, loss_sum = 0, 0, 0.0
        for s in range(steps_per_epoch):
            idx = perm[s * batch:(s + 1) * batch]
            if len(idx) < 2:
                continue
            xb = augment(to_tensor(x[idx.numpy()]), shift, gen)
            yb = yt[idx]
            logits = model(xb)
            loss = F.cross_entropy(logits, yb, label_smoothing=0.1)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += len(idx)
            correct += (logits.argmax(1) == yb).sum().item()
            loss_sum += loss.item() * len(idx)
        log(f"  {label}: epoch {epoch + 1}/{epochs}, loss {loss_sum / max(total, 1):.3f}, "
            f"train accuracy {100 * correct / max(total, 1):.1f}% ({time.time() - t0:.0f} s)")
    model.eval()
    return model, time.time() - t0


@torch.no_grad()
def predict(model, x_uint8, batch=256):
    """Logits and penultimate features of uint8 pictures N x H x W x 3."""
    model.eval()
    logits, feats = [], []
    for i in range(0, len(x_uint8), batch):
        xb = to_tensor(x_uint8[i:i + batch])
        f = model.features(xb)
        feats.append(f)
        logits.append(model.head(f))
    if not logits:
        return np.zeros((0, model.head.out_features), np.float32), np.zeros((0, model.head.in_features), np.float32)
    return torch.cat(logits).numpy(), torch.cat(feats).numpy().astype(np.float64)


def get_classifiers(data, work_dir, args):
    """Fits (or loads from the cache) the concept and style classifiers on the training split.
    Each is cached apart, under WORK/classifiers/<name>-<key>/, key = data content + settings."""
    concepts = sorted({r["emoji"] for r in data["train_rows"]})
    styles = sorted({r["style"] for r in data["train_rows"]} | {r["style"] for r in data["heldout_rows"]})
    c_index = {c: i for i, c in enumerate(concepts)}
    s_index = {s: i for i, s in enumerate(styles)}
    out = {"concepts": concepts, "styles": styles, "c_index": c_index, "s_index": s_index, "meta": {}, "folders": {}}
    for name, labels, classes, epochs, seed in (
            ("concept", [c_index[r["emoji"]] for r in data["train_rows"]], concepts, args.concept_epochs,
             args.classifier_seed),
            ("style", [s_index[r["style"]] for r in data["train_rows"]], styles, args.style_epochs,
             args.classifier_seed + 1)):
        config = {"version": CLASSIFIER_VERSION, "name": name, "data": data["key"], "seed": seed, "epochs": epochs,
                  "width": args.width, "classes": hashlib.sha256(json.dumps(classes).encode()).hexdigest()[:16]}
        key = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]
        folder = os.path.join(work_dir, "classifiers", f"{name}-{key}")
        meta_path = os.path.join(folder, "meta.json")
        model = Classifier(len(classes), width=args.width)
        if os.path.isfile(meta_path):
            with open(meta_path) as f:
                meta = json.load(f)
            model.load_state_dict(torch.load(os.path.join(folder, "model.pt")))
            log(f"{name} classifier from the cache: {folder}")
        else:
            os.makedirs(folder, exist_ok=True)
            x = data["train_x"]
            log(f"fitting the {name} classifier ({len(classes)} classes, {len(x)} real training pictures, {epochs} epochs)")
            model, seconds = train_classifier(x, labels, len(classes), epochs, seed, args.width, label=name)
            torch.save(model.state_dict(), os.path.join(folder, "model.pt"))
            meta = {"config": config, "fitted_on": "real training pictures only", "train_pictures": len(x),
                    "classes": len(classes), "seconds": round(seconds, 1), "torch_threads": torch.get_num_threads()}
            with open(meta_path + ".tmp", "w") as f:
                json.dump(meta, f, indent=1)
            os.replace(meta_path + ".tmp", meta_path)
        model.eval()
        out[name] = model
        out["meta"][name] = meta
        out["folders"][name] = folder
    return out


# ---------------------------------------------------------------------------------------------
# Figures

def topk_hits(logits, labels, k):
    labels = np.asarray(labels)
    if len(labels) == 0:
        return np.zeros(0, bool)
    k = min(k, logits.shape[1])
    top = np.argpartition(-logits, k - 1, axis=1)[:, :k]
    return (top == labels[:, None]).any(axis=1)


def frechet_distance(f1, f2):
    """Fréchet distance between Gaussians fitted to two feature sets (rows are samples)."""
    mu1, mu2 = f1.mean(0), f2.mean(0)
    s1 = np.cov(f1, rowvar=False)
    s2 = np.cov(f2, rowvar=False)
    # tr(sqrt(s1 s2)) = tr(sqrt(A s2 A)) with A = sqrt(s1): symmetric, so eigh is exact enough.
    w, v = np.linalg.eigh(s1)
    a = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    m = a @ s2 @ a
    ev = np.linalg.eigvalsh((m + m.T) / 2)
    tr_sqrt = np.sqrt(np.clip(ev, 0, None)).sum()
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * tr_sqrt)


def _pairwise(a, b):
    d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T
    return np.sqrt(np.clip(d, 0, None))


def _knn_radii(f, k):
    d = _pairwise(f, f)
    np.fill_diagonal(d, np.inf)
    k = min(k, len(f) - 1)
    return np.partition(d, k - 1, axis=1)[:, k - 1]


def precision_recall(real, fake, k=3):
    """Improved precision and recall (Kynkäänniemi et al. 2019): precision is the share of fake
    samples inside the real manifold (union of k-NN balls of the real samples), recall the share of
    real samples inside the fake manifold."""
    r_real = _knn_radii(real, k)
    r_fake = _knn_radii(fake, k)
    d = _pairwise(fake, real)  # fake x real
    precision = float((d <= r_real[None, :]).any(axis=1).mean())
    recall = float((d.T <= r_fake[None, :]).any(axis=1).mean())
    return precision, recall


def summary(values):
    v = np.asarray(values, dtype=np.float64)
    return {"median": float(np.median(v)), "min": float(v.min()), "max": float(v.max()),
            "mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0, "n": int(len(v))}


def split_halves(n, repeats, seed):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(repeats):
        p = rng.permutation(n)
        out.append((np.sort(p[:n // 2]), np.sort(p[n // 2:])))
    return out


def distribution_figures(gen_feats_by_seed, real_feats, halves, k):
    """FD and P/R: generated pictures of half A (each seed apart) and real pictures of half A,
    each against the real pictures of half B."""
    floor_fd, floor_p, floor_r = [], [], []
    fd, prec, rec = [], [], []
    for a, b in halves:
        ref = real_feats[b]
        floor_fd.append(frechet_distance(real_feats[a], ref))
        p, r = precision_recall(ref, real_feats[a], k)
        floor_p.append(p)
        floor_r.append(r)
        for g in gen_feats_by_seed or []:
            fd.append(frechet_distance(g[a], ref))
            p, r = precision_recall(ref, g[a], k)
            prec.append(p)
            rec.append(r)
    real = {"fd": summary(floor_fd), "precision": summary(floor_p), "recall": summary(floor_r)}
    gen = {"fd": summary(fd), "precision": summary(prec), "recall": summary(rec)} if fd else None
    return real, gen


def accuracy_block(clf, x, rows, with_concept, per_seed=None):
    """CAS figures of pictures x (N x H x W x 3) whose labels are rows[i] (the row it was drawn for)."""
    out = {"pictures": int(len(x))}
    s_logits, _ = predict(clf["style"], x)
    s_labels = [clf["s_index"][r["style"]] for r in rows]
    s_hits = topk_hits(s_logits, s_labels, 1)
    out["style_top1"] = float(s_hits.mean())
    if with_concept:
        c_logits, _ = predict(clf["concept"], x)
        c_labels = [clf["c_index"][r["emoji"]] for r in rows]
        c1 = topk_hits(c_logits, c_labels, 1)
        c5 = topk_hits(c_logits, c_labels, 5)
        out["concept_top1"] = float(c1.mean())
        out["concept_top5"] = float(c5.mean())
    if per_seed is not None:  # per_seed: array of seed ids, one per picture
        seeds = {}
        for s in sorted(set(per_seed.tolist())):
            m = per_seed == s
            d = {"style_top1": float(s_hits[m].mean())}
            if with_concept:
                d["concept_top1"] = float(c1[m].mean())
                d["concept_top5"] = float(c5[m].mean())
            seeds[str(s)] = d
        out["per_seed"] = seeds
    return out


# ---------------------------------------------------------------------------------------------
# Generation with luminars

def file_digest(path, h):
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)


def model_key(model_dir, luminars):
    h = hashlib.sha256()
    for root, dirs, files in os.walk(model_dir, followlinks=True):  # a folder may link another's parts
        dirs.sort()
        for name in sorted(files):
            p = os.path.join(root, name)
            h.update(os.path.relpath(p, model_dir).encode())
            file_digest(p, h)
    file_digest(luminars, h)
    return h.hexdigest()[:16]


class Server:
    """`luminars serve` on a free local port: the model is loaded once for every prompt."""

    def __init__(self, luminars, model, threads, log_path, any_size=False):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.log = open(log_path, "w")
        self.proc = subprocess.Popen([luminars, "--threads", str(threads), "serve", "--model", model, "--host", "127.0.0.1",
                                      "--port", str(self.port), "--max-count", "64"] + (["--any-size"] if any_size else []),
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 120
        while True:
            if self.proc.poll() is not None:
                raise EvalError(f"luminars serve exited ({self.proc.returncode}); see {log_path}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=5) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, socket.timeout):
                pass
            if time.time() > deadline:
                self.close()
                raise EvalError(f"luminars serve did not answer within 120 s; see {log_path}")
            time.sleep(0.3)

    def generate(self, prompt, seed, count, steps, cfg, size=0):
        body = {"prompt": prompt, "seed": seed, "batch_size": count}
        if size:
            body["width"] = body["height"] = size
        if steps:
            body["steps"] = steps
        if cfg is not None:
            body["cfg_scale"] = cfg
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}/sdapi/v1/txt2img", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        for attempt in range(5):
            try:
                with urllib.request.urlopen(req, timeout=600) as r:
                    reply = json.loads(r.read())
                break
            except urllib.error.HTTPError as e:
                if e.code in (429, 503) and attempt < 4:
                    time.sleep(1 + attempt)
                    continue
                raise EvalError(f"luminars serve refused '{prompt}': HTTP {e.code} {e.read()[:200]!r}")
            except (urllib.error.URLError, ConnectionError, socket.timeout) as e:
                try:  # a server that is going away closes its connections a moment before it exits
                    self.proc.wait(2)
                except subprocess.TimeoutExpired:
                    pass
                state = "exited" if self.proc.poll() is not None else "is running but did not answer"
                raise EvalError(f"luminars serve {state} while drawing '{prompt}' ({getattr(e, 'reason', e)}); "
                                f"see {self.log.name}")
        imgs = [decode_png(base64.b64decode(b), "generated picture") for b in reply["images"]]
        if len(imgs) != count:
            raise EvalError(f"luminars serve returned {len(imgs)} pictures, asked for {count}")
        return imgs, reply.get("info", "")

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def split_grid(grid, count, tile):
    """`luminars generate --batch N` writes one grid: ceil(sqrt(N)) columns, row-major, 2-pixel gaps."""
    th, tw = tile[:2]
    cols = math.ceil(math.sqrt(count))
    rows = math.ceil(count / cols)
    want = (rows * th + (rows - 1) * 2, cols * tw + (cols - 1) * 2)
    if grid.shape[:2] != want:
        raise EvalError(f"luminars generate wrote a {grid.shape[1]}x{grid.shape[0]} grid for {count} pictures, "
                        f"expected {want[1]}x{want[0]}")
    return [grid[(i // cols) * (th + 2):(i // cols) * (th + 2) + th, (i % cols) * (tw + 2):(i % cols) * (tw + 2) + tw]
            for i in range(count)]


def generate_cli(luminars, model, threads, prompt, seed, count, steps, cfg, tmp, tile, size=0, any_size=False):
    """Fallback without `serve`: one `luminars generate --batch COUNT` per prompt (loads the model each time)."""
    out = os.path.join(tmp, "g.png")
    cmd = [luminars, "--threads", str(threads), "generate", "--model", model, "--prompt", prompt,
           "--seed", str(seed), "--batch", str(count), "--out", out, "--quiet"]
    if size:
        cmd += ["--size", str(size)]
    if any_size:
        cmd.append("--any-size")
    if steps:
        cmd += ["--steps", str(steps)]
    if cfg is not None:
        cmd += ["--cfg", str(cfg)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise EvalError(f"luminars generate failed ({r.returncode}): {(r.stderr or r.stdout).strip()[-300:]}")
    return split_grid(read_png(out), count, tile)


def box_downscale(img, shape):
    """An HxWx3 uint8 picture averaged over f x f blocks down to `shape` (f a whole number): how a
    picture generated larger than the data meets the classifiers, which take the data's size."""
    fh, fw = img.shape[0] // shape[0], img.shape[1] // shape[1]
    if fh < 1 or fh != fw or img.shape[0] != fh * shape[0] or img.shape[1] != fw * shape[1]:
        raise EvalError(f"generated pictures are {img.shape[1]}x{img.shape[0]}: not a whole multiple of the data's "
                        f"{shape[1]}x{shape[0]}")
    if fh == 1:
        return img
    blocks = img.reshape(shape[0], fh, shape[1], fw, img.shape[2]).astype(np.float64).mean(axis=(1, 3))
    return np.clip(np.rint(blocks), 0, 255).astype(np.uint8)


def has_serve(luminars):
    r = subprocess.run([luminars, "serve", "--help"], capture_output=True, text=True)
    return r.returncode == 0


def generate_all(model, prompts, args, work_dir):
    """Pictures for every prompt, seeds args.seed0 .. args.seed0 + seeds - 1 (image i of a batch uses
    seed + i, so a batch is the same as separate calls). Cached by model, binary and prompts."""
    settings = {"prompts": prompts, "seed0": args.seed0, "seeds": args.seeds, "steps": args.steps, "cfg": args.cfg}
    if args.size:  # only when given, so that caches of pictures at the model's own size keep their keys
        settings["size"] = args.size
    key = model_key(model, args.luminars) + "-" + hashlib.sha256(json.dumps(settings).encode()).hexdigest()[:12]
    cache = os.path.join(work_dir, "generated", f"{key}.npz")
    if os.path.isfile(cache):
        log(f"{model}: {len(prompts) * args.seeds} generated pictures from the cache ({cache})")
        z = np.load(cache)
        return z["x"], json.loads(str(z["info"])), cache
    os.makedirs(os.path.dirname(cache), exist_ok=True)
    total = len(prompts) * args.seeds
    out = np.zeros((len(prompts), args.seeds) + args.picture_shape, np.uint8)
    info = {"seconds": 0.0}
    t0 = time.time()
    server = None
    tmp = tempfile.mkdtemp(prefix="evaluate-generation-")
    try:
        if not args.no_serve and has_serve(args.luminars):
            server = Server(args.luminars, model, args.threads, os.path.join(work_dir, "serve.log"), args.any_size)
            info["via"] = "luminars serve (AUTOMATIC1111 txt2img)"
        else:
            info["via"] = "luminars generate"
        log(f"{model}: generating {total} pictures ({len(prompts)} prompts x {args.seeds} seeds) via {info['via']}")
        last = time.time()
        for i, prompt in enumerate(prompts):
            if server:
                imgs, reply_info = server.generate(prompt, args.seed0, args.seeds, args.steps, args.cfg, args.size)
                if i == 0:
                    info["first_reply"] = reply_info if isinstance(reply_info, str) else json.dumps(reply_info)[:500]
            else:
                tile = (args.size, args.size, args.picture_shape[2]) if args.size else args.picture_shape
                imgs = generate_cli(args.luminars, model, args.threads, prompt, args.seed0, args.seeds, args.steps,
                                    args.cfg, tmp, tile, args.size, args.any_size)
            for s, img in enumerate(imgs):
                if args.size:
                    img = box_downscale(img, args.picture_shape)
                if img.shape != args.picture_shape:
                    raise EvalError(f"{model}: generated pictures are {img.shape[1]}x{img.shape[0]}, "
                                    f"the data's are {args.picture_shape[1]}x{args.picture_shape[0]}")
                out[i, s] = img
            if time.time() - last > 20 or i + 1 == len(prompts):
                done = (i + 1) * args.seeds
                rate = done / (time.time() - t0)
                log(f"  {done}/{total} pictures, {rate:.1f}/s, about {(total - done) / rate:.0f} s left")
                last = time.time()
    finally:
        if server:
            server.close()
        shutil.rmtree(tmp, ignore_errors=True)
    info["seconds"] = round(time.time() - t0, 1)
    np.savez(cache + ".tmp.npz", x=out, info=json.dumps(info))
    os.replace(cache + ".tmp.npz", cache)
    return out, info, cache


def clip_score(luminars, clip, x, prompts, work_dir, threads):
    """The project's own CLIP score (secondary), or None when --clip is not given."""
    folder = tempfile.mkdtemp(prefix="clip-score-", dir=work_dir)
    try:
        paths = []
        for i, img in enumerate(x):
            p = os.path.join(folder, f"{i:05d}.png")
            with open(p, "wb") as f:
                f.write(encode_png(img))
            paths.append(p)
        pf = os.path.join(folder, "prompts.txt")
        with open(pf, "w") as f:
            f.write("\n".join(prompts) + "\n")
        r = subprocess.run([luminars, "--threads", str(threads), "score", "--clip", clip, "--images", *paths,
                            "--prompts-file", pf, "--json"], capture_output=True, text=True)
        if r.returncode != 0:
            raise EvalError(f"luminars score failed: {(r.stderr or r.stdout).strip()[-300:]}")
        return json.loads(r.stdout)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# Report

def pct(v):
    return "–" if v is None else f"{100 * v:.1f}%"


def seed_range(block, key):
    seeds = block.get("per_seed")
    if not seeds or len(seeds) < 2:
        return ""
    vals = [s[key] for s in seeds.values()]
    return f" ({100 * min(vals):.1f}–{100 * max(vals):.1f})"


def dist_cell(d, key, fmt):
    if d is None:
        return "–"
    s = d[key]
    return f"{fmt(s['median'])} [{fmt(s['min'])}–{fmt(s['max'])}]"


def markdown(result):
    fd_fmt = lambda v: f"{v:.2f}"  # noqa: E731
    p_fmt = lambda v: f"{100 * v:.1f}%"  # noqa: E731
    lines = []
    lines.append("| pictures | n | concept top-1 | concept top-5 | style | FD ↓ | precision | recall |")
    lines.append("|---|---|---|---|---|---|---|---|")
    real = result["real"]
    lines.append(f"| real held-out pairs (ceiling) | {real['heldout_pair']['pictures']} | "
                 f"{pct(real['heldout_pair']['concept_top1'])} | {pct(real['heldout_pair']['concept_top5'])} | "
                 f"{pct(real['heldout_pair']['style_top1'])} | | | |")
    lines.append(f"| real held-out concepts (ceiling) | {real['heldout_concept']['pictures']} | – | – | "
                 f"{pct(real['heldout_concept']['style_top1'])} | | | |")
    lines.append(f"| real training pictures of the sampled prompts (fitted on) | {real['train_sample']['pictures']} | "
                 f"{pct(real['train_sample']['concept_top1'])} | {pct(real['train_sample']['concept_top5'])} | "
                 f"{pct(real['train_sample']['style_top1'])} | | | |")
    dist = real["distribution"]
    lines.append(f"| real held-out, half A against half B (floor) | {dist['half_size']} | | | | "
                 f"{dist_cell(dist, 'fd', fd_fmt)} | {dist_cell(dist, 'precision', p_fmt)} | "
                 f"{dist_cell(dist, 'recall', p_fmt)} |")
    for m in result["models"]:
        name = m["name"]
        t, p, c = m["train"], m["heldout_pair"], m["heldout_concept"]
        lines.append(f"| {name}: training prompts | {t['pictures']} | {pct(t['concept_top1'])}{seed_range(t, 'concept_top1')} | "
                     f"{pct(t['concept_top5'])}{seed_range(t, 'concept_top5')} | {pct(t['style_top1'])}{seed_range(t, 'style_top1')} | | | |")
        lines.append(f"| {name}: held-out pairs | {p['pictures']} | {pct(p['concept_top1'])}{seed_range(p, 'concept_top1')} | "
                     f"{pct(p['concept_top5'])}{seed_range(p, 'concept_top5')} | {pct(p['style_top1'])}{seed_range(p, 'style_top1')} | | | |")
        lines.append(f"| {name}: held-out concepts | {c['pictures']} | – | – | {pct(c['style_top1'])}{seed_range(c, 'style_top1')} | | | |")
        d = m["distribution"]
        lines.append(f"| {name}: held-out prompts of half A against real half B | {dist['half_size']} per seed | | | | "
                     f"{dist_cell(d, 'fd', fd_fmt)} | {dist_cell(d, 'precision', p_fmt)} | {dist_cell(d, 'recall', p_fmt)} |")
        if m.get("clip"):
            lines.append(f"| {name}: CLIP score, project's own CLIP (secondary) | {m['clip']['pictures']} | "
                         f"{m['clip']['generated']:.2f} generated, {m['clip']['real']:.2f} real held-out | | | | | |")
    s = result["settings"]
    d, c = result["data"], result["classifiers"]
    size = s.get("size", "model default")
    size_note = "" if size == "model default" else f", generated at {size}x{size} and judged box-downscaled to the data's size"
    lines.append("")
    lines.append(f"Measured {result['date']} on the data with content key {d['key']} ({d['train_pictures']} training and "
                 f"{d['heldout_pictures']} held-out pictures, {d['picture_size'][1]}x{d['picture_size'][0]}; "
                 f"{d['concepts_train']} training concepts, {len(d['styles'])} styles). Prompts (each row's first caption): "
                 f"{s['train_prompts']} training rows sampled with seed {s['sample_seed']}, {s['heldout_pair_prompts']} "
                 f"held-out pairs, {s['heldout_concept_prompts']} held-out-concept rows; {s['seeds']} seed(s) each; steps "
                 f"{s['steps']}, guidance {s['cfg']}{size_note}. Classifiers fitted on the real training pictures only: concept "
                 f"{c['concept']['config']['epochs']} epochs, style {c['style']['config']['epochs']} epochs, seeds "
                 f"{c['concept']['config']['seed']} and {c['style']['config']['seed']}.")
    lines.append(f"Accuracies pool every seed (seeds {s['seed0']}–{s['seed0'] + s['seeds'] - 1}; range over seeds in "
                 f"brackets). FD, precision and recall: median [min–max] over {s['halves']} random halves of the "
                 f"held-out rows{' and every seed' if s['seeds'] > 1 else ''}; k = {s['k']}; features: the concept "
                 f"classifier's penultimate layer ({s['feature_dim']} dimensions).")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------

def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--data", required=True, help="dataset folder (train/, heldout/) from scripts/fetch-emoji.sh")
    p.add_argument("--work", required=True, help="work folder for caches (decoded data, classifiers, pictures)")
    p.add_argument("--model", action="append", default=[], help="model folder to evaluate (repeatable)")
    p.add_argument("--name", action="append", default=[], help="label of each --model in the table (default: its path)")
    p.add_argument("--luminars", default=None, help="the luminars program (needed with --model)")
    p.add_argument("--train-prompts", type=int, default=400, help="training (concept, style) rows sampled (default 400)")
    p.add_argument("--heldout-concept-prompts", type=int, default=0,
                   help="held-out-concept rows sampled (0: all, the default)")
    p.add_argument("--seeds", type=int, default=2, help="pictures per prompt, seeds seed0, seed0+1, ... (default 2)")
    p.add_argument("--seed0", type=int, default=1, help="first generation seed (default 1)")
    p.add_argument("--sample-seed", type=int, default=0, help="seed of the prompt sample and the halves (default 0)")
    p.add_argument("--steps", type=int, default=0, help="sampling steps (0: the model's default)")
    p.add_argument("--cfg", type=float, default=None, help="guidance scale (default: the model's)")
    p.add_argument("--size", type=int, default=0,
                   help="generate at this square size and judge the pictures box-downscaled to the data's size "
                        "(a whole multiple of it; 0: the model's own size)")
    p.add_argument("--any-size", action="store_true",
                   help="let the models draw sizes they were not trained at (luminars --any-size), e.g. to show "
                        "what training at a size adds")
    p.add_argument("--halves", type=int, default=10, help="random halves for FD and P/R (default 10)")
    p.add_argument("--k", type=int, default=3, help="k of the k-NN manifolds (default 3)")
    p.add_argument("--concept-epochs", type=int, default=12, help="concept classifier epochs (default 12)")
    p.add_argument("--style-epochs", type=int, default=8, help="style classifier epochs (default 8)")
    p.add_argument("--width", type=int, default=16, help="classifier base width (default 16)")
    p.add_argument("--classifier-seed", type=int, default=0, help="classifier seed (default 0)")
    p.add_argument("--threads", type=int, default=2, help="torch and luminars threads (default 2)")
    p.add_argument("--clip", default=None, help="a CLIP folder: also the project's CLIP score (secondary)")
    p.add_argument("--no-serve", action="store_true",
                   help="call `luminars generate` once per prompt instead of one `luminars serve` (slower)")
    p.add_argument("--out-md", default=None, help="write the Markdown table here")
    p.add_argument("--out-json", default=None, help="write every figure here as JSON")
    args = p.parse_args(argv)
    if args.name and len(args.name) != len(args.model):
        p.error("give one --name per --model, or none")
    for flag in ("train_prompts", "heldout_concept_prompts", "steps", "size"):
        if getattr(args, flag) < 0:
            p.error(f"--{flag.replace('_', '-')} must be >= 0")
    for flag in ("seeds", "halves", "k", "concept_epochs", "style_epochs", "width", "threads"):
        if getattr(args, flag) < 1:
            p.error(f"--{flag.replace('_', '-')} must be >= 1")
    return args


def run(args):
    torch.set_num_threads(args.threads)
    t_start = time.time()
    data_dir = os.path.abspath(args.data)
    if not os.path.isdir(data_dir):
        raise EvalError(f"data folder {args.data} not found (fetch it with scripts/fetch-emoji.sh {args.data})")
    models = [os.path.abspath(m) for m in args.model]
    for m in models:
        if not os.path.isfile(os.path.join(m, "luminars.json")):
            raise EvalError(f"{m} is not a model folder (no luminars.json)")
    if models:
        if not args.luminars:
            raise EvalError("--luminars is required to generate pictures")
        if not (os.path.isfile(args.luminars) and os.access(args.luminars, os.X_OK)):
            raise EvalError(f"luminars program {args.luminars} not found or not executable")
        args.luminars = os.path.abspath(args.luminars)
    os.makedirs(args.work, exist_ok=True)
    work_dir = os.path.abspath(args.work)

    data = load_data(data_dir, work_dir)
    args.picture_shape = tuple(data["train_x"].shape[1:])
    clf = get_classifiers(data, work_dir, args)
    train_rows, heldout_rows = data["train_rows"], data["heldout_rows"]
    known = set(clf["c_index"])

    # Prompt sets, fixed by --sample-seed.
    rng = random.Random(args.sample_seed)
    train_idx = sorted(rng.sample(range(len(train_rows)), min(args.train_prompts, len(train_rows))))
    pair_idx = [i for i, r in enumerate(heldout_rows) if r.get("heldout") == "pair" and r["emoji"] in known]
    concept_idx = [i for i, r in enumerate(heldout_rows) if i not in set(pair_idx)]
    if args.heldout_concept_prompts and args.heldout_concept_prompts < len(concept_idx):
        concept_idx = sorted(random.Random(args.sample_seed + 1).sample(concept_idx, args.heldout_concept_prompts))
    heldout_idx = sorted(pair_idx + concept_idx)  # the rows whose real and generated pictures enter FD and P/R
    if len(heldout_idx) < 8:
        raise EvalError(f"only {len(heldout_idx)} held-out rows: too few for FD and precision/recall")

    # The real pictures through the same classifiers.
    hx = data["heldout_x"]
    real = {
        "heldout_pair": accuracy_block(clf, hx[pair_idx], [heldout_rows[i] for i in pair_idx], True),
        "heldout_concept": accuracy_block(clf, hx[concept_idx], [heldout_rows[i] for i in concept_idx], False),
        "heldout_all": accuracy_block(clf, hx, heldout_rows, False),
        "train_sample": accuracy_block(clf, data["train_x"][train_idx], [train_rows[i] for i in train_idx], True),
    }
    _, real_feats = predict(clf["concept"], hx[heldout_idx])
    halves = split_halves(len(heldout_idx), args.halves, args.sample_seed)
    real_dist, _ = distribution_figures(None, real_feats, halves, args.k)
    real_dist["half_size"] = len(heldout_idx) // 2
    real["distribution"] = real_dist

    result = {
        "date": time.strftime("%Y-%m-%d"),
        "data": {"folder": data_dir, "key": data["key"], "train_pictures": len(train_rows),
                 "heldout_pictures": len(heldout_rows), "concepts_train": len(clf["concepts"]),
                 "styles": clf["styles"], "picture_size": list(args.picture_shape)},
        "classifiers": {"folders": clf["folders"], **clf["meta"]},
        "settings": {"train_prompts": len(train_idx), "heldout_pair_prompts": len(pair_idx),
                     "heldout_concept_prompts": len(concept_idx), "seeds": args.seeds, "seed0": args.seed0,
                     "sample_seed": args.sample_seed, "steps": args.steps or "model default",
                     "cfg": args.cfg if args.cfg is not None else "model default", "halves": args.halves, "k": args.k,
                     "size": args.size or "model default",
                     "feature_dim": int(real_feats.shape[1]), "threads": args.threads,
                     "luminars": args.luminars},
        "real": real,
        "models": [],
    }

    for mi, model in enumerate(models):
        name = args.name[mi] if args.name else args.model[mi]
        prompt_rows = [train_rows[i] for i in train_idx] + [heldout_rows[i] for i in heldout_idx]
        prompts = [r["text"][0] for r in prompt_rows]
        x, info, cache = generate_all(model, prompts, args, work_dir)
        nt = len(train_idx)
        seeds_of = lambda n: np.tile(np.arange(args.seed0, args.seed0 + args.seeds), n)  # noqa: E731

        def flat(block_rows, block_x):
            # prompt-major, seed-minor: rows repeated per seed
            return block_x.reshape((-1,) + args.picture_shape), [r for r in block_rows for _ in range(args.seeds)]

        gx_train, r_train = flat([train_rows[i] for i in train_idx], x[:nt])
        pos = {h: nt + j for j, h in enumerate(heldout_idx)}
        gx_pair, r_pair = flat([heldout_rows[i] for i in pair_idx], x[[pos[i] for i in pair_idx]])
        gx_conc, r_conc = flat([heldout_rows[i] for i in concept_idx], x[[pos[i] for i in concept_idx]])
        entry = {
            "name": name, "folder": model, "generation": info, "cache": cache,
            "train": accuracy_block(clf, gx_train, r_train, True, seeds_of(len(train_idx))),
            "heldout_pair": accuracy_block(clf, gx_pair, r_pair, True, seeds_of(len(pair_idx))),
            "heldout_concept": accuracy_block(clf, gx_conc, r_conc, False, seeds_of(len(concept_idx))),
        }
        gen_feats = [predict(clf["concept"], x[nt:, s])[1] for s in range(args.seeds)]
        _, entry["distribution"] = distribution_figures(gen_feats, real_feats, halves, args.k)
        if args.clip:
            gen_first = x[nt:, 0]
            held_prompts = prompts[nt:]
            g = clip_score(args.luminars, args.clip, gen_first, held_prompts, work_dir, args.threads)
            r = clip_score(args.luminars, args.clip, hx[heldout_idx], held_prompts, work_dir, args.threads)
            entry["clip"] = {"pictures": len(held_prompts), "generated": g.get("mean_clip_score"),
                             "real": r.get("mean_clip_score"), "generated_raw": g, "real_raw": r}
        result["models"].append(entry)
        log(f"{name}: done")
    result["seconds"] = round(time.time() - t_start, 1)
    return result


def main(argv=None):
    args = parse_args(argv if argv is not None else sys.argv[1:])
    try:
        result = run(args)
    except EvalError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    table = markdown(result)
    print(table)
    if args.out_md:
        with open(args.out_md, "w") as f:
            f.write(table + "\n")
    if args.out_json:
        with open(args.out_json, "w") as f:
            json.dump(result, f, indent=1)
            f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
