"""Fixtures for the cost-scan tests (builders live in costlog_builders.py)."""
from __future__ import annotations

from pathlib import Path

import pytest
from costlog_builders import LogHome


@pytest.fixture
def logs(tmp_path: Path) -> LogHome:
    return LogHome(tmp_path)


@pytest.fixture(autouse=True, params=["read", "mapped"])
def read_mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every cost test runs twice: logs read in chunks, and logs mapped (jsonl.read_blocks picks
    mapping only for large files not written in the last seconds, which test logs never are)."""
    from engine.cost import jsonl

    if request.param == "mapped":
        monkeypatch.setattr(jsonl, "MMAP_MIN_BYTES", 1)
        monkeypatch.setattr(jsonl, "MMAP_MIN_AGE", 0.0)
    else:
        monkeypatch.setattr(jsonl, "MMAP_MIN_BYTES", 1 << 62)
    return str(request.param)
