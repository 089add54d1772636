"""mypy --strict over engine/ (settings in pyproject.toml; mypy comes with the `dev` extra)."""
from __future__ import annotations

import subprocess
import sys

from ..conftest import ROOT


def test_engine_is_strictly_typed() -> None:
    result = subprocess.run([sys.executable, "-m", "mypy", "engine"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:]
