#!/usr/bin/env python3
"""Sends the hostile requests of the hardening work to a real `luminars serve` (the shipped model,
default limits, loopback only) and reports, for each: the status answered, how long it took,
whether the server still answered /health afterwards, and its resident memory before and after.
Ends with the silent-connection check (/health while 64 connections say nothing) and the memory
after the whole set against idle.

    scripts/http_hostile.py [--bin build/luminars] [--update docs/reliability.md]

Standard library only. Prints the Markdown section; with --update, replaces that section of the
file (between its markers) or appends it."""
import argparse
import gzip
import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BEGIN, END = "<!-- http-hostile:begin -->", "<!-- http-hostile:end -->"


def rss_mib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def request(method, path, body=b"", headers=(), host=b"127.0.0.1"):
    head = method + b" " + path + b" HTTP/1.1\r\nHost: " + host + b"\r\n"
    for h in headers:
        head += h + b"\r\n"
    if body and not any(h.lower().startswith(b"transfer-encoding") for h in headers) and \
            not any(h.lower().startswith(b"content-length") for h in headers):
        head += b"Content-Length: " + str(len(body)).encode() + b"\r\n"
    return head + b"\r\n" + body


def exchange(port, data, timeout=60, stream=None, answers=1):
    """Sends `data` (then the byte chunks of `stream`, until the server answers or closes), reads
    until `answers` answers are complete or the server closes. Returns (statuses, seconds)."""
    t0 = time.monotonic()
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    got = b""
    try:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed before taking it all: read what it said
        if stream:
            import select
            for piece in stream:
                if select.select([s], [], [], 0)[0]:
                    break  # the server has answered (or closed): stop sending
                try:
                    s.sendall(piece)
                except OSError:
                    break
        s.settimeout(timeout)
        while len(re.findall(rb"HTTP/1\.1 \d\d\d", got)) < answers or not complete(got, answers):
            try:
                more = s.recv(65536)
            except (socket.timeout, ConnectionResetError):
                break
            if not more:
                break
            got += more
    finally:
        s.close()
    return [int(x) for x in re.findall(rb"HTTP/1\.1 (\d\d\d)", got)], time.monotonic() - t0


def complete(got, answers):
    """True when `answers` whole answers (head + Content-Length body) are in `got`."""
    at, n = 0, 0
    while n < answers:
        end = got.find(b"\r\n\r\n", at)
        if end < 0:
            return False
        m = re.search(rb"Content-Length: (\d+)", got[at:end], re.I)
        length = int(m.group(1)) if m else 0
        if len(got) < end + 4 + length:
            return False
        at, n = end + 4 + length, n + 1
    return True


def health(port):
    statuses, seconds = exchange(port, request(b"GET", b"/health"), timeout=10)
    return statuses[:1] == [200], seconds


def json_post(path, body, extra=()):
    return request(b"POST", path, body, (b"Content-Type: application/json",) + tuple(extra))


def multipart(parts, boundary=b"B0undary"):
    out = b""
    for name, value, filename in parts:
        out += b"--" + boundary + b"\r\nContent-Disposition: form-data; name=\"" + name + b"\""
        if filename:
            out += b"; filename=\"" + filename + b"\""
        out += b"\r\n\r\n" + value + b"\r\n"
    return out + b"--" + boundary + b"--\r\n"


