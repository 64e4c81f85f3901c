#!/usr/bin/env bash
# Train the tiny MoMask and BAMM model sets on the synthetic small set (CPU) and measure them.
#
#   scripts/train_tiny_models.sh [OUT] [DATA]      # defaults: runs/tiny_models runs/synth_small
#
# Makes DATA with `hmu data synth --size small --seed 0` when it is missing, then trains with the
# `tiny` presets (seed 0, text encoder minilm) into one model-set directory:
#   OUT/vq  OUT/trans (MoMask's masked transformer)  OUT/res  OUT/bamm  OUT/length_estimator
#   OUT/hmu.json   the MoMask set (vq, trans, res, length_estimator; text encoder minilm), so
#                  `hmu generate --model OUT` works; BAMM: `hmu generate --model OUT --trans OUT/bamm`
# and finally prints the family-match figure of both models (scripts/eval_family_match.py) and
# the VQ round-trip ceiling, also written as OUT/eval_*.json. Each stage's wall and CPU time goes
# to OUT/times.txt. A stage whose directory already holds a finished run is resumed (a no-op),
# so the script can be re-run after an interruption.
#
# Expected times on 2 idle CPU cores (OMP_NUM_THREADS=2): synth ~1 min, VQ ~8 min, mask ~8 min,
# res ~4 min, BAMM ~9 min, length estimator ~2 min, evaluation ~1 min (MoMask, all captions)
# and ~4 min (BAMM, first caption per clip): about 40 min
# in all, i.e. under 30 min per model family (VQ + base + residual transformer).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
python="${PYTHON:-$root/.venv/bin/python}"
out="${1:-runs/tiny_models}"
data="${2:-runs/synth_small}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
hmu=("$python" -m hmu_core.cli.main)
mkdir -p "$out"
times="$out/times.txt"

stage() {  # stage NAME COMMAND...: run it, append "NAME: wall W s, cpu U s user + S s sys"
  local name="$1"; shift
  local TIMEFORMAT="$name: wall %0R s, cpu %0U s user + %0S s sys"
  { time "$@" 2>&3 3>&-; } 3>&2 2>>"$times"
  tail -n 1 "$times"
}

train() {  # train KIND [ARGS...]: hmu train KIND into $out/KIND, resuming a finished/killed run
  local kind="$1"; shift
  local dir="$out/$kind"
  [ "$kind" = mask ] && dir="$out/trans"
  [ "$kind" = length ] && dir="$out/length_estimator"
  local resume=()
  [ -f "$dir/model/latest.tar" ] && resume=(--resume)
  stage "train $kind" "${hmu[@]}" train "$kind" --data "$data" --out "$dir" --preset tiny \
    --seed 0 --device cpu --no-progress "${resume[@]}" "$@"
}

if [ ! -f "$data/clips.jsonl" ]; then
  stage "synth small" "${hmu[@]}" data synth --size small --seed 0 --out "$data"
fi
train vq
train mask --vq "$out/vq" --text-encoder minilm
train res --vq "$out/vq" --text-encoder minilm
train bamm --vq "$out/vq" --text-encoder minilm
train length --text-encoder minilm

"$python" - "$out" <<'EOF'
import sys
from hmu_core.models.model_set import write_model_set
out = sys.argv[1]
write_model_set(out, text_encoder="minilm", vq="vq", trans="trans", res="res",
                length_estimator="length_estimator")
EOF
eval=("$python" scripts/eval_family_match.py --data "$data")
stage "eval vq ceiling" "${eval[@]}" --vq "$out/vq" --vq-only --json "$out/eval_vq.json" \
  --save-classifier "$out/classifier.npz"
eval+=(--classifier "$out/classifier.npz")
stage "eval momask" "${eval[@]}" "$out" --json "$out/eval_momask.json"
# BAMM decodes slot by slot (about 10 min for all 1,350 test captions): one caption per clip.
stage "eval bamm" "${eval[@]}" "$out" --trans "$out/bamm" --captions first \
  --json "$out/eval_bamm.json"
echo "hmu: tiny models in $out (times in $times)"
