#!/usr/bin/env bash
# Run the whole test suite (sets up .venv first when needed). Extra arguments go to pytest.
# Set-up also fetches, once, the onnxruntime wheels the Blender add-on zip bundles (cp311 and
# cp313, linux-x64) into build/wheels, so the test that installs the built zip into bpy runs;
# without registry access that test skips and says why.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="$("$root/scripts/ensure_env.sh")"
cd "$root"
if ! ls build/wheels/cpu/cp313-linux-x64/onnxruntime-*.whl >/dev/null 2>&1; then
    "$python" scripts/build_addon.py --platforms linux-x64 --out build/dist >/dev/null ||
        echo "hmu: could not fetch the add-on's onnxruntime wheels; the zip-install test skips" >&2
fi
"$python" -m ruff check .
# Python's bytecode cache on, even where the environment turns it off: otherwise each xdist
# worker rewrites the asserts of all 120 test modules (3 s) and every one of the ~40 Python
# processes the suite starts compiles hmu_core from source again.
unset PYTHONDONTWRITEBYTECODE
# Every core (pytest-xdist): tests to whichever worker is free, longest first, the users of a
# costly shared fixture together (tests/conftest.py).
exec "$python" -m pytest -q -n auto --dist loadgroup "$@"
