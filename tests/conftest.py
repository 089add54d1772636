"""Test settings: an empty environment for every test, and helpers shared by the suites."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def engine_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One engine cache (validated specs, compiled expressions) for the session, never the user's."""
    return tmp_path_factory.mktemp("engine-cache")


@pytest.fixture(autouse=True)
def empty_environment(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory,
                      engine_cache: Path) -> None:
    """No test sees the real environment, home folder or caches."""
    keep = {k: os.environ[k] for k in ("PATH", "SYSTEMROOT", "LANG") if k in os.environ}
    for key in list(os.environ):
        monkeypatch.delenv(key)
    for key, value in keep.items():
        monkeypatch.setenv(key, value)
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("ENGINE_CACHE_DIR", str(engine_cache))


def snapshot_schema_validator():  # noqa: ANN201 - jsonschema's type
    import jsonschema

    schema = json.loads((ROOT / "schemas" / "snapshot.schema.json").read_text())
    return jsonschema.Draft202012Validator(schema)
