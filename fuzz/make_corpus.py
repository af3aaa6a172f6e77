#!/usr/bin/env python3
"""Writes the seed corpora fuzz/corpus/<target>/ (small, real-looking valid inputs and a few
near-misses). Standard library only; the configs come from models/emoji. Run from anywhere:
    python3 fuzz/make_corpus.py
Seeds that are not generated here (stb formats other than PNG) are listed in fuzz/README.md."""
import base64
import json
import struct
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "fuzz" / "corpus"
SEP = b"\n%%\n"  # fuzz_entries.h kPartSeparator


def put(target, name, data):
    path = CORPUS / target / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode())


# ------------------------------------------------------------------------------------------------
# PNG: signature, IHDR, text chunks, IDAT (filter 0 rows, or Adam7 passes), IEND
# ------------------------------------------------------------------------------------------------
def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png(width, height, pixel, color_type=2, bit_depth=8, text=(), itext=(), interlace=0, palette=None):
    """pixel(x, y) -> tuple of channel values (or a palette index for color type 3)."""
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[color_type]

    def rows(xs, ys):
        out = b""
        for y in ys:
            row = b""
            for x in xs:
                v = pixel(x, y)
                v = v if isinstance(v, tuple) else (v,)
                assert len(v) == channels
                row += b"".join(struct.pack(">H" if bit_depth == 16 else "B", c) for c in v)
            out += b"\0" + row
        return out

    if interlace:
        raw = b""
        for x0, y0, dx, dy in ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)):
            xs, ys = range(x0, width, dx), range(y0, height, dy)
            if len(xs) and len(ys):
                raw += rows(xs, ys)
    else:
        raw = rows(range(width), range(height))
    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, interlace))
    for key, value in text:
        out += chunk(b"tEXt", key.encode("latin-1") + b"\0" + value.encode("latin-1"))
    for key, value in itext:
        out += chunk(b"iTXt", key.encode("latin-1") + b"\0\0\0\0\0" + value.encode("utf-8"))
    if palette:
        out += chunk(b"PLTE", b"".join(bytes(c) for c in palette))
    out += chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    return out


