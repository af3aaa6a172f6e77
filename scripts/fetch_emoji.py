#!/usr/bin/python3
"""The logic of scripts/fetch-emoji.sh: one captioned imagefolder of colour emoji in several styles.

Reads unpacked npm packages (openmoji and @iconify-json/* sets), maps every icon to a canonical
emoji concept (OpenMoji's CLDR annotation where possible), splits concepts and (concept, style)
pairs into train and held-out by a hash, rasterises with rsvg-convert onto white and writes
OUT/{train,heldout}/metadata.jsonl and OUT/SOURCES.md. Standard library only; importable, so the
pure parts (normalisation, matching, captions, split) can be tried from a Python prompt:

    import sys; sys.path.insert(0, "scripts"); import fetch_emoji as fe
    fe.captions("red heart", "noto", None)

Its examples run with `/usr/bin/python3 -m doctest scripts/fetch_emoji.py`. The command line:

    /usr/bin/python3 scripts/fetch_emoji.py PKG_DIR OUT SIZE N JOBS

PKG_DIR holds one unpacked package per style: PKG_DIR/<style>/package/... (see STYLES).
"""
from __future__ import annotations

import concurrent.futures
import hashlib
import json
import os
import re
import subprocess
import sys
import time
import unicodedata
from dataclasses import dataclass, field

# style id (folder name, "style" column) -> (npm package, words naming the style in captions)
STYLES = {
    "openmoji": ("openmoji", "openmoji"),
    "noto": ("@iconify-json/noto", "noto"),
    "fluent-flat": ("@iconify-json/fluent-emoji-flat", "fluent flat"),
    "twemoji": ("@iconify-json/twemoji", "twemoji"),
    "fluent-3d": ("@iconify-json/fluent-emoji", "fluent 3d"),
    "emojione": ("@iconify-json/emojione", "emojione"),
    "fxemoji": ("@iconify-json/fxemoji", "fxemoji"),
    "streamline": ("@iconify-json/streamline-emojis", "streamline"),
}

CONCEPT_HOLDOUT = 0.05  # fraction of concepts held out with all their styles
PAIR_HOLDOUT = 0.01  # fraction of the remaining (concept, style) pairs held out

GROUP_WORDS = {
    "smileys-emotion": "smileys and emotion",
    "people-body": "people and body",
    "animals-nature": "animals and nature",
    "food-drink": "food and drink",
    "travel-places": "travel and places",
    "activities": "activities",
    "objects": "objects",
    "symbols": "symbols",
    "flags": "flags",
    "component": "components",
}

# Icons whose Iconify data is broken (drawn off their canvas), checked by eye at 64x64.
KNOWN_BROKEN = {("fxemoji", "heartblue")}

SKIN_MODIFIERS = {"1f3fb", "1f3fc", "1f3fd", "1f3fe", "1f3ff"}
TONE_SUFFIXES = ("-medium-light", "-medium-dark", "-light", "-medium", "-dark", "-default")
OPENMOJI_ATTRIBUTION = (
    "All emojis designed by OpenMoji – the open-source emoji and icon project. License: CC BY-SA 4.0"
)


# ---------------------------------------------------------------------------------------------
# Names


def ascii_fold(s: str) -> str:
    """'Côte d’Ivoire' -> "Cote d'Ivoire": accents dropped, typographic quotes made plain."""
    s = s.replace("’", "'").replace("“", '"').replace("”", '"')
    return unicodedata.normalize("NFKD", s).encode("ascii", "ignore").decode()


def match_key(name: str) -> str:
    """The key names are matched by: lower-case ASCII words.

    >>> match_key("flag: Bosnia & Herzegovina"), match_key("flag-for-bosnia-and-herzegovina")
    ('flag bosnia and herzegovina', 'flag bosnia and herzegovina')
    >>> match_key("Côte d’Ivoire")
    'cote d ivoire'
    """
    s = ascii_fold(name).lower().replace("&", " and ")
    s = re.sub(r"[^a-z0-9]+", " ", s).strip()
    s = re.sub(r"^flag for (flag )?", "flag ", s)  # emojione 'flag-for-x', twemoji 'flag-for-flag-x'
    return s


