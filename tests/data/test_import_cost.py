"""`import ant.data` loads no torch: the planner, `ant data` and `ant sweep --dry-run` read token counts and
vocabularies, and torch costs them ~1 s. The sampler's names still import from ant.data (loaded on first use)."""

from __future__ import annotations

import subprocess
import sys


def test_import_ant_data_loads_no_torch():
    code = "import sys, ant.data; print('torch' in sys.modules)\n"
    code += "from ant.data import TrainSampler; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "True"]
