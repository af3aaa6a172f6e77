#!/usr/bin/env python3
"""Median images per second of a training run's logged steps.

    median_img_s.py RUN_DIR [SKIP]

RUN_DIR/log.jsonl is the log `luminars train` (and the other trainers) write; its "train" rows'
img_per_s, the first SKIP (default 5: warm-up, first allocations) left out. Prints the median with
one decimal, or 0 when no row is left."""
import json
import statistics
import sys

if len(sys.argv) not in (2, 3):
    sys.exit(__doc__)
skip = int(sys.argv[2]) if len(sys.argv) == 3 else 5
with open(f"{sys.argv[1]}/log.jsonl") as f:
    speeds = [r["img_per_s"] for r in map(json.loads, f) if r.get("type") == "train"][skip:]
print(f"{statistics.median(speeds):.1f}" if speeds else 0)