def display_name(annotation: str) -> str:
    """The canonical concept name shown in captions: OpenMoji's annotation, lower-case, with
    'flag: x' read as 'flag of x' and the ':' and ',' of CLDR names dropped.

    >>> display_name("flag: France"), display_name("family: man, woman, boy")
    ('flag of france', 'family man woman boy')
    """
    s = annotation.strip().lower().replace("’", "'")
    s = re.sub("[“”\"]", "", s)
    s = re.sub(r"^flag:\s*", "flag of ", s)
    s = s.replace(":", " ").replace(",", " ")
    return re.sub(r"\s+", " ", s).strip()


def deslug(icon_name: str) -> str:
    """An Iconify icon name as words: 'flag-for-x' -> 'flag of x', 'a-button' -> 'a button'."""
    s = re.sub(r"[-_]+", " ", icon_name.lower()).strip()
    s = re.sub(r"^flag for (flag )?", "flag of ", s)
    return re.sub(r"\s+", " ", s)


def slugify(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", ascii_fold(name).lower()).strip("-")


def hex_key(codepoints: str) -> str:
    """Code points in one spelling, FE0F dropped.

    >>> hex_key("1F636-200D-1F32B-FE0F"), hex_key("1f636-200d-1f32b")
    ('1f636-200d-1f32b', '1f636-200d-1f32b')
    """
    parts = [p.lower().lstrip("0") or "0" for p in re.split(r"[-_ ]", codepoints) if p]
    return "-".join(p for p in parts if p != "fe0f")


def unit_fraction(text: str) -> float:
    """A fixed number in [0, 1) from a string (SHA-256), the same on every machine and run."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") / 2.0**64


def heldout_kind(concept: str, style: str, n_styles: int = 2) -> str | None:
    """'concept' for ~5% of concepts (every style of them), 'pair' for ~1% of the other
    (concept, style) pairs of concepts drawn in n_styles >= 2 styles (so the concept is seen in
    another style), else None (train). Fixed: the same on every run and machine.

    >>> heldout_kind("ambulance", "noto"), heldout_kind("red heart", "noto")
    ('concept', None)
    """
    if unit_fraction("concept:" + concept) < CONCEPT_HOLDOUT:
        return "concept"
    if n_styles >= 2 and unit_fraction("pair:" + concept + "|" + style) < PAIR_HOLDOUT:
        return "pair"
    return None


# ---------------------------------------------------------------------------------------------
# OpenMoji rows and matching


@dataclass
class OmRow:
    hexcode: str
    annotation: str
    group: str = ""
    subgroups: str = ""
    tags: list[str] = field(default_factory=list)
    emoji: str = ""

    @property
    def concept(self) -> str:
        return display_name(self.annotation)


def openmoji_rows(data: list[dict]) -> list[OmRow]:
    """The standard emoji of data/openmoji.json: no skin-tone variants, no OpenMoji extras, no
    skin-tone swatches."""
    rows = []
    for r in data:
        if r.get("skintone") or str(r.get("group", "")).startswith("extras"):
            continue
        if re.search(r"skin tone", r.get("annotation", "")):
            continue
        tags = []
        for t in (r.get("tags", "") + "," + r.get("openmoji_tags", "")).split(","):
            t = t.strip().lower()
            if t and t not in tags:
                tags.append(t)
        rows.append(OmRow(r["hexcode"], r["annotation"], r.get("group", ""), r.get("subgroups", ""),
                          tags, r.get("emoji", "")))
    return rows


class Matcher:
    """Finds the OpenMoji row of an Iconify icon: by code points (chars.json of any set), by name
    (CLDR slug), by name without spaces (fxemoji's 'grinningface'), or by the Unicode character
    name without spaces (fxemoji's 'blacktouchtonetelephone')."""

    def __init__(self, rows: list[OmRow], chars_by_name: dict[str, str]):
        self.by_hex = {hex_key(r.hexcode): r for r in rows}
        self.by_key: dict[str, OmRow] = {}
        self.by_squashed: dict[str, OmRow] = {}
        for r in rows:
            k = match_key(r.annotation)
            self.by_key.setdefault(k, r)
            self.by_squashed.setdefault(k.replace(" ", ""), r)
        for r in rows:  # 'a button (blood type)' also as 'a button', after the full names
            short = match_key(re.sub(r"\([^)]*\)", " ", r.annotation))
            self.by_key.setdefault(short, r)
            self.by_squashed.setdefault(short.replace(" ", ""), r)
        for r in rows:  # Unicode names, after the CLDR names so those win
            if r.emoji:
                chars = [c for c in r.emoji if c != "\ufe0f"]
                if len(chars) == 1:
                    uname = unicodedata.name(chars[0], "")
                    if uname:
                        self.by_squashed.setdefault(match_key(uname).replace(" ", ""), r)
        self.chars_by_name = chars_by_name

    def codepoints(self, icon_name: str) -> str | None:
        return self.chars_by_name.get(icon_name)

    def match(self, icon_name: str) -> OmRow | None:
        cp = self.chars_by_name.get(icon_name)
        if cp is not None and cp in self.by_hex:
            return self.by_hex[cp]
        for k in name_keys(icon_name):
            if k in self.by_key:
                return self.by_key[k]
        for k in name_keys(icon_name):
            if k.replace(" ", "") in self.by_squashed:
                return self.by_squashed[k.replace(" ", "")]
        return None


DIGIT_WORDS = "zero one two three four five six seven eight nine".split()


def name_keys(icon_name: str) -> list[str]:
    """The keys an Iconify name is looked up by, best first: the name; without a trailing number
    (streamline's 'baby-2'); 'digit-eight' as 'keycap 8'; 'flag-for-rainbow-flag' as 'rainbow flag'."""
    k = match_key(icon_name)
    keys = [k]
    stem = re.sub(r" [0-9]+$", "", k)
    if stem and stem != k:
        keys.append(stem)
    m = re.fullmatch(r"digit (\w+)", k)
    if m and m.group(1) in DIGIT_WORDS:
        keys.append(f"keycap {DIGIT_WORDS.index(m.group(1))}")
    if k.startswith("flag ") and k.endswith(" flag"):
        keys.append(k[5:])
    words = stem.split()
    if len(words) == 1:
        keys.append(stem + " face")  # fxemoji's 'pensive'
    if len(words) == 2:
        keys.append(f"{words[1]} {words[0]}")  # fxemoji's 'heartblue'
    if words and words[-1] == "flag":
        keys.append("flag " + " ".join(words[:-1]))  # fxemoji's 'japanflag'
    elif words and words[0] != "flag":
        keys.append("flag " + stem)  # streamline's 'brazil'
    return keys


def is_skin_tone_icon(icon_name: str, codepoints: str | None, all_names: set[str]) -> bool:
    """Skin-tone variants: code points with a Fitzpatrick modifier, names with 'skin tone', or
    (fluent) '<stem>-light/-medium/-dark/-default' where '<stem>' is an icon of the set too."""
    if codepoints is not None:
        return any(p in SKIN_MODIFIERS for p in codepoints.split("-"))
    if re.search(r"(^|-)(skin-tone|tone[1-5])(-|$)|(light|medium|dark)-skin", icon_name):
        return True
    for suffix in TONE_SUFFIXES:
        if icon_name.endswith(suffix) and icon_name[: -len(suffix)] in all_names:
            return True
    return False


def split_rank(words: list[str]) -> tuple[int, int]:
    """Fewer words first, then longer ones: 'upwards and' before 'upward sand'."""
    return len(words), -sum(len(w) ** 2 for w in words)


def word_split(s: str, vocab: set[str]) -> str:
    """The split into the fewest vocabulary words (numbers count as words), longer words first
    among equals; s itself when there is none.

    >>> word_split("upwardsandsand", {"upward", "upwards", "and", "sand"})
    'upwards and sand'
    >>> word_split("guapimao", {"and"})
    'guapimao'
    """
    n = len(s)
    best: list[list[str] | None] = [None] * (n + 1)
    best[0] = []
    for i in range(n):
        if best[i] is None:
            continue
        for j in range(i + 1, min(n, i + 24) + 1):
            w = s[i:j]
            known = (w in vocab and (len(w) > 2 or w in SHORT_WORDS)) or w.isdigit()
            if known and (best[j] is None or split_rank(best[i] + [w]) < split_rank(best[j])):
                best[j] = best[i] + [w]
    return " ".join(best[n]) if best[n] else s


def readable_name(icon_name: str, vocab: set[str]) -> str | None:
    """An unmatched icon's name as words, or None when it cannot be read: 'baby-2' -> 'baby',
    fxemoji's 'beachumbrella' -> 'beach umbrella'; None for 'ballottboxwithballott' or
    'cjkunifiedideograph-a' (run-together words not made of known ones)."""
    words = re.sub(r"(.) [0-9]+$", r"\1", deslug(icon_name)).split()
    limit = 6 if len(words) == 1 else 14
    out = []
    for w in words:
        if len(w) > limit and w not in vocab:
            w = word_split(w, vocab)
            if " " not in w:
                return None
        out.append(w)
    return " ".join(out)


SHORT_WORDS = {"a", "an", "at", "by", "in", "no", "of", "ok", "on", "or", "to", "tv", "up", "id"}


# ---------------------------------------------------------------------------------------------
# Captions


def article(word: str) -> str:
    return "an" if word[:1] in "aeiou8" else "a"


def captions(concept: str, style_words: str, row: OmRow | None) -> list[str]:
    """Several captions, all naming the style except the last (the bare concept).

    >>> captions("red heart", "noto", OmRow("2764", "red heart", "smileys-emotion", "heart",
    ...                                     ["heart", "love", "red heart"]))  # doctest: +NORMALIZE_WHITESPACE
    ['red heart, noto style', 'a red heart emoji, noto style', 'red heart in noto emoji style',
     'heart, love, red heart, noto style', 'red heart, smileys and emotion, noto style', 'red heart']
    >>> captions("fox grin", "fxemoji", None)[1:]
    ['a fox grin emoji, fxemoji style', 'fox grin in fxemoji emoji style', 'fox grin']
    """
    s = style_words
    out = [
        f"{concept}, {s} style",
        f"{article(concept)} {concept} emoji, {s} style",
        f"{concept} in {s} emoji style",
    ]
    if row is not None:
        tags = [t for t in row.tags if t != concept][:3]
        if tags:
            out.append(", ".join(tags + [concept]) + f", {s} style")
        group = GROUP_WORDS.get(row.group, row.group.replace("-", " "))
        if group:
            out.append(f"{concept}, {group}, {s} style")
    out.append(concept)
    return out


# ---------------------------------------------------------------------------------------------
# Packages


@dataclass
class Icon:
    style: str
    concept: str
    name: str  # the icon name (Iconify) or hexcode (OpenMoji)
    row: OmRow | None
    svg: str | None = None  # the SVG text (Iconify)
    svg_path: str | None = None  # the SVG file (OpenMoji)


@dataclass
class Package:
    style: str
    npm: str
    version: str
    license: str
    license_title: str
    author: str
    path: str
    skipped: dict[str, int] = field(default_factory=dict)

    def skip(self, why: str):
        self.skipped[why] = self.skipped.get(why, 0) + 1


def read_json(path: str):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def load_package(pkg_root: str, style: str) -> Package:
    pj = read_json(os.path.join(pkg_root, "package.json"))
    lic, title, author = pj.get("license", ""), pj.get("license", ""), ""
    info_path = os.path.join(pkg_root, "info.json")
    if os.path.exists(info_path):
        info = read_json(info_path)
        lic = info.get("license", {}).get("spdx", lic)
        title = info.get("license", {}).get("title", title)
        author = info.get("author", {}).get("name", "")
    elif style == "openmoji":
        author = "OpenMoji"
    return Package(style, STYLES[style][0], pj.get("version", "?"), lic, title, author, pkg_root)


def square_svg(body: str, width: float, height: float) -> str:
    """An Iconify body in a square viewBox, centred, so that -w S -h S keeps its aspect."""
    side = max(width, height)
    x, y = (width - side) / 2, (height - side) / 2
    return (f'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
            f'viewBox="{x:g} {y:g} {side:g} {side:g}" width="{side:g}" height="{side:g}">{body}</svg>')


def openmoji_icons(pkg: Package, rows: list[OmRow]) -> list[Icon]:
    icons = []
    for r in rows:
        path = os.path.join(pkg.path, "color", "svg", r.hexcode + ".svg")
        if not os.path.exists(path):
            pkg.skip("no svg")
            continue
        icons.append(Icon(pkg.style, r.concept, r.hexcode, r, svg_path=path))
    return icons


def iconify_icons(pkg: Package, matcher: Matcher, vocab: set[str]) -> list[Icon]:
    data = read_json(os.path.join(pkg.path, "icons.json"))
    w0, h0 = data.get("width", 16), data.get("height", 16)
    names = set(data["icons"])
    pkg.skipped["aliases"] = len(data.get("aliases", {}))
    icons = []
    for name in sorted(data["icons"]):
        icon = data["icons"][name]
        if icon.get("hidden"):
            pkg.skip("hidden")
            continue
        if (pkg.style, name) in KNOWN_BROKEN:
            pkg.skip("known broken")
            continue
        if is_skin_tone_icon(name, matcher.codepoints(name), names):
            pkg.skip("skin tone")
            continue
        row = matcher.match(name)
        if row is None:
            if re.fullmatch(r"[0-9]+", name):
                pkg.skip("bare digit")  # noto's '0'..'9': keycap parts, not emoji
                continue
            concept = readable_name(name, vocab)
            if concept is None:
                pkg.skip("unreadable name")
                continue
            row = matcher.match(concept.replace(" ", "-"))  # fxemoji's 'heartblue' as 'heart-blue'
        if row is not None:
            concept = row.concept
        svg = square_svg(icon["body"], icon.get("width", w0), icon.get("height", h0))
        icons.append(Icon(pkg.style, concept, name, row, svg=svg))
    return icons


def chars_by_name(pkg_roots: list[str]) -> dict[str, str]:
    """Icon name -> code points from every Iconify set's chars.json (names are CLDR slugs shared
    across sets, so fluent-emoji, without chars.json, borrows fluent-emoji-flat's)."""
    out: dict[str, str] = {}
    for root in pkg_roots:
        path = os.path.join(root, "chars.json")
        if os.path.exists(path):
            for cp, name in read_json(path).items():
                out.setdefault(name, hex_key(cp))
    return out


def dedupe(icons: list[Icon], pkg: Package) -> list[Icon]:
    """One icon per concept in a style: matched by code points or exact name first, then the
    first by icon name."""
    def rank(i: Icon):
        exact = i.row is not None and match_key(i.name) == match_key(i.row.annotation)
        return (not exact, i.name)

    seen: dict[str, Icon] = {}
    for i in sorted(icons, key=rank):
        if i.concept in seen:
            pkg.skip("duplicate or numbered variant")
            continue
        seen[i.concept] = i
    return sorted(seen.values(), key=lambda i: i.concept)


def concept_slugs(concepts: list[str]) -> dict[str, str]:
    """ASCII file names, unique: a short hash is added where two names give the same slug."""
    by_slug: dict[str, list[str]] = {}
    for c in concepts:
        by_slug.setdefault(slugify(c) or "emoji", []).append(c)
    out = {}
    for slug, cs in by_slug.items():
        for c in cs:
            out[c] = slug if len(cs) == 1 else f"{slug}-{hashlib.sha256(c.encode()).hexdigest()[:6]}"
    return out


# ---------------------------------------------------------------------------------------------
# Rasterising and writing


def rasterise(icon: Icon, png: str, size: int) -> str | None:
    """Renders one icon to png (through png.tmp); None when done, else the reason it failed."""
    tmp = png + ".tmp"
    cmd = ["rsvg-convert", "-w", str(size), "-h", str(size), "-b", "white", "-f", "png", "-o", tmp]
    try:
        if icon.svg_path is not None:
            res = subprocess.run(cmd + [icon.svg_path], capture_output=True, timeout=120)
        else:
            res = subprocess.run(cmd, input=icon.svg.encode(), capture_output=True, timeout=120)
    except subprocess.TimeoutExpired:
        res = None
    if res is None or res.returncode != 0 or not os.path.exists(tmp) or os.path.getsize(tmp) == 0:
        if os.path.exists(tmp):
            os.remove(tmp)
        if res is None:
            return "timeout"
        return (res.stderr.decode(errors="replace").strip().splitlines() or ["exit %d" % res.returncode])[0]
    os.replace(tmp, png)
    return None


def main(argv: list[str]) -> int:
    if len(argv) != 5:
        print("usage: fetch_emoji.py PKG_DIR OUT SIZE N JOBS", file=sys.stderr)
        return 2
    pkg_dir, out, size, limit, jobs = argv[0], argv[1], int(argv[2]), int(argv[3]), int(argv[4])
    t0 = float(os.environ.get("FETCH_EMOJI_T0") or time.time())  # the shell script's start

    wanted = [s for s in os.environ.get("EMOJI_STYLES", ",".join(STYLES)).split(",") if s]
    found = [s for s in STYLES if os.path.isdir(os.path.join(pkg_dir, s, "package"))]
    pkgs = {s: load_package(os.path.join(pkg_dir, s, "package"), s) for s in found}
    styles = [s for s in found if s in wanted]
    if "openmoji" not in pkgs:
        print("error: the openmoji package is required (its names and tags caption the rest)",
              file=sys.stderr)
        return 1
    rows = openmoji_rows(read_json(os.path.join(pkgs["openmoji"].path, "data", "openmoji.json")))
    matcher = Matcher(rows, chars_by_name([p.path for s, p in pkgs.items() if s != "openmoji"]))
    vocab = {w for r in rows for w in match_key(r.annotation).split() + [t for x in r.tags for t in match_key(x).split()]}
    vocab |= {w for r in rows if r.emoji for c in r.emoji for w in match_key(unicodedata.name(c, "")).split()}
    vocab |= {w for name in matcher.chars_by_name for w in match_key(name).split()}
    vocab = {w for w in vocab if len(w) > 1 or w == "a"}

    icons: dict[str, list[Icon]] = {}
    for s in styles:
        pkg = pkgs[s]
        got = openmoji_icons(pkg, rows) if s == "openmoji" else iconify_icons(pkg, matcher, vocab)
        icons[s] = dedupe(got, pkg)

    concepts = sorted({i.concept for lst in icons.values() for i in lst})
    slugs = concept_slugs(concepts)  # from all concepts, so that N does not change file names
    if limit > 0:
        concepts = concepts[:limit]
    chosen = set(concepts)
    per_concept: dict[str, int] = {}
    for s in styles:
        for c in {i.concept for i in icons[s]}:
            per_concept[c] = per_concept.get(c, 0) + 1

    stamp = os.path.join(out, ".fetch-emoji.json")
    if os.path.exists(stamp) and read_json(stamp).get("size") != size:
        print(f"error: {out} holds images of size {read_json(stamp).get('size')}, not {size}; "
              "use another OUT or delete it", file=sys.stderr)
        return 1
    os.makedirs(out, exist_ok=True)
    with open(stamp, "w") as f:
        json.dump({"size": size}, f)

    failures: dict[str, list[str]] = {}
    done_rows: dict[str, list[dict]] = {"train": [], "heldout": []}
    per_style: dict[str, dict[str, int]] = {}
    for s in styles:
        todo, rows_here = [], []
        for icon in icons[s]:
            if icon.concept not in chosen:
                continue
            kind = heldout_kind(icon.concept, s, per_concept[icon.concept])
            split = "heldout" if kind else "train"
            rel = f"{s}/{slugs[icon.concept]}.png"
            png = os.path.join(out, split, rel)
            other = os.path.join(out, "train" if kind else "heldout", rel)
            os.makedirs(os.path.dirname(png), exist_ok=True)
            if not os.path.exists(png) and os.path.exists(other):
                os.replace(other, png)  # the split rule changed since the last run
            if not os.path.exists(png):
                todo.append((icon, png))
            rows_here.append((icon, split, kind, rel, png))
        print(f"{s}: {len(rows_here)} images, {len(rows_here) - len(todo)} already there, "
              f"rasterising {len(todo)}", file=sys.stderr, flush=True)
        fails = []
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, jobs)) as ex:
            futs = {ex.submit(rasterise, icon, png, size): icon for icon, png in todo}
            for n, fut in enumerate(concurrent.futures.as_completed(futs), 1):
                err = fut.result()
                if err is not None:
                    fails.append(f"{futs[fut].name}: {err}")
                if n % 500 == 0:
                    print(f"  {s}: {n}/{len(todo)}", file=sys.stderr, flush=True)
        failures[s] = fails
        pkg = pkgs[s]
        counts = {"train": 0, "heldout": 0}
        for icon, split, kind, rel, png in rows_here:
            if not os.path.exists(png):
                continue
            row = {
                "file_name": rel,
                "text": captions(icon.concept, STYLES[s][1], icon.row),
                "emoji": icon.concept,
                "style": s,
                "source": f"{pkg.npm}@{pkg.version}",
                "license": pkg.license,
            }
            if kind:
                row["heldout"] = kind
            done_rows[split].append(row)
            counts[split] += 1
        per_style[s] = counts
        if fails:
            print(f"  {s}: {len(fails)} failed to rasterise, e.g. {fails[0]}", file=sys.stderr)

    for split, rws in done_rows.items():
        os.makedirs(os.path.join(out, split), exist_ok=True)
        path = os.path.join(out, split, "metadata.jsonl")
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            for r in sorted(rws, key=lambda r: r["file_name"]):
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
        os.replace(path + ".tmp", path)

    held_concepts = {r["emoji"] for r in done_rows["heldout"] if r["heldout"] == "concept"}
    held_pairs = sum(1 for r in done_rows["heldout"] if r["heldout"] == "pair")
    all_concepts = {r["emoji"] for rws in done_rows.values() for r in rws}
    write_sources(out, {s: pkgs[s] for s in styles}, per_style, failures, len(all_concepts), len(held_concepts), held_pairs, size)

    total = {k: sum(c[k] for c in per_style.values()) for k in ("train", "heldout")}
    images = " ".join(f"{s}={sum(c.values())}" for s, c in per_style.items())
    nfail = sum(len(f) for f in failures.values())
    print(f"done: {len(all_concepts)} concepts ({len(held_concepts)} held out, {held_pairs} held-out "
          f"pairs); images {images}; train {total['train']}, heldout {total['heldout']}; "
          f"{nfail} failed; {time.time() - t0:.0f}s", file=sys.stderr)
    return 0


def write_sources(out, pkgs, per_style, failures, n_concepts, n_held, n_pairs, size):
    lines = [
        "# Sources of this emoji dataset",
        "",
        f"Written by scripts/fetch-emoji.sh (LuminaRS): {n_concepts} emoji concepts, rasterised at "
        f"{size}x{size} onto white with rsvg-convert. Held out: {n_held} whole concepts (every "
        f"style) and {n_pairs} single (concept, style) pairs, in heldout/ (column `heldout`).",
        "",
        "| style | npm package | version | licence | author | train | heldout | failed | left out of the package |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for s, pkg in pkgs.items():
        c = per_style.get(s, {"train": 0, "heldout": 0})
        skipped = ", ".join(f"{k} {v}" for k, v in sorted(pkg.skipped.items()) if v) or "-"
        lic = pkg.license if pkg.license_title in ("", pkg.license) else f"{pkg.license} ({pkg.license_title})"
        lines.append(f"| {s} | {pkg.npm} | {pkg.version} | {lic} | "
                     f"{pkg.author} | {c['train']} | {c['heldout']} | {len(failures.get(s, []))} | {skipped} |")
    lines += ["", "## Attribution", ""]
    for s, pkg in pkgs.items():
        if s == "openmoji":
            lines.append(f"- {OPENMOJI_ATTRIBUTION} (https://openmoji.org, openmoji@{pkg.version})")
        else:
            lines.append(f"- {STYLES[s][1]}: emoji by {pkg.author}, {pkg.license_title} "
                         f"({pkg.license}), from the Iconify set {pkg.npm}@{pkg.version}.")
    lines += ["", "The images are the packages' SVGs rasterised onto a white background, otherwise unchanged."]
    fails = [(s, f) for s, fs in failures.items() for f in fs]
    if fails:
        lines += ["", "## Icons that failed to rasterise", ""] + [f"- {s} {f}" for s, f in fails]
    with open(os.path.join(out, "SOURCES.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
