"""config.py: CodexBar config path resolution, normalization and token accounts."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.config import config_path, load_config, select_account
from engine.errors import EngineError


def test_path_resolution_order(tmp_path: Path) -> None:
    home = tmp_path
    assert config_path({"CODEXBAR_CONFIG": "~/c.json"}, home) == home / "c.json"
    assert config_path({"XDG_CONFIG_HOME": "/xdg"}, home) == Path("/xdg/codexbar/config.json")
    assert config_path({"XDG_CONFIG_HOME": "relative"}, home) == home / ".config/codexbar/config.json"
    (home / ".codexbar").mkdir()
    (home / ".codexbar/config.json").write_text("{}")
    assert config_path({}, home) == home / ".codexbar/config.json"
    (home / ".config/codexbar").mkdir(parents=True)
    (home / ".config/codexbar/config.json").write_text("{}")
    assert config_path({}, home) == home / ".config/codexbar/config.json"


def test_normalization_keeps_file_order_first_duplicate_and_appends_registry(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"version": 1, "providers": [
        {"id": "zai", "enabled": True, "region": "bigmodel-cn"}, {"id": "zai", "enabled": False}, {"id": "codex"}]}))
    config = load_config({"CODEXBAR_CONFIG": str(path)}, tmp_path, ["codex", "zai", "openrouter"])
    assert list(config.entries) == ["zai", "codex", "openrouter"]
    assert config.entries["zai"]["region"] == "bigmodel-cn"
    assert config.enabled({"codex": True}) == ["zai", "codex"]


@pytest.mark.parametrize("content", ["{", '{"providers": []}', '{"version": 1, "providers": [{"id": "nope"}]}'])
def test_bad_config_is_a_clear_error(tmp_path: Path, content: str) -> None:
    path = tmp_path / "c.json"
    path.write_text(content)
    with pytest.raises(EngineError) as exc:
        load_config({"CODEXBAR_CONFIG": str(path)}, tmp_path, ["codex"])
    assert exc.value.kind == "config_invalid" and "Failed to decode CodexBar config" in exc.value.message


def test_token_account_selection() -> None:
    entry = {"tokenAccounts": {"version": 1, "activeIndex": 5, "accounts": [
        {"label": "Work", "token": "a"}, {"label": "home", "token": "b"}]}}
    assert select_account(entry, provider="x")["label"] == "home"  # active index clamped
    assert select_account(entry, label="work", provider="x")["token"] == "a"
    assert select_account(entry, index=1, provider="x")["token"] == "a"
    with pytest.raises(EngineError, match=r"Token account index 3 out of range for x \(1-2\)\."):
        select_account(entry, index=3, provider="x")
    with pytest.raises(EngineError, match="No token account labeled 'play' for x."):
        select_account(entry, label="play", provider="x")
    with pytest.raises(EngineError, match="No token accounts configured for x."):
        select_account({}, label="a", provider="x")
    assert select_account({}, provider="x") is None