def gradient(x, y):
    return (x * 255 // 63 & 255, y * 255 // 63 & 255, (x + y) * 2 & 255)


def heart(x, y, size=32):  # a red heart on white, roughly
    u, v = (x - size / 2) / (size / 2.6), (size / 2.3 - y) / (size / 2.6)
    inside = (u * u + v * v - 1) ** 3 - u * u * v ** 3 <= 0
    return (220, 30, 50) if inside else (255, 255, 255)


def mask_rgba(x, y, size=32):  # transparent left half: repaint there (OpenAI's convention)
    return (0, 0, 0, 0 if x < size // 2 else 255)


def mask_white(x, y, size=32):  # white right half: repaint there (AUTOMATIC1111's convention)
    return (255, 255, 255) if x >= size // 2 else (0, 0, 0)


# ------------------------------------------------------------------------------------------------
# Parameters texts (AUTOMATIC1111's `parameters`, as LuminaRS and A1111 write them)
# ------------------------------------------------------------------------------------------------
PARAMETERS = {
    "luminars_t2i.txt": "a red heart, noto style\nSteps: 12, Sampler: Euler, CFG scale: 4, Seed: 1, Size: 64x64, Model: emoji, Shift: 1",
    "luminars_i2i.txt": "a purple heart, noto style\nNegative prompt: blurry, low quality\nSteps: 12, Sampler: Heun, CFG scale: 7.5, "
                        "Seed: 4294967297, Size: 96x64, Model: emoji, Denoising strength: 0.6, Shift: 3",
    "luminars_quoted.txt": 'a fox, "ukiyo-e"\nSteps: 10, Sampler: Euler, CFG scale: 4, Seed: 7, Model: "my model: v2, final", Shift: 1',
    "a1111_euler_a.txt": "masterpiece, best quality, a cat sitting on a windowsill, (golden hour:1.2)\n"
                         "Negative prompt: lowres, bad anatomy, (worst quality:1.4)\n"
                         "Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 3456789012, Size: 512x768, Model hash: 6ce0161689, "
                         "Model: v1-5-pruned-emaonly, Clip skip: 2, Version: v1.6.0",
    "a1111_hires.txt": "landscape, mountains, lake\nSteps: 30, Sampler: Euler, Schedule type: Karras, CFG scale: 5.5, Seed: 42, "
                       'Size: 512x512, Model: sdxl, Denoising strength: 0.45, Hires upscale: 2, Hires upscaler: Latent, '
                       'Lora hashes: "detail: 1a2b3c4d5e, style: 0f9e8d7c6b", TI hashes: "bad: 123", Version: f2.0.1',
    "a1111_dpm.txt": "portrait of an old sailor\nNegative prompt: cartoon\nSteps: 25, Sampler: DPM++ 2M Karras, CFG scale: 6, "
                     "Seed: 99, Size: 640x448, Model: realistic",
    "multiline_crlf.txt": "line one of the prompt\r\nline two, with commas: and colons\r\n\r\nNegative prompt: first\r\n"
                          "second negative line\r\nSteps: 8, Sampler: HEUN, CFG scale: 1e1, Seed: 0, Size: 32x32\r\n\r\n",
    "unicode.txt": 'café crème, 日本の風景画 🦊\nSteps: 12, Sampler: euler, CFG scale: 4, Seed: 18446744073709551615, '
                   'Model: "\\u65e5\\u672c \\ud83e\\udd8a", Shift: 0.5',
    "only_values.txt": "Steps: 4, Seed: 5",
    "no_values.txt": "just a prompt without any settings line\n",
}

CAPTIONS = [
    "a red heart, noto style", "blue heart, twemoji style", "purple heart, openmoji style", "green apple, fluent flat style",
    "cat face, noto style", "tiger face, noto style", "rocket, twemoji style", "grinning face, fluent 3d style",
    "a painting of a fox in the snow, by Hokusai", "A Cyberpunk City at Night — neon, rain; 4k!!", "",
    "   lots    of   spaces   ", "it's a dog's life, isn't it? they're here, we've, I'll, I'd, I'm",
    "café crème brûlée, naïve façade", "emoji 🦊🎨 and symbols ©®™ ½", "日本の風景画、富士山", "numbers 1234567 3.14159 2026",
    "hyphen-ated words_and_underscores/slashes", "Tabs\tand\nnewlines\r\nhere", "<|startoftext|> special <|endoftext|> tokens",
    "UPPER lower MiXeD", "İstanbul ǅ ﬁ Ω K Å", "e\u0301 a\u0308 \u1100\u1161\u11a8 composed", "\xa0no-break\u2003em\u3000ideographic",
    "a very long prompt about a watercolor landscape with mountains rivers and trees " * 4,
]


# ------------------------------------------------------------------------------------------------
# safetensors
# ------------------------------------------------------------------------------------------------
def safetensors(tensors, metadata=None, pad=True):
    """tensors: [(name, dtype, shape, bytes)]."""
    header, data = {}, b""
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    text = json.dumps(header, separators=(",", ":")).encode()
    if pad:
        text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data


def write_safetensors():
    f32 = lambda *v: struct.pack("<%df" % len(v), *v)
    tiny = json.dumps({"latent_channels": 4, "widths": [32, 64], "depths": [1, 1], "mid_depth": 1, "embed_dim": 48,
                       "text_dim": 40, "head_dim": 16, "recursions": 2, "max_recursions": 4, "freq_dim": 32},
                      separators=(",", ":"))
    put("safetensors", "empty.safetensors", safetensors([]))
    put("safetensors", "one_f32.safetensors", safetensors([("weight", "F32", [2, 3], f32(1, 2, 3, 4, 5, 6))]))
    put("safetensors", "denoiser_like.safetensors", safetensors(
        [("time_embed.0.bias", "F32", [4], f32(0.1, 0.2, 0.3, 0.4)),
         ("blocks.0.norm.weight", "BF16", [2, 2], b"\x80\x3f" * 4),
         ("recursion_embed", "F16", [2, 1], b"\x00\x3c\x00\xbc"),
         ("conv_in.weight", "F32", [1, 1, 1, 2], f32(-1, 1))],
        metadata={"luminars_config": tiny, "format": "pt"}))
    put("safetensors", "all_dtypes.safetensors", safetensors(
        [("b", "BOOL", [3], b"\1\0\1"), ("u8", "U8", [2], b"\xff\x00"), ("i8", "I8", [2], b"\x80\x7f"),
         ("i16", "I16", [1], b"\x01\x02"), ("i32", "I32", [1], b"\x01\x02\x03\x04"), ("i64", "I64", [1], b"\x07" + b"\0" * 7),
         ("f64", "F64", [1], struct.pack("<d", 3.5)), ("f16", "F16", [1], b"\x00\x3c")], metadata={}))
    put("safetensors", "scalar_and_empty.safetensors", safetensors(
        [("scalar", "F32", [], f32(2.5)), ("nothing", "F32", [0, 4], b""), ("after", "I64", [1], b"\x01" + b"\0" * 7)]))
    put("safetensors", "unpadded_metadata_only.safetensors", safetensors([], metadata={"luminars_config": tiny, "note": "é ✓"}, pad=False))
    put("safetensors", "bad_config.safetensors", safetensors(
        [("w", "F32", [1], f32(1))], metadata={"luminars_config": '{"widths": [64, 128], "depths": [1]}'}))
    # Near misses: overlap, a gap before the data, a header length past the end.
    overlap = json.dumps({"a": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]},
                          "b": {"dtype": "U8", "shape": [4], "data_offsets": [2, 6]}}).encode()
    put("safetensors", "overlap.safetensors", struct.pack("<Q", len(overlap)) + overlap + b"\1" * 8)
    put("safetensors", "short.safetensors", struct.pack("<Q", 4096) + b'{"a": {"dtype": "F32"')


