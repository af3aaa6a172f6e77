#!/usr/bin/env python3
"""Carries a training set to a GPU machine under its 64 MiB limit on what travels.

  gpu_train_data.py pack DATA TEXT_ENCODER PACK    (numpy and PIL, here and there)
  gpu_train_data.py unpack PACK DATA

pack: DATA's pictures (one size, RGB) as one xz-compressed raw array, metadata.jsonl beside it, and
a copy of TEXT_ENCODER: take it from a model folder `luminars export` wrote, whose weights are
float16 (half the size, and what the shipped model holds anyway). unpack writes the captioned
picture folder back, bit-identical pixels.
"""
import json, lzma, os, shutil, sys
import numpy as np
from PIL import Image


def pack(data, text_encoder, out):
    meta = [json.loads(l) for l in open(os.path.join(data, 'metadata.jsonl')) if l.strip()]
    pixels = np.stack([np.asarray(Image.open(os.path.join(data, m['file_name'])).convert('RGB')) for m in meta])
    os.makedirs(out, exist_ok=True)
    header = {'count': len(meta), 'shape': list(pixels.shape[1:])}
    open(os.path.join(out, 'pixels.json'), 'w').write(json.dumps(header))
    open(os.path.join(out, 'pixels.xz'), 'wb').write(lzma.compress(pixels.tobytes(), preset=9))
    open(os.path.join(out, 'metadata.jsonl.xz'), 'wb').write(
        lzma.compress(open(os.path.join(data, 'metadata.jsonl'), 'rb').read(), preset=9))
    te = os.path.join(out, 'text_encoder')
    shutil.rmtree(te, ignore_errors=True)
    shutil.copytree(text_encoder, te)
    print(f'packed {len(meta)} pictures {pixels.shape[1:]} into {out}')


def unpack(src, out):
    meta_raw = lzma.decompress(open(os.path.join(src, 'metadata.jsonl.xz'), 'rb').read())
    meta = [json.loads(l) for l in meta_raw.decode().splitlines() if l.strip()]
    header = json.load(open(os.path.join(src, 'pixels.json')))
    pixels = np.frombuffer(lzma.decompress(open(os.path.join(src, 'pixels.xz'), 'rb').read()), np.uint8)
    pixels = pixels.reshape([header['count']] + header['shape'])
    for m, img in zip(meta, pixels):
        p = os.path.join(out, m['file_name'])
        os.makedirs(os.path.dirname(p), exist_ok=True)
        Image.fromarray(img).save(p)
    open(os.path.join(out, 'metadata.jsonl'), 'wb').write(meta_raw)
    print(f'unpacked {len(meta)} pictures into {out}')


if __name__ == '__main__':
    if len(sys.argv) == 5 and sys.argv[1] == 'pack':
        pack(*sys.argv[2:])
    elif len(sys.argv) == 4 and sys.argv[1] == 'unpack':
        unpack(*sys.argv[2:])
    else:
        sys.exit(__doc__)
