#!/usr/bin/env bash
# Data-parallel scaling of `luminars train` on one machine: images per second of one process
# against N ranks (--nproc-per-node N: Gloo over loopback on the CPU, NCCL on GPUs), the same
# global batch and cache, and how close the N-rank weights come to one process's.
# On the CPU each rank gets cores/N intra-op threads, so the comparison is at equal cores.
# Usage: bench/distributed_scaling.sh CACHE [STEPS] [BATCH] [DEVICE] [RANKS...]
#   CACHE: a `luminars prepare` cache; STEPS 20, BATCH 32, DEVICE cpu, RANKS 2 by default.
set -euo pipefail
cd "$(dirname "$0")/.."
cache=${1:?usage: bench/distributed_scaling.sh CACHE [STEPS] [BATCH] [DEVICE] [RANKS...]}
steps=${2:-20}
batch=${3:-32}
device=${4:-cpu}
shift $(( $# < 4 ? $# : 4 ))
ranks=("$@")
[ ${#ranks[@]} -gt 0 ] || ranks=(2)
bin=${LUMINARS_BIN:-build/luminars}
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT

max_diff() {  # largest |a - b| over the float32 denoiser weights of two runs' final checkpoints
  /usr/bin/python3 -c 'import sys,json,struct,array
def load(p):
    b=open(p,"rb").read(); n=struct.unpack("<Q",b[:8])[0]; h=json.loads(b[8:8+n]); out={}
    for k,v in h.items():
        if k=="__metadata__": continue
        s,e=v["data_offsets"]; out[k]=array.array("f",b[8+n+s:8+n+e])
    return out
a,b=load(sys.argv[1]),load(sys.argv[2])
print(f"{max(max((abs(x-y) for x,y in zip(a[k],b[k])),default=0.0) for k in a):.2g}")' "$1" "$2"
}
run() {  # RANKS
  local n=$1 extra=()
  [ "$n" -gt 1 ] && extra=(--nproc-per-node "$n")
  /usr/bin/time -f "%e" -o "$dir/wall" "$bin" train --cache "$cache" --out "$dir/r$n" --preset small --batch "$batch" \
    --steps "$steps" --warmup 1 --validate-every 0 --sample-every 0 --checkpoint-every 0 --device "$device" "${extra[@]}" \
    >/dev/null 2>"$dir/err" || { cat "$dir/err" >&2; exit 1; }
  local last; last=$(cat "$dir/r$n/checkpoints/latest")
  local diff="-"
  [ "$n" -gt 1 ] && diff=$(max_diff "$dir/r1/checkpoints/$last/denoiser.safetensors" "$dir/r$n/checkpoints/$last/denoiser.safetensors")
  printf '%-10s %10s img/s %8ss wall   max |w - w(1 process)| %s\n' "$n rank(s)" "$(/usr/bin/python3 scripts/median_img_s.py "$dir/r$n" 3)" "$(cat "$dir/wall")" "$diff"
}

echo "luminars train --preset small --batch $batch, $steps steps, $device, $(nproc) cores, cache $cache"
run 1
for n in "${ranks[@]}"; do run "$n"; done
