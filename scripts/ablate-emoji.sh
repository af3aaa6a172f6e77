#!/usr/bin/env bash
# Ablations at equal CPU time: each variant trains the denoiser from scratch (stage 1, cosine
# schedule) on the same 64×64 cache for the same wall-clock minutes on this machine — its step
# count set from its own measured speed, so a slower variant takes fewer steps — then all of them
# are judged together by scripts/evaluate-generation.sh (same classifiers, prompts and seeds) into
# one table, OUT/evaluation.md, beside OUT/ablation.tsv (steps, minutes measured, held-out loss).
#
# Usage: scripts/ablate-emoji.sh OUT MINUTES VARIANT...
#   VARIANT  NAME=OPTIONS: `luminars train` options added after the base ones (a later option wins), e.g.
#              baseline=                              uniform-t='--time-sampling uniform'
#              ema-0.9995='--ema 0.9995'              dropout-0.2='--caption-dropout 0.2'
#              lr-1e-3='--lr 1e-3'                    batch-64='--batch 64 --lr 4.2e-4'
#              T1="--config $PWD/t1.json"             (a model configuration file, text_dim of the cache)
# Environment:
#   CACHE    a 64×64 cache from `luminars prepare` (default ../emoji-work/release5/cache)
#   BIN      the luminars program (default build/luminars; copy it elsewhere while rebuilding)
#   BASE     the base options (default below: the release recipe's, from scratch)
#   EVAL=0   train only; EVAL_OPTS are passed on to evaluate-generation.sh
# Runs resume: a variant whose model folder exists is kept; one interrupted continues (--resume).
set -euo pipefail
cd "$(dirname "$0")/.."
die() { echo "ablate-emoji.sh: $*" >&2; exit 1; }
[ $# -ge 3 ] || die "usage: scripts/ablate-emoji.sh OUT MINUTES NAME=OPTIONS... (see the top of this file)"
out=$1 minutes=$2; shift 2
[[ $minutes =~ ^[0-9]+(\.[0-9]+)?$ ]] && awk -v m="$minutes" 'BEGIN{exit !(m > 0 && m <= 1440)}' ||
  die "MINUTES must be a number of minutes between 0 and 1440, got '$minutes'"
cache=${CACHE:-../emoji-work/release5/cache}
bin=${BIN:-build/luminars}
[ -f "$cache/cache.json" ] || die "CACHE '$cache' has no cache.json (make one with luminars prepare)"
[ -x "$bin" ] || die "BIN '$bin' is not an executable (build it: scripts/build.sh)"
base=${BASE:---preset small --batch 32 --cpu-bf16 --lr 3e-4 --lr-schedule cosine --warmup 200 --ema 0.999 --val-fraction 0.02 --seed 0}
mkdir -p "$out"
tsv=$out/ablation.tsv
[ -f "$tsv" ] || printf 'variant\toptions\tsteps\tminutes\tval_loss\n' >"$tsv"
names=() models=()

for v in "$@"; do
  [[ $v == *=* ]] || die "variant '$v' is not NAME=OPTIONS"
  name=${v%%=*} opts=${v#*=}
  [[ $name =~ ^[A-Za-z0-9._-]+$ ]] || die "variant name '$name' must be letters, digits, '.', '_' or '-'"
  dir=$out/$name
  names+=("--name=$name") models+=("$dir/run/model")
  if [ -f "$dir/run/model/luminars.json" ]; then echo "$name: trained already ($dir/run/model)"; continue; fi
  mkdir -p "$dir"
  read -r -a o <<<"$base $opts"
  if [ ! -f "$dir/steps" ]; then
    # Speed: 60 steps of this variant; the median time of steps 11-60 (the first ones warm up).
    "$bin" train --cache "$cache" --out "$dir/calibrate" --overwrite --stage 1 --steps 60 "${o[@]}" \
      --sample-every 0 --validate-every 0 --checkpoint-every 100000 >"$dir/calibrate.log" 2>&1 ||
      die "$name: calibration failed: $(tail -1 "$dir/calibrate.log")"
    batch=$(printf '%s\n' "${o[@]}" | awk 'p{b=$0; p=0} $0=="--batch"{p=1} END{print b ? b : 32}')
    /usr/bin/python3 - "$dir/calibrate/log.jsonl" "$batch" "$minutes" >"$dir/steps" <<'EOF'
import json, statistics, sys
rates = [r['img_per_s'] for r in map(json.loads, open(sys.argv[1])) if r.get('type') == 'train' and r['step'] > 10]
sec = statistics.median(int(sys.argv[2]) / r for r in rates)
print(max(50, int(float(sys.argv[3]) * 60 / sec)))
EOF
    rm -rf "$dir/calibrate"
  fi
  steps=$(cat "$dir/steps")
  echo "$name: $steps steps in about $minutes min ($opts)"
  t0=$SECONDS
  resume=(); [ -d "$dir/run/checkpoints" ] && resume=(--resume)
  "$bin" train --cache "$cache" --out "$dir/run" "${resume[@]}" --stage 1 --steps "$steps" "${o[@]}" \
    --sample-every 0 --validate-every "$steps" --checkpoint-every 500 --keep-checkpoints 1 >"$dir/train.log" 2>&1 ||
    die "$name: training failed: $(tail -1 "$dir/train.log")"
  val=$(grep '"type":"val"' "$dir/run/log.jsonl" | tail -1 | sed 's/.*"val_loss":\([0-9.e-]*\).*/\1/')
  printf '%s\t%s\t%s\t%.1f\t%s\n' "$name" "$opts" "$steps" "$(awk -v s=$((SECONDS - t0)) 'BEGIN{print s/60}')" "$val" >>"$tsv"
done

column -t -s $'\t' "$tsv"
[ "${EVAL:-1}" = 0 ] && exit 0
# shellcheck disable=SC2086
OUT=$out REPORT=evaluation LUMINARS=$bin scripts/evaluate-generation.sh "${names[@]}" ${EVAL_OPTS:-} "${models[@]}"
