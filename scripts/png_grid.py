#!/usr/bin/python3
"""Tiles PNG pictures (8-bit RGB or RGBA, non-interlaced; what `luminars generate` writes) into one
grid PNG, row by row, with a white gap. Standard library only.
Usage: png_grid.py OUT.png COLUMNS IN1.png IN2.png ..."""
import struct
import sys
import zlib


def read_png(path):
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        sys.exit(f"png_grid.py: {path} is not a PNG")
    pos, idat, width, height, channels = 8, b"", 0, 0, 3
    while pos < len(data):
        (n,), kind = struct.unpack(">I", data[pos:pos + 4]), data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            if depth != 8 or colour not in (2, 6) or interlace:
                sys.exit(f"png_grid.py: {path}: only 8-bit RGB/RGBA, non-interlaced PNGs")
            channels = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    raw, stride = zlib.decompress(idat), width * channels
    rows, prev = [], bytearray(stride)
    for y in range(height):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - channels] if i >= channels else 0
            b, c = prev[i], prev[i - channels] if i >= channels else 0
            if f == 1: line[i] = (line[i] + a) & 255
            elif f == 2: line[i] = (line[i] + b) & 255
            elif f == 3: line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line) if channels == 3 else bytes(v for j in range(0, stride, 4) for v in line[j:j + 3]))
        prev = line
    return width, height, rows


def write_png(path, width, height, rows):
    raw = b"".join(b"\x00" + r for r in rows)
    chunk = lambda k, d: struct.pack(">I", len(d)) + k + d + struct.pack(">I", zlib.crc32(k + d) & 0xFFFFFFFF)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)) +
                chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def main(out, columns, paths, gap=2):
    pics = [read_png(p) for p in paths]
    w, h = pics[0][0], pics[0][1]
    cols = int(columns)
    nrows = (len(pics) + cols - 1) // cols
    W, H = cols * w + (cols - 1) * gap, nrows * h + (nrows - 1) * gap
    canvas = [bytearray(b"\xff" * (W * 3)) for _ in range(H)]
    for k, (pw, ph, rows) in enumerate(pics):
        if (pw, ph) != (w, h):
            sys.exit(f"png_grid.py: {paths[k]} is {pw}x{ph}, the first picture {w}x{h}")
        x0, y0 = (k % cols) * (w + gap), (k // cols) * (h + gap)
        for y in range(h):
            canvas[y0 + y][x0 * 3:(x0 + w) * 3] = rows[y]
    write_png(out, W, H, [bytes(r) for r in canvas])


if __name__ == "__main__":
    if len(sys.argv) < 4:
        sys.exit("usage: png_grid.py OUT.png COLUMNS IN.png...")
    main(sys.argv[1], sys.argv[2], sys.argv[3:])
