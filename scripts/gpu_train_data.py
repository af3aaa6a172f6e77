#!/usr/bin/env python3
"""Carries a training set to a GPU machine under its 64 MiB limit on what travels.

  gpu_train_data.py pack DATA TEXT_ENCODER PACK    (here: needs numpy and PIL)
  gpu_train_data.py unpack PACK DATA               (there: standard library and numpy only)

pack: DATA's pictures (one size, RGB) as one xz-compressed raw array, metadata.jsonl beside it,
and the text encoder's weights as float16 (what a shipped model holds anyway). unpack writes the
captioned picture folder back, bit-identical pixels.
"""
import json, lzma, os, struct, sys, zlib
import numpy as np


def pack(data, text_encoder, out):
    from PIL import Image
    meta = [json.loads(l) for l in open(os.path.join(data, 'metadata.jsonl')) if l.strip()]
    pixels = np.stack([np.asarray(Image.open(os.path.join(data, m['file_name'])).convert('RGB')) for m in meta])
    os.makedirs(out, exist_ok=True)
    header = {'count': len(meta), 'shape': list(pixels.shape[1:])}
    open(os.path.join(out, 'pixels.json'), 'w').write(json.dumps(header))
    open(os.path.join(out, 'pixels.xz'), 'wb').write(lzma.compress(pixels.tobytes(), preset=9))
    open(os.path.join(out, 'metadata.jsonl.xz'), 'wb').write(
        lzma.compress(open(os.path.join(data, 'metadata.jsonl'), 'rb').read(), preset=9))
    raw = open(os.path.join(text_encoder, 'model.safetensors'), 'rb').read()
    n = struct.unpack('<Q', raw[:8])[0]
    head = json.loads(raw[8:8 + n])
    new_head, chunks, offset = {}, [], 0
    for key, v in head.items():
        if key == '__metadata__':
            new_head[key] = v
            continue
        if v['dtype'] not in ('F32', 'F16'):
            sys.exit(f'gpu_train_data.py: {key} in {text_encoder} is {v["dtype"]}, expected F32 or F16')
        s, e = v['data_offsets']
        x = np.frombuffer(raw[8 + n + s:8 + n + e], dtype=np.float32 if v['dtype'] == 'F32' else np.float16)
        y = x.astype(np.float16).tobytes()
        new_head[key] = {'dtype': 'F16', 'shape': v['shape'], 'data_offsets': [offset, offset + len(y)]}
        chunks.append(y)
        offset += len(y)
    hb = json.dumps(new_head).encode()
    hb += b' ' * (-len(hb) % 8)
    te = os.path.join(out, 'text_encoder')
    os.makedirs(te, exist_ok=True)
    with open(os.path.join(te, 'model.safetensors'), 'wb') as f:
        f.write(struct.pack('<Q', len(hb)) + hb + b''.join(chunks))
    open(os.path.join(te, 'config.json'), 'w').write(open(os.path.join(text_encoder, 'config.json')).read())
    print(f'packed {len(meta)} pictures {pixels.shape[1:]} into {out}')


def write_png(path, img):
    h, w, _ = img.shape
    raw = b''.join(b'\x00' + img[y].tobytes() for y in range(h))
    def chunk(tag, body):
        return struct.pack('>I', len(body)) + tag + body + struct.pack('>I', zlib.crc32(tag + body) & 0xffffffff)
    with open(path, 'wb') as f:
        f.write(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 8, 2, 0, 0, 0))
                + chunk(b'IDAT', zlib.compress(raw, 6)) + chunk(b'IEND', b''))


def unpack(src, out):
    meta_raw = lzma.decompress(open(os.path.join(src, 'metadata.jsonl.xz'), 'rb').read())
    meta = [json.loads(l) for l in meta_raw.decode().splitlines() if l.strip()]
    header = json.load(open(os.path.join(src, 'pixels.json')))
    pixels = np.frombuffer(lzma.decompress(open(os.path.join(src, 'pixels.xz'), 'rb').read()), np.uint8)
    pixels = pixels.reshape([header['count']] + header['shape'])
    for m, img in zip(meta, pixels):
        p = os.path.join(out, m['file_name'])
        os.makedirs(os.path.dirname(p), exist_ok=True)
        write_png(p, img)
    open(os.path.join(out, 'metadata.jsonl'), 'wb').write(meta_raw)
    print(f'unpacked {len(meta)} pictures into {out}')


if __name__ == '__main__':
    if len(sys.argv) == 5 and sys.argv[1] == 'pack':
        pack(*sys.argv[2:])
    elif len(sys.argv) == 4 and sys.argv[1] == 'unpack':
        unpack(*sys.argv[2:])
    else:
        sys.exit(__doc__)
