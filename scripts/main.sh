#!/usr/bin/env bash
# The main job on the embedded default (sets up .venv first when needed): build the synthetic
# tiny benchmark and draw its Figure 2 under runs/.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="$("$root/scripts/ensure_env.sh")"
cd "$root"
out="${1:-runs/synth-tiny}"
"$python" -m hmu_core.cli.main data synth --size tiny --seed 0 --out "$out" --overwrite
"$python" -m hmu_core.cli.main data stats "$out" --concepts violence_motionx --out "$out/stats"
echo "hmu: Figure 2 of the synthetic benchmark is in $out/stats"
