#!/usr/bin/env bash
# The unlearning benchmark on the synthetic 'small' set with the tiny MoMask (CPU), end to end:
#
#   bash scripts/benchmark_synth.sh            # -> docs/benchmark_synth/{benchmark.md,csv,png}
#
# Steps, each skipped when its output exists (so the script resumes): the dataset and the tiny
# models (scripts/train_tiny_models.sh, ~40 min), the T2M evaluator (hmu train evaluator
# --preset tiny, ~6 min), the unlearning methods (runs/unlearned/: LCR, UCE, RECE, FT 5
# epochs (~4 min), D_r with the full tiny schedule (~21 min), code suppression), then
# `hmu benchmark` (Table 1 for every
# method, the r ablation 4/8/16/32, single concepts kick and
# gun_shoot), whose evaluations are cached under runs/benchmark_synth/evals/. Protocol sized
# for 2 CPU cores: 5 repeats on the forget subset, 2 on the retain subset, MultiModality over
# 16 captions x 6 generations, seed 0; single concepts (5 forget test clips each) use
# R-precision pools of 5. A second benchmark runs the tiny BAMM's own model set and its
# unlearned copies (original, D_r, LCR, suppression).
# The safety tables (scripts/benchmark_safety.py) judge every model over 6 seeds, MoMask and
# BAMM.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="$("$root/scripts/ensure_env.sh")"
cd "$root"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
hmu=("$python" -m hmu_core.cli.main)
data=runs/synth_small models=runs/tiny_models evaluator=runs/evaluator_small
unlearned=runs/unlearned concept=violence_motionx out=runs/benchmark_synth

[ -f "$models/hmu.json" ] || bash scripts/train_tiny_models.sh "$models" "$data"
[ -f "$evaluator/text_mot_match/model/finest.tar" ] ||
    "${hmu[@]}" train evaluator --data "$data" --out "$evaluator" --preset tiny --seed 0
common=(--model "$models" --concept "$concept" --seed 0 --no-progress)
[ -d "$unlearned/lcr" ] || "${hmu[@]}" unlearn lcr "${common[@]}" --data "$data" --out "$unlearned/lcr"
[ -d "$unlearned/uce" ] || "${hmu[@]}" unlearn uce "${common[@]}" --out "$unlearned/uce"
[ -d "$unlearned/rece" ] || "${hmu[@]}" unlearn rece "${common[@]}" --out "$unlearned/rece"
[ -d "$unlearned/ft" ] ||
    "${hmu[@]}" unlearn finetune "${common[@]}" --data "$data" --epochs 5 --out "$unlearned/ft"
[ -d "$unlearned/dr" ] || "${hmu[@]}" unlearn retrain "${common[@]}" --data "$data" --out "$unlearned/dr"
# Code suppression (hmu's method): statistics from the motions, from tokens the model samples
# (no motions), and r chosen on the val split (never on test).
[ -d "$unlearned/suppress" ] ||
    "${hmu[@]}" unlearn suppress "${common[@]}" --data "$data" --r 32 --out "$unlearned/suppress"
[ -d "$unlearned/suppress-gen" ] || "${hmu[@]}" unlearn suppress "${common[@]}" --data "$data" \
    --stats generated --r 32 --out "$unlearned/suppress-gen"
[ -d "$unlearned/suppress-auto" ] || "${hmu[@]}" unlearn suppress "${common[@]}" --data "$data" \
    --r auto --r-grid 0 8 16 24 32 48 --search-seeds 1 --out "$unlearned/suppress-auto"
for r in 8 16; do
    [ -d "$unlearned/suppress-r$r" ] || "${hmu[@]}" unlearn suppress "${common[@]}" \
        --data "$data" --r "$r" --out "$unlearned/suppress-r$r"
done
# r 16, then two base-layer codes added one at a time on the val split (~20 min on one core).
[ -d "$unlearned/suppress-greedy" ] || "${hmu[@]}" unlearn suppress "${common[@]}" \
    --data "$data" --r 16 --greedy 2 --search-seeds 4 --out "$unlearned/suppress-greedy"

