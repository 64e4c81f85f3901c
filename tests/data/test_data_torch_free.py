"""The dataset reader, concepts, splits, stats and captions import must work without torch."""

from __future__ import annotations

import subprocess
import sys

MODULES = [
    "hmu_core.data",
    "hmu_core.data.humanml3d",
    "hmu_core.data.concepts",
    "hmu_core.data.matching",
    "hmu_core.data.splits",
    "hmu_core.data.stats",
    "hmu_core.data.captions_import",
    "hmu_core.cli.data_split",
]


def test_import_without_torch():
    code = (
        "import sys; sys.modules['torch'] = None\n"
        + "".join(f"import {m}\n" for m in MODULES)
        + "assert 'matplotlib' not in sys.modules, 'matplotlib must load lazily'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stderr
