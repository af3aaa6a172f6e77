#!/usr/bin/env bash
# Ablations at equal CPU time: each variant trains the denoiser from scratch (stage 1, cosine
# schedule) on the same 64×64 cache for the same wall-clock minutes of this machine — its step
# count set from its own speed, measured for every variant first while the machine is quiet, so a
# slower variant takes fewer steps — then all of them
# are judged together by scripts/evaluate-generation.sh (same classifiers, prompts and seeds) into
# one table, OUT/evaluation.md, beside OUT/ablation.tsv (steps, minutes measured, held-out loss).
#
# Usage: scripts/ablate-emoji.sh OUT MINUTES VARIANT...
#   VARIANT  NAME=OPTIONS: `luminars train` options that replace the base ones of the same name, e.g.
#              baseline=                              uniform-t='--time-sampling uniform'
#              ema-0.9995='--ema 0.9995'              dropout-0.2='--caption-dropout 0.2'
#              lr-1e-3='--lr 1e-3'                    batch-64='--batch 64 --lr 4.2e-4'
#              T1="--config $PWD/t1.json"             (a model configuration file, text_dim of the cache)
# Environment:
#   CACHE    a 64×64 cache from `luminars prepare` (default ../emoji-work/release5/cache)
#   BIN      the luminars program (default build/luminars; copy it elsewhere while rebuilding)
#   BASE     the base options (default below: the release recipe's, from scratch; its --cpu-bf16 is slower
#            than float32 on Xeons with AMX under LibTorch 1.13: leave it out there; its EMA 0.999
#            averages about the last 1,000 steps, most of a 12-minute run: variants are judged on
#            weights that lag, alike for all of them — add --ema 0.99 to judge later weights,
#            docs/emoji/ablations.md, third round)
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

# variant_options VARIANT: checks NAME=OPTIONS and sets name, opts, dir and the options array o.
variant_options() {
  [[ $1 == *=* ]] || die "variant '$1' is not NAME=OPTIONS"
  name=${1%%=*} opts=${1#*=}
  [[ $name =~ ^[A-Za-z0-9._-]+$ ]] || die "variant name '$name' must be letters, digits, '.', '_' or '-'"
  dir=$out/$name
  # The variant's options replace the base's of the same name (--lr given twice would be two
  # stages' rates), and a model file (--config) replaces the preset.
  local -a b v
  read -r -a b <<<"$base"
  read -r -a v <<<"$opts"
  local given=" ${v[*]} " i
  [[ $given == *" --config "* ]] && given+="--preset "
  o=()
  for ((i = 0; i < ${#b[@]}; i++)); do
    if [[ ${b[i]} == --* && $given == *" ${b[i]} "* ]]; then
      [[ $((i + 1)) -lt ${#b[@]} && ${b[i + 1]} != --* ]] && i=$((i + 1))  # its value too
      continue
    fi
    o+=("${b[i]}")
  done
  o+=("${v[@]}")
}

# Every variant's speed first, one after the other, before any training: a step count is only as
# fair as the machine was quiet while it was measured (work started after these, such as evaluating
# a finished variant beside the next one's training, slows the runs but does not change their steps).
# Variants that differ only in what a step costs nothing (learning rate, schedule, the times t,
# EMA, caption dropout) share one measurement and so one step count: the model, batch and precision
# set the cost (cost_key).
cost_key() {
  printf '%s\n' "${o[@]}" | awk 'p{print; p=0} /^--(preset|config|batch|grad-accum|cpu-bf16|grad-last-recursion)$/{print; p=($0 !~ /bf16|recursion/)}' |
    paste -sd' ' | cksum | cut -d' ' -f1
}
for v in "$@"; do
  variant_options "$v"
  names+=("--name=$name") models+=("$dir/run/model")
  key=$out/.steps-$(cost_key)
  if [ -f "$dir/steps" ]; then
    [ -f "$key" ] || cp "$dir/steps" "$key"
    continue
  fi
  mkdir -p "$dir"
  if [ -f "$key" ]; then
    cp "$key" "$dir/steps"
    echo "$name: $(cat "$dir/steps") steps, as the variants of the same model and batch"
    continue
  fi
  # Speed: 60 steps of this variant; the median time of steps 11-60 (the first ones warm up).
  "$bin" train --cache "$cache" --out "$dir/calibrate" --overwrite --stage 1 --steps 60 "${o[@]}" \
    --sample-every 0 --validate-every 0 --checkpoint-every 100000 >"$dir/calibrate.log" 2>&1 ||
    die "$name: calibration failed: $(tail -1 "$dir/calibrate.log")"
  batch=$(printf '%s\n' "${o[@]}" | awk 'p{b=$0; p=0} $0=="--batch"{p=1} END{print b ? b : 32}')
  /usr/bin/python3 - "$dir/calibrate/log.jsonl" "$batch" "$minutes" >"$dir/steps.tmp" <<'EOF2'
import json, statistics, sys
rates = [r['img_per_s'] for r in map(json.loads, open(sys.argv[1])) if r.get('type') == 'train' and r['step'] > 10]
sec = statistics.median(int(sys.argv[2]) / r for r in rates)
print(max(50, int(float(sys.argv[3]) * 60 / sec)))
EOF2
  mv "$dir/steps.tmp" "$dir/steps"
  cp "$dir/steps" "$key"
  rm -rf "$dir/calibrate"
  echo "$name: $(cat "$dir/steps") steps in about $minutes min ($opts)"
done

for v in "$@"; do
  variant_options "$v"
  if [ -f "$dir/run/model/luminars.json" ]; then echo "$name: trained already ($dir/run/model)"; continue; fi
  steps=$(cat "$dir/steps")
  echo "$name: training $steps steps ($opts)"
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