def chunks(total, size=1 << 20):
    sent = 0
    piece = b"%x\r\n" % size + b"a" * size + b"\r\n"
    while sent < total:
        yield piece
        sent += size
    yield b"0\r\n\r\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=str(ROOT / "build" / "luminars"))
    ap.add_argument("--update", help="Markdown file whose hostile-HTTP section is replaced")
    args = ap.parse_args()
    if not os.access(args.bin, os.X_OK):
        sys.exit(f"http_hostile.py: {args.bin} is missing: build it first (scripts/build.sh)")

    proc = subprocess.Popen([args.bin, "serve", "--port", "0", "--model", str(ROOT / "models" / "emoji"), "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = proc.stdout.readline()
        m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
        if not m:
            sys.exit(f"http_hostile.py: the server did not start: {line!r}")
        port = int(m.group(1))
        exchange(port, json_post(b"/sdapi/v1/txt2img", b'{"prompt": "red heart", "steps": 2}'))  # warm up
        idle = rss_mib(proc.pid)
        heart = (ROOT / "docs" / "emoji" / "reference-red-heart-noto-seed1.png").read_bytes()
        members = b"{" + b",".join([b'"a":1'] * 2_000_000) + b"}"
        cases = [
            ("`GET /%ff` (path not UTF-8 once decoded)", lambda: exchange(port, request(b"GET", b"/%ff"))),
            ("JSON prompt with invalid UTF-8", lambda: exchange(port, json_post(b"/sdapi/v1/txt2img", b'{"prompt": "caf\xe9 \xff", "steps": 2}'))),
            ("multipart `/v1/images/edits` prompt with invalid UTF-8", lambda: exchange(port, request(
                b"POST", b"/v1/images/edits", multipart([(b"prompt", b"\xff\xfe", None), (b"image", heart, b"heart.png")]),
                (b"Content-Type: multipart/form-data; boundary=B0undary",)))),
            ("gzip body: 597 KiB inflating to 600 MiB", lambda: exchange(port, json_post(
                b"/sdapi/v1/txt2img", gzip.compress(b" " * (600 << 20), 9), (b"Content-Encoding: gzip",)))),
            ("chunked body of 150 MiB", lambda: exchange(port, request(
                b"POST", b"/api/jobs", b"", (b"Content-Type: application/json", b"Transfer-Encoding: chunked")), stream=chunks(150 << 20))),
            ("`Content-Length: -1`", lambda: exchange(port, json_post(b"/api/jobs", b"{}", (b"Content-Length: -1",)))),
            ("`Content-Length: 10^20`", lambda: exchange(port, json_post(b"/api/jobs", b"{}", (b"Content-Length: 100000000000000000000",)))),
            ("JSON of 2 million members (11 MiB), 20 times", lambda: [exchange(port, json_post(b"/api/jobs", members)) for _ in range(20)][-1]),
            ("JSON sent as `text/plain` (a cross-site simple request)", lambda: exchange(port, request(
                b"POST", b"/api/jobs", b'{"prompt": "x"}', (b"Content-Type: text/plain",)))),
            ("JSON without Content-Type", lambda: exchange(port, request(b"POST", b"/sdapi/v1/txt2img", b'{"prompt": "x"}'))),
            ("`Origin: http://evil.example`", lambda: exchange(port, json_post(b"/api/jobs", b'{"prompt": "x"}', (b"Origin: http://evil.example",)))),
            ("`Host: evil.example` (DNS rebinding)", lambda: exchange(port, request(b"GET", b"/api/config", host=b"evil.example:8080"))),
            ("100 requests pipelined on one connection", lambda: exchange(port, request(b"GET", b"/health") * 100, answers=100)),
        ]
        rows = []
        for name, run in cases:
            before = rss_mib(proc.pid)
            statuses, seconds = run()
            alive, _ = health(port)
            after = rss_mib(proc.pid)
            shown = (f"{len(statuses)} × {statuses[0]}" if len(set(statuses)) == 1 and len(statuses) > 1
                     else ", ".join(map(str, statuses)) or "closed")
            rows.append((name, shown, f"{seconds:.2f}", "yes" if alive and proc.poll() is None else "**no**",
                         f"{before:.0f}", f"{after:.0f}"))

        # A client that hangs up during a synchronous 100-step call: its job is cancelled.
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(json_post(b"/sdapi/v1/txt2img", b'{"prompt": "red heart", "steps": 100, "batch_size": 8}'))
        time.sleep(0.5)
        s.close()
        t0 = time.monotonic()
        statuses, _ = exchange(port, json_post(b"/sdapi/v1/txt2img", b'{"prompt": "red heart", "steps": 2}'))
        rows.append(("client hangs up during a 8 × 100-step synchronous call; the next call's wait",
                     ", ".join(map(str, statuses)), f"{time.monotonic() - t0:.2f}", "yes" if health(port)[0] else "**no**",
                     "", f"{rss_mib(proc.pid):.0f}"))

        silent = [socket.create_connection(("127.0.0.1", port)) for _ in range(64)]
        ok, health_seconds = health(port)
        for c in silent:
            c.close()
        many = [socket.create_connection(("127.0.0.1", port)) for _ in range(200)]
        ok200, health200 = health(port)
        for c in many:
            c.close()
        time.sleep(0.5)
        final = rss_mib(proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()

    out = [BEGIN, "## The HTTP layer under hostile clients\n",
           f"`scripts/http_hostile.py` on {time.strftime('%Y-%m-%d')}: `luminars serve` with the shipped model and default "
           "limits (32 MiB bodies), each request over its own loopback connection, then `/health`. Memory is the "
           "server's resident set (MiB).\n",
           "| request | answered | seconds | still serving | RSS before | RSS after |",
           "| --- | --- | ---: | --- | ---: | ---: |"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    out.append(f"\n- `/health` with 64 silent connections open: {'200' if ok else '**failed**'} in {health_seconds * 1000:.0f} ms; "
               f"with 200: {'200' if ok200 else '**failed**'} in {health200 * 1000:.0f} ms.")
    out.append(f"- Resident memory: {idle:.0f} MiB idle (after one warm-up picture), {final:.0f} MiB after the whole set "
               f"({final / idle:.2f}× idle; the target is at most 2×).")
    out.append(END)
    section = "\n".join(out)
    print(section)
    if args.update:
        path = Path(args.update)
        text = path.read_text() if path.exists() else ""
        if BEGIN in text and END in text:
            text = text[:text.index(BEGIN)] + section + text[text.index(END) + len(END):]
        else:
            text = text.rstrip("\n") + "\n\n" + section + "\n"
        path.write_text(text)


if __name__ == "__main__":
    main()
