#!/usr/bin/env python3
"""Carries a training set to a GPU machine under its 64 MiB limit on what travels.

  gpu_train_data.py pack DATA PACK [TEXT_ENCODER]    (numpy and PIL, here and there)
  gpu_train_data.py unpack PACK DATA
  gpu_train_data.py vae-encoder VAE PACK/vae         (standard library only)

pack: DATA's pictures (one size, RGB) as one xz-compressed raw array, metadata.jsonl beside it, and
a copy of TEXT_ENCODER where one is named (one that travels with the checkout anyway, such as
models/emoji/text_encoder, needs no copy): take it from a model folder `luminars export` wrote, whose
weights are float16. unpack writes the captioned picture folder back, bit-identical pixels.
vae-encoder copies a VAE folder with only the tensors `luminars prepare` reads (encoder.*,
quant_conv.*): 3 of the emoji VAE's 7.9 MB.
"""
import json, lzma, os, shutil, struct, sys


def pack(data, out, text_encoder=None):
    import numpy as np
    from PIL import Image
    meta = [json.loads(l) for l in open(os.path.join(data, 'metadata.jsonl')) if l.strip()]
    pixels = np.stack([np.asarray(Image.open(os.path.join(data, m['file_name'])).convert('RGB')) for m in meta])
    os.makedirs(out, exist_ok=True)
    header = {'count': len(meta), 'shape': list(pixels.shape[1:])}
    open(os.path.join(out, 'pixels.json'), 'w').write(json.dumps(header))
    open(os.path.join(out, 'pixels.xz'), 'wb').write(lzma.compress(pixels.tobytes(), preset=6))
    open(os.path.join(out, 'metadata.jsonl.xz'), 'wb').write(
        lzma.compress(open(os.path.join(data, 'metadata.jsonl'), 'rb').read(), preset=9))
    if text_encoder:
        te = os.path.join(out, 'text_encoder')
        shutil.rmtree(te, ignore_errors=True)
        shutil.copytree(text_encoder, te)
    print(f'packed {len(meta)} pictures {pixels.shape[1:]} into {out}')


def unpack(src, out):
    import numpy as np
    from PIL import Image
    meta_raw = lzma.decompress(open(os.path.join(src, 'metadata.jsonl.xz'), 'rb').read())
    meta = [json.loads(l) for l in meta_raw.decode().splitlines() if l.strip()]
    header = json.load(open(os.path.join(src, 'pixels.json')))
    pixels = np.frombuffer(lzma.decompress(open(os.path.join(src, 'pixels.xz'), 'rb').read()), np.uint8)
    pixels = pixels.reshape([header['count']] + header['shape'])
    for m, img in zip(meta, pixels):
        p = os.path.join(out, m['file_name'])
        os.makedirs(os.path.dirname(p), exist_ok=True)
        Image.fromarray(img).save(p, compress_level=1)
    open(os.path.join(out, 'metadata.jsonl'), 'wb').write(meta_raw)
    print(f'unpacked {len(meta)} pictures into {out}')


def vae_encoder(vae, out):
    name = 'diffusion_pytorch_model.safetensors'
    with open(os.path.join(vae, name), 'rb') as f:
        header = json.loads(f.read(struct.unpack('<Q', f.read(8))[0]))
        base = f.tell()
        keep, blobs, offset = {}, [], 0
        for key, info in header.items():
            if key == '__metadata__' or not key.startswith(('encoder.', 'quant_conv.')):
                continue
            begin, end = info['data_offsets']
            f.seek(base + begin)
            blobs.append(f.read(end - begin))
            keep[key] = dict(info, data_offsets=[offset, offset + end - begin])
            offset += end - begin
    if '__metadata__' in header:
        keep['__metadata__'] = header['__metadata__']
    text = json.dumps(keep).encode()
    text += b' ' * (-len(text) % 8)
    os.makedirs(out, exist_ok=True)
    shutil.copy(os.path.join(vae, 'config.json'), out)
    with open(os.path.join(out, name), 'wb') as f:
        f.write(struct.pack('<Q', len(text)) + text + b''.join(blobs))
    print(f'wrote the encoder of {vae} ({offset} bytes of weights) into {out}')


if __name__ == '__main__':
    if len(sys.argv) in (4, 5) and sys.argv[1] == 'pack':
        pack(*sys.argv[2:])
    elif len(sys.argv) == 4 and sys.argv[1] == 'unpack':
        unpack(*sys.argv[2:])
    elif len(sys.argv) == 4 and sys.argv[1] == 'vae-encoder':
        vae_encoder(*sys.argv[2:])
    else:
        sys.exit(__doc__)