# The safety table: every forget caption line, 6 seeds, mean ± 95 % CI, naturalness.
"$python" scripts/benchmark_safety.py --data "$data" --concept "$concept" --seeds 6 \
    --models original="$models" dr="$unlearned/dr" ft="$unlearned/ft" uce="$unlearned/uce" \
    rece="$unlearned/rece" lcr="$unlearned/lcr" suppress-r8="$unlearned/suppress-r8" \
    suppress-r16="$unlearned/suppress-r16" suppress-r32="$unlearned/suppress" \
    suppress-auto="$unlearned/suppress-auto" suppress-gen-r32="$unlearned/suppress-gen" \
    suppress-greedy="$unlearned/suppress-greedy" --out "$out-safety"
# The same for the tiny BAMM (base transformer $models/bamm, MoMask's VQ and residual
# transformer): its own model set, D_r, LCR and suppression.
bamm_set="$models/bamm_set" bamm_common=(--model "$models/bamm_set" --concept "$concept" --seed 0
                                         --no-progress --data "$data")
[ -f "$bamm_set/hmu.json" ] || "$python" -c "
from hmu_core.models.model_set import write_model_set
write_model_set('$bamm_set', text_encoder='minilm', vq='../vq', trans='../bamm', res='../res')"
[ -d "$unlearned/bamm-dr" ] ||
    "${hmu[@]}" unlearn retrain "${bamm_common[@]}" --out "$unlearned/bamm-dr"
[ -d "$unlearned/bamm-lcr" ] || "${hmu[@]}" unlearn lcr "${bamm_common[@]}" --out "$unlearned/bamm-lcr"
for r in 16 32; do
    [ -d "$unlearned/bamm-suppress-r$r" ] || "${hmu[@]}" unlearn suppress "${bamm_common[@]}" \
        --r "$r" --out "$unlearned/bamm-suppress-r$r"
done
[ -d "$unlearned/bamm-suppress-greedy" ] || "${hmu[@]}" unlearn suppress "${bamm_common[@]}" \
    --r 16 --greedy 2 --search-seeds 4 --out "$unlearned/bamm-suppress-greedy"
"$python" scripts/benchmark_safety.py --data "$data" --concept "$concept" --seeds 6 \
    --models original="$bamm_set" dr="$unlearned/bamm-dr" lcr="$unlearned/bamm-lcr" \
    suppress-r16="$unlearned/bamm-suppress-r16" suppress-r32="$unlearned/bamm-suppress-r32" \
    suppress-greedy="$unlearned/bamm-suppress-greedy" --out "$out-safety-bamm"

"${hmu[@]}" benchmark --data "$data" --evaluator "$evaluator" --concept "$concept" \
    --models original="$models" dr="$unlearned/dr" ft="$unlearned/ft" uce="$unlearned/uce" \
    rece="$unlearned/rece" lcr="$unlearned/lcr" suppress-r32="$unlearned/suppress" \
    suppress-gen-r32="$unlearned/suppress-gen" suppress-auto="$unlearned/suppress-auto" \
    suppress-greedy="$unlearned/suppress-greedy" --r-sweep 4 8 16 32 --singles kick gun_shoot \
    --single-batch-size 5 --repeats 5 --retain-repeats 2 --mm-captions 16 --mm-generations 6 \
    --seed 0 --out "$out" --no-progress
# BAMM: Table 1 of the tiny BAMM's own unlearned sets (each carries its edited BAMM head).
"${hmu[@]}" benchmark --data "$data" --evaluator "$evaluator" --concept "$concept" \
    --models original="$bamm_set" dr="$unlearned/bamm-dr" lcr="$unlearned/bamm-lcr" \
    suppress-r16="$unlearned/bamm-suppress-r16" suppress-r32="$unlearned/bamm-suppress-r32" \
    suppress-greedy="$unlearned/bamm-suppress-greedy" \
    --repeats 5 --retain-repeats 2 --mm-captions 16 --mm-generations 6 \
    --seed 0 --out "$out-bamm" --no-progress
mkdir -p docs/benchmark_synth
cp "$out/benchmark.md" "$out/benchmark.csv" "$out/r_ablation.png" docs/benchmark_synth/
cp "$out-bamm/benchmark.md" docs/benchmark_synth/bamm.md
cp "$out-bamm/benchmark.csv" docs/benchmark_synth/bamm.csv
cp "$out-safety/safety.md" "$out-safety/safety.csv" docs/benchmark_synth/
cp "$out-safety-bamm/safety.md" docs/benchmark_synth/safety_bamm.md
cp "$out-safety-bamm/safety.csv" docs/benchmark_synth/safety_bamm.csv
echo "hmu: benchmark tables in docs/benchmark_synth/benchmark.md"
