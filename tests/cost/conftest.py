"""Fixtures for the cost-scan tests (builders live in costlog_builders.py)."""
from __future__ import annotations

from pathlib import Path

import pytest
from costlog_builders import LogHome


@pytest.fixture
def logs(tmp_path: Path) -> LogHome:
    return LogHome(tmp_path)
