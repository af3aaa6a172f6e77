#!/usr/bin/env bash
# Independent evaluation of one or more models' pictures: a concept and a style classifier fitted
# on real training pictures only (never on generated ones), then Classification Accuracy Score
# (concept top-1/top-5, style) on training prompts, held-out (concept, style) pairs and held-out
# concepts, Fréchet distance and k-NN precision/recall (k = 3) in the concept classifier's
# features against real held-out pictures, with the real pictures' own figures as ceiling and
# floor. The logic is in scripts/evaluate_generation.py (`--help` there lists every option).
#
# Usage: scripts/evaluate-generation.sh [OPTIONS] MODEL [MODEL ...]
#   MODEL     a model folder (luminars.json, ...); several give one table, e.g. a release and the
#             one before it: scripts/evaluate-generation.sh models/emoji /path/to/new
#   OPTIONS   passed on to evaluate_generation.py, e.g. --train-prompts 400 --seeds 2
#             --heldout-concept-prompts 0 (all) --steps N --cfg G --name LABEL (one per MODEL)
#             --size N (generate at N, judged at the data size) --any-size (sizes not trained at)
# Environment:
#   DATA      dataset from scripts/fetch-emoji.sh (default ../emoji-work/data)
#   WORK      work folder for the caches: decoded data, classifiers, generated pictures
#             (default ../emoji-work/evaluation); classifiers are reused while the data is the same
#   LUMINARS  the luminars program (default build/luminars; copy it elsewhere while rebuilding)
#   OUT       where evaluation.md and evaluation.json go (default WORK)
#   REPORT    their name instead of "evaluation" (e.g. evaluation-128 for a run with --size 128)
#   THREADS   torch and luminars threads (default 2)
#   CLIP      a CLIP folder: adds the project's own CLIP score as a secondary figure (default
#             ../emoji-work/clip-run/clip where it exists)
# Needs Debian's /usr/bin/python3 with python3-torch and python3-numpy (scripts/install-deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

die() {
  echo "evaluate-generation.sh: $*" >&2
  exit 1
}

data=${DATA:-../emoji-work/data}
work=${WORK:-../emoji-work/evaluation}
luminars=${LUMINARS:-build/luminars}
out=${OUT:-$work}
report=${REPORT:-evaluation}
[[ $report =~ ^[A-Za-z0-9._-]+$ ]] || die "REPORT must be a plain file name, got '$report'"
threads=${THREADS:-2}
clip=${CLIP:-}
[[ -z $clip && -f ../emoji-work/clip-run/clip/config.json ]] && clip=../emoji-work/clip-run/clip
py=/usr/bin/python3

opts=()
models=()
while [[ $# -gt 0 ]]; do
  case $1 in
    -h | --help)
      sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    --no-serve | --any-size) opts+=("$1"); shift ;;
    --*=*) opts+=("$1"); shift ;;
    --*)
      [[ $# -ge 2 ]] || die "option $1 needs a value"
      opts+=("$1" "$2"); shift 2
      ;;
    *) models+=("$1"); shift ;;
  esac
done

[[ ${#models[@]} -ge 1 ]] || die "usage: scripts/evaluate-generation.sh [OPTIONS] MODEL [MODEL ...]"
[[ -x $py ]] || die "$py is missing (Debian: apt-get install python3 python3-torch python3-numpy)"
"$py" -c "import torch, numpy" 2>/dev/null ||
  die "$py lacks torch or numpy (Debian: apt-get install python3-torch python3-numpy, or scripts/install-deps.sh)"
[[ -f $data/train/metadata.jsonl && -f $data/heldout/metadata.jsonl ]] ||
  die "no dataset at $data (train/ and heldout/ with metadata.jsonl): set DATA, or fetch it with scripts/fetch-emoji.sh $data"
for m in "${models[@]}"; do
  [[ -f $m/luminars.json ]] || die "$m is not a model folder (no luminars.json)"
done
[[ -x $luminars ]] || die "$luminars is missing: build it (scripts/build.sh) or set LUMINARS"
[[ $threads =~ ^[1-9][0-9]*$ ]] || die "THREADS must be a positive integer, got '$threads'"
mkdir -p "$work" "$out" || die "cannot create $work or $out"

args=(--data "$data" --work "$work" --luminars "$luminars" --threads "$threads"
  --out-md "$out/$report.md" --out-json "$out/$report.json")
[[ -n $clip ]] && args+=(--clip "$clip")
for m in "${models[@]}"; do
  args+=(--model "$m")
done
exec "$py" scripts/evaluate_generation.py "${args[@]}" "${opts[@]}"
