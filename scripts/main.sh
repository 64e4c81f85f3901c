#!/usr/bin/env bash
# The main job on the embedded default (sets up .venv first when needed): `hmu demo`, which
# makes the synthetic benchmark, unlearns violence from the embedded tiny MoMask with LCR,
# exports the original and unlearned bundles, generates the same prompts from both through the
# torch-free runtime and writes a before/after report to runs/demo/report/README.md.
# About 5 minutes on 2 cores the first time; a second run reuses everything (under a minute).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="$("$root/scripts/ensure_env.sh")"
cd "$root"
"$python" -m hmu_core.cli.main demo --out "${1:-runs/demo}"
