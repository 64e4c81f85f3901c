"""The captions-only verbs stay light: matplotlib loads only when a figure is drawn.

(That they import without torch is checked in tests/test_torch_free.py.)
"""

from __future__ import annotations

import subprocess
import sys


def test_matplotlib_loads_lazily():
    code = (
        "import sys\n"
        "import hmu_core.data.stats, hmu_core.cli.data_split\n"
        "assert 'matplotlib' not in sys.modules, 'matplotlib must load lazily'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stderr