# ------------------------------------------------------------------------------------------------
# configs: '0' denoiser config, '1' VAE config.json, '2' luminars.json
# ------------------------------------------------------------------------------------------------
def write_configs():
    st = (ROOT / "models/emoji/denoiser/model.safetensors").read_bytes()
    n = struct.unpack("<Q", st[:8])[0]
    emoji = json.loads(st[8:8 + n])["__metadata__"]["luminars_config"]
    put("configs", "denoiser_emoji.json", "0" + emoji)
    put("configs", "denoiser_default.json", "0" + json.dumps(
        {"latent_channels": 16, "widths": [192, 384, 768], "depths": [2, 2, 3], "mid_depth": 2, "embed_dim": 768,
         "text_dim": 768, "head_dim": 64, "recursions": 2, "max_recursions": 8, "freq_dim": 256}, indent=2))
    put("configs", "denoiser_tiny.json", "0" + json.dumps(
        {"latent_channels": 4, "widths": [32, 64], "depths": [1, 1], "mid_depth": 1, "embed_dim": 48, "text_dim": 40,
         "head_dim": 16, "recursions": 2, "max_recursions": 4, "freq_dim": 32}))
    put("configs", "denoiser_partial.json", '0{"widths": [64], "depths": [0], "recursions": 1}')
    put("configs", "denoiser_unknown_field.json", '0{"latent_channels": 16, "dropout": 0.1}')
    vae = (ROOT / "models/emoji/vae/config.json").read_text()
    put("configs", "vae_emoji.json", "1" + vae)
    sd3 = {"_class_name": "AutoencoderKL", "_diffusers_version": "0.29.0.dev0", "act_fn": "silu",
           "block_out_channels": [128, 256, 512, 512], "down_block_types": ["DownEncoderBlock2D"] * 4, "force_upcast": True,
           "in_channels": 3, "latent_channels": 16, "latents_mean": None, "latents_std": None, "layers_per_block": 2,
           "mid_block_add_attention": True, "norm_num_groups": 32, "out_channels": 3, "sample_size": 1024,
           "scaling_factor": 1.5305, "shift_factor": 0.0609, "up_block_types": ["UpDecoderBlock2D"] * 4,
           "use_post_quant_conv": False, "use_quant_conv": False}
    put("configs", "vae_sd3.json", "1" + json.dumps(sd3, indent=2))
    sd = dict(sd3, latent_channels=4, scaling_factor=0.18215, shift_factor=None, use_post_quant_conv=True, use_quant_conv=True)
    put("configs", "vae_sd.json", "1" + json.dumps(sd))
    put("configs", "vae_minimal.json", "1{}")
    put("configs", "vae_wrong_class.json", '1{"_class_name": "AutoencoderTiny", "block_out_channels": [64, 64]}')
    put("configs", "model_emoji.json", "2" + (ROOT / "models/emoji/luminars.json").read_text())
    put("configs", "model_minimal.json", "2{}")
    put("configs", "model_paths.json", "2" + json.dumps(
        {"format": "luminars", "denoiser": "/abs/denoiser/../model.safetensors", "text_encoder": "../shared/clip/text_encoder",
         "tokenizer": "./tok//", "vae": "vae", "penultimate": True, "resolution": 256,
         "sampler": {"steps": 20, "method": "heun", "cfg_scale": 5.5, "shift": 3}}))
    put("configs", "model_wrong_type.json", '2{"resolution": "64", "sampler": []}')


# ------------------------------------------------------------------------------------------------
# tokenizer: '0'/'1'/'2' + text; '3' + vocab.json %% merges.txt %% tokenizer_config.json %% special_tokens_map.json
# ------------------------------------------------------------------------------------------------
def byte_symbols():
    printable = [b for b in range(256) if 33 <= b <= 126 or 161 <= b <= 172 or 174 <= b <= 255]
    symbols, n = {}, 0
    for b in range(256):
        if b in printable:
            symbols[b] = chr(b)
        else:
            symbols[b] = chr(256 + n)
            n += 1
    order = printable + [b for b in range(256) if b not in printable]
    return symbols, order


def write_tokenizer():
    for i, caption in enumerate(CAPTIONS):
        put("tokenizer", "caption_%02d.txt" % i, "012"[i % 3] + caption)
    symbols, order = byte_symbols()
    vocab = {}
    for b in order:
        vocab[symbols[b]] = len(vocab)
    for b in order:
        vocab[symbols[b] + "</w>"] = len(vocab)
    merges = ["#version: 0.2"]
    for word in ["heart", "noto", "style", "red", "the"]:
        parts = [symbols[c] for c in word.encode()]
        parts[-1] += "</w>"
        left = parts[0]
        for p in parts[1:]:
            merges.append(left + " " + p)
            left += p
            vocab.setdefault(left, len(vocab))
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    config = {"add_prefix_space": False, "bos_token": {"__type": "AddedToken", "content": "<|startoftext|>", "lstrip": False},
              "eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>", "unk_token": "<|endoftext|>", "do_lower_case": True,
              "model_max_length": 77, "tokenizer_class": "CLIPTokenizer",
              "added_tokens_decoder": {str(vocab["<|endoftext|>"]): {"content": "<|endoftext|>", "special": True}}}
    special = {"bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "pad_token": "!", "unk_token": "<|endoftext|>"}
    full = [json.dumps(vocab, ensure_ascii=False), "\n".join(merges) + "\n", json.dumps(config), json.dumps(special)]
    put("tokenizer", "folder_full.bin", b"3" + SEP.join(p.encode() for p in full))
    # A small vocabulary (unknown bytes become unk), no configs; CRLF merges.
    small = {"a</w>": 0, "r": 1, "e": 2, "d</w>": 3, "re": 4, "red</w>": 5, "<|startoftext|>": 6, "<|endoftext|>": 7}
    put("tokenizer", "folder_small.bin", b"3" + SEP.join([json.dumps(small).encode(), b"#version: 0.2\r\nr e\r\nre d</w>\r\n"]))
    # Sentinel model_max_length, a pad token only in added_tokens_decoder, special tokens as objects.
    added = dict(small)
    del added["<|endoftext|>"]
    cfg = {"model_max_length": 1e30, "pad_token": {"content": "<pad>"}, "eos_token": {"content": "<pad>"},
           "unk_token": "a</w>", "added_tokens_decoder": {"49407": {"content": "<pad>"}}}
    put("tokenizer", "folder_added_tokens.bin", b"3" + SEP.join([json.dumps(added).encode(), b"r e\nre d</w>\n", json.dumps(cfg).encode()]))
    put("tokenizer", "folder_short_context.bin", b"3" + SEP.join(
        [json.dumps(small).encode(), b"r e\n", b'{"model_max_length": 4}', b'{"bos_token": null}']))
    put("tokenizer", "folder_no_merges.bin", b"3" + json.dumps(small).encode())


# ------------------------------------------------------------------------------------------------
# image: PNGs (with and without parameters), parameters texts
# ------------------------------------------------------------------------------------------------
def write_image():
    params = PARAMETERS["luminars_t2i.txt"]
    put("image", "heart_parameters.png", png(32, 32, heart, text=[("parameters", params)]))
    put("image", "heart_itxt.png", png(32, 32, heart, itext=[("parameters", PARAMETERS["unicode.txt"]), ("Comment", "ünïcödé")]))
    put("image", "gradient_a1111.png", png(64, 16, gradient, text=[("parameters", PARAMETERS["a1111_euler_a.txt"]), ("Software", "AUTOMATIC1111")]))
    put("image", "mask_rgba.png", png(32, 32, mask_rgba, color_type=6))
    put("image", "gray16_interlaced.png", png(9, 7, lambda x, y: (x * 7000 + y * 300) & 0xFFFF, color_type=0, bit_depth=16, interlace=1))
    put("image", "palette.png", png(8, 8, lambda x, y: (x + y) % 3, color_type=3, palette=[(255, 0, 0), (0, 255, 0), (0, 0, 255)]))
    put("image", "gray_alpha.png", png(4, 4, lambda x, y: (x * 60, y * 80), color_type=4))
    for name, text in PARAMETERS.items():
        put("image", "parameters_" + name, text)


# ------------------------------------------------------------------------------------------------
# requests: '0' jobs, '1' OpenAI generations, '2' A1111 txt2img, '3' A1111 img2img, '4' OpenAI edits
# ------------------------------------------------------------------------------------------------
def write_requests():
    rgb64 = png(64, 64, lambda x, y: heart(x, y, 64))
    rgb_64x96 = png(64, 96, lambda x, y: heart(x, y, 64))
    mask_64x96 = png(64, 96, lambda x, y: mask_white(x, y, 64))
    rgba = png(32, 32, mask_rgba, color_type=6)
    b64 = lambda b: base64.b64encode(b).decode()
    body = lambda api, j: api + json.dumps(j)
    put("requests", "jobs_minimal.json", body("0", {"prompt": "a cat"}))
    put("requests", "jobs_full.json", body("0", {"prompt": "a red heart, noto style", "negative_prompt": "blurry", "steps": 12,
                                                 "cfg_scale": 4.5, "seed": 7, "n": 2, "width": 64, "height": 96, "sampler": "Heun"}))
    put("requests", "jobs_img2img.json", body("0", {"prompt": "x", "init_image": "data:image/png;base64," + b64(rgb_64x96),
                                                    "strength": 0.5, "seed": -1, "steps": 20.0}))
    put("requests", "jobs_inpaint.json", body("0", {"prompt": "a green apple", "init_image": b64(rgb_64x96), "mask": b64(mask_64x96),
                                                    "mask_blur": 8, "width": 64, "height": 96}))
    put("requests", "jobs_bad_strength.json", body("0", {"prompt": "x", "strength": 0.5, "seed": 18446744073709551615}))
    put("requests", "openai_generation.json", body("1", {"prompt": "a fox in the snow", "n": 2, "size": "64x64",
                                                         "response_format": "b64_json", "model": "luminars", "steps": 12,
                                                         "guidance": 4, "seed": 7, "negative_prompt": "text", "sampler": "euler"}))
    put("requests", "openai_minimal.json", body("1", {"prompt": "a cat", "size": "auto", "cfg_scale": 2}))
    put("requests", "a1111_txt2img.json", body("2", {
        "prompt": "masterpiece, a cat", "negative_prompt": "lowres", "styles": [], "seed": -1, "subseed": -1, "subseed_strength": 0,
        "sampler_name": "Euler a", "batch_size": 2, "n_iter": 2, "steps": 20, "cfg_scale": 7, "width": 64, "height": 64,
        "restore_faces": False, "tiling": False, "enable_hr": False, "denoising_strength": 0.7, "override_settings": {},
        "send_images": True, "save_images": False, "alwayson_scripts": {}}))
    put("requests", "a1111_sampler_index.json", body("2", {"prompt": "x", "sampler_index": "Heun", "seed": 12.0}))
    put("requests", "a1111_img2img.json", body("3", {
        "prompt": "a purple heart", "init_images": [b64(rgb_64x96)], "mask": "data:image/png;base64," + b64(mask_64x96),
        "denoising_strength": 0.75, "mask_blur": 4, "inpainting_mask_invert": 1, "inpainting_fill": 1,
        "inpaint_full_res": False, "resize_mode": 0, "width": 64, "height": 96, "steps": 10, "sampler_name": "Euler"}))
    put("requests", "a1111_img2img_plain.json", body("3", {"init_images": [b64(rgb64)], "denoising_strength": 1}))
    edit = lambda parts: b"4" + SEP.join(parts)
    put("requests", "openai_edit_mask.bin", edit([b"prompt=a red heart", b"n=1", b"size=32x32", b"response_format=b64_json",
                                                  b"steps=12", b"guidance=4.5", b"seed=3", b"@image=" + png(32, 32, heart), b"@mask=" + rgba]))
    put("requests", "openai_edit_transparent.bin", edit([b"prompt=fill the gap", b"@image[]=" + rgba, b"strength=0.9"]))
    put("requests", "openai_edit_img2img.bin", edit([b"prompt=noto style", b"negative_prompt=blur", b"sampler=heun",
                                                     b"@image=" + rgb64, b"model=dall-e-2"]))


# ------------------------------------------------------------------------------------------------
# http: '0' (a server without an API key) or '1' (with the key "fuzz-key"), then a connection's bytes
# ------------------------------------------------------------------------------------------------
def http_request(method, path, body=b"", headers=(), host=b"127.0.0.1:8080", version=b"HTTP/1.1"):
    head = method + b" " + path + b" " + version + b"\r\nHost: " + host + b"\r\n"
    for h in headers:
        head += h + b"\r\n"
    if body and not any(h.lower().startswith(b"transfer-encoding") for h in headers):
        head += b"Content-Length: " + str(len(body)).encode() + b"\r\n"
    return head + b"\r\n" + body


def json_post(path, obj, headers=()):
    return http_request(b"POST", path, json.dumps(obj).encode(), (b"Content-Type: application/json",) + tuple(headers))


def multipart(parts, boundary=b"XyZ"):
    out = b""
    for name, value, filename in parts:
        out += b"--" + boundary + b"\r\nContent-Disposition: form-data; name=\"" + name + b"\""
        if filename:
            out += b"; filename=\"" + filename + b"\"\r\nContent-Type: image/png"
        out += b"\r\n\r\n" + value + b"\r\n"
    return out + b"--" + boundary + b"--\r\n"


def chunked(data, size=7):
    out = b""
    for i in range(0, len(data), size):
        piece = data[i:i + size]
        out += b"%x\r\n" % len(piece) + piece + b"\r\n"
    return out + b"0\r\n\r\n"


def write_http():
    rgb32 = png(32, 32, gradient)
    small = {"prompt": "a red heart, noto style", "steps": 2, "seed": 3, "width": 32, "height": 32}
    # Seeds: every route, well-formed.
    put("http", "get_page.bin", b"0" + http_request(b"GET", b"/"))
    put("http", "get_health_keep_alive_twice.bin", b"0" + http_request(b"GET", b"/health") * 2)
    put("http", "get_config.bin", b"0" + http_request(b"GET", b"/api/config"))
    put("http", "get_models.bin", b"0" + http_request(b"GET", b"/v1/models") + http_request(b"GET", b"/sdapi/v1/sd-models"))
    put("http", "jobs_post_poll_delete.bin", b"0" + json_post(b"/api/jobs", small) +
        http_request(b"GET", b"/api/jobs/0123456789abcdef") + http_request(b"DELETE", b"/api/jobs/0123456789abcdef") +
        http_request(b"GET", b"/api/jobs/0123456789abcdef/images/0.png"))
    put("http", "openai_generation.bin", b"0" + json_post(b"/v1/images/generations", {"prompt": "a cat", "n": 1, "size": "32x32", "steps": 2}))
    put("http", "a1111_txt2img.bin", b"0" + json_post(b"/sdapi/v1/txt2img", small))
    put("http", "a1111_img2img.bin", b"0" + json_post(b"/sdapi/v1/img2img", {"prompt": "x", "steps": 2, "init_images": [base64.b64encode(rgb32).decode()], "denoising_strength": 0.5}))
    form = multipart([(b"prompt", b"fill it", None), (b"size", b"32x32", None), (b"steps", b"2", None), (b"image", rgb32, b"image.png")])
    put("http", "openai_edit_multipart.bin", b"0" + http_request(b"POST", b"/v1/images/edits", form, (b"Content-Type: multipart/form-data; boundary=XyZ",)))
    body = json.dumps(small).encode()
    put("http", "chunked_json.bin", b"0" + http_request(b"POST", b"/sdapi/v1/txt2img", chunked(body), (b"Content-Type: application/json", b"Transfer-Encoding: chunked")))
    put("http", "gzip_json.bin", b"0" + http_request(b"POST", b"/sdapi/v1/txt2img", zlib.compress(body, 9, wbits=31) if hasattr(zlib, "compress") else body,
                                                   (b"Content-Type: application/json", b"Content-Encoding: gzip")))
    put("http", "deflate_json.bin", b"0" + http_request(b"POST", b"/api/jobs", zlib.compress(body), (b"Content-Type: application/json", b"Content-Encoding: deflate")))
    put("http", "api_key_right.bin", b"1" + http_request(b"GET", b"/api/config", headers=(b"Authorization: Bearer fuzz-key",)))
    put("http", "cors_preflight.bin", b"0" + http_request(b"OPTIONS", b"/api/jobs", headers=(b"Origin: http://127.0.0.1:8080", b"Access-Control-Request-Method: POST")))
    put("http", "expect_continue.bin", b"0" + http_request(b"POST", b"/api/jobs", body, (b"Content-Type: application/json", b"Expect: 100-continue")))
    put("http", "http10_no_host.bin", b"0GET /health HTTP/1.0\r\n\r\n")

    # Regressions: every hostile request of the hardening issue, each answered without harm.
    put_r = lambda name, data: (ROOT / "fuzz" / "regressions" / "http").mkdir(parents=True, exist_ok=True) or \
        (ROOT / "fuzz" / "regressions" / "http" / name).write_bytes(data)
    put_r("path_percent_ff_not_utf8_aborted_the_server.bin", b"0" + http_request(b"GET", b"/%ff"))
    put_r("path_bad_percent_escape.bin", b"0" + http_request(b"GET", b"/api/jobs/%zz") + http_request(b"GET", b"/%00"))
    put_r("json_prompt_invalid_utf8_gave_500.bin", b"0" + http_request(b"POST", b"/sdapi/v1/txt2img",
          b'{"prompt": "caf\xe9 \xff", "steps": 2}', (b"Content-Type: application/json",)))
    put_r("json_prompt_lone_surrogate.bin", b"0" + http_request(b"POST", b"/api/jobs", b'{"prompt": "\\udcff"}', (b"Content-Type: application/json",)))
    form = multipart([(b"prompt", b"\xff\xfe bad", None), (b"image", rgb32, b"image.png")])
    put_r("multipart_prompt_invalid_utf8_gave_500_after_generating.bin", b"0" + http_request(b"POST", b"/v1/images/edits", form,
          (b"Content-Type: multipart/form-data; boundary=XyZ",)))
    bomb = zlib.compress(b"0" * (4 << 20), 9, wbits=31)  # 4 MiB of zeros in ~4 kB; the fuzz server takes 1 MiB
    put_r("gzip_body_inflating_past_the_limit.bin", b"0" + http_request(b"POST", b"/sdapi/v1/txt2img", bomb,
          (b"Content-Type: application/json", b"Content-Encoding: gzip")))
    put_r("chunked_body_past_the_limit.bin", b"0" + http_request(b"POST", b"/api/jobs", b"200000\r\n" + b"a" * 64,
          (b"Content-Type: application/json", b"Transfer-Encoding: chunked")))
    put_r("content_length_negative_waited_for_the_timeout.bin", b"0POST /api/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\n"
          b"Content-Type: application/json\r\nContent-Length: -1\r\n\r\n{}")
    put_r("content_length_1e20_waited_for_the_timeout.bin", b"0POST /api/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\n"
          b"Content-Type: application/json\r\nContent-Length: 100000000000000000000\r\n\r\n{}")
    members = b"{" + b",".join(b'"k%d":%d' % (i, i) for i in range(20000)) + b"}"
    put_r("json_20000_members_gzip_held_memory.bin", b"0" + http_request(b"POST", b"/api/jobs", zlib.compress(members, 9, wbits=31),
          (b"Content-Type: application/json", b"Content-Encoding: gzip")))
    put_r("json_as_text_plain_cross_site_simple_request.bin", b"0" + http_request(b"POST", b"/api/jobs", b'{"prompt": "x"}',
          (b"Content-Type: text/plain",)))
    put_r("json_without_content_type.bin", b"0" + http_request(b"POST", b"/sdapi/v1/txt2img", b'{"prompt": "x"}'))
    put_r("cross_origin_page.bin", b"0" + json_post(b"/api/jobs", {"prompt": "x"}, (b"Origin: http://evil.example",)))
    put_r("dns_rebinding_host.bin", b"0" + http_request(b"GET", b"/api/config", host=b"evil.example:8080"))
    put_r("pipelined_100_requests_only_first_answered.bin", b"0" + http_request(b"GET", b"/health") * 100)
    put_r("api_key_missing_and_wrong.bin", b"1" + http_request(b"GET", b"/api/config") +
          http_request(b"GET", b"/api/config", headers=(b"Authorization: Bearer nope",)) + http_request(b"GET", b"/health"))
    put_r("headers_past_the_limit.bin", b"0GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: " + b"a" * 20000 + b"\r\n\r\n")
    put_r("multipart_without_closing_boundary.bin", b"0" + http_request(b"POST", b"/v1/images/edits", b"--XyZ\r\nContent-Disposition: form-data; name=\"prompt\"\r\n\r\nx",
          (b"Content-Type: multipart/form-data; boundary=XyZ",)))
    put_r("unsupported_content_encoding.bin", b"0" + http_request(b"POST", b"/api/jobs", b"xx", (b"Content-Type: application/json", b"Content-Encoding: br")))
    put_r("gzip_truncated.bin", b"0" + http_request(b"POST", b"/api/jobs", zlib.compress(body, 9, wbits=31)[:20],
          (b"Content-Type: application/json", b"Content-Encoding: gzip")))
    put_r("work_budget_8_pictures_of_256_at_50_steps.bin", b"0" + json_post(b"/sdapi/v1/txt2img",
          {"prompt": "x", "width": 256, "height": 256, "steps": 50, "batch_size": 4}))
    put_r("method_not_allowed.bin", b"0" + http_request(b"PUT", b"/api/jobs", b"{}", (b"Content-Type: application/json",)))


def main():
    write_safetensors()
    write_configs()
    write_tokenizer()
    write_image()
    write_requests()
    write_http()


if __name__ == "__main__":
    main()
